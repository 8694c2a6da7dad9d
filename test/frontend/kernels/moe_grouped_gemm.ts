// The expert GEMM of a fused MoE layer: rows are (token, slot) pairs sorted by expert and
// padded per expert to a multiple of the row block (vLLM's moe_align_block_size layout).
// Row r of the output is X[ids[r]] * W[expert[r]]^T; pad rows (ids[r] >= T) come out 0.
// A block's rows all belong to one expert, so the block reads W's rows of that expert.
// The routing gather is ordinary DSL code filling shared memory; the rest is the GEMM.
import { T, type Tensor } from "tilemoe";

export const moe_grouped_gemm = T.kernel(
  {
    tune: { BM: [64, 128], BN: [64, 128], BK: [32, 64], warps: [4, 8] },
    where: ({ BM, BN, BK }) => (BM + BN) * BK * 2 <= 96 * 1024,
  },
  function moe_grouped_gemm(X: Tensor<"T, K", "bf16">, W: Tensor<"EN, K", "bf16">, ids: Tensor<"P", "i32">,
                            expert: Tensor<"P", "i32">, Y: Tensor<"P, N", "bf16">, { BM, BN, BK, warps }: T.Config) {
    // W holds the experts' [N, K] matrices stacked: expert e's row n is W[e * N + n].
    const [tokens, K] = X.shape;
    const [P, N] = Y.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(P, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "bf16");
      const Bs = T.shared([BN, BK], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      const e = expert[by * BM];
      T.clear(acc);
      for (const k of T.serial(T.cdiv(K, BK))) {
        for (const [i, kk] of T.parallel(BM, BK)) {
          const r = by * BM + i;
          const col = k * BK + kk;
          let x = 0.0;
          if (r < P && col < K) {
            const tok = ids[r];
            if (tok < tokens) {
              x = X[tok][col];
            }
          }
          As[i][kk] = x;
        }
        T.copy(W.tile([e * N + bx * BN, k * BK], [BN, BK]), Bs);
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, Y.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);
