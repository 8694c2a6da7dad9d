// f32 GEMM, C = A * B^T. No tensor-core path takes f32 inputs, so this one exercises the
// scalar fallback; small tiles keep its register footprint sane.
import { T, type Tensor } from "tilemoe";

export const gemm_f32 = T.kernel(
  {
    tune: { BM: [32, 64], BN: [32, 64], BK: [16, 32], warps: [2, 4] },
    where: ({ BM, BN, BK }) => (BM + BN) * BK * 4 <= 48 * 1024,
  },
  function gemm_f32(A: Tensor<"M, K", "f32">, B: Tensor<"N, K", "f32">, C: Tensor<"M, N", "f32">,
                    { BM, BN, BK, warps }: T.Config) {
    const [M, K] = A.shape;
    const [N] = B.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(M, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "f32");
      const Bs = T.shared([BN, BK], "f32");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.serial(T.cdiv(K, BK))) {
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

export const gemm_f32_check = defineCheck({
  kernel: "gemm_f32",
  dims: { M: [1, 70], N: [1, 70], K: [1, 50] },
  reference: ({ A, B }) => ({ C: ref.gemmRef(A!, B!, { transB: true }).data }),
  reduction: ({ K }) => K!,
});
