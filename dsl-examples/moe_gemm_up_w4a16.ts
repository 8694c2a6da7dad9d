// moe_gemm_up (see moe_gemm_up.ts) with w4a16 expert weights: W13 holds [E * 2N, K] 4-bit
// weights packed 8 per u32 word in the interleaved order (docs/QUANT.md), one bf16 scale
// per 128 values of a row, symmetric (w = (q - 8) * s). The packed gate and up tiles are
// pipelined like any operand and turned into bf16 tiles by T.dequant before the gemms.
import { T, type Buf, type Tensor } from "tilemoe";
import { routedTile, storeGateUp, tokenRows } from "./lib/moe_tiles.ts";

type Shared2d = Buf<"bf16", readonly [number, number]>;
type Packed2d = Buf<"u32", readonly [number, number]>;
type Frag2d = Buf<"f32", readonly [number, number]>;

const SMEM_BYTES = 160 * 1024;

// Activations and both packed tiles (all stages), and the two bf16 weight tiles.
const SPACE = {
  tune: { BM: [64, 16, 32, 128], BN: [64, 128], BK: [64, 128], stages: [3, 2, 4], warps: [8, 4], GROUP_M: [1, 8] },
  where: ({ BM, BN, BK, stages }: T.Config) => (BM * BK * 2 + BN * BK) * stages + 2 * BN * BK * 2 <= SMEM_BYTES,
};

/** SiLU(g) = g * sigmoid(g). */
function silu(g: number) { return g * T.sigmoid(g); }

/** The whole w4a16 gate/up kernel; `accumulate` (w4Gathered or w4Permuted) runs the K loop
 *  over the tile's activation rows A, as moe_gemm_up.ts's gateUp. */
function w4GateUp(A: Tensor<"R, K", "bf16">, W13: Tensor<"E2N, cdiv(K, 8)", "u32">, S13: Tensor<"E2N, cdiv(K, 128)", "bf16">,
                  sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, top_k: number, Y: Tensor<"NB * BS, N", "bf16">,
                  BM: number, BN: number, BK: number, stages: number, warps: number, GROUP_M: number, accumulate: typeof w4Gathered) {
  const [NB, BS] = sorted.shape;
  const N = Y.shape[1];
  T.launch([T.cdiv(N, BN), NB * T.cdiv(BS, BM)], { threads: warps * 32 }, (gx, gy) => {
    // Its column tile, routing block, first row there and expert, in the grouped order (lib/moe_tiles.ts).
    const [bx, b, r0, e] = routedTile(gx, gy, T.cdiv(N, BN), block_expert, BS, BM, GROUP_M);
    const As = T.shared([BM, BK], "bf16");
    const Gq = T.shared([BN, T.cdiv(BK, 8)], "u32");
    const Uq = T.shared([BN, T.cdiv(BK, 8)], "u32");
    const Gs = T.shared([BN, BK], "bf16");
    const Us = T.shared([BN, BK], "bf16");
    const gate = T.fragment([BM, BN], "f32");
    const up = T.fragment([BM, BN], "f32");
    T.clear(gate);
    T.clear(up);
    accumulate(A, W13, S13, sorted, top_k, As, Gq, Uq, Gs, Us, gate, up, e, b, r0, bx, N, BS, BM, BN, BK, stages);
    storeGateUp(gate, up, Y, b, r0, bx, N, BS, BM, BN, silu);
  });
}

/** One K tile of expert e's packed gate and up weights (column tile bx), dequantized and multiplied into both accumulators. */
function w4Step(W13: Tensor<"E2N, cdiv(K, 8)", "u32">, S13: Tensor<"E2N, cdiv(K, 128)", "bf16">, As: Shared2d, Gq: Packed2d, Uq: Packed2d,
                Gs: Shared2d, Us: Shared2d, gate: Frag2d, up: Frag2d, e: number, bx: number, k: number, K: number, N: number, BN: number, BK: number) {
  T.copy(W13.tile([e * 2 * N + bx * BN, k * T.cdiv(BK, 8)], [BN, T.cdiv(BK, 8)]), Gq);
  T.copy(W13.tile([e * 2 * N + N + bx * BN, k * T.cdiv(BK, 8)], [BN, T.cdiv(BK, 8)]), Uq);
  T.dequant(Gq, Gs, { format: "u4", order: "interleaved", scales: S13, zeros: 8, group: 128, at: [e * 2 * N + bx * BN, k * BK], K });
  T.dequant(Uq, Us, { format: "u4", order: "interleaved", scales: S13, zeros: 8, group: 128, at: [e * 2 * N + N + bx * BN, k * BK], K });
  T.gemm(As, Gs, gate, { transB: true });
  T.gemm(As, Us, up, { transB: true });
}

/** The routing gather (moe_gemm_up_w4a16): row i of the tile is its pair's token row, or -1 (reads 0). */
function w4Gathered(X: Tensor<"R, K", "bf16">, W13: Tensor<"E2N, cdiv(K, 8)", "u32">, S13: Tensor<"E2N, cdiv(K, 128)", "bf16">,
                    sorted: Tensor<"NB, BS", "i32">, top_k: number, As: Shared2d, Gq: Packed2d, Uq: Packed2d, Gs: Shared2d, Us: Shared2d,
                    gate: Frag2d, up: Frag2d, e: number, b: number, r0: number, bx: number, N: number, BS: number,
                    BM: number, BN: number, BK: number, stages: number) {
  const [tokens, K] = X.shape;
  const xrow = T.shared([BM], "i32");
  tokenRows(xrow, sorted, b, r0, BM, tokens, top_k);
  if (e >= 0) {
    for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
      T.copy(X.rows(xrow, k * BK, BK), As);
      w4Step(W13, S13, As, Gq, Uq, Gs, Us, gate, up, e, bx, k, K, N, BN, BK);
    }
  }
}

/** Rows already in routing order (moe_gemm_up_permuted_w4a16, after moe_permute.ts): plain tiles of Xp. */
function w4Permuted(Xp: Tensor<"R, K", "bf16">, W13: Tensor<"E2N, cdiv(K, 8)", "u32">, S13: Tensor<"E2N, cdiv(K, 128)", "bf16">,
                    _sorted: Tensor<"NB, BS", "i32">, _top_k: number, As: Shared2d, Gq: Packed2d, Uq: Packed2d, Gs: Shared2d, Us: Shared2d,
                    gate: Frag2d, up: Frag2d, e: number, b: number, r0: number, bx: number, N: number, BS: number,
                    _BM: number, BN: number, BK: number, stages: number) {
  const K = Xp.shape[1];
  if (e >= 0) {
    for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
      T.copy(Xp.tile([b * BS + r0, k * BK], [_BM, BK]), As);
      w4Step(W13, S13, As, Gq, Uq, Gs, Us, gate, up, e, bx, k, K, N, BN, BK);
    }
  }
}

export const moe_gemm_up_w4a16 = T.kernel(SPACE,
  function moe_gemm_up_w4a16(X: Tensor<"T, K", "bf16">, W13: Tensor<"E2N, cdiv(K, 8)", "u32">, S13: Tensor<"E2N, cdiv(K, 128)", "bf16">,
                             sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, top_k: T.i32,
                             Y: Tensor<"NB * BS, N", "bf16">, { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    w4GateUp(X, W13, S13, sorted, block_expert, top_k, Y, BM, BN, BK, stages, warps, GROUP_M, w4Gathered);
  },
);

// The gate/up GEMM over activation rows already in routing order (Xp, moe_permute.ts), as
// moe_gemm_up_permuted is for bf16 weights: plain activation tiles, which TMA can load.
export const moe_gemm_up_permuted_w4a16 = T.kernel(SPACE,
  function moe_gemm_up_permuted_w4a16(Xp: Tensor<"NB * BS, K", "bf16">, W13: Tensor<"E2N, cdiv(K, 8)", "u32">, S13: Tensor<"E2N, cdiv(K, 128)", "bf16">,
                                      sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, Y: Tensor<"NB * BS, N", "bf16">,
                                      { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    // top_k (1 here) is read only by the gathered rows.
    w4GateUp(Xp, W13, S13, sorted, block_expert, 1, Y, BM, BN, BK, stages, warps, GROUP_M, w4Permuted);
  },
);

// ---- what the checker compares against (plain float64 over the exactly dequantized weights)
import { defineCheck } from "tilemoe/check";
import { routingBlocks } from "tilemoe/moe";
import { dequantMatrix } from "tilemoe/quant";
import { routing, upRef, upRows } from "./moe_gemm_up.ts";

const siluRef = (g: number) => g / (1 + Math.exp(-g));

export const moe_gemm_up_w4a16_check = defineCheck({
  kernel: "moe_gemm_up_w4a16",
  dims: { T: [1, 8], K: [1, 160], N: [1, 40], E: [1, 5], TOPK: [1, 5], skew: [0, 2],
    E2N: ({ E, N }: Record<string, number>) => E! * 2 * N!, BS: { values: [1, 4, 16, 64] }, NB: [1, 60] },
  dimsWhere: ({ T: t, E, TOPK, BS, NB }) =>
    TOPK! <= E! && NB! >= routingBlocks(t! * TOPK!, E!, BS!) && NB! * BS! <= 1024,
  inputs: { X: { lo: -1, hi: 1 }, W13: { lo: 0, hi: 0xffffffff }, S13: { lo: -0.125, hi: 0.125 } },
  derive: ({ T: t, E, TOPK, NB, BS, skew }, rand) => {
    const r = routing(t!, E!, TOPK!, NB!, BS!, skew!, rand);
    return { tensors: { sorted: r.sorted, block_expert: r.block_expert }, scalars: { top_k: TOPK! } };
  },
  reference: ({ X, W13, S13, sorted, block_expert }, { top_k }, d) => {
    const Wd = dequantMatrix(W13!.data, d.E2N!, d.K!, { format: "u4", order: "interleaved", scales: S13!.data, zeros: 8, group: 128 }, "bf16");
    const W = { dtype: "bf16" as const, shape: [d.E2N!, d.K!], data: Wd };
    return { Y: upRef(siluRef, X!, W, sorted!, block_expert!, top_k!, d) };
  },
  reduction: ({ K }) => K!,
  // |x * w| <= 8 * 0.125; Y multiplies two such sums.
  magnitude: 8,
});

// The permuted kernel: Xp's rows are already in routing order (pad rows as they come: the
// kernel never stores them with a nonzero pair, and the reference computes every used block's rows).
export const moe_gemm_up_permuted_w4a16_check = defineCheck({
  kernel: "moe_gemm_up_permuted_w4a16",
  dims: moe_gemm_up_w4a16_check.dims,
  dimsWhere: moe_gemm_up_w4a16_check.dimsWhere,
  inputs: { Xp: { lo: -1, hi: 1 }, W13: { lo: 0, hi: 0xffffffff }, S13: { lo: -0.125, hi: 0.125 } },
  derive: ({ T: t, E, TOPK, NB, BS, skew }, rand) => {
    const r = routing(t!, E!, TOPK!, NB!, BS!, skew!, rand);
    return { tensors: { sorted: r.sorted, block_expert: r.block_expert } };
  },
  reference: ({ Xp, W13, S13, block_expert }, _s, d) => {
    const Wd = dequantMatrix(W13!.data, d.E2N!, d.K!, { format: "u4", order: "interleaved", scales: S13!.data, zeros: 8, group: 128 }, "bf16");
    const W = { dtype: "bf16" as const, shape: [d.E2N!, d.K!], data: Wd };
    return { Y: upRows(siluRef, Xp!, W, block_expert!, d, (b, r) => (b * d.BS! + r) * d.K!) };
  },
  reduction: ({ K }) => K!,
  magnitude: 8,
});

