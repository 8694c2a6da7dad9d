// The down projection with the top-k combine as a separate reduction, the alternative to
// moe_gemm_down's f32 atomics (the layer's `combine: "reduce"`): moe_gemm_down_pairs writes
// each (token, slot) pair's row of A W2[e]^T to its own row of Y ([T * TOPK, H], f32, pair id
// order: every pair is routed exactly once, so every row is written and no clearing is
// needed), and moe_combine sums a token's TOPK rows times their routing weights, in slot order.
// Deterministic (no atomics), at the cost of writing and reading Y once.
import { T, type Tensor } from "tilemoe";
import { pairRows, routedTile } from "./lib/moe_tiles.ts";

// The operand stages' budget: sm_90a's 227 KiB a block less room for the epilogue's staging
// tile, so that 128-row tiles can take 4 stages there (the up kernel's 128 x 128 tiles measured
// ~10% faster with 4 than with 3 on an H200, bench/RESULTS.md tenth session). A config over a
// target's own limit (sm_80: 163 KiB) is refused by the build with the sizes, skipped by the
// tuner, and stepped down to fewer stages by the layer (src/moe/host.ts).
const SMEM_BYTES = 196 * 1024;

/** The pairs kernels' whole body, either row type: each pair's row of A W2[e]^T to its own row of Y. */
function downPairs(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, N", "bf16">, sorted: Tensor<"NB, BS", "i32">,
                   block_expert: Tensor<"NB", "i32">, Y: Tensor<"P, H", "f32" | "bf16">,
                   BM: number, BN: number, BK: number, stages: number, warps: number, GROUP_M: number) {
  const [NB, BS] = sorted.shape;
  const N = A.shape[1];
  const [P, H] = Y.shape;
  T.launch([T.cdiv(H, BN), NB * T.cdiv(BS, BM)], { threads: warps * 32 }, (gx, gy) => {
    // Its column tile, routing block, first row there and expert, in the grouped order (lib/moe_tiles.ts).
    const [bx, b, r0, e] = routedTile(gx, gy, T.cdiv(H, BN), block_expert, BS, BM, GROUP_M);
    const As = T.shared([BM, BK], "bf16");
    const Bs = T.shared([BN, BK], "bf16");
    const acc = T.fragment([BM, BN], "f32");
    T.clear(acc);
    if (e >= 0) {
      for (const k of T.pipelined(T.cdiv(N, BK), stages)) {
        T.copy(A.tile([b * BS + r0, k * BK], [BM, BK]), As);
        T.copy(W2.tile([e * H + bx * BN, k * BK], [BN, BK]), Bs);
        T.gemm(As, Bs, acc, { transB: true });
      }
      // Each row of the tile to its pair's row of Y (lib/moe_tiles.ts). The scatter copy stores the
      // accumulator's neighbouring columns as one vector: stored one element at a time, the
      // warps' stores used half of every 32-byte sector.
      const yrow = T.shared([BM], "i32");
      pairRows(yrow, sorted, b, r0, BM, P);
      T.copy(acc, Y.rows(yrow, bx * BN, BN));
    }
  });
}

const PAIRS_SPACE = {
  // As moe_gemm_down (the layer's reduce combine runs it at the same configs): BN 256 for
  // prefill tiles, the f32 accumulator at most 128 registers a thread.
  tune: { BM: [64, 16, 128], BN: [64, 128, 256], BK: [64, 32], stages: [3, 2, 4], warps: [4, 8], GROUP_M: [1, 8] },
  where: ({ BM, BN, BK, stages, warps }: T.Config) => (BM + BN) * BK * 2 * stages <= SMEM_BYTES && BM * BN <= warps * 32 * 128,
};

export const moe_gemm_down_pairs = T.kernel(PAIRS_SPACE,
  function moe_gemm_down_pairs(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, N", "bf16">, sorted: Tensor<"NB, BS", "i32">,
                               block_expert: Tensor<"NB", "i32">, Y: Tensor<"P, H", "f32">, { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    downPairs(A, W2, sorted, block_expert, Y, BM, BN, BK, stages, warps, GROUP_M);
  },
);

// The layer's combine "reduce_bf16": each pair's row rounded to bf16 once (as the activation
// dtype), half the bytes of the round trip; the combine still sums in f32.
export const moe_gemm_down_pairs_bf16 = T.kernel(PAIRS_SPACE,
  function moe_gemm_down_pairs_bf16(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, N", "bf16">, sorted: Tensor<"NB, BS", "i32">,
                                    block_expert: Tensor<"NB", "i32">, Y: Tensor<"P, H", "bf16">, { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    downPairs(A, W2, sorted, block_expert, Y, BM, BN, BK, stages, warps, GROUP_M);
  },
);

/** out[t] = sum over slots k of Y[t * TOPK + k] * topk_weights[t][k], in slot order, in f32. */
function combineRows(Y: Tensor<"T * TOPK, H", "f32" | "bf16">, topk_weights: Tensor<"T, TOPK", "f32">, out: Tensor<"T, H", "f32">, BH: number) {
  const [tokens, TOPK] = topk_weights.shape;
  const H = out.shape[1];
  T.launch([T.cdiv(H, BH), tokens], { threads: BH }, (bx, t) => {
    for (const j of T.parallel(BH)) {
      const col = bx * BH + j;
      if (col < H) {
        let s = 0.0;
        for (let k = 0; k < TOPK; k++) {
          s += T.cast(Y[t * TOPK + k][col], "f32") * topk_weights[t][k];
        }
        out[t][col] = s;
      }
    }
  });
}

export const moe_combine = T.kernel(
  { tune: { BH: [256, 128, 512] } },
  function moe_combine(Y: Tensor<"T * TOPK, H", "f32">, topk_weights: Tensor<"T, TOPK", "f32">, out: Tensor<"T, H", "f32">, { BH }: T.Config) {
    combineRows(Y, topk_weights, out, BH);
  },
);

export const moe_combine_bf16 = T.kernel(
  { tune: { BH: [256, 128, 512] } },
  function moe_combine_bf16(Y: Tensor<"T * TOPK, H", "bf16">, topk_weights: Tensor<"T, TOPK", "f32">, out: Tensor<"T, H", "f32">, { BH }: T.Config) {
    combineRows(Y, topk_weights, out, BH);
  },
);

// ---- what the checker compares against (plain float64)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { routingBlocks } from "tilemoe/moe";

/** Y of the pairs kernels: row `pair` is block b's row r of A times expert e's W2 rows, for the
 *  used blocks' pairs below P. Exported for moe_gemm_down_w4a16.ts (its dequantized weights). */
export function pairsRef(A: TensorValue, W2: TensorValue, sorted: TensorValue, blockExpert: TensorValue, d: Record<string, number>): Float64Array {
  const { P, H, N, NB, BS } = d as Record<"P" | "H" | "N" | "NB" | "BS", number>;
  const Y = new Float64Array(P * H);
  for (let b = 0; b < NB; b++) {
    const e = blockExpert.data[b]!;
    if (e < 0) continue;
    for (let r = 0; r < BS; r++) {
      const pair = sorted.data[b * BS + r]!;
      if (pair >= P) continue;
      for (let h = 0; h < H; h++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += A.data[(b * BS + r) * N + n]! * W2.data[(e * H + h) * N + n]!;
        Y[pair * H + h] = s;
      }
    }
  }
  return Y;
}
import { routing } from "./moe_gemm_up.ts";

const pairsCheck = (kernel: string) => defineCheck({
  kernel,
  dims: { T: [1, 12], TOPK: [1, 6], E: [1, 6], skew: [0, 2], N: [1, 80], H: [1, 72], EH: ({ E, H }: Record<string, number>) => E! * H!,
    P: ({ T: t, TOPK }: Record<string, number>) => t! * TOPK!, BS: { values: [1, 4, 16, 64] }, NB: [1, 90] },
  dimsWhere: ({ T: t, TOPK, E, BS, NB }) =>
    TOPK! <= E! && NB! >= routingBlocks(t! * TOPK!, E!, BS!) && NB! * BS! <= 1024,
  inputs: { A: { lo: -1, hi: 1 }, W2: { lo: -0.5, hi: 0.5 } },
  derive: ({ T: t, E, TOPK, NB, BS, skew }, rand) => {
    const r = routing(t!, E!, TOPK!, NB!, BS!, skew!, rand);
    return { tensors: { sorted: r.sorted, block_expert: r.block_expert } };
  },
  reference: ({ A, W2, sorted, block_expert }, _s, d) => ({ Y: pairsRef(A!, W2!, sorted!, block_expert!, d) }),
  reduction: ({ N }) => N!,
});

export const moe_gemm_down_pairs_check = pairsCheck("moe_gemm_down_pairs");
export const moe_gemm_down_pairs_bf16_check = pairsCheck("moe_gemm_down_pairs_bf16");

const combineCheck = (kernel: string) => defineCheck({
  kernel,
  dims: { T: [1, 20], TOPK: [1, 8], H: [1, 700] },
  inputs: { Y: { lo: -4, hi: 4 }, topk_weights: { lo: 0, hi: 1 } },
  reference: ({ Y, topk_weights }, _s, d) => {
    const { T: t, TOPK, H } = d as Record<"T" | "TOPK" | "H", number>;
    const out = new Float64Array(t * H);
    for (let i = 0; i < t; i++)
      for (let h = 0; h < H; h++)
        for (let k = 0; k < TOPK; k++) out[i * H + h] += Y!.data[(i * TOPK + k) * H + h]! * topk_weights!.data[i * TOPK + k]!;
    return { out };
  },
  reduction: ({ TOPK }) => TOPK!,
});
export const moe_combine_check = combineCheck("moe_combine");
export const moe_combine_bf16_check = combineCheck("moe_combine_bf16");
