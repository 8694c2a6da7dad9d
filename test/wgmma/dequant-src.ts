// The tile-level kernel of the register-A dequant wgmma tests (test/wgmma/dequant-wgmma.test.ts):
// T.dequant as the front end expands it, then its gemm, in a 3-stage pipeline (so that the
// wgmma pipeline keeps a group in flight). W is [N, KW = cdiv(K, per)] packed words, S
// [N, G = cdiv(K, 16)] scales.
export interface RsShape { BM: number; BN: number; BK: number; threads: number }

export const rsSrc = (fmt: string, per: number, { BM, BN, BK, threads }: RsShape): string => `kernel rsq(A: global bf16[M, K], W: global u32[N, KW], S: global bf16[N, G], C: global f32[M, N] out)
  dims M, K, N, KW, G
launch tile grid [cdiv(N, ${BN}), cdiv(M, ${BM})] threads ${threads} blocks [bx, by] {
  alloc As: shared bf16[${BM}, ${BK}]
  alloc Ws: shared u32[${BN}, ${BK / per}]
  alloc Bs: shared bf16[${BN}, ${BK}]
  alloc acc: fragment f32[${BM}, ${BN}]
  fill acc[0 : +${BM}, 0 : +${BN}] = 0.0
  for k in pipelined(0, cdiv(K, ${BK})) stages 3 {
    copy A[by * ${BM} : +${BM}, k * ${BK} : +${BK}] -> As[0 : +${BM}, 0 : +${BK}]
    copy W[bx * ${BN} : +${BN}, k * ${BK / per} : +${BK / per}] -> Ws[0 : +${BN}, 0 : +${BK / per}]
    for r, w in parallel(0, ${BN}; 0, ${BK / per}) {
      alloc q: local bf16[${per}]
      let n: i32 = bx * ${BN} + r
      let kq: i32 = k * ${BK} + w * ${per}
      var s: f32 = 0.0
      if (n < N && kq / 16 < G) {
        s = cast<f32>(S[n, kq / 16])
      }
      dequant.${fmt}.interleaved q[0] <- Ws[r, w] scale s zero 3.0
      for j in serial(0, ${per}) {
        store Bs[r, w * ${per} + j] = select(kq + j < K, q[j], 0.0_bf16)
      }
    }
    gemm As[0 : +${BM}, 0 : +${BK}], Bs[0 : +${BN}, 0 : +${BK}] -> acc[0 : +${BM}, 0 : +${BN}] transB
  }
  copy acc[0 : +${BM}, 0 : +${BN}] -> C[by * ${BM} : +${BM}, bx * ${BN} : +${BN}]
}
`;
