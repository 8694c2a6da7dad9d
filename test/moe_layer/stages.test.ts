// The layer's stage table per choice-table entry: which entries permute, the order of the
// union of their stages (what the launcher numbers and calls), and what a permuting entry refuses.
import { describe, expect, it } from "vitest";
import { CHOICES, modelSpec, stages, type LayerSpec } from "../../src/moe/layer.ts";
import { stageNames } from "../../src/moe/host.ts";
import { tinyPermutedConfigs } from "./tiny.ts";

const names = (s: LayerSpec, entry: string) => stages(s, s.configs.find((c) => c.name === entry)).map((st) => `${st.stage} ${st.kernel}`);

describe("stages of an entry", () => {
  it("the bf16 prefill entries of both models permute; decode and w4a16 entries do not", () => {
    for (const model of ["mixtral", "qwen3"]) {
      expect(CHOICES[model]!.bf16.map((c) => `${c.name} ${c.permute === true}`)).toEqual(model === "qwen3" ? ["decode false", "mid true", "prefill true"] : ["decode false", "prefill true"]);
      expect(CHOICES[model]!.w4a16.some((c) => c.permute)).toBe(false);
      const s = modelSpec(model, "bf16");
      expect(names(s, "prefill")).toEqual(["router moe_router", "gate moe_gate_softmax", "align moe_align", "permute moe_permute",
        "up moe_gemm_up_permuted", "down moe_gemm_down_pairs", "combine moe_combine"]);
      // Qwen3's bf16 decode entry reduces (the row-storing down kernel and the combine stage).
      expect(names(s, "decode")).toEqual(["router moe_router", "gate moe_gate_softmax", "align moe_align", "up moe_gemm_up",
        ...(model === "qwen3" ? ["down moe_gemm_down_pairs", "combine moe_combine"] : ["down moe_gemm_down"])]);
      // The combine keeps the permute: only the down side differs.
      expect(names(modelSpec(model, "bf16", "atomic"), "prefill").slice(3)).toEqual(["permute moe_permute", "up moe_gemm_up_permuted",
        "down moe_gemm_down"]);
    }
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

  it("a permuting entry needs bf16 weights and SiLU: a located message says to drop permute", () => {
    const base = { name: "t", experts: 4, hidden: 64, intermediate: 72, topK: 2, renormalize: true, configs: tinyPermutedConfigs() };
    expect(() => stages({ ...base, weights: "w4a16", activation: "silu" })).toThrow(/config 'prefill': the permuted gate\/up kernel is bf16 with SiLU only .*drop permute/);
    expect(() => stages({ ...base, weights: "bf16", activation: "gelu" })).toThrow(/drop permute/);
    expect(() => stages({ ...base, weights: "bf16", activation: "silu" })).not.toThrow();
  });
});
