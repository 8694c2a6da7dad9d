// The down projection of a MoE layer as one grouped GEMM over experts, with the combine
// fused: row (b, r) of the intermediate A (moe_gemm_up's output, rows in routing order) is
// multiplied by its expert's W2[e] ([H, N]), scaled by the pair's routing weight, and
// added into the pair's token row of `out` with atomics, so the top_k slots of a token sum
// in one launch. `out` is f32 (bf16 atomics would round every partial sum) and must start
// at 0; the caller casts it (or the next kernel reads it in f32).
// Routing as in moe_gemm_up.ts: sorted[b][r] is a pair id p = token * TOPK + slot (ids
// >= T * TOPK are pads and add nothing), block_expert[b] the expert of block b (-1: unused,
// skipped). W2 is [E, H, N] declared flat ([E * H, N]); a ragged last column tile reads the
// next expert's rows into columns that are never added.
// splitK (the decode path, as in gemm_w4a16.ts): block z sums a 1/splitK slice of the long
// N and adds its partial products into `out` like any other term of the combine, so the
// slices need no reduction of their own; `out` is written only by atomic adds, so every
// launcher clears it before the launch (src/ir/zero-init.ts) whatever splitK is.
import { T, type Tensor } from "tilemoe";
import { routedTile } from "./lib/moe_tiles.ts";

// The operand stages' budget: sm_90a's 227 KiB a block less room for the epilogue's staging
// tile, so that 128-row tiles can take 4 stages there (the up kernel's 128 x 128 tiles measured
// ~10% faster with 4 than with 3 on an H200, bench/RESULTS.md tenth session). A config over a
// target's own limit (sm_80: 163 KiB) is refused by the build with the sizes, skipped by the
// tuner, and stepped down to fewer stages by the layer (src/moe/host.ts).
const SMEM_BYTES = 196 * 1024;

export const moe_gemm_down = T.kernel(
  {
    // BN 256 for prefill tiles: the f32 accumulator takes at most 128 registers a thread.
    tune: { BM: [64, 16, 128], BN: [64, 128, 256], BK: [64, 32], stages: [3, 2, 4], warps: [4, 8], splitK: [1, 2, 4, 8], GROUP_M: [1, 8] },
    where: ({ BM, BN, BK, stages, warps }) => (BM + BN) * BK * 2 * stages <= SMEM_BYTES && BM * BN <= warps * 32 * 128,
  },
  function moe_gemm_down(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, N", "bf16">, sorted: Tensor<"NB, BS", "i32">,
                         block_expert: Tensor<"NB", "i32">, topk_weights: Tensor<"T, TOPK", "f32">, out: Tensor<"T, H", "f32">,
                         { BM, BN, BK, stages, warps, splitK, GROUP_M }: T.Config) {
    const [NB, BS] = sorted.shape;
    const N = A.shape[1];
    const [tokens, TOPK] = topk_weights.shape;
    const H = out.shape[1];
    // Block (bx, by, bz) sums K tiles [bz * KT, (bz + 1) * KT) of the long N; tiles past N read as 0.
    const KT = T.cdiv(T.cdiv(N, BK), splitK);
    T.launch([T.cdiv(H, BN), NB * T.cdiv(BS, BM), splitK], { threads: warps * 32 }, (gx, gy, bz) => {
      // Its column tile, routing block, first row there and expert, in the grouped order (lib/moe_tiles.ts).
      const [bx, b, r0, e] = routedTile(gx, gy, T.cdiv(H, BN), block_expert, BS, BM, GROUP_M);
      const As = T.shared([BM, BK], "bf16");
      const Bs = T.shared([BN, BK], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      if (e >= 0) {
        for (const k of T.pipelined(KT, stages)) {
          // Rows past the block (r0 + i >= BS) are the next block's; they are loaded, never added.
          T.copy(A.tile([b * BS + r0, (bz * KT + k) * BK], [BM, BK]), As);
          T.copy(W2.tile([e * H + bx * BN, (bz * KT + k) * BK], [BN, BK]), Bs);
          T.gemm(As, Bs, acc, { transB: true });
        }
        for (const [i, j] of T.parallel(BM, BN)) {
          const col = bx * BN + j;
          if (r0 + i < BS && col < H) {
            const pair = sorted[b][r0 + i];
            if (pair >= 0 && pair < tokens * TOPK) {
              const tok = Math.floor(pair / TOPK);
              T.atomicAdd(out[tok][col], acc[i][j] * topk_weights[tok][pair % TOPK]);
            }
          }
        }
      }
    });
  },
);

// ---- what the checker compares against (runs in `tilemoe check`; plain float64)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { routingBlocks } from "tilemoe/moe";
import { routing } from "./moe_gemm_up.ts";

export function downRef(A: TensorValue, W2: TensorValue, sorted: TensorValue, blockExpert: TensorValue, weights: TensorValue,
  dims: Record<string, number>): Float64Array {
  const { T: T_, TOPK, N, H, NB, BS } = dims as Record<"T" | "TOPK" | "N" | "H" | "NB" | "BS", number>;
  const out = new Float64Array(T_ * H);
  for (let b = 0; b < NB; b++) {
    const e = blockExpert.data[b]!;
    if (e < 0) continue;
    for (let r = 0; r < BS; r++) {
      const pair = sorted.data[b * BS + r]!;
      if (pair >= T_ * TOPK) continue;
      const tok = Math.floor(pair / TOPK), w = weights.data[pair]!;
      for (let h = 0; h < H; h++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += A.data[(b * BS + r) * N + n]! * W2.data[(e * H + h) * N + n]!;
        out[tok * H + h] += w * s;
      }
    }
  }
  return out;
}

// T = 1 is a single token; TOPK = E routes every token to every expert; E > T * TOPK leaves
// experts empty; the routing's modes (moe_gemm_up.ts) put all tokens on few experts.
export const moe_gemm_down_check = defineCheck({
  kernel: "moe_gemm_down",
  dims: { T: [1, 12], TOPK: [1, 6], E: [1, 6], skew: [0, 2], N: [1, 80], H: [1, 72], EH: ({ E, H }: Record<string, number>) => E! * H!,
    BS: { values: [1, 4, 16, 64] }, NB: [1, 90] },
  dimsWhere: ({ T: t, TOPK, E, BS, NB }) =>
    TOPK! <= E! && NB! >= routingBlocks(t! * TOPK!, E!, BS!) && NB! * BS! <= 1024,
  inputs: { A: { lo: -1, hi: 1 }, W2: { lo: -0.5, hi: 0.5 }, topk_weights: { lo: 0, hi: 1 } },
  derive: ({ T: t, E, TOPK, NB, BS, skew }, rand) => {
    const r = routing(t!, E!, TOPK!, NB!, BS!, skew!, rand);
    return { tensors: { sorted: r.sorted, block_expert: r.block_expert } };
  },
  outputs: { out: { fill: 0 } },
  reference: ({ A, W2, sorted, block_expert, topk_weights }, _s, d) => ({ out: downRef(A!, W2!, sorted!, block_expert!, topk_weights!, d) }),
  // One token's element sums TOPK slots of N-long dot products.
  reduction: ({ N, TOPK }) => N! * TOPK!,
});
