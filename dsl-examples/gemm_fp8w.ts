// fp8 (e4m3) weights, C = A * dequant(W)^T: W is [N, K] e4m3 bytes packed 4 per u32 word
// ([N, cdiv(K, 4)], interleaved order), one bf16 scale per 32 values (w = q * s).
// Random words include the e4m3 NaN pattern: those weights are NaN, and so are the
// outputs of their rows, in the kernel as in the reference.
import { T, type Tensor } from "tilemoe";

const SMEM_BYTES = 160 * 1024;

export const gemm_fp8w = T.kernel(
  {
    tune: { BM: [16, 64, 128], BN: [64, 128], BK: [64, 128], stages: [3, 2, 4], warps: [4, 8] },
    // Twice the bytes of A and the packed words (all stages) and of the bf16 tile (one).
    where: ({ BM, BN, BK, stages }) => (BM * BK * 4 + BN * BK * 2) * stages + BN * BK * 4 <= 2 * SMEM_BYTES,
  },
  function gemm_fp8w(A: Tensor<"M, K", "bf16">, W: Tensor<"N, cdiv(K, 4)", "u32">, S: Tensor<"N, cdiv(K, 32)", "bf16">,
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
        T.dequant(Ws, Bs, { format: "e4m3", order: "interleaved", scales: S, group: 32, at: [bx * BN, k * BK], K });
        T.gemm(As, Bs, acc, { transB: true });
      }
      T.copy(acc, C.tile([by * BM, bx * BN], [BM, BN]));
    });
  },
);

// ---- what the checker compares against (float64 over the exactly dequantized weights)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { dequantMatrix } from "tilemoe/quant";
import { gemmNT } from "./gemm_w4a16.ts";

export const gemm_fp8w_check = defineCheck({
  kernel: "gemm_fp8w",
  // K up to 48: most rows stay free of the NaN pattern (2 of 256 byte values).
  dims: { M: [1, 40], N: [1, 72], K: [1, 48] },
  inputs: { A: { lo: -1, hi: 1 }, W: { lo: 0, hi: 0xffffffff }, S: { lo: -1 / 256, hi: 1 / 256 } },
  magnitude: 2,
  reference: ({ A, W, S }, _s, d) =>
    ({ C: gemmNT(A!, dequantMatrix(W!.data, d.N!, d.K!, { format: "e4m3", order: "interleaved", scales: S!.data, group: 32 }, "bf16"), d.N!) }),
  reduction: ({ K }) => K!,
});
