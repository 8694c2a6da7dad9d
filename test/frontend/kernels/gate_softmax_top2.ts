// MoE gating: softmax over the experts of each token, then its two best experts and their
// probabilities. One thread per token; the per-token work is plain scalar code.
import { T, type Tensor } from "tilemoe";

export const gate_softmax_top2 = T.kernel(
  { tune: { BT: [64, 128, 32] } },
  function gate_softmax_top2(logits: Tensor<"T, E", "f32">, weights: Tensor<"T, 2", "f32">, ids: Tensor<"T, 2", "i32">,
                             { BT }: T.Config) {
    const [tokens, experts] = logits.shape;
    T.launch([T.cdiv(tokens, BT)], { threads: BT }, (bx) => {
      for (const t of T.parallel(BT)) {
        const row = bx * BT + t;
        if (row < tokens) {
          let m = -Infinity;
          for (const e of T.serial(experts)) {
            m = Math.max(m, logits[row][e]);
          }
          let sum = 0.0;
          let best0 = -1.0;
          let best1 = -1.0;
          let id0 = 0;
          let id1 = 0;
          for (const e of T.serial(experts)) {
            const p = Math.exp(logits[row][e] - m);
            sum += p;
            if (p > best0) {
              best1 = best0;
              id1 = id0;
              best0 = p;
              id0 = e;
            } else if (p > best1) {
              best1 = p;
              id1 = e;
            }
          }
          weights[row][0] = best0 / sum;
          weights[row][1] = best1 / sum;
          ids[row][0] = id0;
          ids[row][1] = id1;
        }
      }
    });
  },
);
