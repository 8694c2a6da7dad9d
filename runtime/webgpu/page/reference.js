// Small float64 references for the kernels the page knows, recognised by their signature,
// and the comparison. A GEMM: A [M, K], B [N, K] (C = A B^T) or [K, N] (C = A B), C [M, N].
const EPS = { f32: 2 ** -24, bf16: 2 ** -8, f16: 2 ** -11 };

export function referenceFor(bundle) {
  const t = Object.fromEntries(bundle.tensors.map((x) => [x.name, x]));
  const names = (x) => x?.shape.map((e) => (e.k === "var" ? e.name : "?")).join(",");
  if (!t.A || !t.B || !t.C || !t.C.output || names(t.A) !== "M,K" || names(t.C) !== "M,N") return undefined;
  const transB = names(t.B) === "N,K";
  if (!transB && names(t.B) !== "K,N") return undefined;
  return {
    what: `C = A * B${transB ? "^T" : ""} (float64)`,
    run(inputs, dims) {
      const { M, N, K } = dims;
      const A = inputs.A, B = inputs.B, C = new Float64Array(M * N);
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += A[i * K + k] * (transB ? B[j * K + k] : B[k * N + j]);
          C[i * N + j] = s;
        }
      return { C };
    },
    /** f32 accumulation over K terms of magnitude <= 1, then one rounding to C's dtype. */
    tolerance(dims) {
      const e = EPS[t.C.dtype] ?? 2 ** -24;
      return { atol: dims.K * 4 * 2 ** -24 + e, rtol: 2 * e };
    },
  };
}

/** The first element outside tolerance, and how many are. */
export function compare(got, want, tol) {
  let bad = 0, first, maxErr = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol.atol + tol.rtol * Math.abs(want[i]))) { bad++; first ??= { index: i, got: got[i], want: want[i] }; }
    if (err > maxErr || Number.isNaN(err)) maxErr = err;
  }
  return { bad, first, maxErr, n: want.length };
}
