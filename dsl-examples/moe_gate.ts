// MoE gating from router logits: scores per expert (softmax or sigmoid), the top-k experts
// of each token and their weights, optionally renormalized over the k picks.
// A block takes BT tokens; their logits sit in a shared [BT, EMAX] tile (columns past E hold
// -Infinity, so they never win and add nothing), and T.reduce / T.topk work on it.
// Selection is on the logits themselves (both scorings are monotonic), so the picks match a
// float64 reference exactly; ties go to the lower expert index (T.topk's rule).
import { T, type Buf, type Tensor } from "tilemoe";

/** Softmax top-k gating of the BT tokens from row t0 (rows past the tensor are -Infinity and
 *  not written); the picks' logits and experts stay in the caller's tv / ti [BT, KMAX].
 *  moe_gate_softmax runs it once a block; moe_gate_align.ts once a token group in one block,
 *  so both compute the same sums in the same order (given the same lanes a row: BT x 32
 *  threads, docs/PASSES.md reduce). */
export function softmaxTopk(logits: Tensor<"T, E", "f32">, renorm: number, weights: Tensor<"T, K", "f32">, ids: Tensor<"T, K", "i32">,
                            tv: Buf<"f32", readonly [number, number]>, ti: Buf<"i32", readonly [number, number]>,
                            t0: number, BT: number, EMAX: number, KMAX: number) {
  const [tokens, experts] = logits.shape;
  const [, k] = weights.shape;
  const s = T.shared([BT, EMAX], "f32");
  const mx = T.shared([BT], "f32");
  const sum = T.shared([BT], "f32");
  const ksum = T.shared([BT], "f32");
  for (const [i, j] of T.parallel(BT, EMAX)) {
    const row = t0 + i;
    let x = -Infinity;
    if (row < tokens && j < experts) {
      x = logits[row][j];
    }
    s[i][j] = x;
  }
  T.reduce(s, mx, { op: "max", axis: 1 });
  T.topk(s.tile([0, 0], [BT, T.min(experts, EMAX)]), tv, ti, T.min(k, KMAX));
  for (const [i, j] of T.parallel(BT, EMAX)) {
    s[i][j] = Math.exp(s[i][j] - mx[i]);
  }
  T.reduce(s, sum, { op: "sum", axis: 1 });
  for (const [i, j] of T.parallel(BT, KMAX)) {
    let p = 0.0;
    if (j < k) {
      p = Math.exp(tv[i][j] - mx[i]);
    }
    tv[i][j] = p;
  }
  T.reduce(tv, ksum, { op: "sum", axis: 1 });
  for (const [i, j] of T.parallel(BT, KMAX)) {
    const row = t0 + i;
    if (row < tokens && j < k) {
      weights[row][j] = tv[i][j] / (renorm !== 0 ? ksum[i] : sum[i]);
      ids[row][j] = ti[i][j];
    }
  }
}

export const moe_gate_softmax = T.kernel(
  { tune: { BT: [4, 16], EMAX: [128, 256], KMAX: [8] } },
  function moe_gate_softmax(logits: Tensor<"T, E", "f32">, renorm: T.i32,
                            weights: Tensor<"T, K", "f32">, ids: Tensor<"T, K", "i32">, { BT, EMAX, KMAX }: T.Config) {
    const [tokens] = logits.shape;
    T.launch([T.cdiv(tokens, BT)], { threads: 128 }, (bx) => {
      const tv = T.shared([BT, KMAX], "f32");
      const ti = T.shared([BT, KMAX], "i32");
      softmaxTopk(logits, renorm, weights, ids, tv, ti, bx * BT, BT, EMAX, KMAX);
    });
  },
);

export const moe_gate_sigmoid = T.kernel(
  { tune: { BT: [4, 16], EMAX: [128, 256], KMAX: [8] } },
  function moe_gate_sigmoid(logits: Tensor<"T, E", "f32">, renorm: T.i32,
                            weights: Tensor<"T, K", "f32">, ids: Tensor<"T, K", "i32">, { BT, EMAX, KMAX }: T.Config) {
    const [tokens, experts] = logits.shape;
    const [, k] = weights.shape;
    T.launch([T.cdiv(tokens, BT)], { threads: 128 }, (bx) => {
      const s = T.shared([BT, EMAX], "f32");
      const ksum = T.shared([BT], "f32");
      const tv = T.shared([BT, KMAX], "f32");
      const ti = T.shared([BT, KMAX], "i32");
      for (const [i, j] of T.parallel(BT, EMAX)) {
        const row = bx * BT + i;
        let x = -Infinity;
        if (row < tokens && j < experts) {
          x = logits[row][j];
        }
        s[i][j] = x;
      }
      T.topk(s.tile([0, 0], [BT, T.min(experts, EMAX)]), tv, ti, T.min(k, KMAX));
      for (const [i, j] of T.parallel(BT, KMAX)) {
        let p = 0.0;
        if (j < k) {
          p = T.sigmoid(tv[i][j]);
        }
        tv[i][j] = p;
      }
      T.reduce(tv, ksum, { op: "sum", axis: 1 });
      for (const [i, j] of T.parallel(BT, KMAX)) {
        const row = bx * BT + i;
        if (row < tokens && j < k) {
          weights[row][j] = renorm !== 0 ? tv[i][j] / ksum[i] : tv[i][j];
          ids[row][j] = ti[i][j];
        }
      }
    });
  },
);

// ---------------------------------------------------------------- checks (float64 references)
import { defineCheck, type TensorValue } from "tilemoe/check";

/** Top-k of one row: larger first, ties to the lower index. */
export function topkRow(row: ArrayLike<number>, k: number): number[] {
  return [...Array(row.length).keys()].sort((a, b) => row[b]! - row[a]! || a - b).slice(0, k);
}

export function gateRef(scoring: "softmax" | "sigmoid") {
  return ({ logits }: Record<string, TensorValue>, { renorm }: Record<string, number>, { T: tokens, E, K }: Record<string, number>) => {
    const weights = new Float64Array(tokens! * K!), ids = new Float64Array(tokens! * K!);
    for (let t = 0; t < tokens!; t++) {
      const x = logits!.data.subarray(t * E!, (t + 1) * E!);
      const m = Math.max(...x);
      const total = x.reduce((a, v) => a + Math.exp(v - m), 0);
      const score = (v: number) => (scoring === "softmax" ? Math.exp(v - m) / total : 1 / (1 + Math.exp(-v)));
      const pick = topkRow(x, K!);
      const ksum = pick.reduce((a, e) => a + score(x[e]!), 0);
      pick.forEach((e, j) => {
        ids[t * K! + j] = e;
        weights[t * K! + j] = renorm ? score(x[e]!) / ksum : score(x[e]!);
      });
    }
    return { weights, ids };
  };
}

// Shapes: one token, E = 1 (all tokens on one expert), K = E (every expert picked).
const gateCheck = (kernel: string, scoring: "softmax" | "sigmoid") => defineCheck({
  kernel,
  dims: { T: [1, 40], E: [1, 20], K: [1, 8] },
  dimsWhere: ({ E, K }) => K! <= E!,
  inputs: { logits: { lo: -4, hi: 4 } },
  scalars: { renorm: { lo: 0, hi: 1 } },
  reference: gateRef(scoring),
  reduction: ({ E }) => E!,
});
export const moe_gate_softmax_check = gateCheck("moe_gate_softmax", "softmax");
export const moe_gate_sigmoid_check = gateCheck("moe_gate_sigmoid", "sigmoid");
