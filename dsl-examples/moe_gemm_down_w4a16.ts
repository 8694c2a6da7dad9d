// moe_gemm_down (see moe_gemm_down.ts) with w4a16 expert weights: W2 holds [E * H, N] 4-bit
// weights packed 8 per u32 word in the mma order (docs/QUANT.md: rows of 4 * cdiv(N, 32) words,
// a lane's values for the mma fragments in one word), one bf16 scale
// per 128 values of a row (S2 [E * H, cdiv(N, 128)]), symmetric (w = (q - 8) * s). The
// packed weight tile is pipelined like any operand and turned into a bf16 tile by T.dequant
// before the gemm; routing, the routing-weight scale and the f32 atomic combine into `out`
// (which must start at 0) are moe_gemm_down's, and so is splitK (slices of N add into `out`).
// moe_gemm_down_pairs_w4a16 is the same main loop for the separate reduction (the layer's
// `combine: "reduce"`): each pair's row to its own row of Y, as moe_gemm_down_pairs.
import { T, type Buf, type Tensor } from "tilemoe";
import { pairRows, routedTile } from "./lib/moe_tiles.ts";

const SMEM_BYTES = 160 * 1024;

type Frag2d = Buf<"f32", readonly [number, number]>;
// Activation and packed weight tiles (all stages) and the one bf16 weight tile, in half-bytes.
const fitsSmem = ({ BM, BN, BK, stages }: T.Config) => (BM * BK * 4 + BN * BK) * stages + BN * BK * 4 <= 2 * SMEM_BYTES;

/** K tiles [k0, k0 + KT) of routing block b's rows r0.. against expert e's packed weights for
 *  columns bx * BN.., dequantized in the loop, into acc. */
function w4DownLoop(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, 4 * cdiv(N, 32)", "u32">, S2: Tensor<"EH, cdiv(N, 128)", "bf16">, acc: Frag2d,
                    e: number, b: number, r0: number, bx: number, k0: number, KT: number, BS: number, H: number,
                    BM: number, BN: number, BK: number, stages: number) {
  const N = A.shape[1];
  const As = T.shared([BM, BK], "bf16");
  const Wq = T.shared([BN, T.cdiv(BK, 8)], "u32");
  const Ws = T.shared([BN, BK], "bf16");
  for (const k of T.pipelined(KT, stages)) {
    // Rows past the block (r0 + i >= BS) are the next block's; they are loaded, never stored.
    T.copy(A.tile([b * BS + r0, (k0 + k) * BK], [BM, BK]), As);
    T.copy(W2.tile([e * H + bx * BN, (k0 + k) * T.cdiv(BK, 8)], [BN, T.cdiv(BK, 8)]), Wq);
    T.dequant(Wq, Ws, { format: "u4", order: "mma", scales: S2, zeros: 8, group: 128, at: [e * H + bx * BN, (k0 + k) * BK], K: N });
    T.gemm(As, Ws, acc, { transB: true });
  }
}

export const moe_gemm_down_w4a16 = T.kernel(
  {
    tune: { BM: [64, 16, 32, 128], BN: [64, 128], BK: [128, 64], stages: [3, 2, 4], warps: [4, 8], splitK: [1, 2, 4, 8], GROUP_M: [1, 8] },
    where: fitsSmem,
  },
  function moe_gemm_down_w4a16(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, 4 * cdiv(N, 32)", "u32">, S2: Tensor<"EH, cdiv(N, 128)", "bf16">,
                               sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, topk_weights: Tensor<"T, TOPK", "f32">,
                               out: Tensor<"T, H", "f32">, { BM, BN, BK, stages, warps, splitK, GROUP_M }: T.Config) {
    const [NB, BS] = sorted.shape;
    const N = A.shape[1];
    const [tokens, TOPK] = topk_weights.shape;
    const H = out.shape[1];
    // Block (bx, by, bz) sums K tiles [bz * KT, (bz + 1) * KT) of the long N; tiles past N read as 0.
    const KT = T.cdiv(T.cdiv(N, BK), splitK);
    T.launch([T.cdiv(H, BN), NB * T.cdiv(BS, BM), splitK], { threads: warps * 32 }, (gx, gy, bz) => {
      // Its column tile, routing block, first row there and expert, in the grouped order (lib/moe_tiles.ts).
      const [bx, b, r0, e] = routedTile(gx, gy, T.cdiv(H, BN), block_expert, BS, BM, GROUP_M);
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      if (e >= 0) {
        w4DownLoop(A, W2, S2, acc, e, b, r0, bx, bz * KT, KT, BS, H, BM, BN, BK, stages);
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


/** The pairs kernels' whole body, either row type (moe_gemm_down_reduce.ts's downPairs over
 *  w4DownLoop): each pair's row to its own row of Y. */
function w4DownPairs(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, 4 * cdiv(N, 32)", "u32">, S2: Tensor<"EH, cdiv(N, 128)", "bf16">,
                     sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, Y: Tensor<"P, H", "f32" | "bf16">,
                     BM: number, BN: number, BK: number, stages: number, warps: number, GROUP_M: number) {
  const [NB, BS] = sorted.shape;
  const N = A.shape[1];
  const [P, H] = Y.shape;
  T.launch([T.cdiv(H, BN), NB * T.cdiv(BS, BM)], { threads: warps * 32 }, (gx, gy) => {
    // Its column tile, routing block, first row there and expert, in the grouped order (lib/moe_tiles.ts).
    const [bx, b, r0, e] = routedTile(gx, gy, T.cdiv(H, BN), block_expert, BS, BM, GROUP_M);
    const acc = T.fragment([BM, BN], "f32");
    T.clear(acc);
    if (e >= 0) {
      w4DownLoop(A, W2, S2, acc, e, b, r0, bx, 0, T.cdiv(N, BK), BS, H, BM, BN, BK, stages);
      // Each row of the tile to its pair's row of Y (lib/moe_tiles.ts), as moe_gemm_down_pairs.
      const yrow = T.shared([BM], "i32");
      pairRows(yrow, sorted, b, r0, BM, P);
      T.copy(acc, Y.rows(yrow, bx * BN, BN));
    }
  });
}

// moe_gemm_down_w4a16's tunables but splitK (a pair's row is stored whole).
const PAIRS_SPACE = {
  tune: { BM: [64, 16, 32, 128], BN: [64, 128], BK: [128, 64], stages: [3, 2, 4], warps: [4, 8], GROUP_M: [1, 8] },
  where: fitsSmem,
};

export const moe_gemm_down_pairs_w4a16 = T.kernel(PAIRS_SPACE,
  function moe_gemm_down_pairs_w4a16(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, 4 * cdiv(N, 32)", "u32">, S2: Tensor<"EH, cdiv(N, 128)", "bf16">,
                                     sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, Y: Tensor<"P, H", "f32">,
                                     { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    w4DownPairs(A, W2, S2, sorted, block_expert, Y, BM, BN, BK, stages, warps, GROUP_M);
  },
);

// The layer's combine "reduce_bf16" (moe_gemm_down_reduce.ts): each pair's row rounded to bf16 once.
export const moe_gemm_down_pairs_w4a16_bf16 = T.kernel(PAIRS_SPACE,
  function moe_gemm_down_pairs_w4a16_bf16(A: Tensor<"NB * BS, N", "bf16">, W2: Tensor<"EH, 4 * cdiv(N, 32)", "u32">, S2: Tensor<"EH, cdiv(N, 128)", "bf16">,
                                          sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, Y: Tensor<"P, H", "bf16">,
                                          { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    w4DownPairs(A, W2, S2, sorted, block_expert, Y, BM, BN, BK, stages, warps, GROUP_M);
  },
);

// ---- what the checker compares against (plain float64 over the exactly dequantized weights)
import { defineCheck } from "tilemoe/check";
import { routingBlocks } from "tilemoe/moe";
import { dequantMatrix } from "tilemoe/quant";
import { routing } from "./moe_gemm_up.ts";
import { downRef } from "./moe_gemm_down.ts";
import { pairsRef } from "./moe_gemm_down_reduce.ts";

// The dims of moe_gemm_down's check; N past 128 spans two scale groups and a ragged K tile.
export const moe_gemm_down_w4a16_check = defineCheck({
  kernel: "moe_gemm_down_w4a16",
  dims: { T: [1, 10], TOPK: [1, 5], E: [1, 5], skew: [0, 2], N: [1, 160], H: [1, 72], EH: ({ E, H }: Record<string, number>) => E! * H!,
    BS: { values: [1, 4, 16, 64] }, NB: [1, 60] },
  dimsWhere: ({ T: t, TOPK, E, BS, NB }) =>
    TOPK! <= E! && NB! >= routingBlocks(t! * TOPK!, E!, BS!) && NB! * BS! <= 1024,
  inputs: { A: { lo: -1, hi: 1 }, W2: { lo: 0, hi: 0xffffffff }, S2: { lo: -0.125, hi: 0.125 }, topk_weights: { lo: 0, hi: 1 } },
  derive: ({ T: t, E, TOPK, NB, BS, skew }, rand) => {
    const r = routing(t!, E!, TOPK!, NB!, BS!, skew!, rand);
    return { tensors: { sorted: r.sorted, block_expert: r.block_expert } };
  },
  outputs: { out: { fill: 0 } },
  reference: ({ A, W2, S2, sorted, block_expert, topk_weights }, _s, d) => {
    const Wd = dequantMatrix(W2!.data, d.EH!, d.N!, { format: "u4", order: "mma", scales: S2!.data, zeros: 8, group: 128 }, "bf16");
    const W = { dtype: "bf16" as const, shape: [d.EH!, d.N!], data: Wd };
    return { out: downRef(A!, W, sorted!, block_expert!, topk_weights!, d) };
  },
  // One token's element sums TOPK slots of N-long dot products; |a * w| <= 1 * 8 * 0.125.
  reduction: ({ N, TOPK }) => N! * TOPK!,
  magnitude: 1,
});

// The pairs kernel's rows over the same dequantized weights (moe_gemm_down_reduce.ts's reference).
const w4PairsCheck = (kernel: string) => defineCheck({
  kernel,
  dims: { ...moe_gemm_down_w4a16_check.dims, P: ({ T: t, TOPK }: Record<string, number>) => t! * TOPK! },
  dimsWhere: moe_gemm_down_w4a16_check.dimsWhere,
  inputs: { A: { lo: -1, hi: 1 }, W2: { lo: 0, hi: 0xffffffff }, S2: { lo: -0.125, hi: 0.125 } },
  derive: moe_gemm_down_w4a16_check.derive,
  reference: ({ A, W2, S2, sorted, block_expert }, _s, d) => {
    const Wd = dequantMatrix(W2!.data, d.EH!, d.N!, { format: "u4", order: "mma", scales: S2!.data, zeros: 8, group: 128 }, "bf16");
    return { Y: pairsRef(A!, { dtype: "bf16", shape: [d.EH!, d.N!], data: Wd }, sorted!, block_expert!, d) };
  },
  // An N-long dot product; |a * w| <= 1 * 8 * 0.125.
  reduction: ({ N }) => N!,
  magnitude: 1,
});
export const moe_gemm_down_pairs_w4a16_check = w4PairsCheck("moe_gemm_down_pairs_w4a16");
export const moe_gemm_down_pairs_w4a16_bf16_check = w4PairsCheck("moe_gemm_down_pairs_w4a16_bf16");
