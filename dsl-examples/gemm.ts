// Tiled GEMM, C = A * B^T: A is [M, K], B is [N, K] (both K-major), f32 accumulate.
// Two exported kernels so both 16-bit input types go through the whole pipeline.
import { T, type Tensor } from "tilemoe";

const SMEM_BYTES = 160 * 1024;

export const gemm_bf16 = T.kernel(
  {
    tune: { BM: [64, 128], BN: [64, 128, 256], BK: [32, 64], stages: [2, 3, 4], warps: [4, 8] },
    // Operand tiles of all stages must fit in shared memory (2 bytes per element).
    where: ({ BM, BN, BK, stages }) => (BM + BN) * BK * 2 * stages <= SMEM_BYTES,
  },
  function gemm_bf16(A: Tensor<"M, K", "bf16">, B: Tensor<"N, K", "bf16">, C: Tensor<"M, N", "bf16">,
                     { BM, BN, BK, stages, warps }: T.Config) {
    const [M, K] = A.shape;
    const [N] = B.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(M, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "bf16");
      const Bs = T.shared([BN, BK], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
        T.copy(A.tile([by * BM, k * BK], [BM, BK]), As);
        T.copy(B.tile([bx * BN, k * BK], [BN, BK]), Bs);
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

export const gemm_f16 = T.kernel(
  {
    tune: { BM: [64, 128], BN: [64, 128, 256], BK: [32, 64], stages: [2, 3, 4], warps: [4, 8] },
    where: ({ BM, BN, BK, stages }) => (BM + BN) * BK * 2 * stages <= SMEM_BYTES,
  },
  function gemm_f16(A: Tensor<"M, K", "f16">, B: Tensor<"N, K", "f16">, C: Tensor<"M, N", "f16">,
                    { BM, BN, BK, stages, warps }: T.Config) {
    const [M, K] = A.shape;
    const [N] = B.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(M, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "f16");
      const Bs = T.shared([BN, BK], "f16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
        T.copy(A.tile([by * BM, k * BK], [BM, BK]), As);
        T.copy(B.tile([bx * BN, k * BK], [BN, BK]), Bs);
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

// ---- what the checker compares against (runs in `tilemoe check`; plain float64)
import { defineCheck, ref } from "tilemoe/check";

const gemmCheck = (kernel: string) => defineCheck({
  kernel,
  // Tiny and ragged on purpose: 1, primes, and sizes that straddle every tile shape.
  dims: { M: [1, 150], N: [1, 150], K: [1, 100] },
  inputs: { A: { lo: -1, hi: 1 }, B: { lo: -1, hi: 1 } },
  reference: ({ A, B }) => ({ C: ref.gemmRef(A!, B!, { transB: true }).data }),
  reduction: ({ K }) => K!,
});
export const gemm_bf16_check = gemmCheck("gemm_bf16");
export const gemm_f16_check = gemmCheck("gemm_f16");
