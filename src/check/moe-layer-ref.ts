// The whole MoE layer in float64: router logits, softmax over the experts, top-k (larger
// first, ties to the lower expert, as T.topk), optional renormalization over the k picks,
// act(x W_gate[e]^T) * (x W_up[e]^T) per pick, W_down[e], weighted sum over the picks.
// Weights are given as plain float64 arrays (dequantize w4a16 weights first).
export interface MoeLayerRefArgs {
  T: number; H: number; N: number; E: number; topK: number;
  renormalize: boolean;
  activation: (g: number) => number;
  x: ArrayLike<number>;        // [T, H]
  wRouter: ArrayLike<number>;  // [E, H]
  w13: ArrayLike<number>;      // [E, 2N, H]: gate rows then up rows per expert
  w2: ArrayLike<number>;       // [E, H, N]
}

export interface MoeLayerRef { out: Float64Array; ids: number[][]; weights: number[][]; logits: Float64Array }

export const silu = (g: number) => g / (1 + Math.exp(-g));

export function moeLayerRef(a: MoeLayerRefArgs): MoeLayerRef {
  const { T, H, N, E, topK } = a;
  const out = new Float64Array(T * H), logits = new Float64Array(T * E);
  const ids: number[][] = [], weights: number[][] = [];
  const h = new Float64Array(N);
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let k = 0; k < H; k++) s += a.x[t * H + k]! * a.wRouter[e * H + k]!;
      logits[t * E + e] = s;
    }
    const row = logits.subarray(t * E, (t + 1) * E);
    const m = Math.max(...row);
    const p = Array.from(row, (v) => Math.exp(v - m));
    const sum = p.reduce((x, y) => x + y, 0);
    const pick = [...p.keys()].sort((i, j) => row[j]! - row[i]! || i - j).slice(0, topK);
    const ksum = pick.reduce((x, e) => x + p[e]!, 0);
    const w = pick.map((e) => p[e]! / (a.renormalize ? ksum : sum));
    ids.push(pick);
    weights.push(w);
    pick.forEach((e, j) => {
      for (let n = 0; n < N; n++) {
        let g = 0, u = 0;
        const wg = (e * 2 * N + n) * H, wu = (e * 2 * N + N + n) * H;
        for (let k = 0; k < H; k++) { g += a.x[t * H + k]! * a.w13[wg + k]!; u += a.x[t * H + k]! * a.w13[wu + k]!; }
        h[n] = a.activation(g) * u;
      }
      for (let o = 0; o < H; o++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += h[n]! * a.w2[(e * H + o) * N + n]!;
        out[t * H + o] += w[j]! * s;
      }
    });
  }
  return { out, ids, weights, logits };
}
