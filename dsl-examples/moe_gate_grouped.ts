// DeepSeek-V3 gating (grouped top-k): scores = sigmoid(logits); for choosing only, each
// score gets a correction bias; experts form G groups of S; a group is ranked by the sum of
// its two best biased scores and the topk_group best groups are kept (the rest are -inf,
// as vLLM masks them); the top-K experts among the kept groups are picked by biased score.
// Weights are the unbiased scores of the picks, renormalized (sum + 1e-20, as DeepSeek's
// reference), times routed_scaling_factor. Ties go to the lower group / expert index.
// logits and bias come as [T, G, S] / [G, S]: expert e = g * S + s.
import { T, type Tensor } from "tilemoe";

export const moe_gate_grouped = T.kernel(
  { tune: { BT: [4], GMAX: [8], SMAX: [32], KMAX: [8] } },
  function moe_gate_grouped(logits: Tensor<"T, G, S", "f32">, bias: Tensor<"G, S", "f32">, topk_group: T.i32, scale: T.f32,
                            weights: Tensor<"T, K", "f32">, ids: Tensor<"T, K", "i32">, { BT, GMAX, SMAX, KMAX }: T.Config) {
    const [tokens, G, S] = logits.shape;
    const [, k] = weights.shape;
    T.launch([T.cdiv(tokens, BT)], { threads: 128 }, (bx) => {
      const sc = T.shared([BT, GMAX * SMAX], "f32");    // unbiased scores, column g * SMAX + s
      const sel = T.shared([BT * GMAX, SMAX], "f32");   // biased scores, row i * GMAX + g
      const top2 = T.shared([BT * GMAX, 2], "f32");
      const top2i = T.shared([BT * GMAX, 2], "i32");
      const gs = T.shared([BT, GMAX], "f32");
      const gv = T.shared([BT, GMAX], "f32");
      const gi = T.shared([BT, GMAX], "i32");
      const masked = T.shared([BT, GMAX * SMAX], "f32");
      const tv = T.shared([BT, KMAX], "f32");
      const ti = T.shared([BT, KMAX], "i32");
      const wsum = T.shared([BT], "f32");
      for (const [r, c] of T.parallel(BT * GMAX, SMAX)) {
        const i = Math.floor(r / GMAX);
        const g = r % GMAX;
        const row = bx * BT + i;
        let x = 0.0;
        let b = -Infinity;
        if (row < tokens && g < G && c < S) {
          x = T.sigmoid(logits[row][g][c]);
          b = x + bias[g][c];
        }
        sc[i][g * SMAX + c] = x;
        sel[r][c] = b;
      }
      T.topk(sel.tile([0, 0], [BT * GMAX, T.min(S, SMAX)]), top2, top2i, 2);
      for (const [i, g] of T.parallel(BT, GMAX)) {
        let v = -Infinity;
        if (g < G) {
          v = top2[i * GMAX + g][0] + top2[i * GMAX + g][1];
        }
        gs[i][g] = v;
      }
      T.topk(gs.tile([0, 0], [BT, T.min(G, GMAX)]), gv, gi, T.max(T.min(topk_group, T.min(G, GMAX)), 0));
      for (const [i, col] of T.parallel(BT, GMAX * SMAX)) {
        const g = Math.floor(col / SMAX);
        let kept = false;
        for (const j of T.serial(T.max(T.min(topk_group, T.min(G, GMAX)), 0))) {
          if (gi[i][j] === g) {
            kept = true;
          }
        }
        let v = -Infinity;
        if (kept) {
          v = sel[i * GMAX + g][col % SMAX];
        }
        masked[i][col] = v;
      }
      T.topk(masked, tv, ti, T.min(k, KMAX));
      for (const [i, j] of T.parallel(BT, KMAX)) {
        let w = 0.0;
        if (j < k) {
          w = sc[i][ti[i][j]];
        }
        tv[i][j] = w;
      }
      T.reduce(tv, wsum, { op: "sum", axis: 1 });
      for (const [i, j] of T.parallel(BT, KMAX)) {
        const row = bx * BT + i;
        if (row < tokens && j < k) {
          const col = ti[i][j];
          weights[row][j] = tv[i][j] / (wsum[i] + 1e-20) * scale;
          ids[row][j] = Math.floor(col / SMAX) * S + col % SMAX;
        }
      }
    });
  },
);

// ---------------------------------------------------------------- check (float64 reference)
import { defineCheck, type TensorValue } from "tilemoe/check";

const order = (xs: number[]) => [...xs.keys()].sort((a, b) => xs[b]! - xs[a]! || a - b);

export function groupedRef(x: ArrayLike<number>, bias: ArrayLike<number>, G: number, S: number, K: number, topkGroup: number, scale: number) {
  const score = Array.from({ length: G * S }, (_, e) => 1 / (1 + Math.exp(-x[e]!)));
  const sel = score.map((v, e) => v + bias[e]!);
  const groupScore = Array.from({ length: G }, (_, g) => {
    const best = order(sel.slice(g * S, (g + 1) * S)).slice(0, 2);
    return best.reduce((a, s) => a + sel[g * S + s]!, 0);
  });
  const kept = new Set(order(groupScore).slice(0, Math.max(0, Math.min(topkGroup, G))));
  const masked = sel.map((v, e) => (kept.has(Math.floor(e / S)) ? v : -Infinity));
  const pick = order(masked).slice(0, K);
  const sum = pick.reduce((a, e) => a + score[e]!, 0);
  return { ids: pick, weights: pick.map((e) => (score[e]! / (sum + 1e-20)) * scale) };
}

// K <= S: the kept groups always hold K experts. G = 1 puts every token in one group.
export const moe_gate_grouped_check = defineCheck({
  kernel: "moe_gate_grouped",
  dims: { T: [1, 12], G: [1, 8], S: [2, 16], K: [1, 8] },
  dimsWhere: ({ S, K }) => K! <= S!,
  inputs: { logits: { lo: -4, hi: 4 }, bias: { lo: -0.5, hi: 0.5 } },
  scalars: { topk_group: { lo: 1, hi: 4 }, scale: { lo: 0.5, hi: 3 } },
  reference: ({ logits, bias }: Record<string, TensorValue>, { topk_group, scale }, { T: tokens, G, S, K }) => {
    const weights = new Float64Array(tokens! * K!), ids = new Float64Array(tokens! * K!);
    for (let t = 0; t < tokens!; t++) {
      const r = groupedRef(logits!.data.subarray(t * G! * S!, (t + 1) * G! * S!), bias!.data, G!, S!, K!, topk_group!, scale!);
      r.ids.forEach((e, j) => { ids[t * K! + j] = e; weights[t * K! + j] = r.weights[j]!; });
    }
    return { weights, ids };
  },
  reduction: ({ K }) => K!,
  magnitude: 3,
});
