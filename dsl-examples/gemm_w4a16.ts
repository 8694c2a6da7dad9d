// Weight-only int4 GEMM, C = A * dequant(W)^T: A is [M, K] bf16 activations, W is [N, K]
// 4-bit weights packed 8 per u32 word in the interleaved order ([N, cdiv(K, 8)], see
// docs/QUANT.md and src/quant/pack.ts), or in the mma order (gemm_w4a16_mma), one bf16 scale
// per 128 values of a row.
// Symmetric: w = (q - 8) * s for unsigned nibbles q. Asymmetric: w = (q - z) * s with u4
// zero points packed 8 per word, or with bf16 zero points. f32 accumulate.
// The packed tile is pipelined into shared memory with cp.async like any operand; the
// dequant in the main loop turns it into the bf16 tile the tensor-core gemm reads.
// gemm_w4a16 (f32 output) has the decode path as a tunable: with splitK > 1 block z sums a
// 1/splitK slice of the K tiles and adds its partial tile into C with f32 atomics; C is then
// an output written only by atomic adds, which every launcher clears before the launch
// (src/ir/zero-init.ts), so the result does not depend on C's initial content.
import { T, type Buf, type Tensor } from "tilemoe";

const SMEM_BYTES = 160 * 1024;
// Shared by the kernels below (kernel options may name a const of this file).
/** Twice the bytes of A and the packed words (all stages) and of the bf16 tile (one). */
const fitsSmem = ({ BM, BN, BK, stages }: T.Config) => (BM * BK * 4 + BN * BK) * stages + BN * BK * 4 <= 2 * SMEM_BYTES;
/** fitsSmem, and one scale group per K tile (BK divides 128): the partial-sum kernels. */
const fitsSmemOneGroup = ({ BM, BN, BK, stages }: T.Config) => 128 % BK == 0 && (BM * BK * 4 + BN * BK) * stages + BN * BK * 4 <= 2 * SMEM_BYTES;
/** The decode kernels' space: 16-row tiles first, wide K tiles, split-K, and the blocks an SM
 *  to keep resident (minBlocks: nvcc's register cap; 1 asks for nothing): a decode grid of a
 *  few hundred blocks runs in one wave only if enough of them fit an SM at once. */
const DECODE_TUNE = { BM: [16, 64, 128], BN: [64, 128, 256], BK: [128, 64], stages: [2, 3, 4], warps: [4, 8], splitK: [1, 2, 4, 8], minBlocks: [1, 7, 8] };
/** The zero-point kernels' space (no split-K). */
const ZP_TUNE = { BM: [16, 64, 128], BN: [64, 128], BK: [64, 128], stages: [3, 2, 4], warps: [4, 8] };

/** C = A * dequant(W)^T with the packed tile decoded by `dequantTile` (one slot order each):
 *  block (bx, by, bz) sums K tiles [bz * KT, (bz + 1) * KT); tiles past K read as 0. */
function w4a16Gemm(A: Tensor<"M, K", "bf16">, W: Tensor<"N, KW", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">, C: Tensor<"M, N", "f32" | "bf16">,
                   BM: number, BN: number, BK: number, stages: number, warps: number, splitK: number,
                   dequantTile: typeof dequantInterleaved, minBlocks: number) {
  const [M, K] = A.shape;
  const [N] = W.shape;
  const KT = T.cdiv(T.cdiv(K, BK), splitK);
  T.launch([T.cdiv(N, BN), T.cdiv(M, BM), splitK], { threads: warps * 32, minBlocks }, (bx, by, bz) => {
    const As = T.shared([BM, BK], "bf16");
    const Ws = T.shared([BN, T.cdiv(BK, 8)], "u32");
    const Bs = T.shared([BN, BK], "bf16");
    const acc = T.fragment([BM, BN], "f32");
    T.clear(acc);
    for (const k of T.pipelined(KT, stages)) {
      T.copy(A.tile([by * BM, (bz * KT + k) * BK], [BM, BK]), As);
      T.copy(W.tile([bx * BN, (bz * KT + k) * T.cdiv(BK, 8)], [BN, T.cdiv(BK, 8)]), Ws);
      dequantTile(Ws, Bs, S, bx * BN, (bz * KT + k) * BK, K);
      T.gemm(As, Bs, acc, { transB: true });
    }
    storeTile(acc, C, M, N, BM, BN, bx, by, splitK);
  });
}

/** w4a16Gemm with the group scale on f32 partial sums (docs/QUANT.md, "Group scales on partial
 *  sums"): each K tile's exact integer weights q - 8 go through the gemm into `part`, cleared
 *  per tile, and acc += part * S once per tile and output, instead of bf16((q - 8) * s) per
 *  weight. One group per K tile: BK divides 128 (the kernels' `where`). */
function w4a16GemmGs(A: Tensor<"M, K", "bf16">, W: Tensor<"N, KW", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">, C: Tensor<"M, N", "f32">,
                     BM: number, BN: number, BK: number, stages: number, warps: number, splitK: number,
                     unscaledTile: typeof unscaledMma, minBlocks: number) {
  const [M, K] = A.shape;
  const [N] = W.shape;
  const KT = T.cdiv(T.cdiv(K, BK), splitK);
  T.launch([T.cdiv(N, BN), T.cdiv(M, BM), splitK], { threads: warps * 32, minBlocks }, (bx, by, bz) => {
    const As = T.shared([BM, BK], "bf16");
    const Ws = T.shared([BN, T.cdiv(BK, 8)], "u32");
    const Bs = T.shared([BN, BK], "bf16");
    const acc = T.fragment([BM, BN], "f32");
    const part = T.fragment([BM, BN], "f32");
    T.clear(acc);
    for (const k of T.pipelined(KT, stages)) {
      // The copies first: a pipelined loop issues ahead only the copies that lead its body.
      T.copy(A.tile([by * BM, (bz * KT + k) * BK], [BM, BK]), As);
      T.copy(W.tile([bx * BN, (bz * KT + k) * T.cdiv(BK, 8)], [BN, T.cdiv(BK, 8)]), Ws);
      const k0 = (bz * KT + k) * BK;
      unscaledTile(Ws, Bs, bx * BN, k0, K);
      T.clear(part);
      T.gemm(As, Bs, part, { transB: true });
      // The tile's one group scale per column; columns past N and tiles past K add nothing.
      for (const [i, j] of T.parallel(BM, BN)) {
        if (bx * BN + j < N && k0 < K) {
          acc[i][j] += part[i][j] * S[bx * BN + j][Math.floor(k0 / 128)];
        }
      }
    }
    storeTile(acc, C, M, N, BM, BN, bx, by, splitK);
  });
}

type Words = Buf<"u32", readonly [number, number]>;
type Tile = Buf<"bf16", readonly [number, number]>;
type Acc = Buf<"f32", readonly [number, number]>;

/** The block's accumulator into C: stored whole (splitK 1), or added by each of a tile's splitK
 *  blocks with f32 atomics (the launcher clears C, an output written only by atomic adds:
 *  src/ir/zero-init.ts). */
function storeTile(acc: Acc, C: Tensor<"M, N", "f32" | "bf16">, M: number, N: number, BM: number, BN: number, bx: number, by: number, splitK: number) {
  if (splitK == 1) {
    T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
  } else {
    for (const [i, j] of T.parallel(BM, BN)) {
      if (by * BM + i < M && bx * BN + j < N) {
        T.atomicAdd(C[by * BM + i][bx * BN + j], acc[i][j]);
      }
    }
  }
}

/** The interleaved order: word w of a row holds values 8w .. 8w + 7. */
function dequantInterleaved(Ws: Words, Bs: Tile, S: Tensor<"N, G", "bf16">, n0: number, k0: number, K: number) {
  T.dequant(Ws, Bs, { format: "u4", order: "interleaved", scales: S, zeros: 8, group: 128, at: [n0, k0], K });
}

/** The mma order: a tile is BK / 32 whole blocks of 4 words per row (BK is a multiple of 32). */
function dequantMma(Ws: Words, Bs: Tile, S: Tensor<"N, G", "bf16">, n0: number, k0: number, K: number) {
  T.dequant(Ws, Bs, { format: "u4", order: "mma", scales: S, zeros: 8, group: 128, at: [n0, k0], K });
}

/** Unscaled weights q - 8, exactly (no `scales`): the interleaved order. */
function unscaledInterleaved(Ws: Words, Bs: Tile, n0: number, k0: number, K: number) {
  T.dequant(Ws, Bs, { format: "u4", order: "interleaved", zeros: 8, at: [n0, k0], K });
}

/** Unscaled weights q - 8, exactly: the mma order. */
function unscaledMma(Ws: Words, Bs: Tile, n0: number, k0: number, K: number) {
  T.dequant(Ws, Bs, { format: "u4", order: "mma", zeros: 8, at: [n0, k0], K });
}

export const gemm_w4a16 = T.kernel(
  {
    // BM / BN 256: the register-A wgmma's prefill tiles (src/passes/dequant-wgmma.ts).
    tune: { BM: [16, 64, 128, 256], BN: [64, 128, 256], BK: [64, 128], stages: [3, 2, 4], warps: [4, 8], splitK: [1, 2, 4, 8] },
    where: fitsSmem,
  },
  function gemm_w4a16(A: Tensor<"M, K", "bf16">, W: Tensor<"N, cdiv(K, 8)", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">,
                      C: Tensor<"M, N", "f32">, { BM, BN, BK, stages, warps, splitK }: T.Config) {
    w4a16Gemm(A, W, S, C, BM, BN, BK, stages, warps, splitK, dequantInterleaved, 1);
  },
);

// The same decode kernel on weights packed in the "mma" order (docs/QUANT.md): within each
// 32-value block of a row, word t holds the 8 values lane t of an mma.sync B fragment needs for
// the block's two k-steps, so in the register-fused loop each lane reads its own word and
// extracts its pairs at constant shifts. Rows are whole blocks: [N, 4 * cdiv(K, 32)] words.
export const gemm_w4a16_mma = T.kernel(
  {
    tune: DECODE_TUNE,
    where: fitsSmem,
  },
  function gemm_w4a16_mma(A: Tensor<"M, K", "bf16">, W: Tensor<"N, 4 * cdiv(K, 32)", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">,
                          C: Tensor<"M, N", "f32">, { BM, BN, BK, stages, warps, splitK, minBlocks }: T.Config) {
    w4a16Gemm(A, W, S, C, BM, BN, BK, stages, warps, splitK, dequantMma, minBlocks);
  },
);

// Prefill: the same symmetric int4 GEMM with a bf16 C (the precision of the activations the next
// layer reads, and of the bf16 GEMM it is measured against: half the output bytes of gemm_w4a16's
// f32 C, 117 MB less written at M = 4096, N = 14336). No K split: at prefill sizes the tiles fill
// the SMs, and a bf16 C cannot take f32 atomic partial sums.
export const gemm_w4a16_bf16out = T.kernel(
  {
    tune: { BM: [128, 256, 64], BN: [128, 256, 64], BK: [64], stages: [3, 4], warps: [8, 4] },
    where: fitsSmem,
  },
  function gemm_w4a16_bf16out(A: Tensor<"M, K", "bf16">, W: Tensor<"N, cdiv(K, 8)", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">,
                              C: Tensor<"M, N", "bf16">, { BM, BN, BK, stages, warps }: T.Config) {
    w4a16Gemm(A, W, S, C, BM, BN, BK, stages, warps, 1, dequantInterleaved, 1);
  },
);

// gemm_w4a16 and gemm_w4a16_mma with the group scale applied to f32 partial sums (one group
// per K tile, so BK divides the group of 128): a different rounding from theirs (exact integer
// weights, one f32 multiply per group instead of a bf16 product per weight), chosen here by
// the kernel's author; the fused decode loop then dequantizes a pair with one lop3.
export const gemm_w4a16_gs = T.kernel(
  {
    tune: DECODE_TUNE,
    where: fitsSmemOneGroup,
  },
  function gemm_w4a16_gs(A: Tensor<"M, K", "bf16">, W: Tensor<"N, cdiv(K, 8)", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">,
                         C: Tensor<"M, N", "f32">, { BM, BN, BK, stages, warps, splitK, minBlocks }: T.Config) {
    w4a16GemmGs(A, W, S, C, BM, BN, BK, stages, warps, splitK, unscaledInterleaved, minBlocks);
  },
);

export const gemm_w4a16_mma_gs = T.kernel(
  {
    tune: DECODE_TUNE,
    where: fitsSmemOneGroup,
  },
  function gemm_w4a16_mma_gs(A: Tensor<"M, K", "bf16">, W: Tensor<"N, 4 * cdiv(K, 32)", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">,
                             C: Tensor<"M, N", "f32">, { BM, BN, BK, stages, warps, splitK, minBlocks }: T.Config) {
    w4a16GemmGs(A, W, S, C, BM, BN, BK, stages, warps, splitK, unscaledMma, minBlocks);
  },
);

export const gemm_w4a16_zp = T.kernel(
  {
    tune: ZP_TUNE,
    where: fitsSmem,
  },
  function gemm_w4a16_zp(A: Tensor<"M, K", "bf16">, W: Tensor<"N, cdiv(K, 8)", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">,
                         Z: Tensor<"N, cdiv(cdiv(K, 128), 8)", "u32">, C: Tensor<"M, N", "bf16">,
                         { BM, BN, BK, stages, warps }: T.Config) {
    const [M, K] = A.shape;
    const [N] = W.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(M, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "bf16");
      const Ws = T.shared([BN, T.cdiv(BK, 8)], "u32");
      const Bs = T.shared([BN, BK], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
        T.copy(A.tile([by * BM, k * BK], [BM, BK]), As);
        T.copy(W.tile([bx * BN, k * T.cdiv(BK, 8)], [BN, T.cdiv(BK, 8)]), Ws);
        T.dequant(Ws, Bs, { format: "u4", order: "interleaved", scales: S, zeros: Z, group: 128, at: [bx * BN, k * BK], K });
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

export const gemm_w4a16_bf16zp = T.kernel(
  {
    tune: ZP_TUNE,
    where: fitsSmem,
  },
  function gemm_w4a16_bf16zp(A: Tensor<"M, K", "bf16">, W: Tensor<"N, cdiv(K, 8)", "u32">, S: Tensor<"N, cdiv(K, 128)", "bf16">,
                             Z: Tensor<"N, cdiv(K, 128)", "bf16">, C: Tensor<"M, N", "bf16">,
                             { BM, BN, BK, stages, warps }: T.Config) {
    const [M, K] = A.shape;
    const [N] = W.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(M, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "bf16");
      const Ws = T.shared([BN, T.cdiv(BK, 8)], "u32");
      const Bs = T.shared([BN, BK], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
        T.copy(A.tile([by * BM, k * BK], [BM, BK]), As);
        T.copy(W.tile([bx * BN, k * T.cdiv(BK, 8)], [BN, T.cdiv(BK, 8)]), Ws);
        T.dequant(Ws, Bs, { format: "u4", order: "interleaved", scales: S, zeros: Z, group: 128, at: [bx * BN, k * BK], K });
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

// ---- what the checker compares against (plain float64 over the exactly dequantized weights)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { dequantMatrix, type QuantParams } from "tilemoe/quant";

/** C = A * Wd^T in float64, Wd the [N, K] dequantized weights. */
export function gemmNT(A: TensorValue, Wd: Float64Array, N: number): Float64Array {
  const [M, K] = A.shape as [number, number];
  const C = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A.data[m * K + k]! * Wd[n * K + k]!;
      C[m * N + n] = s;
    }
  return C;
}

const WORDS = { lo: 0, hi: 0xffffffff };
const dims = { M: [1, 40], N: [1, 72], K: [1, 300] } as const;
const w4 = (zeros: (a: Record<string, TensorValue>) => QuantParams["zeros"], order: QuantParams["order"] = "interleaved") =>
  ({ A, W, S, Z }: Record<string, TensorValue>, _s: Record<string, number>, d: Record<string, number>) => {
    const Wd = dequantMatrix(W!.data, d.N!, d.K!, { format: "u4", order, scales: S!.data, zeros: zeros({ Z: Z! }), group: 128 }, "bf16");
    return { C: gemmNT(A!, Wd, d.N!) };
  };

export const gemm_w4a16_check = defineCheck({
  kernel: "gemm_w4a16", dims,
  // Scales of both signs; weights |q - 8| <= 8, so |a * w| <= 8 * 0.25.
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.25, hi: 0.25 } },
  magnitude: 2,
  reference: w4(() => 8),
  reduction: ({ K }) => K!,
});
// Random words: the fields past K (a row's last block) are not 0, the kernel must mask them.
export const gemm_w4a16_mma_check = defineCheck({
  kernel: "gemm_w4a16_mma", dims,
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.25, hi: 0.25 } },
  magnitude: 2,
  reference: w4(() => 8, "mma"),
  reduction: ({ K }) => K!,
});
export const gemm_w4a16_bf16out_check = defineCheck({
  kernel: "gemm_w4a16_bf16out", dims,
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.25, hi: 0.25 } },
  magnitude: 2,
  reference: w4(() => 8),
  reduction: ({ K }) => K!,
});
export const gemm_w4a16_zp_check = defineCheck({
  kernel: "gemm_w4a16_zp", dims,
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.25, hi: 0.25 }, Z: WORDS },
  magnitude: 4,
  reference: w4(({ Z }) => ({ packed: Z!.data })),
  reduction: ({ K }) => K!,
});
export const gemm_w4a16_bf16zp_check = defineCheck({
  kernel: "gemm_w4a16_bf16zp", dims,
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.25, hi: 0.25 }, Z: { lo: 0, hi: 15 } },
  magnitude: 4,
  reference: w4(({ Z }) => Z!.data),
  reduction: ({ K }) => K!,
});
// The partial-sum kernels compute A * ((q - 8) * s) with the weights unrounded: the reference
// dequantizes in float64. Their fused decode loop sums A * (128 + q) per K tile and takes
// 136 * rowsum(A) off (docs/QUANT.md): f32 sums of terms up to 143 * |a|, times |s| <= 0.25.
const w4gs = (order: QuantParams["order"]) =>
  ({ A, W, S }: Record<string, TensorValue>, _s: Record<string, number>, d: Record<string, number>) => {
    const Wd = dequantMatrix(W!.data, d.N!, d.K!, { format: "u4", order, scales: S!.data, zeros: 8, group: 128 }, "f64");
    return { C: gemmNT(A!, Wd, d.N!) };
  };
export const gemm_w4a16_gs_check = defineCheck({
  kernel: "gemm_w4a16_gs", dims,
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.25, hi: 0.25 } },
  magnitude: 143 * 0.25,
  reference: w4gs("interleaved"),
  reduction: ({ K }) => K!,
});
export const gemm_w4a16_mma_gs_check = defineCheck({
  kernel: "gemm_w4a16_mma_gs", dims,
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.25, hi: 0.25 } },
  magnitude: 143 * 0.25,
  reference: w4gs("mma"),
  reduction: ({ K }) => K!,
});
