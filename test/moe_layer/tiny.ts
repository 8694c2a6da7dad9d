// A small choice table for test layers, shaped like the models' (src/moe/layer.ts CHOICES):
// decode (routing block 16, BM 16 tiles, split-K 2 over the down projection) for T <= 16,
// prefill (block 64, BM 64) above; both in the grouped block order (GROUP_M 8). BK 32 / 128 make the tests' short N span several K tiles.
// The router splits the short H into K slices in both (up to 4 / 2: atomics into cleared logits).
import type { LayerConfig, Weights } from "../../src/moe/layer.ts";

export function tinyConfigs(weights: Weights): LayerConfig[] {
  const q4 = weights === "w4a16";
  return [
    { name: "decode", maxTokens: 16, blockSize: 16, why: "test", router: { BM: 16, BN: 64, BK: 32, stages: 3, warps: 4, splitK: 4 },
      up: { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, GROUP_M: 8 }, down: { BM: 16, BN: 64, BK: q4 ? 128 : 32, stages: 4, warps: 4, splitK: 2, GROUP_M: 8 } },
    { name: "prefill", maxTokens: null, blockSize: 64, why: "test", router: { BM: 64, BN: 64, BK: 32, stages: 3, warps: 4, splitK: 2 },
      up: { BM: 64, BN: 64, BK: 64, stages: 3, warps: 8, GROUP_M: 8 }, down: { BM: 64, BN: 64, BK: q4 ? 128 : 32, stages: 3, warps: 4, splitK: 1, GROUP_M: 8 } },
  ];
}

/** The bf16 models' prefill entry as CHOICES has it: the rows permuted into routing order
 *  (moe_permute) before the gate/up GEMM on plain tiles, routing block and BM 128. */
export function tinyPermutedConfigs(): LayerConfig[] {
  return [tinyConfigs("bf16")[0]!,
    { name: "prefill", maxTokens: null, blockSize: 128, permute: true, why: "test", router: { BM: 64, BN: 64, BK: 32, stages: 3, warps: 4, splitK: 2 },
      up: { BM: 128, BN: 64, BK: 32, stages: 3, warps: 8, GROUP_M: 8 }, down: { BM: 128, BN: 64, BK: 32, stages: 3, warps: 8, splitK: 1, GROUP_M: 8 } }];
}

/** A table that mixes the combines, as the bf16 models' does: the decode entry adds into `out`
 *  with f32 atomics (its split-K 2 slices too), the prefill entry (plain 64-row tiles here, to
 *  keep the interpreter runs small) stores a row per pair and reduces them (combine stage). */
export function tinyMixedConfigs(): LayerConfig[] {
  const [decode, prefill] = tinyConfigs("bf16");
  return [{ ...decode!, combine: "atomic" }, { ...prefill!, combine: "reduce" }];
}
