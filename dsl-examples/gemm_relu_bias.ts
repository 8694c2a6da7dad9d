// C = relu(A * B^T + bias): the epilogue is ordinary DSL code over the accumulator
// fragment, not a compiler feature.
import { T, type Tensor } from "tilemoe";

export const gemm_relu_bias = T.kernel(
  {
    tune: { BM: [64, 128], BN: [64, 128], BK: [32, 64], stages: [2, 3], warps: [4, 8] },
    where: ({ BM, BN, BK, stages }) => (BM + BN) * BK * 2 * stages <= 160 * 1024,
  },
  function gemm_relu_bias(A: Tensor<"M, K", "bf16">, B: Tensor<"N, K", "bf16">, bias: Tensor<"N", "f32">,
                          C: Tensor<"M, N", "bf16">, { BM, BN, BK, stages, warps }: T.Config) {
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
      for (const [i, j] of T.parallel(BM, BN)) {
        // Element reads are not masked like tile copies: columns past N must not touch bias
        // (they are never stored to C anyway).
        const col = bx * BN + j;
        if (col < N) {
          acc[i][j] = Math.max(acc[i][j] + bias[col], 0.0);
        }
      }
      T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

// ---- what the checker compares against (runs in `tilemoe check`; plain float64)
import { defineCheck, ref } from "tilemoe/check";

export const gemm_relu_bias_check = defineCheck({
  kernel: "gemm_relu_bias",
  dims: { M: [1, 150], N: [1, 150], K: [1, 100] },
  inputs: { A: { lo: -1, hi: 1 }, B: { lo: -1, hi: 1 }, bias: { lo: -2, hi: 2 } },
  reference: ({ A, B, bias }) => ({ C: ref.reluRef(ref.biasAddRef(ref.gemmRef(A!, B!, { transB: true }), bias!)).data }),
  reduction: ({ K }) => K!,
});
