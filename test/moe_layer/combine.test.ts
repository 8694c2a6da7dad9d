// The top-k combine chosen per choice-table entry (LayerConfig.combine): which entries of the
// models' tables reduce, the layer-wide override for A/B runs (modelSpec's `combine`), the
// validation per entry, the workspace's `pairs` slice (only where the chosen entry reduces) and
// the generated launcher: the combine stage and the row-storing down kernel only under the
// reducing entry, the clear of `out` only in the atomic down kernel's launcher. No nvcc and no
// interpreter runs here (test/moe_layer/layer.test.ts runs a mixed table against the reference).
import { describe, expect, it } from "vitest";
import { CHOICES, combineOf, type LayerSpec, modelSpec, quantities, stages, workspaceLayout } from "../../src/moe/layer.ts";
import { emitLayerCuda } from "../../src/moe/host.ts";
import { tinyConfigs, tinyMixedConfigs } from "./tiny.ts";

const mixed: LayerSpec = { name: "tiny_mixed", experts: 4, hidden: 64, intermediate: 72, topK: 2, activation: "silu", weights: "bf16",
  renormalize: true, configs: tinyMixedConfigs() };
const atomicOnly: LayerSpec = { ...mixed, name: "tiny_atomic", configs: tinyConfigs("bf16") };
const names = (s: LayerSpec, entry: string) => stages(s, s.configs.find((c) => c.name === entry)).map((st) => `${st.stage} ${st.kernel}`);

describe("the models' tables", () => {
  it("prefill entries reduce, Mixtral's decode and mid entries use atomics, Qwen3's reduce; each says why", () => {
    for (const model of ["mixtral", "qwen3"]) {
      expect(CHOICES[model]!.bf16.map((c) => `${c.name} ${combineOf(c)}`)).toEqual(model === "qwen3" ? ["decode reduce", "mid reduce", "prefill reduce"] : ["decode atomic", "prefill reduce"]);
      expect(CHOICES[model]!.w4a16.map((c) => `${c.name} ${combineOf(c)}`)).toEqual(model === "qwen3" ? ["decode reduce", "mid reduce", "prefill reduce"] : ["decode atomic", "mid atomic", "prefill reduce"]);
      expect(CHOICES[model]!.w4a16.at(-1)!.why).toMatch(/Combine: the separate reduction \(moe_gemm_down_pairs_w4a16 .*1\.439 against 1\.949 ms/);
      expect(names(modelSpec(model, "w4a16"), "prefill").slice(-2)).toEqual(["down moe_gemm_down_pairs_w4a16", "combine moe_combine"]);
      const pre = CHOICES[model]!.bf16.find((c) => c.name === "prefill")!;
      expect(pre.down.splitK).toBe(1);
      expect(pre.why).toMatch(/13-15% faster for Qwen3 at M >= 1024.*4\.91 against 5\.29 ms for Mixtral/);
      expect(CHOICES[model]!.bf16[0]!.why).toMatch(model === "qwen3" ? /Combine: the separate reduction .*0\.229 against 0\.238 ms/ : /Combine: f32 atomics/);
      expect(names(modelSpec(model, "bf16"), "prefill").slice(-3)).toEqual(["up moe_gemm_up_permuted", "down moe_gemm_down_pairs", "combine moe_combine"]);
      expect(names(modelSpec(model, "bf16"), "decode").slice(-3)).toEqual(model === "qwen3" ? ["up moe_gemm_up", "down moe_gemm_down_pairs", "combine moe_combine"]
        : ["align moe_align", "up moe_gemm_up", "down moe_gemm_down"]);
    }
  });
});

describe("modelSpec's layer-wide override", () => {
  it("without it each entry keeps its own combine; with it every entry is forced and the layer named after it", () => {
    const table = modelSpec("mixtral", "bf16");
    expect([table.name, table.forcedCombine]).toEqual(["mixtral_bf16", undefined]);
    expect(table.configs.map(combineOf)).toEqual(["atomic", "reduce"]);
    const a = modelSpec("mixtral", "bf16", "atomic"), r = modelSpec("mixtral", "bf16", "reduce");
    expect([a.name, a.forcedCombine, a.configs.map(combineOf)]).toEqual(["mixtral_bf16_atomic", "atomic", ["atomic", "atomic"]]);
    expect([r.name, r.forcedCombine, r.configs.map(combineOf)]).toEqual(["mixtral_bf16_reduce", "reduce", ["reduce", "reduce"]]);
    // Forced reduce cannot split K: the decode entry's split-K 8 becomes 1, its other configs stay.
    expect(r.configs[0]!.down).toEqual({ ...table.configs[0]!.down, splitK: 1 });
    expect(a.configs[0]!.down).toEqual(table.configs[0]!.down);
    // The table is not changed by forcing.
    expect(CHOICES.mixtral!.bf16.map(combineOf)).toEqual(["atomic", "reduce"]);
    expect(CHOICES.qwen3!.bf16.map(combineOf)).toEqual(["reduce", "reduce", "reduce"]);
    expect(modelSpec("mixtral", "bf16", "reduce", "decode")).toMatchObject({ name: "mixtral_bf16_reduce_decode", entry: "decode", forcedCombine: "reduce" });
    expect(modelSpec("mixtral", "bf16", undefined, "prefill").configs.map(combineOf)).toEqual(["reduce"]);
  });

  it("w4a16 reduces with its own pairs kernel (the packed weights dequantized in the loop)", () => {
    const down = (combine: "atomic" | "reduce") => stages(modelSpec("mixtral", "w4a16", combine)).filter((st) => st.stage === "down" || st.stage === "combine").map((st) => st.kernel);
    expect(down("reduce")).toEqual(["moe_gemm_down_pairs_w4a16", "moe_combine"]);
    expect(down("atomic")).toEqual(["moe_gemm_down_w4a16"]);
  });

  it("reduce_bf16: the bf16-row pairs kernels and combine, the workspace's pairs_bf16 (bf16) instead of pairs, entry code 2 in the launcher", () => {
    const down = (weights: "bf16" | "w4a16") => stages(modelSpec("qwen3", weights, "reduce_bf16")).filter((st) => st.stage === "down" || st.stage === "combine")
      .map((st) => `${st.kernel} ${st.bind.Y}`);
    expect(down("bf16")).toEqual(["moe_gemm_down_pairs_bf16 pairs_bf16", "moe_combine_bf16 pairs_bf16"]);
    expect(down("w4a16")).toEqual(["moe_gemm_down_pairs_w4a16_bf16 pairs_bf16", "moe_combine_bf16 pairs_bf16"]);
    const rb = { ...mixed, name: "tiny_rb", configs: mixed.configs.map((c) => (c.name === "prefill" ? { ...c, combine: "reduce_bf16" as const } : c)) };
    expect(workspaceLayout(rb, 17).slices.at(-1)).toMatchObject({ name: "pairs_bf16", dtype: "bf16", bytes: 17 * 2 * 64 * 2 });
    expect(workspaceLayout(rb, 16).slices.at(-1)).toMatchObject({ name: "pairs_bf16", bytes: 0 });
    expect(workspaceLayout(rb, 17).slices.some((x) => x.name === "pairs")).toBe(false);
    const l = emitLayerCuda(rb, "sm_80");
    expect(l.cu).toContain("static const int moe_layer_tiny_rb_reduces[2] = { 0, 2 };");
    expect(l.cu).toContain("(moe_layer_tiny_rb_reduces[config] == 2 ? (T * 2) : 0) * (int64_t)64 * 2));  // pairs_bf16");
    expect(l.h).toMatch(/a bf16 row per \(token, slot\) pair, then a weighted reduction in f32 \(prefill\)/);
  });
});

describe("validation per entry", () => {
  it("a reducing entry cannot split K; an atomic one can; a w4a16 entry reduces too; combine must be a known word", () => {
    const bad = (configs: LayerSpec["configs"], weights: LayerSpec["weights"] = "bf16") => () => stages({ ...mixed, weights, configs });
    const [decode, prefill] = tinyMixedConfigs();
    expect(bad([{ ...decode!, combine: "reduce" }, prefill!])).toThrow(
      /layer tiny_mixed: config 'decode': the reduce combine's down kernel stores rows and cannot split K \(splitK 2\); use splitK 1 or combine "atomic"/);
    expect(bad([decode!, prefill!])).not.toThrow();
    expect(bad([decode!, { ...prefill!, down: { ...prefill!.down, BK: 128 } }], "w4a16")).not.toThrow();
    expect(bad([decode!, { ...prefill!, combine: "sum" as never }])).toThrow(/config 'prefill': combine 'sum': use "atomic", "reduce", "reduce_bf16"/);
  });
});

describe("the workspace's pairs slice", () => {
  it("last, [T * top_k, H] f32 where the chosen entry reduces, empty where it adds atomically; absent without reducing entries", () => {
    expect(workspaceLayout(atomicOnly, 17).slices.map((x) => x.name)).not.toContain("pairs");
    const pairs = (T: number) => workspaceLayout(mixed, T).slices.at(-1)!;
    expect(pairs(16)).toMatchObject({ name: "pairs", dtype: "f32", bytes: 0 });
    expect(pairs(17)).toMatchObject({ name: "pairs", dtype: "f32", bytes: 17 * 2 * 64 * 4 });
    expect([quantities(mixed, 16).PR, quantities(mixed, 17).PR]).toEqual([0, 34]);
    // The other slices keep the offsets (and sizes) of the same table without reducing entries.
    for (const T of [1, 16, 17, 300]) {
      expect(workspaceLayout(mixed, T).slices.slice(0, -1)).toEqual(workspaceLayout(atomicOnly, T).slices);
      expect(workspaceLayout(mixed, T).total - workspaceLayout(atomicOnly, T).total).toBe(Math.ceil(pairs(T).bytes / 256) * 256);
    }
    // The models: xp then pairs, both sized by the entry T picks (Mixtral's decode entry adds atomically).
    const m = modelSpec("mixtral", "bf16");
    expect(workspaceLayout(m, 16).slices.slice(-2).map((x) => [x.name, x.bytes])).toEqual([["xp", 0], ["pairs", 0]]);
    expect(workspaceLayout(m, 1024).slices.at(-1)).toMatchObject({ name: "pairs", bytes: 1024 * 2 * 4096 * 4 });
    // Qwen3's decode entry reduces without permuting: pairs but no xp rows at T = 256.
    expect(workspaceLayout(modelSpec("qwen3", "bf16"), 256).slices.slice(-2).map((x) => [x.name, x.bytes])).toEqual([["xp", 0], ["pairs", 256 * 8 * 2048 * 4]]);
  });
});

describe("the generated launcher of a table that mixes the combines", () => {
  const l = emitLayerCuda(mixed, "sm_80");
  const at = l.cu.slice(l.cu.indexOf("static int moe_layer_tiny_mixed_at("));

  it("calls the row-storing down kernel and the combine stage only for the reducing entry, the atomic down kernel for the other", () => {
    expect(l.lowered.map((x) => `${x.stage.stage} ${x.stage.kernel} ${x.configs.join("+")}`)).toEqual(["router moe_router decode", "router moe_router prefill",
      "gate_align moe_gate_align_softmax decode+prefill", "gate moe_gate_softmax decode+prefill", "align moe_align decode+prefill", "up moe_gemm_up decode", "up moe_gemm_up prefill",
      "down moe_gemm_down decode", "down moe_gemm_down_pairs prefill", "combine moe_combine prefill"]);
    expect(at).toMatch(/\n {2}if \(config == 0\) err = moe_layer_tiny_mixed_down_decode\(y, w2, sorted, block_expert, topk_weights, out, [^\n]*\n {2}else err = moe_layer_tiny_mixed_down_prefill\(y, w2, sorted, block_expert, pairs, /);
    expect(at).toMatch(/\n {2}err = 0;\n {2}if \(config == 1\) err = moe_layer_tiny_mixed_combine\(pairs, topk_weights, out, [^\n]*\/\/ prefill\n {2}if \(err != 0\) return 7 \* MOE_LAYER_TINY_MIXED_STAGE \+ err; {2}\/\/ combine\n/);
    expect(at.match(/moe_layer_tiny_mixed_combine\(/g)).toHaveLength(1);
    expect(l.cu).toContain("static const int moe_layer_tiny_mixed_reduces[2] = { 0, 1 };");
    expect(l.h).toMatch(/f32 atomics \(decode\) or a row per \(token, slot\) pair, then a weighted reduction \(prefill\)/);
    expect(l.h).toMatch(/\/\/ {3}0 decode \(T <= 16\): .*splitK=2,GROUP_M=8; combine atomic\n\/\/ {3}1 prefill \(T > 16\): .*; combine reduce\n/);
  });

  it("says which down kernel failed by the entry that ran: each entry alone its own, the table (entry unknown) the first's", () => {
    const e = "(code % MOE_LAYER_TINY_MIXED_STAGE)";
    expect(l.cu).toContain(`    case 5 + 1: return config == 0 ? moe_layer_tiny_mixed_down_decode_error_string${e} : ` +
      `config == 1 ? moe_layer_tiny_mixed_down_prefill_error_string${e} : moe_layer_tiny_mixed_down_decode_error_string${e};\n`);
    // One kernel in every entry that runs the stage (the router at two configs): its launcher's texts.
    expect(l.cu).toContain(`    case 0 + 1: return moe_layer_tiny_mixed_router_decode_error_string${e};\n`);
    expect(l.cu).toContain('extern "C" const char* moe_layer_tiny_mixed_error_string(int code) { return moe_layer_tiny_mixed_error_string_at(-1, code); }');
    expect(l.cu).toContain('extern "C" const char* moe_layer_tiny_mixed_prefill_error_string(int code) { return moe_layer_tiny_mixed_error_string_at(1, code); }');
  });

  it("sizes pairs by the entry: T * top_k rows where it reduces, none where it does not", () => {
    expect(l.cu).toContain("bytes += moe_layer_tiny_mixed_round_up((size_t)((int64_t)(moe_layer_tiny_mixed_reduces[config] == 1 ? (T * 2) : 0) * (int64_t)64 * 4));  // pairs");
    // Carved last, after every other slice.
    expect(at.indexOf("float* const pairs")).toBeGreaterThan(at.indexOf("__nv_bfloat16* const y"));
    expect(at.indexOf("float* const pairs")).toBeLessThan(at.indexOf("int err;"));
  });

  it("clears out only in the atomic down kernel's launcher (the reduction overwrites every row)", () => {
    const clears = [...l.cu.matchAll(/cudaMemsetAsync\(out, 0, /g)].map((m) => {
      const before = l.cu.slice(0, m.index);
      return /extern "C" int (\w+)\([^\n]*\n(?![^]*extern "C" int \w+\()/.exec(before)?.[1];
    });
    expect(clears).toEqual(["moe_layer_tiny_mixed_down_decode"]);
  });

  it("a table without reducing entries has no pairs, no reduces table and no combine stage", () => {
    const a = emitLayerCuda(atomicOnly, "sm_80");
    expect(a.cu).not.toMatch(/pairs|_reduces\[|moe_combine|_combine\(/);
    expect(a.cu.match(/cudaMemsetAsync\(out, 0, /g)).toHaveLength(2);
    expect(a.h).toMatch(/top-k combine \(f32 atomics\)/);
  });
});
