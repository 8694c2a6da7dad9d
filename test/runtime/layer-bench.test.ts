// The MoE layer bench without a GPU: its plan (buffers in the launcher's order, workspace
// slices where the C launcher carves them), the floors' arithmetic, the report's ratios and
// targets, the output checks, token 0's reference from partial fills, and the layer built as a
// shared library whose workspace size agrees with the TypeScript layout.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { checkLayerOutputs, tokenZeroReference, type TokenReference } from "../../bench/layer-check.ts";
import { benchSpecs, candidateSpecs, combineComparison, combineTable, entryLibs, LAYER_COPY_NAME, LAYER_CUBLAS_NAME, layerCaseName, layerFloor, layerInits, layerPlan, layerReport, layerTextTable, pdlComparison, pdlTable, plainLib, touchedExperts, twinOf, type LayerCaseMeta } from "../../bench/layer-plan.ts";
import { moeLayerRef, silu } from "../../src/check/moe-layer-ref.ts";
import { nvccAvailable } from "../../src/driver/nvcc.ts";
import { buildLayerLibrary } from "../../src/moe/library.ts";
import { bufferNumel, callerBuffers, chooseConfig, combineOf, expertWeightBytes, type LayerSpec, modelSpec, stages, W4_ORDERS, workspaceLayout } from "../../src/moe/layer.ts";
import { dequantMatrix } from "../../src/quant/index.ts";
import { wordsPerRow } from "../../src/quant/format.ts";
import { fillValues } from "../../src/runtime/prng.ts";
import { isCopyCase, isCublasCase, isLayerCase, type LayerCase, type Results } from "../../src/runtime/plan.ts";
import { planDir } from "./helpers.ts";
import { tinyConfigs } from "../moe_layer/tiny.ts";

const tiny = (weights: "bf16" | "w4a16"): LayerSpec => ({ name: `tiny_${weights}`, experts: 4, hidden: 256, intermediate: 136, topK: 2,
  configs: tinyConfigs(weights), activation: "silu", weights, renormalize: true });

describe("layer bench plan", () => {
  const mix = modelSpec("mixtral", "w4a16"), qwen = modelSpec("qwen3", "bf16");
  const { cases, meta } = layerPlan([{ spec: mix, library: "moe_layer_mixtral_w4a16.so", symbol: "moe_layer_mixtral_w4a16" },
    { spec: qwen, library: "q.so", symbol: "moe_layer_qwen3_bf16" }], [1, 4096], { reps: 7 });

  it("measures both ceilings first, then every layer x M once, timed after an L2 flush", () => {
    expect(isCopyCase(cases[0]!) && cases[0]!.name).toBe(LAYER_COPY_NAME);
    expect(isCublasCase(cases[1]!) && cases[1]!.cublas).toMatchObject({ m: 4096, n: 14336, k: 4096, dtype: "bf16" });
    expect(cases[1]!.name).toBe(LAYER_CUBLAS_NAME);
    expect(cases.slice(2).map((c) => c.name)).toEqual([layerCaseName(mix, 1), layerCaseName(mix, 4096), layerCaseName(qwen, 1), layerCaseName(qwen, 4096)]);
    expect(meta.map((m) => m.name)).toEqual(cases.slice(2).map((c) => c.name));
    for (const c of cases.slice(2)) expect(c.time).toMatchObject({ reps: 7, flush_l2: true });
  });

  it("passes the launcher's buffers in order with the layer's sizes, and saves the routing from its workspace slices", () => {
    const c = cases[3] as LayerCase;
    expect(isLayerCase(c)).toBe(true);
    expect(c.layer).toMatchObject({ library: "moe_layer_mixtral_w4a16.so", symbol: "moe_layer_mixtral_w4a16", tokens: 4096 });
    expect(c.args.map((a) => a.tensor)).toEqual(["x", "w_router", "w13", "s13", "w2", "s2", "out"]);
    expect(c.args.map((a) => a.dtype)).toEqual(["bf16", "bf16", "u32", "bf16", "u32", "bf16", "f32"]);
    // w13: E * 2N rows of H / 8 words; w2: E * H rows of N / 8 words.
    expect(c.args[2]!.shape).toEqual([8 * 2 * 14336 * 512]);
    expect(c.args[4]!.shape).toEqual([8 * 4096 * 1792]);
    expect(c.args[6]).toMatchObject({ shape: [4096 * 4096], save: meta[1]!.outFile });
    const ws = workspaceLayout(mix, 4096);
    // logits [T, E] f32 then topk_weights [T, K] f32 then topk_ids [T, K] i32, each rounded to 256 bytes.
    expect(ws.slices.slice(0, 3).map((s) => [s.name, s.offset, s.bytes])).toEqual([
      ["logits", 0, 4096 * 8 * 4], ["topk_weights", 4096 * 8 * 4, 4096 * 2 * 4], ["topk_ids", 4096 * 8 * 4 + 4096 * 2 * 4, 4096 * 2 * 4]]);
    expect(c.layer.workspace).toEqual([
      { name: "topk_ids", offset: ws.slices[2]!.offset, bytes: 4096 * 2 * 4, save: meta[1]!.idsFile },
      { name: "topk_weights", offset: ws.slices[1]!.offset, bytes: 4096 * 2 * 4, save: meta[1]!.weightsFile },
    ]);
    // Work per launch: the router GEMM and the top-2 experts' three projections.
    expect(c.flops).toBe(2 * 4096 * 8 * 4096 + 2 * 4096 * 2 * 3 * 14336 * 4096);
  });

  it("fills every buffer from fixed seeds, the same for every M", () => {
    const a = (cases[2] as LayerCase).args, b = (cases[3] as LayerCase).args;
    expect(a.map((x) => x.init)).toEqual(b.map((x) => x.init));
    expect(a.find((x) => x.tensor === "w13")!.init).toEqual({ random: { seed: 103, lo: 0, hi: 4294967295 } });
  });
});

describe("bench layers", () => {
  it("every model x weights with its table, and bf16 also forced to all atomic, all reduce and all reduce_bf16 right after it", () => {
    expect(benchSpecs().map((s) => s.name)).toEqual(["mixtral_bf16", "mixtral_bf16_atomic", "mixtral_bf16_reduce", "mixtral_bf16_reduce_bf16", "mixtral_w4a16",
      "qwen3_bf16", "qwen3_bf16_atomic", "qwen3_bf16_reduce", "qwen3_bf16_reduce_bf16", "qwen3_w4a16"]);
    const [t, a, r, rb] = benchSpecs(["qwen3"], ["bf16"]);
    expect([t!.forcedCombine, a!.forcedCombine, r!.forcedCombine, rb!.forcedCombine]).toEqual([undefined, "atomic", "reduce", "reduce_bf16"]);
    expect([t!, a!, r!, rb!].map((x) => x.configs.map(combineOf).join(","))).toEqual(["reduce,reduce,reduce", "atomic,atomic,atomic", "reduce,reduce,reduce",
      "reduce_bf16,reduce_bf16,reduce_bf16"]);
    expect(twinOf(a!)).toEqual({ name: "qwen3_bf16", kind: "combine" });
    expect(twinOf(r!)).toEqual({ name: "qwen3_bf16", kind: "combine" });
    // bf16 pair rows are rounded once more: held within the entry tolerance, not summation order's.
    expect(twinOf(rb!)).toEqual({ name: "qwen3_bf16", kind: "entry" });
    expect(workspaceLayout(rb!, 8).slices.find((x) => x.name === "pairs_bf16")).toMatchObject({ bytes: 8 * 8 * 2048 * 2 });
    expect(workspaceLayout(rb!, 8).slices.some((x) => x.name === "pairs")).toBe(false);
    expect(twinOf(t!)).toBeUndefined();
    const { cases } = layerPlan([{ spec: r, library: "r.so", symbol: "moe_layer_qwen3_bf16_reduce" }], [8]);
    const ws = workspaceLayout(r, 8);
    // The per-pair rows live in the workspace: [T * K, H] f32.
    expect(ws.slices.find((x) => x.name === "pairs")).toMatchObject({ name: "pairs", bytes: 8 * 8 * 2048 * 4 });
    expect((cases[2] as LayerCase).args.map((a) => a.tensor)).toEqual(["x", "w_router", "w13", "w2", "out"]);
  });

  it("each entry of the choice table alone: same library, the entry's symbols and workspace, labelled rows", () => {
    const lib = { spec: modelSpec("qwen3", "w4a16"), library: "q.so", symbol: "moe_layer_qwen3_w4a16" };
    const entries = entryLibs(lib);
    expect(entries.map((e) => [e.spec.name, e.spec.entry, e.library, e.symbol])).toEqual([
      ["qwen3_w4a16_decode", "decode", "q.so", "moe_layer_qwen3_w4a16_decode"], ["qwen3_w4a16_mid", "mid", "q.so", "moe_layer_qwen3_w4a16_mid"],
      ["qwen3_w4a16_prefill", "prefill", "q.so", "moe_layer_qwen3_w4a16_prefill"]]);
    // The plan below takes the decode and prefill entries (the mid one is their kind again).
    const [decode, , prefill] = entries as [typeof entries[0], unknown, typeof entries[0]];
    expect(entryLibs({ ...lib, spec: modelSpec("qwen3", "bf16", "reduce") })).toEqual([]);
    // A bf16 table's entries alone keep their own combines.
    expect(entryLibs({ ...lib, spec: modelSpec("qwen3", "bf16") }).map((e) => `${e.spec.name} ${e.spec.configs.map(combineOf)}`))
      .toEqual(["qwen3_bf16_decode reduce", "qwen3_bf16_mid reduce", "qwen3_bf16_prefill reduce"]);
    expect(entryLibs(decode)).toEqual([]);
    expect(twinOf(prefill.spec)).toEqual({ name: "qwen3_w4a16", kind: "entry" });
    // The prefill entry at M = 1 routes with 128-row blocks: its own workspace, not the table's.
    expect(workspaceLayout(prefill.spec, 1).total).toBeGreaterThan(workspaceLayout(lib.spec, 1).total);
    const { meta } = layerPlan([lib, decode, prefill], [1, 2048]);
    const results: Results = { cases: [{ name: LAYER_COPY_NAME, status: "ok", gbps: 3000 }, { name: LAYER_CUBLAS_NAME, status: "ok", tflops: 600 },
      ...meta.map((m) => ({ name: m.name, status: "ok" as const, median_ms: 0.1 }))] };
    const rep = layerReport(meta, results, () => [0, 1]);
    expect(rep.rows.map((r) => `${r.entry ?? "table"} ${r.T} ${r.config}`)).toEqual(
      ["table 1 decode", "table 2048 prefill", "decode 1 decode", "decode 2048 decode", "prefill 1 prefill", "prefill 2048 prefill"]);
    expect(layerTextTable(rep)).toMatch(/qwen3 +w4a16 decode only +2048 +decode /);
    // Checked against the table's whole output at the same M.
    const H = 2048;
    // One base output per T (T = 2048 is 4 M values: computed once, copied per layer).
    const bases = new Map<number, Float64Array>();
    const base = (T: number) => {
      if (!bases.has(T)) bases.set(T, Float64Array.from({ length: T * H }, (_, i) => Math.sin(i)));
      return bases.get(T)!.slice();
    };
    const checks = checkLayerOutputs(meta, (m) => {
      const o = base(m.T);
      if (m.spec.entry === "prefill") o[7]! += m.T === 1 ? 1e-4 : 0.5;
      return { out: o, ids: [0, 1, 2, 3, 4, 5, 6, 7], weights: new Array(8).fill(0.125) };
    }, new Map());
    expect(checks.get(meta[4]!.name)).toMatchObject({ pass: true });
    expect(checks.get(meta[4]!.name)!.text).toMatch(/^all rows vs the table/);
    expect(checks.get(meta[5]!.name)!.pass).toBe(false);
  });

  it("candidate entries: a layer of their own at every T, named after the entry, checked against the model's table", () => {
    const [c] = candidateSpecs({ mixtral_bf16: [{ name: "p128", blockSize: 128, up: { BM: 128, BN: 128 }, down: { BM: 128, BN: 256 } }] });
    expect(c!.name).toBe("mixtral_bf16_p128");
    expect(c!.configs).toHaveLength(1);
    expect(chooseConfig(c!, 4096)).toMatchObject({ name: "p128", blockSize: 128, maxTokens: null });
    expect(twinOf(c!)).toEqual({ name: "mixtral_bf16", kind: "entry" });
    expect(() => candidateSpecs({ mixtral_bf16: [{ name: "prefill", blockSize: 64, up: {}, down: {} }] })).toThrow(/already has an entry/);
    expect(() => candidateSpecs({ mixtral_fp8: [] })).toThrow(/<model>_<bf16\|w4a16>/);
  });

  it("a candidate entry takes an optional combine (atomic where not given), w4a16 too", () => {
    const [a, r] = candidateSpecs({ qwen3_bf16: [{ name: "p", blockSize: 128, permute: true, up: { BM: 128 }, down: { BM: 128, splitK: 1 } },
      { name: "pr", blockSize: 128, permute: true, combine: "reduce", up: { BM: 128 }, down: { BM: 128, splitK: 1 } }] });
    expect([combineOf(a!.configs[0]!), combineOf(r!.configs[0]!)]).toEqual(["atomic", "reduce"]);
    expect(stages(r!).map((st) => st.stage).slice(-2)).toEqual(["down", "combine"]);
    const [w] = candidateSpecs({ qwen3_w4a16: [{ name: "wr", blockSize: 64, combine: "reduce", up: {}, down: { splitK: 1 } }] });
    expect(stages(w!).map((st) => st.kernel).slice(-2)).toEqual(["moe_gemm_down_pairs_w4a16", "moe_combine"]);
  });

  it("the table against all atomic and all reduce: the same model, weights and M side by side", () => {
    // Mixtral bf16's table mixes the combines: decode atomic, prefill reduce.
    const s = modelSpec("mixtral", "bf16"), a = modelSpec("mixtral", "bf16", "atomic"), r = modelSpec("mixtral", "bf16", "reduce");
    const rb = modelSpec("mixtral", "bf16", "reduce_bf16");
    const { meta } = layerPlan([s, a, r, rb].map((spec) => ({ spec, library: spec.name, symbol: spec.name })), [1, 4096]);
    const ms = [0.1, 1.3, 0.1, 1.5, 0.11, 1.3, 0.105, 1.2];
    const results: Results = { cases: [{ name: LAYER_COPY_NAME, status: "ok", gbps: 3000 }, { name: LAYER_CUBLAS_NAME, status: "ok", tflops: 600 },
      ...meta.map((m, i) => ({ name: m.name, status: "ok" as const, median_ms: ms[i] }))] };
    const rep = layerReport(meta, results, () => [0, 1]);
    // Each row's combine is the one of the entry that ran.
    expect(rep.rows.map((x) => `${x.forced ?? "table"} ${x.config} ${x.combine}`)).toEqual(["table decode atomic", "table prefill reduce",
      "atomic decode atomic", "atomic prefill atomic", "reduce decode reduce", "reduce prefill reduce", "reduce_bf16 decode reduce_bf16", "reduce_bf16 prefill reduce_bf16"]);
    expect(combineComparison(rep)).toEqual([
      { model: "mixtral", weights: "bf16", T: 1, config: "decode", combine: "atomic", tableMs: 0.1, atomicMs: 0.1, reduceMs: 0.11, reduceBf16Ms: 0.105 },
      { model: "mixtral", weights: "bf16", T: 4096, config: "prefill", combine: "reduce", tableMs: 1.3, atomicMs: 1.5, reduceMs: 1.3, reduceBf16Ms: 1.2 },
    ]);
    expect(combineTable(rep)).toContain("| mixtral | bf16 | 4096 | prefill (reduce) | 1.300 | 1.500 | 1.300 | 1.200 | 1.15 |");
    expect(layerTextTable(rep)).toMatch(/mixtral +bf16 all atomic +4096 +prefill \(atomic\) +1\.500/);
    // Without the forced twins (w4a16) there is nothing to compare.
    expect(combineComparison(layerReport(meta.slice(0, 2), results, () => [0, 1]))).toEqual([]);
  });
});

describe("floors", () => {
  it("expert weight bytes: bf16 three N x H matrices; w4a16 packed words and one bf16 scale per 128", () => {
    expect(expertWeightBytes(modelSpec("mixtral", "bf16"))).toBe(3 * 14336 * 4096 * 2);
    // qwen3 w4a16: 1536 rows of (256 words + 16 scales) and 2048 rows of (96 words + 6 scales).
    expect(expertWeightBytes(modelSpec("qwen3", "w4a16"))).toBe(1536 * (256 * 4 + 16 * 2) + 2048 * (96 * 4 + 6 * 2));
  });

  it("the larger of bytes / copy bandwidth and FLOPs / cuBLAS throughput", () => {
    const dec = layerFloor(modelSpec("mixtral", "bf16"), 1, 2, 3000, 600);
    expect(dec.weightBytes).toBe(704_643_072);
    expect(dec.bytesMs).toBeCloseTo(704_643_072 / 3e12 * 1e3, 12);
    expect(dec.flops).toBe(2 * 8 * 4096 + 704_643_072);
    expect(dec).toMatchObject({ bound: "bytes" });
    expect(dec.floorMs).toBe(dec.bytesMs);
    const pre = layerFloor(modelSpec("mixtral", "bf16"), 4096, 8, 3000, 600);
    expect(pre.bound).toBe("flops");
    expect(pre.floorMs).toBeCloseTo((2 * 4096 * 8 * 4096 + 2 * 4096 * 2 * 3 * 14336 * 4096) / 600e12 * 1e3, 12);
  });

  it("counts distinct experts and refuses ids out of range", () => {
    expect(touchedExperts([3, 1, 3, 0, 1, 1], 4)).toBe(3);
    expect(() => touchedExperts([0, 4], 4)).toThrow(/expert id 4 out of \[0, 4\)/);
  });
});

describe("layer report", () => {
  const s = modelSpec("qwen3", "w4a16");
  const { cases, meta } = layerPlan([{ spec: s, library: "x.so", symbol: "moe_layer_qwen3_w4a16" }], [1, 64, 1024]);
  const results: Results = { device: { name: "Fake GPU", cc: "9.0", sms: 132, l2_bytes: 1, smem_optin_bytes: 1, memory_bytes: 1, driver_version: 1 }, cases: [
    { name: LAYER_COPY_NAME, status: "ok", gbps: 3000 },
    { name: LAYER_CUBLAS_NAME, status: "ok", tflops: 600 },
    { name: meta[0]!.name, status: "ok", median_ms: 0.01 },
    { name: meta[1]!.name, status: "ok", median_ms: 1 },
    { name: meta[2]!.name, status: "error", error: "boom" },
  ] };
  it("ratio to the floor from the touched experts, the target where one applies, errors as rows", () => {
    expect(cases).toHaveLength(5);
    const ids = (m: LayerCaseMeta) => (m.T === 1 ? [5, 9, 1, 2, 3, 4, 6, 7] : Array.from({ length: m.T * 8 }, (_, i) => i % 100));
    const rep = layerReport(meta, results, ids);
    const [a, b, c] = rep.rows;
    expect(a!.touched).toBe(8);
    const floor = 8 * expertWeightBytes(s) / 3e12 * 1e3;
    expect(a!.floor!.floorMs).toBeCloseTo(floor, 12);
    expect(a!.ratio).toBeCloseTo(0.01 / floor, 9);
    expect(a!.target).toEqual({ ratio: 1.5, met: 0.01 / floor <= 1.5 });
    expect(b!.touched).toBe(100);
    expect(b!.target).toEqual({ ratio: 1.5, met: false });
    expect(c!.status).toBe("error: boom");
    expect(c!.target).toBeUndefined();
    expect(rep).toMatchObject({ copyGBs: 3000, cublasTflops: 600, device: "Fake GPU" });
  });
});

describe("output checks", () => {
  const s = tiny("bf16");
  const m = (T: number): LayerCaseMeta => ({ name: `c${T}`, spec: s, T, outFile: "", idsFile: "", weightsFile: "" });
  const H = s.hidden;
  const ref: TokenReference = { ids: [2, 0], weights: [0.75, 0.25], out: Float64Array.from({ length: H }, (_, i) => Math.sin(i)) };
  const out = (T: number, bump = 0) => { const o = new Float64Array(T * H); o.set(ref.out); o[3]! += bump; return o; };

  it("token 0 against the reference: routing as a set, weights, and the row within 2^-7 of its scale", () => {
    const checks = checkLayerOutputs([m(1), m(2), m(3), m(4)], (x) => ({
      1: { out: out(1, 0.001), ids: [0, 2], weights: [0.25, 0.75] },
      2: { out: out(2, 0.05), ids: [2, 0], weights: [0.75, 0.25] },
      3: { out: out(3), ids: [2, 1, 0, 0, 0, 0], weights: [0.75, 0.25] },
      4: { out: out(4).fill(NaN, 5, 6), ids: [2, 0], weights: [0.75, 0.25] },
    } as const)[x.T as 1 | 2 | 3 | 4], new Map([[s.name, ref]]));
    expect(checks.get("c1")!.pass).toBe(true);
    expect(checks.get("c2")!.pass).toBe(false);
    expect(checks.get("c3")).toMatchObject({ pass: false, text: "token 0 routed to [2,1], reference [2,0]" });
    expect(checks.get("c4")).toMatchObject({ pass: false, text: "1 non-finite outputs" });
  });

  it("without a reference, token 0's row against the layer's first case", () => {
    const checks = checkLayerOutputs([m(1), m(2), m(3)], (x) => ({ out: out(x.T, x.T === 3 ? 0.5 : 0.001), ids: [0, 1], weights: [0.5, 0.5] }), new Map());
    expect(checks.get("c1")!.pass).toBe(true);
    expect(checks.get("c2")).toMatchObject({ pass: true });
    expect(checks.get("c2")!.text).toMatch(/^row 0 vs M=1/);
    expect(checks.get("c3")!.pass).toBe(false);
  });
});

describe("output checks of the forced combines", () => {
  it("against the table's whole output at the same M, within the summation-order tolerance", () => {
    const t = modelSpec("qwen3", "bf16"), a = modelSpec("qwen3", "bf16", "atomic"), r = modelSpec("qwen3", "bf16", "reduce");
    const meta: LayerCaseMeta[] = [t, a, r].flatMap((spec) => [2, 3].map((T) => ({ name: `${spec.name} ${T}`, spec, T, outFile: "", idsFile: "", weightsFile: "" })));
    const base = (T: number) => Float64Array.from({ length: T * 2048 }, (_, i) => Math.cos(i));
    const checks = checkLayerOutputs(meta, (m) => {
      const o = base(m.T);
      if (m.spec.forcedCombine) o[2048 + 5]! += m.T === 2 ? 1e-6 : 0.1; // token 1: summation order vs a wrong value
      return { out: o, ids: [0, 1], weights: [0.5, 0.5] };
    }, new Map());
    for (const c of ["atomic", "reduce"]) {
      expect(checks.get(`qwen3_bf16_${c} 2`)).toMatchObject({ pass: true });
      expect(checks.get(`qwen3_bf16_${c} 2`)!.text).toMatch(/^all rows vs the table's combines/);
      expect(checks.get(`qwen3_bf16_${c} 3`)!.pass).toBe(false);
    }
  });
});

describe("token 0's reference from partial fills", () => {
  for (const weights of ["bf16", "w4a16"] as const) {
    it(`${weights}: equals the layer reference over the whole generated tensors`, () => {
      const s = tiny(weights);
      const { hidden: H, intermediate: N, experts: E } = s;
      const init = layerInits(s);
      const full = (b: string, dtype: "bf16" | "u32", n: number) => fillValues(dtype, init[b]!.seed, init[b]!.lo, init[b]!.hi, n);
      const dense = (w: "w13" | "w2", sc: string, rows: number, cols: number) => weights === "bf16" ? full(w, "bf16", rows * cols)
        : dequantMatrix(full(w, "u32", rows * wordsPerRow("u4", W4_ORDERS[w], cols)), rows, cols,
          { format: "u4", order: W4_ORDERS[w], scales: full(sc, "bf16", rows * Math.ceil(cols / 128)), zeros: 8, group: 128 }, "bf16");
      const want = moeLayerRef({ T: 1, H, N, E, topK: 2, renormalize: true, activation: silu, x: full("x", "bf16", H),
        wRouter: full("w_router", "bf16", E * H), w13: dense("w13", "s13", E * 2 * N, H), w2: dense("w2", "s2", E * H, N) });
      const got = tokenZeroReference(s);
      expect(got.ids).toEqual(want.ids[0]);
      expect(got.weights).toEqual(want.weights[0]);
      expect(Array.from(got.out)).toEqual(Array.from(want.out));
      expect(Math.max(...Array.from(got.out, Math.abs))).toBeGreaterThan(0);
    });
  }
});

const nvcc = await nvccAvailable();
describe.skipIf(!nvcc)("the layer as a shared library", () => {
  it("w4a16: builds, exports the runner's entry points, and sizes its workspace as workspaceLayout does", async () => {
    const s = tiny("w4a16");
    const dir = planDir();
    const lib = await buildLayerLibrary(s, "sm_90a", dir);
    const nm = await execa("nm", ["-D", "--defined-only", lib.path]);
    for (const sym of ["_buffers", "_workspace_bytes", "_error_string", ""]) expect(nm.stdout).toMatch(new RegExp(` T ${lib.symbol}${sym}$`, "m"));
    expect(callerBuffers(s).map((b) => b.name)).toEqual(["x", "w_router", "w13", "s13", "w2", "s2", "out"]);
    // A host program that asks the library (pure host code: no GPU needed).
    // The choice table's dispatch too: the entry the launcher picks for T, and its name.
    const Ts = [1, 5, 16, 17, 1000, 4096];
    writeFileSync(join(dir, "ws.cpp"), `#include <cstdio>\n#include <cstddef>\n#include <cstdint>\n#include <initializer_list>\nextern "C" size_t ${lib.symbol}_workspace_bytes(int64_t);\n` +
      `extern "C" int ${lib.symbol}_config(int64_t);\nextern "C" const char* ${lib.symbol}_config_name(int);\n` +
      `int main() { for (long t : {${Ts.map((t) => `${t}L`).join(", ")}}) std::printf("%zu %s\\n", ${lib.symbol}_workspace_bytes(t), ${lib.symbol}_config_name(${lib.symbol}_config(t))); }\n`);
    await execa("g++", ["-std=c++17", join(dir, "ws.cpp"), lib.path, "-o", join(dir, "ws"), `-Wl,-rpath,${dir}`]);
    const r = await execa(join(dir, "ws"));
    expect(r.stdout.trim().split("\n")).toEqual(Ts.map((T) => `${workspaceLayout(s, T).total} ${chooseConfig(s, T).name}`));
    expect(r.stdout).toMatch(/ decode\n[^]* prefill\n/);
    // Each entry alone, from the same library, sizes its workspace as that entry's layer does.
    for (const entry of ["decode", "prefill"]) {
      const alone: LayerSpec = { ...s, configs: s.configs.filter((c) => c.name === entry).map((c) => ({ ...c, maxTokens: null })) };
      writeFileSync(join(dir, "ws1.cpp"), `#include <cstdio>\n#include <cstddef>\n#include <cstdint>\n#include <initializer_list>\nextern "C" size_t ${lib.symbol}_${entry}_workspace_bytes(int64_t);\n` +
        `int main() { for (long t : {${Ts.map((t) => `${t}L`).join(", ")}}) std::printf("%zu\\n", ${lib.symbol}_${entry}_workspace_bytes(t)); }\n`);
      await execa("g++", ["-std=c++17", join(dir, "ws1.cpp"), lib.path, "-o", join(dir, "ws1"), `-Wl,-rpath,${dir}`]);
      expect((await execa(join(dir, "ws1"))).stdout.trim().split("\n").map(Number)).toEqual(Ts.map((T) => workspaceLayout(alone, T).total));
    }
    // w2 in the mma order: rows of whole 32-value blocks (136 -> 160 values, 20 words).
    expect(bufferNumel(s, callerBuffers(s)[4]!, 1)).toBe(4 * 256 * 4 * Math.ceil(136 / 32));
  }, 300_000);
});

describe("--layer-pdl both: the tables with plain launches of the same kernels", () => {
  const s = modelSpec("qwen3", "w4a16");
  const lib = { spec: s, library: "q.so", symbol: "moe_layer_qwen3_w4a16" };
  const { cases, meta } = layerPlan([lib, plainLib(lib)], [1, 16]);

  it("cases of their own (the library's _nopdl entry points), after the PDL ones, saving files of their own", () => {
    expect(cases.slice(2).map((c) => c.name)).toEqual(["layer qwen3_w4a16 M=1", "layer qwen3_w4a16 M=16", "layer qwen3_w4a16 M=1 no PDL", "layer qwen3_w4a16 M=16 no PDL"]);
    expect(cases.slice(4).map((c) => ("layer" in c ? c.layer.symbol : undefined))).toEqual(["moe_layer_qwen3_w4a16_nopdl", "moe_layer_qwen3_w4a16_nopdl"]);
    expect(cases[4]).toMatchObject({ layer: { library: "q.so" } });
    expect(meta[2]).toMatchObject({ plain: true, outFile: "out-qwen3_w4a16-M1-nopdl.f32" });
  });
  it("each plain case's whole output is held against its PDL twin's (a wrong value fails)", () => {
    const base = (T: number) => Float64Array.from({ length: T * 2048 }, (_, i) => Math.cos(i));
    const checks = checkLayerOutputs(meta, (m) => {
      const o = base(m.T);
      if (m.plain && m.T === 16) o[2048 * 3 + 7]! += 0.1;
      return { out: o, ids: [0, 1, 2, 3, 4, 5, 6, 7], weights: [0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125] };
    }, new Map());
    expect(checks.get("layer qwen3_w4a16 M=1 no PDL")).toMatchObject({ pass: true, text: expect.stringMatching(/^all rows vs PDL launches: err 0\.0e\+0/) });
    expect(checks.get("layer qwen3_w4a16 M=16 no PDL")!.pass).toBe(false);
    // The PDL cases are checked as before (here: token 0 against the first case).
    expect(checks.get("layer qwen3_w4a16 M=16")!.text).toMatch(/^row 0 vs M=1/);
  });
  it("the report pairs each table case with its plain twin; the plain rows stay out of the combine comparison", () => {
    const ms = [0.05, 0.2, 0.06, 0.21];
    const results: Results = { cases: [{ name: LAYER_COPY_NAME, status: "ok", gbps: 3000 }, { name: LAYER_CUBLAS_NAME, status: "ok", tflops: 600 },
      ...meta.map((m, i) => ({ name: m.name, status: "ok" as const, median_ms: ms[i] }))] };
    const rep = layerReport(meta, results, () => [0, 1]);
    expect(pdlComparison(rep, meta)).toEqual([
      { model: "qwen3", weights: "w4a16", layer: "qwen3_w4a16", T: 1, config: "decode", pdlMs: 0.05, plainMs: 0.06 },
      { model: "qwen3", weights: "w4a16", layer: "qwen3_w4a16", T: 16, config: "decode", pdlMs: 0.2, plainMs: 0.21 },
    ]);
    expect(pdlTable(rep, meta)).toContain("| qwen3_w4a16 | 1 | decode | 0.0500 | 0.0600 | 10.0 | 1.200 |");
    expect(layerTextTable(rep)).toMatch(/qwen3 +w4a16 no PDL +16 +decode/);
    expect(combineComparison(rep)).toEqual([]);
    expect(pdlComparison(layerReport(meta.slice(0, 2), results, () => [0, 1]), meta.slice(0, 2))).toEqual([]);
  });
});
