// The router of a MoE layer: logits[t][e] = x_t . W_router[e], bf16 inputs, f32 logits (the
// gating kernels of moe_gate.ts read f32). A small GEMM: E is 8..256, so a column tile covers
// most of it and the grid is mostly along the tokens.
import { T, type Tensor } from "tilemoe";

export const moe_router = T.kernel(
  {
    tune: { BM: [16, 64], BN: [64, 128], BK: [64, 32], warps: [4, 8] },
    where: ({ BM, BN, BK }) => (BM + BN) * BK * 2 <= 48 * 1024,
  },
  function moe_router(X: Tensor<"T, H", "bf16">, Wr: Tensor<"E, H", "bf16">, logits: Tensor<"T, E", "f32">,
                      { BM, BN, BK, warps }: T.Config) {
    const [tokens, H] = X.shape;
    const [E] = Wr.shape;
    T.launch([T.cdiv(E, BN), T.cdiv(tokens, BM)], { threads: warps * 32 }, (bx, by) => {
      const As = T.shared([BM, BK], "bf16");
      const Bs = T.shared([BN, BK], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      T.clear(acc);
      for (const k of T.serial(T.cdiv(H, BK))) {
        T.copy(X.tile([by * BM, k * BK], [BM, BK]), As);
        T.copy(Wr.tile([bx * BN, k * BK], [BN, BK]), Bs);
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, logits.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

// ---- what the checker compares against (plain float64)
import { defineCheck, ref } from "tilemoe/check";

// T = 1 is a single token; E below the column tile leaves most of it ragged.
export const moe_router_check = defineCheck({
  kernel: "moe_router",
  dims: { T: [1, 40], H: [1, 100], E: [1, 20] },
  inputs: { X: { lo: -1, hi: 1 }, Wr: { lo: -0.5, hi: 0.5 } },
  reference: ({ X, Wr }) => ({ logits: ref.gemmRef(X!, Wr!, { transB: true }).data }),
  reduction: ({ H }) => H!,
});
