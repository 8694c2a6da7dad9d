// Weight-only int8 GEMM, C = A * dequant(W)^T: W is [N, K] signed 8-bit weights packed 4
// per u32 word ([N, cdiv(K, 4)], linear byte order), one bf16 scale per output channel
// (w = q * s, symmetric) in gemm_w8a16, and per 64 values with f16 activations in
// gemm_w8a16_f16_g64 (unsigned bytes, zero point 128, interleaved order).
import { T, type Tensor } from "tilemoe";

const SMEM_BYTES = 160 * 1024;

export const gemm_w8a16 = T.kernel(
  {
    tune: { BM: [16, 64, 128], BN: [64, 128], BK: [64, 128], stages: [3, 2, 4], warps: [4, 8] },
    // Twice the bytes of A and the packed words (all stages) and of the bf16 tile (one).
    where: ({ BM, BN, BK, stages }) => (BM * BK * 4 + BN * BK * 2) * stages + BN * BK * 4 <= 2 * SMEM_BYTES,
  },
  function gemm_w8a16(A: Tensor<"M, K", "bf16">, W: Tensor<"N, cdiv(K, 4)", "u32">, S: Tensor<"N, 1", "bf16">,
                      C: Tensor<"M, N", "bf16">, { BM, BN, BK, stages, warps }: T.Config) {
    const [M, K] = A.shape;
    const [N] = W.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(M, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "bf16");
      const Ws = T.shared([BN, T.cdiv(BK, 4)], "u32");
      const Bs = T.shared([BN, BK], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
        T.copy(A.tile([by * BM, k * BK], [BM, BK]), As);
        T.copy(W.tile([bx * BN, k * T.cdiv(BK, 4)], [BN, T.cdiv(BK, 4)]), Ws);
        T.dequant(Ws, Bs, { format: "s8", order: "linear", scales: S, group: "channel", at: [bx * BN, k * BK], K });
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

export const gemm_w8a16_f16_g64 = T.kernel(
  {
    tune: { BM: [16, 64, 128], BN: [64, 128], BK: [64, 128], stages: [3, 2, 4], warps: [4, 8] },
    // Twice the bytes of A and the packed words (all stages) and of the bf16 tile (one).
    where: ({ BM, BN, BK, stages }) => (BM * BK * 4 + BN * BK * 2) * stages + BN * BK * 4 <= 2 * SMEM_BYTES,
  },
  function gemm_w8a16_f16_g64(A: Tensor<"M, K", "f16">, W: Tensor<"N, cdiv(K, 4)", "u32">, S: Tensor<"N, cdiv(K, 64)", "f16">,
                      C: Tensor<"M, N", "f16">, { BM, BN, BK, stages, warps }: T.Config) {
    const [M, K] = A.shape;
    const [N] = W.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(M, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "f16");
      const Ws = T.shared([BN, T.cdiv(BK, 4)], "u32");
      const Bs = T.shared([BN, BK], "f16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
        T.copy(A.tile([by * BM, k * BK], [BM, BK]), As);
        T.copy(W.tile([bx * BN, k * T.cdiv(BK, 4)], [BN, T.cdiv(BK, 4)]), Ws);
        T.dequant(Ws, Bs, { format: "u8", order: "interleaved", scales: S, zeros: 128, group: 64, at: [bx * BN, k * BK], K });
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

// ---- what the checker compares against (float64 over the exactly dequantized weights)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { dequantMatrix, type QuantParams } from "tilemoe/quant";
import { gemmNT } from "./gemm_w4a16.ts";

const ref = (p: Omit<QuantParams, "scales">, to: "bf16" | "f16") =>
  ({ A, W, S }: Record<string, TensorValue>, _s: Record<string, number>, d: Record<string, number>) =>
    ({ C: gemmNT(A!, dequantMatrix(W!.data, d.N!, d.K!, { ...p, scales: S!.data }, to), d.N!) });
const dims = { M: [1, 40], N: [1, 72], K: [1, 200] } as const;
const WORDS = { lo: 0, hi: 0xffffffff };

export const gemm_w8a16_check = defineCheck({
  kernel: "gemm_w8a16", dims,
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.01, hi: 0.01 } },
  magnitude: 1.3,
  reference: ref({ format: "s8", order: "linear", group: 0 }, "bf16"),
  reduction: ({ K }) => K!,
});
export const gemm_w8a16_f16_g64_check = defineCheck({
  kernel: "gemm_w8a16_f16_g64", dims,
  inputs: { A: { lo: -1, hi: 1 }, W: WORDS, S: { lo: -0.01, hi: 0.01 } },
  magnitude: 1.3,
  reference: ref({ format: "u8", order: "interleaved", group: 64, zeros: 128 }, "f16"),
  reduction: ({ K }) => K!,
});
