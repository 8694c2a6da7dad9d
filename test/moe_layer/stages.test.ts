// The layer's stage table per choice-table entry: which entries permute, the order of the
// union of their stages (what the launcher numbers and calls), and what a permuting entry refuses.
import { describe, expect, it } from "vitest";
import { CHOICES, chooseConfig, modelSpec, PERMUTE_CONFIG, runsAt, stageKernels, stages, type LayerSpec } from "../../src/moe/layer.ts";
import { enumerateConfigs } from "../../src/tune/space.ts";
import { lowerStage } from "../../src/moe/stage-build.ts";
import { cudaTarget } from "../../src/passes/pipeline.ts";
import { emitLayerCuda, stageNames } from "../../src/moe/host.ts";
import { tinyPermutedConfigs } from "./tiny.ts";

const names = (s: LayerSpec, entry: string) => stages(s, s.configs.find((c) => c.name === entry)).map((st) => `${st.stage} ${st.kernel}`);

describe("stages of an entry", () => {
  it("the prefill entries of both models permute (bf16 and w4a16), and Qwen3's bf16 mid entry; the decode and w4a16 mid entries do not", () => {
    for (const model of ["mixtral", "qwen3"]) {
      expect(CHOICES[model]!.bf16.map((c) => `${c.name} ${c.permute === true}`)).toEqual(model === "qwen3" ? ["decode false", "mid true", "prefill true"] : ["decode false", "prefill true"]);
      expect(CHOICES[model]!.w4a16.map((c) => `${c.name} ${c.permute === true}`)).toEqual(["decode false", "mid false", "prefill true"]);
      expect(names(modelSpec(model, "w4a16"), "prefill").slice(-4)).toEqual(["permute moe_permute", "up moe_gemm_up_permuted_w4a16",
        "down moe_gemm_down_pairs_w4a16", "combine moe_combine"]);
      const s = modelSpec(model, "bf16");
      const gating = ["gate_align moe_gate_align_softmax", "gate moe_gate_softmax", "align moe_align"];
      expect(names(s, "prefill")).toEqual(["router moe_router", ...gating, "permute moe_permute",
        "up moe_gemm_up_permuted", "down moe_gemm_down_pairs", "combine moe_combine"]);
      // Qwen3's bf16 decode entry reduces (the row-storing down kernel and the combine stage).
      expect(names(s, "decode")).toEqual(["router moe_router", ...gating, "up moe_gemm_up",
        ...(model === "qwen3" ? ["down moe_gemm_down_pairs", "combine moe_combine"] : ["down moe_gemm_down"])]);
      // The combine keeps the permute: only the down side differs.
      expect(names(modelSpec(model, "bf16", "atomic"), "prefill").slice(4)).toEqual(["permute moe_permute", "up moe_gemm_up_permuted",
        "down moe_gemm_down"]);
    }
  });

  it("every entry gates and routes in one kernel (gate_align) in calls with T * top_k <= 64 (the default, measured), in two (gate, align) in the others", () => {
    for (const [model, weights] of [["mixtral", "bf16"], ["mixtral", "w4a16"], ["qwen3", "bf16"], ["qwen3", "w4a16"]] as const) {
      const s = modelSpec(model, weights);
      for (const c of s.configs) {
        const gating = stages(s, c).filter((st) => ["gate_align", "gate", "align"].includes(st.stage));
        expect(gating.map((st) => [st.stage, st.pairs])).toEqual([["gate_align", { atMost: 64 }], ["gate", { above: 64 }], ["align", { above: 64 }]]);
        // Qwen3 (top 8) up to T = 8, Mixtral (top 2) up to T = 32: whichever entry T picks.
        const last = model === "qwen3" ? 8 : 32;
        for (const [T, want] of [[1, ["gate_align"]], [last, ["gate_align"]], [last + 1, ["gate", "align"]]] as const)
          expect(gating.filter((st) => runsAt(st, T * s.topK)).map((st) => st.stage), `${s.name} ${c.name} T = ${T}`).toEqual(want);
      }
    }
    // Qwen3's decode entry serves T <= 192 (w4a16): one kernel up to T = 8, two above.
    expect([1, 8, 9].map((T) => chooseConfig(modelSpec("qwen3", "w4a16"), T).name)).toEqual(["decode", "decode", "decode"]);
    // The fused stage binds both kernels' buffers as they did; its config is one for every entry (one kernel in the library).
    const [st] = stages(modelSpec("qwen3", "w4a16")).filter((x) => x.stage === "gate_align");
    expect(st).toMatchObject({ kernel: "moe_gate_align_softmax", config: { BT: 16, EMAX: 128, KMAX: 8, CH: 256 },
      bind: { logits: "logits", renorm: "renorm", weights: "topk_weights", ids: "topk_ids", sorted: "sorted", block_expert: "block_expert", counts: "counts",
        total: "total", T: "T", E: "E", K: "K", NB: "NB", BS: "BS" } });
  });

  it("gateAlignPairs: 0 keeps gate + align in every call (no condition), fewer pairs move the switch, more than 256 is refused", () => {
    const s = modelSpec("qwen3", "w4a16");
    expect(stages({ ...s, gateAlignPairs: 0 }).map((st) => `${st.stage}${st.pairs ? " ?" : ""}`).slice(0, 3)).toEqual(["router", "gate", "align"]);
    expect(stages({ ...s, gateAlignPairs: 64 }).filter((st) => st.pairs).map((st) => st.pairs)).toEqual([{ atMost: 64 }, { above: 64 }, { above: 64 }]);
    for (const bad of [257, -1, 1.5])
      expect(() => stages({ ...s, gateAlignPairs: bad })).toThrow(new RegExp(`layer qwen3_w4a16: gateAlignPairs ${bad}: the one-kernel gating and routing \\(moe_gate_align_softmax\\) takes up to 256 pairs; use 0 \\.\\. 256`));
  });

  it("the permuted stages read and write xp; the gathered up reads x", () => {
    const s = modelSpec("mixtral", "bf16");
    const pre = stages(s, s.configs[1]);
    expect(pre.find((st) => st.stage === "permute")!.bind).toMatchObject({ X: "x", Xp: "xp", sorted: "sorted", block_expert: "block_expert", top_k: "K" });
    expect(pre.find((st) => st.stage === "up")!.bind).toMatchObject({ Xp: "xp", Y: "y" });
    expect(stages(s, s.configs[0]).find((st) => st.stage === "up")!.bind).toMatchObject({ X: "x", Y: "y" });
  });

  it("the launcher's stage list: the union in launch order, a stage of some entries after the one it follows", () => {
    expect(stageNames([["router", "gate", "align", "up", "down"], ["router", "gate", "align", "permute", "up", "down"]]))
      .toEqual(["router", "gate", "align", "permute", "up", "down"]);
    expect(stageNames([["router", "gate", "align", "permute", "up", "down", "combine"], ["router", "gate", "align", "up", "down", "combine"]]))
      .toEqual(["router", "gate", "align", "permute", "up", "down", "combine"]);
    expect(stageNames([["a", "b"]])).toEqual(["a", "b"]);
  });

  it("the permute's config is in moe_permute's space and its row tile divides every permuting entry's routing block (no ragged tiles)", () => {
    const permute = stageKernels(modelSpec("qwen3", "bf16")).flatMap((e) => e.stages).find((x) => x.stage.stage === "permute")!;
    expect(enumerateConfigs(permute.kernel)).toContainEqual(PERMUTE_CONFIG);
    for (const model of ["mixtral", "qwen3"])
      for (const weights of ["bf16", "w4a16"] as const)
        for (const c of CHOICES[model]![weights].filter((x) => x.permute))
          expect([model, weights, c.name, c.blockSize % Number(PERMUTE_CONFIG.BR)]).toEqual([model, weights, c.name, 0]);
  });

  it("a permuting entry needs SiLU (a located message says to drop permute); w4a16 permutes with its own kernel", () => {
    const base = { name: "t", experts: 4, hidden: 64, intermediate: 72, topK: 2, renormalize: true, configs: tinyPermutedConfigs() };
    expect(() => stages({ ...base, weights: "bf16", activation: "gelu" })).toThrow(/config 'prefill': the permuted gate\/up kernels have SiLU only .*drop permute/);
    expect(() => stages({ ...base, weights: "bf16", activation: "silu" })).not.toThrow();
    const up = (weights: "bf16" | "w4a16") => stages({ ...base, weights, activation: "silu" }, base.configs[1]).filter((st) => st.stage === "up" || st.stage === "permute")
      .map((st) => `${st.stage} ${st.kernel} ${st.bind.Xp ?? ""}`);
    expect(up("w4a16")).toEqual(["permute moe_permute xp", "up moe_gemm_up_permuted_w4a16 xp"]);
    expect(up("bf16")).toEqual(["permute moe_permute xp", "up moe_gemm_up_permuted xp"]);
  });
});

describe("a stage over the target's shared memory", () => {
  // The prefill entry's up kernel at 128 x 128 tiles and 4 stages (196 KiB of operand stages
  // plus the epilogue's staging tile): sm_90a's 227 KiB hold it, sm_80's 163 KiB do not.
  const [decode, prefill] = tinyPermutedConfigs();
  const spec = (up: Record<string, number>): LayerSpec => ({ name: "tiny_big", experts: 4, hidden: 64, intermediate: 72, topK: 2,
    activation: "silu", weights: "bf16", renormalize: true, configs: [decode!, { ...prefill!, up }] });
  const upOf = (l: ReturnType<typeof emitLayerCuda>) => l.lowered.find((u) => u.stage.stage === "up" && u.configs.includes("prefill"))!;
  const big = { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, GROUP_M: 8 };

  it("keeps its stages where they fit (sm_90a) and steps them down until they do (sm_80)", () => {
    const h = upOf(emitLayerCuda(spec(big), "sm_90a", "tma"));
    expect([h.kernel.config.stages, h.smemBytes > 163 * 1024, h.smemBytes <= 227 * 1024]).toEqual([4, true, true]);
    const a = upOf(emitLayerCuda(spec(big), "sm_80", "cp.async", false));
    expect([a.kernel.config.stages, a.smemBytes <= 163 * 1024]).toEqual([3, true]);
  });
  it("says which stage and what to change where even 2 stages do not fit", () => {
    // No tunable config of the bundled kernels reaches sm_80's limit at 2 stages: a smaller limit.
    const { stage, kernel } = stageKernels(spec(big))[1]!.stages.find(({ stage }) => stage.stage === "up")!;
    expect(() => lowerStage(stage, kernel, cudaTarget("sm_80", "mma", "cp.async"), "sm_80", 64 * 1024))
      .toThrow(/layer stage 'up' \(moe_gemm_up_permuted, BM=128,BN=128,BK=64,stages=2,warps=8,GROUP_M=8\): its block needs 96 KiB of shared memory, over the 64 KiB sm_80 allows; give the entry smaller tiles \(BM, BN, BK\) in src\/moe\/layer.ts/);
  });
});
