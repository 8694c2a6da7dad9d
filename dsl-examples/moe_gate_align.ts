// Gating and routing in one block, for decode sizes: the softmax top-k of moe_gate_softmax
// (moe_gate.ts) for all T tokens, then moe_align's routing (moe_align.ts) of the P = T * top_k
// pairs, in one launch of one block. At decode sizes each of those two kernels is one block
// doing little work, so each costs mostly its launch and ramp (docs/LAYER.md, gate_align).
//
// The bodies are theirs (helpers imported from those files), so the outputs are theirs bit for
// bit: weights / ids as moe_gate_softmax writes them, sorted / block_expert / counts / total as
// moe_align writes them for those ids. The gating runs BT tokens a round, BT x 32 threads: 32
// lanes a token row, as moe_gate_softmax's BT 4 rows on 128 threads have, so T.reduce sums
// every row in the same order (docs/PASSES.md, reduce) and the weights are the same floats.
// Each round's picks go straight into the routing's shared `chunk` (pair p = t * top_k + j at
// chunk[p]), so the ids are not read back from global memory.
//
// Serves P <= CH pairs (CH = 256: moe_align's chunk, one pair a slot): the layer uses it in the
// calls with T * top_k <= gateAlignPairs (64 by default, measured; src/moe/layer.ts). With more pairs the gating
// outputs are still right, but the routing cannot hold them: total is set to -1 (no routing
// block, so the grouped GEMMs read nothing) and the other routing outputs are meaningless.
import { T, type Tensor } from "tilemoe";
import { softmaxTopk } from "./moe_gate.ts";
import { alignChunk, clearCounts, countRows, directExpert } from "./moe_align.ts";

export const moe_gate_align_softmax = T.kernel(
  // BT: tokens a gating round (the block has BT x 32 threads); the layer takes 16 (at 32, 1024
  // threads, nvcc for sm_90a spills). EMAX: the gating tile's width and the routing's expert
  // slots (E <= EMAX).
  { tune: { BT: [8, 16, 32], EMAX: [128, 256], KMAX: [8], CH: [256] } },
  function moe_gate_align_softmax(logits: Tensor<"T, E", "f32">, renorm: T.i32, weights: Tensor<"T, K", "f32">, ids: Tensor<"T, K", "i32">,
                                  sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, counts: Tensor<"E", "i32">,
                                  total: Tensor<"1", "i32">, { BT, EMAX, KMAX, CH }: T.Config) {
    const [tokens, experts] = logits.shape;
    const [, k] = weights.shape;
    T.launch([1], { threads: BT * 32 }, () => {
      const tv = T.shared([BT, KMAX], "f32");
      const ti = T.shared([BT, KMAX], "i32");
      const rows = T.shared([countRows(CH), EMAX], "i32");
      const chunk = T.shared([CH], "i32");
      clearCounts(rows, chunk, EMAX, CH);
      for (const g of T.serial(T.cdiv(tokens, BT))) {
        softmaxTopk(logits, renorm, weights, ids, tv, ti, g * BT, BT, EMAX, KMAX);
        // The round's picks as the routing's pair experts (moe_align drops what directExpert drops).
        for (const [i, j] of T.parallel(BT, KMAX)) {
          const p = (g * BT + i) * k + j;
          if (g * BT + i < tokens && j < k && p < CH) {
            chunk[p] = directExpert(ti[i][j], counts, experts, experts, EMAX);
          }
        }
      }
      alignChunk(chunk, rows, sorted, block_expert, counts, total, tokens * k, EMAX, CH);
      // Too many pairs for one chunk: say so where the GEMMs look (no routing block).
      for (const i of T.parallel(1)) {
        if (tokens * k > CH) {
          total[i] = -1;
        }
      }
    });
  },
);

// ---------------------------------------------------------------- checks (the two kernels' references)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { gateRef } from "./moe_gate.ts";
import { alignRef } from "./moe_align.ts";
import { routingBlocks } from "tilemoe/moe";

const softmaxRef = gateRef("softmax");

// T * K <= 256 (one chunk); NB as moe_align's check (every pair plus a partial block per
// expert). Shapes: T = 1, ragged T (not a multiple of BT), E > P (empty experts), E = 1 (every
// pair on one expert), K = E, T * K = 256 (test/moe/gate-align.test.ts pins them).
export const moe_gate_align_softmax_check = defineCheck({
  kernel: "moe_gate_align_softmax",
  dims: { T: [1, 40], E: [1, 20], K: [1, 8], BS: { values: [1, 2, 4, 16] }, NB: [1, 300] },
  dimsWhere: ({ T: tokens, E, K, BS, NB }) => K! <= E! && tokens! * K! <= 256 && NB! >= routingBlocks(tokens! * K!, E!, BS!),
  inputs: { logits: { lo: -4, hi: 4 } },
  scalars: { renorm: { lo: 0, hi: 1 } },
  reference: (inputs: Record<string, TensorValue>, scalars: Record<string, number>, dims: Record<string, number>) => {
    const { T: tokens, E, K, NB, BS } = dims;
    const gate = softmaxRef(inputs, scalars, dims);
    return { ...gate, ...alignRef(tokens! * K!, E!, NB!, BS!, (p) => gate.ids[p]!) };
  },
  reduction: ({ E }) => E!,
});
