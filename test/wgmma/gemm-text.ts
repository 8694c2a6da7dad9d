// The tile-level pipelined gemm that the wgmma and TMA end-to-end tests lower.
export const gemmText = (stages: number, cdt = "f32", atype = "bf16") => `
kernel gemm(A: global ${atype}[M, K], B: global ${atype}[N, K], C: global ${cdt}[M, N])
  dims M, N, K
  tune BM = [64, 128, 16, 32], BN = [64, 32, 128, 16, 8, 256], BK = [64, 32, 16], warps = [4, 8]
launch tile grid [cdiv(N, BN), cdiv(M, BM)] threads warps * 32 blocks [bx, by] {
  alloc As: shared ${atype}[BM, BK]
  alloc Bs: shared ${atype}[BN, BK]
  alloc acc: fragment f32[BM, BN]
  fill acc[0 : +BM, 0 : +BN] = 0.0
  for k in pipelined(0, cdiv(K, BK)) stages ${stages} {
    copy A[by * BM : +BM, k * BK : +BK] -> As[0 : +BM, 0 : +BK]
    copy B[bx * BN : +BN, k * BK : +BK] -> Bs[0 : +BN, 0 : +BK]
    gemm As[0 : +BM, 0 : +BK], Bs[0 : +BN, 0 : +BK] -> acc[0 : +BM, 0 : +BN] transB
  }
  copy acc[0 : +BM, 0 : +BN] -> C[by * BM : +BM, bx * BN : +BN]
}
`;
