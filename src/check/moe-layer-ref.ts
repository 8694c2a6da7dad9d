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

/** One token's routing: softmax over the router logits, top-k (larger first, ties to the
 *  lower expert), weights renormalized over the picks or not. */
export function routeToken(logits: ArrayLike<number>, topK: number, renormalize: boolean): { ids: number[]; weights: number[] } {
  const row = Array.from(logits);
  const m = Math.max(...row);
  const p = row.map((v) => Math.exp(v - m));
  const sum = p.reduce((x, y) => x + y, 0);
  const ids = [...p.keys()].sort((i, j) => row[j]! - row[i]! || i - j).slice(0, topK);
  const ksum = ids.reduce((x, e) => x + p[e]!, 0);
  return { ids, weights: ids.map((e) => p[e]! / (renormalize ? ksum : sum)) };
}

/** weight * W2e (act(x W_gate^T) * (x W_up^T)) added into out[0, H): w13e [2N, H] (gate rows
 *  then up rows) and w2e [H, N] are one expert's, at the given offsets of their arrays. */
export function addExpertOutput(out: Float64Array, outAt: number, x: ArrayLike<number>, xAt: number, weight: number,
  w13: ArrayLike<number>, w13At: number, w2: ArrayLike<number>, w2At: number, H: number, N: number, activation: (g: number) => number): void {
  const h = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let g = 0, u = 0;
    const wg = w13At + n * H, wu = w13At + (N + n) * H;
    for (let k = 0; k < H; k++) { g += x[xAt + k]! * w13[wg + k]!; u += x[xAt + k]! * w13[wu + k]!; }
    h[n] = activation(g) * u;
  }
  for (let o = 0; o < H; o++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += h[n]! * w2[w2At + o * N + n]!;
    out[outAt + o] += weight * s;
  }
}

export function moeLayerRef(a: MoeLayerRefArgs): MoeLayerRef {
  const { T, H, N, E, topK } = a;
  const out = new Float64Array(T * H), logits = new Float64Array(T * E);
  const ids: number[][] = [], weights: number[][] = [];
  for (let t = 0; t < T; t++) {
    for (let e = 0; e < E; e++) {
      let s = 0;
      for (let k = 0; k < H; k++) s += a.x[t * H + k]! * a.wRouter[e * H + k]!;
      logits[t * E + e] = s;
    }
    const r = routeToken(logits.subarray(t * E, (t + 1) * E), topK, a.renormalize);
    ids.push(r.ids);
    weights.push(r.weights);
    r.ids.forEach((e, j) => addExpertOutput(out, t * H, a.x, t * H, r.weights[j]!, a.w13, e * 2 * N * H, a.w2, e * H * N, H, N, a.activation));
  }
  return { out, ids, weights, logits };
}
