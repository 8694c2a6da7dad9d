// Tiled GEMM, C = A * B^T: A is [M, K], B is [N, K] (both K-major), f32 accumulate.
// Two exported kernels so both 16-bit input types go through the whole pipeline; they share
// one body, the helper `gemm` (helper functions: docs/DSL.md).
import { T, type Tensor } from "tilemoe";

const SMEM_BYTES = 160 * 1024;

/** The whole kernel for either 16-bit input type (the kernels below only fix the dtypes). */
function gemm(A: Tensor<"M, K", "bf16" | "f16">, B: Tensor<"N, K", "bf16" | "f16">, C: Tensor<"M, N", "bf16" | "f16">,
              BM: number, BN: number, BK: number, stages: number, warps: number, GROUP_M: number) {
  const [M, K] = A.shape;
  const [N] = B.shape;
  T.launch([T.cdiv(N, BN) * T.cdiv(M, BM)], { threads: warps * 32 }, (pid) => {
    // Grouped order: GROUP_M row-blocks sweep the columns together, so the blocks in
    // flight share A and B tiles in L2 instead of streaming all of B per row-block.
    const tilesM = T.cdiv(M, BM);
    const tilesN = T.cdiv(N, BN);
    const group = Math.floor(pid / (GROUP_M * tilesN));
    // At least 1 for every block of the grid; T.max says so to the bounds tests (src/passes/non-neg.ts).
    const rows = T.max(1, T.min(tilesM - group * GROUP_M, GROUP_M));
    const inGroup = pid % (GROUP_M * tilesN);
    const by = group * GROUP_M + inGroup % rows;
    const bx = Math.floor(inGroup / rows);
    const As = T.shared([BM, BK], A.dtype);
    const Bs = T.shared([BN, BK], B.dtype);
    const acc = T.fragment([BM, BN], "f32");
    T.clear(acc);
    for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
      T.copy(A.tile([by * BM, k * BK], [BM, BK]), As);
      T.copy(B.tile([bx * BN, k * BK], [BN, BK]), Bs);
      T.gemm(As, Bs, acc, { transB: true });
    }
    T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
  });
}

export const gemm_bf16 = T.kernel(
  {
    // First values are the default config (used when nothing was tuned).
    tune: { BM: [128, 64], BN: [128, 256, 64], BK: [32, 64], stages: [4, 3, 2], warps: [8, 4], GROUP_M: [8, 1] },
    // Operand tiles of all stages must fit in shared memory (2 bytes per element).
    where: ({ BM, BN, BK, stages }) => (BM + BN) * BK * 2 * stages <= SMEM_BYTES,
  },
  function gemm_bf16(A: Tensor<"M, K", "bf16">, B: Tensor<"N, K", "bf16">, C: Tensor<"M, N", "bf16">,
                     { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    gemm(A, B, C, BM, BN, BK, stages, warps, GROUP_M);
  },
);

export const gemm_f16 = T.kernel(
  {
    tune: { BM: [128, 64], BN: [128, 256, 64], BK: [32, 64], stages: [4, 3, 2], warps: [8, 4], GROUP_M: [8, 1] },
    where: ({ BM, BN, BK, stages }) => (BM + BN) * BK * 2 * stages <= SMEM_BYTES,
  },
  function gemm_f16(A: Tensor<"M, K", "f16">, B: Tensor<"N, K", "f16">, C: Tensor<"M, N", "f16">,
                    { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    gemm(A, B, C, BM, BN, BK, stages, warps, GROUP_M);
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
