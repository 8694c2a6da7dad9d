// Float64 references, written as plainly as possible: they are what every kernel is
// checked against, so they must be obviously right rather than fast.
import { erf } from "../numeric/erf.ts";
import type { TensorValue } from "../numeric/tensor.ts";

function dims2(t: TensorValue, what: string): [number, number] {
  if (t.shape.length !== 2) throw new Error(`${what}: expected a 2-d tensor, got shape [${t.shape.join(", ")}]`);
  return [t.shape[0]!, t.shape[1]!];
}

/** C = op(A) * op(B) in float64; A is [M, K] ([K, M] if transA), B is [K, N] ([N, K] if transB). */
export function gemmRef(A: TensorValue, B: TensorValue, opts: { transA?: boolean; transB?: boolean } = {}): TensorValue {
  const [a0, a1] = dims2(A, "gemmRef A"), [b0, b1] = dims2(B, "gemmRef B");
  const [M, K] = opts.transA ? [a1, a0] : [a0, a1];
  const [K2, N] = opts.transB ? [b1, b0] : [b0, b1];
  if (K !== K2) throw new Error(`gemmRef: inner dims differ (${K} vs ${K2})`);
  const a = (m: number, k: number) => (opts.transA ? A.data[k * M + m]! : A.data[m * K + k]!);
  const b = (k: number, n: number) => (opts.transB ? B.data[n * K + k]! : B.data[k * N + n]!);
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a(m, k) * b(k, n);
      out[m * N + n] = s;
    }
  return { dtype: "f64", shape: [M, N], data: out };
}

export function mapRef(t: TensorValue, f: (x: number) => number): TensorValue {
  return { dtype: "f64", shape: [...t.shape], data: Float64Array.from(t.data, f) };
}

export const reluRef = (t: TensorValue) => mapRef(t, (x) => Math.max(x, 0));
export const siluRef = (t: TensorValue) => mapRef(t, (x) => x / (1 + Math.exp(-x)));
/** The exact (erf) form of GELU, not the tanh approximation. */
export const geluRef = (t: TensorValue) => mapRef(t, (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)));
export const geluTanhRef = (t: TensorValue) =>
  mapRef(t, (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))));
export const sigmoidRef = (t: TensorValue) => mapRef(t, (x) => 1 / (1 + Math.exp(-x)));

/** t[..., n] + bias[n] (bias broadcast along the last dim). */
export function biasAddRef(t: TensorValue, bias: TensorValue): TensorValue {
  const n = t.shape.at(-1)!;
  if (bias.data.length !== n) throw new Error(`biasAddRef: bias has ${bias.data.length} values, last dim is ${n}`);
  return { dtype: "f64", shape: [...t.shape], data: Float64Array.from(t.data, (x, i) => x + bias.data[i % n]!) };
}
