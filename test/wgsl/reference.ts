// Float64 references for the WGSL tests (independent of every compiler stage).
import type { TensorValue } from "../../src/numeric/tensor.ts";

/** C[M, N] = A[M, K] * op(B), op(B) = B ([K, N]) or B^T (B is [N, K]). */
export function matmulRef(A: TensorValue, B: TensorValue, transB: boolean): Float64Array {
  const [M, K] = A.shape as [number, number];
  const N = transB ? B.shape[0]! : B.shape[1]!;
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A.data[i * K + k]! * B.data[transB ? j * K + k : k * N + j]!;
      out[i * N + j] = s;
    }
  return out;
}
