// The tile-level kernel of the fused dequant-gemm tests (test/passes/fuse-dequant-gemm.test.ts,
// and, lowered, test/cuda/kernels/dequant_gemm.ir).
/** One warp, a 16x8 accumulator, k-steps of 16: T.dequant as the front end expands it, then
 *  its gemm. `extra` goes into the main loop after the gemm. W is [N, KW = cdiv(K, per)]
 *  packed words, S [N, G = cdiv(K, 16)] scales (dims, so that tests can size them). */
export const dequantGemmSrc = (fmt: string, per: number, extra = ""): string => `kernel dqg(A: global bf16[M, K], W: global u32[N, KW], S: global bf16[N, G], C: global f32[M, N] out)
  dims M, K, N, KW, G
launch tile grid [cdiv(N, 8), cdiv(M, 16)] threads 32 blocks [bx, by] {
  alloc As: shared bf16[16, 16]
  alloc Ws: shared u32[8, ${16 / per}]
  alloc Bs: shared bf16[8, 16]
  alloc acc: fragment f32[16, 8]
  fill acc[0 : +16, 0 : +8] = 0.0
  for k in pipelined(0, cdiv(K, 16)) stages 2 {
    copy A[by * 16 : +16, k * 16 : +16] -> As[0 : +16, 0 : +16]
    copy W[bx * 8 : +8, k * ${16 / per} : +${16 / per}] -> Ws[0 : +8, 0 : +${16 / per}]
    for r, w in parallel(0, 8; 0, ${16 / per}) {
      alloc q: local bf16[${per}]
      let n: i32 = bx * 8 + r
      let kq: i32 = k * 16 + w * ${per}
      var s: f32 = 0.0
      if (n < N && kq / 16 < G) {
        s = cast<f32>(S[n, kq / 16])
      }
      dequant.${fmt}.interleaved q[0] <- Ws[r, w] scale s zero 3.0
      for j in serial(0, ${per}) {
        store Bs[r, w * ${per} + j] = select(kq + j < K, q[j], 0.0_bf16)
      }
    }
    gemm As[0 : +16, 0 : +16], Bs[0 : +8, 0 : +16] -> acc[0 : +16, 0 : +8] transB${extra}
  }
  copy acc[0 : +16, 0 : +8] -> C[by * 16 : +16, bx * 8 : +8]
}
`;
