// The tile-level kernel of the fused dequant-gemm tests (test/passes/fuse-dequant-gemm.test.ts,
// and, lowered, test/cuda/kernels/dequant_gemm.ir) and of the register-A dequant wgmma tests
// (test/wgmma/dequant-src.ts): T.dequant as the front end expands it, then its gemm.

/** Tile shape, block size, pipeline depth and kernel name of the generated kernel. */
export interface DequantGemmShape { BM: number; BN: number; BK: number; threads: number; stages: number; name: string }

/** One warp, a 16x8 accumulator, k-steps of 16, 2 stages (the mma.sync fusion's smallest case). */
const FUSED: DequantGemmShape = { BM: 16, BN: 8, BK: 16, threads: 32, stages: 2, name: "dqg" };

/** The smallest tile of the mma order (4-bit, whole 32-value blocks: BK 32, two k-steps). */
export const FUSED_MMA: DequantGemmShape = { BM: 16, BN: 8, BK: 32, threads: 32, stages: 2, name: "dqgm" };

/** `extra` goes into the main loop after the gemm. W is [N, KW = cdiv(K, per)] packed words,
 *  S [N, G = cdiv(K, 16)] scales (dims, so that tests can size them). With `mma` (4-bit):
 *  words in the mma order (src/quant/format.ts), W [N, KW = 4 cdiv(K, 32)], S [N, G = cdiv(K, 32)]:
 *  the stores and the K mask at the order's column, as the front end writes them. */
export const dequantGemmSrc = (fmt: string, per: number, extra = "", shape: DequantGemmShape = FUSED, mma = false): string => {
  const { BM, BN, BK, threads, stages, name } = shape;
  const group = mma ? 32 : 16;
  const col = mma ? "(w >> 2) * 32 + (w & 3) * 2 + ((j & 1) + (j >> 1) * 8)" : `w * ${per} + j`;
  const kOf = mma ? `k * ${BK} + (${col})` : "kq + j";
  return `kernel ${name}(A: global bf16[M, K], W: global u32[N, KW], S: global bf16[N, G], C: global f32[M, N] out)
  dims M, K, N, KW, G
launch tile grid [cdiv(N, ${BN}), cdiv(M, ${BM})] threads ${threads} blocks [bx, by] {
  alloc As: shared bf16[${BM}, ${BK}]
  alloc Ws: shared u32[${BN}, ${BK / per}]
  alloc Bs: shared bf16[${BN}, ${BK}]
  alloc acc: fragment f32[${BM}, ${BN}]
  fill acc[0 : +${BM}, 0 : +${BN}] = 0.0
  for k in pipelined(0, cdiv(K, ${BK})) stages ${stages} {
    copy A[by * ${BM} : +${BM}, k * ${BK} : +${BK}] -> As[0 : +${BM}, 0 : +${BK}]
    copy W[bx * ${BN} : +${BN}, k * ${BK / per} : +${BK / per}] -> Ws[0 : +${BN}, 0 : +${BK / per}]
    for r, w in parallel(0, ${BN}; 0, ${BK / per}) {
      alloc q: local bf16[${per}]
      let n: i32 = bx * ${BN} + r
      let kq: i32 = k * ${BK} + w * ${per}
      var s: f32 = 0.0
      if (n < N && kq / ${group} < G) {
        s = cast<f32>(S[n, kq / ${group}])
      }
      dequant.${fmt}.interleaved q[0] <- Ws[r, w] scale s zero 3.0
      for j in serial(0, ${per}) {
        store Bs[r, ${col}] = select(${kOf} < K, q[j], 0.0_bf16)
      }
    }
    gemm As[0 : +${BM}, 0 : +${BK}], Bs[0 : +${BN}, 0 : +${BK}] -> acc[0 : +${BM}, 0 : +${BN}] transB${extra}
  }
  copy acc[0 : +${BM}, 0 : +${BN}] -> C[by * ${BM} : +${BM}, bx * ${BN} : +${BN}]
}
`;
};

/** Options of the partial-sum kernel (dequantPartialSrc). */
export interface PartialOpts { fmt?: string; zero?: string; mma?: boolean; shape?: DequantGemmShape }

/**
 * The group scale on f32 partial sums, as the front end writes it (dsl-examples/gemm_w4a16.ts
 * gemm_w4a16_gs): T.dequant without scales (scale 1.0: the tile holds q - zero exactly), `part`
 * cleared per K tile, the gemm into it, then acc += part * S[n][k tile] over the fragment. One
 * group per K tile (group = BK): S is [N, G = cdiv(K, BK)].
 * `zero`: the dequant's zero expression (a literal, or e.g. "z" for a read the body makes).
 */
export const dequantPartialSrc = (o: PartialOpts = {}): string => {
  const { fmt = "u4", zero = "8.0", mma = false } = o;
  const { BM, BN, BK, threads, stages } = o.shape ?? (mma ? FUSED_MMA : FUSED);
  const per = 8;
  const col = mma ? "(w >> 2) * 32 + (w & 3) * 2 + ((j & 1) + (j >> 1) * 8)" : `w * ${per} + j`;
  const kOf = mma ? `k * ${BK} + (${col})` : "kq + j";
  const zeroRead = zero === "z" ? `
      var z: f32 = 0.0
      if (n < N && kq / ${BK} < G) {
        z = cast<f32>(S[n, kq / ${BK}])
      }` : "";
  return `kernel dqgp(A: global bf16[M, K], W: global u32[N, KW], S: global bf16[N, G], C: global f32[M, N] out)
  dims M, K, N, KW, G
launch tile grid [cdiv(N, ${BN}), cdiv(M, ${BM})] threads ${threads} blocks [bx, by] {
  alloc As: shared bf16[${BM}, ${BK}]
  alloc Ws: shared u32[${BN}, ${BK / per}]
  alloc Bs: shared bf16[${BN}, ${BK}]
  alloc acc: fragment f32[${BM}, ${BN}]
  alloc part: fragment f32[${BM}, ${BN}]
  fill acc[0 : +${BM}, 0 : +${BN}] = 0.0
  for k in pipelined(0, cdiv(K, ${BK})) stages ${stages} {
    copy A[by * ${BM} : +${BM}, k * ${BK} : +${BK}] -> As[0 : +${BM}, 0 : +${BK}]
    copy W[bx * ${BN} : +${BN}, k * ${BK / per} : +${BK / per}] -> Ws[0 : +${BN}, 0 : +${BK / per}]
    for r, w in parallel(0, ${BN}; 0, ${BK / per}) {
      alloc q: local bf16[${per}]
      let n: i32 = bx * ${BN} + r
      let kq: i32 = k * ${BK} + w * ${per}${zeroRead}
      dequant.${fmt}.interleaved q[0] <- Ws[r, w] scale 1.0 zero ${zero}
      for j in serial(0, ${per}) {
        store Bs[r, ${col}] = select(${kOf} < K, q[j], 0.0_bf16)
      }
    }
    fill part[0 : +${BM}, 0 : +${BN}] = 0.0
    gemm As[0 : +${BM}, 0 : +${BK}], Bs[0 : +${BN}, 0 : +${BK}] -> part[0 : +${BM}, 0 : +${BN}] transB
    for i, j in parallel(0, ${BM}; 0, ${BN}) {
      if (bx * ${BN} + j < N && k * ${BK} < K) {
        store acc[i, j] = acc[i, j] + part[i, j] * cast<f32>(S[bx * ${BN} + j, k])
      }
    }
  }
  copy acc[0 : +${BM}, 0 : +${BN}] -> C[by * ${BM} : +${BM}, bx * ${BN} : +${BN}]
}
`;
};
