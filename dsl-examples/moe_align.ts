// MoE routing (vLLM's moe_align_block_size): the P = T * top_k (token, slot) pairs, given
// as the flat expert id of each pair, are grouped by expert and padded per expert to the
// GEMM's row block BS. Outputs:
//   sorted[b][r]  pair id at position b * BS + r of the grouped list; pads hold P
//   block_expert[b]  the expert of block b; -1 past the last used block
//   counts[e]     pairs routed to expert e (unpadded); total[0] the padded length
// Experts with no pairs get no block (they cost the GEMM nothing). Within an expert, pairs
// keep increasing pair order, so the result is deterministic. Ids outside [0, E) are
// dropped. moe_align_ep takes an expert map (global id -> local id, or -1 for experts on
// other ranks) and groups by local id; pairs of non-local experts are dropped.
// One block; the expert-side loops are one thread per expert (E <= EMAX).
import { T, type Buf, type Tensor } from "tilemoe";

/** A 1-d shared buffer of i32, as the helpers below take them. */
type Shared1d = Buf<"i32", readonly [number]>;

// The two kernels differ only in how a pair's (local) expert is found: the helpers below are
// the parts they share, E the number of (local) experts.

/** Padded sizes and offsets of each expert's group; counts, the total and the block experts;
 *  pad slots of `sorted` (the slots no pair will take) hold P. */
function layoutGroups(cnt: Shared1d, pad: Shared1d, off: Shared1d,
                      counts: Tensor<"E", "i32">, total: Tensor<"1", "i32">, block_expert: Tensor<"NB", "i32">,
                      sorted: Tensor<"NB, BS", "i32">, E: number, EMAX: number, P: number) {
  const [NB, BS] = sorted.shape;
  for (const q of T.parallel(EMAX)) {
    pad[q] = T.cdiv(cnt[q], BS) * BS;
  }
  T.cumsum(pad, off, { exclusive: true });
  for (const u of T.parallel(E)) {
    if (u < EMAX) {
      counts[u] = cnt[u];
    }
  }
  for (const i of T.parallel(1)) {
    total[i] = off[EMAX - 1] + pad[EMAX - 1];
  }
  // Expert of each block, and the pad slots of each block (disjoint from the pairs' slots).
  for (const b of T.parallel(NB)) {
    let be = -1;
    for (const e of T.serial(T.min(E, EMAX))) {
      if (off[e] <= b * BS && b * BS < off[e] + pad[e]) {
        be = e;
      }
    }
    block_expert[b] = be;
  }
  for (const [b, r] of T.parallel(NB, BS)) {
    const pos = b * BS + r;
    let used = false;
    for (const e of T.serial(T.min(E, EMAX))) {
      if (off[e] <= pos && pos < off[e] + cnt[e]) {
        used = true;
      }
    }
    if (!used) {
      sorted[b][r] = P;
    }
  }
}

/** Each expert's thread takes its pairs of the staged chunk c (their experts in `chunk`), in order. */
function placeChunk(chunk: Shared1d, cur: Shared1d, off: Shared1d,
                    sorted: Tensor<"NB, BS", "i32">, c: number, CH: number, E: number, EMAX: number) {
  const [NB, BS] = sorted.shape;
  for (const x of T.parallel(EMAX)) {
    let n = cur[x];
    for (const i of T.serial(CH)) {
      if (chunk[i] === x && x < E) {
        const at = off[x] + n;
        if (at < NB * BS) {
          sorted[Math.floor(at / BS)][at % BS] = c * CH + i;
        }
        n += 1;
      }
    }
    cur[x] = n;
  }
}

export const moe_align = T.kernel(
  { tune: { EMAX: [256], CH: [256] } },
  function moe_align(ids: Tensor<"P", "i32">, sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">,
                     counts: Tensor<"E", "i32">, total: Tensor<"1", "i32">, { EMAX, CH }: T.Config) {
    const [P] = ids.shape;
    const [E] = counts.shape;
    T.launch([1], { threads: 256 }, (bx) => {
      const cnt = T.shared([EMAX], "i32");
      const pad = T.shared([EMAX], "i32");
      const off = T.shared([EMAX], "i32");
      const cur = T.shared([EMAX], "i32");
      const chunk = T.shared([CH], "i32");
      for (const z of T.parallel(EMAX)) {
        cnt[z] = 0;
        cur[z] = 0;
      }
      for (const p of T.parallel(P)) {
        const e = ids[p];
        if (e >= 0 && e < T.min(E, EMAX)) {
          T.atomicAdd(cnt[e], 1);
        }
      }
      layoutGroups(cnt, pad, off, counts, total, block_expert, sorted, E, EMAX, P);
      // Pairs in order: stage a chunk of ids, then each expert's thread takes its pairs.
      for (const c of T.serial(T.cdiv(P, CH))) {
        for (const i of T.parallel(CH)) {
          let e = -1;
          if (c * CH + i < P) {
            e = ids[c * CH + i];
          }
          chunk[i] = e;
        }
        placeChunk(chunk, cur, off, sorted, c, CH, E, EMAX);
      }
    });
  },
);

export const moe_align_ep = T.kernel(
  { tune: { EMAX: [256], CH: [256] } },
  function moe_align_ep(ids: Tensor<"P", "i32">, expert_map: Tensor<"E", "i32">, sorted: Tensor<"NB, BS", "i32">,
                        block_expert: Tensor<"NB", "i32">, counts: Tensor<"L", "i32">, total: Tensor<"1", "i32">,
                        { EMAX, CH }: T.Config) {
    const [P] = ids.shape;
    const [E] = expert_map.shape;
    const [L] = counts.shape;
    T.launch([1], { threads: 256 }, (bx) => {
      const cnt = T.shared([EMAX], "i32");
      const pad = T.shared([EMAX], "i32");
      const off = T.shared([EMAX], "i32");
      const cur = T.shared([EMAX], "i32");
      const chunk = T.shared([CH], "i32");
      for (const z of T.parallel(EMAX)) {
        cnt[z] = 0;
        cur[z] = 0;
      }
      for (const p of T.parallel(P)) {
        const g = ids[p];
        if (g >= 0 && g < E) {
          const e = expert_map[g];
          if (e >= 0 && e < T.min(L, EMAX)) {
            T.atomicAdd(cnt[e], 1);
          }
        }
      }
      layoutGroups(cnt, pad, off, counts, total, block_expert, sorted, L, EMAX, P);
      for (const c of T.serial(T.cdiv(P, CH))) {
        for (const i of T.parallel(CH)) {
          let id = -1;
          if (c * CH + i < P) {
            const gid = ids[c * CH + i];
            if (gid >= 0 && gid < E) {
              id = expert_map[gid];
            }
          }
          chunk[i] = id;
        }
        placeChunk(chunk, cur, off, sorted, c, CH, L, EMAX);
      }
    });
  },
);

// ---------------------------------------------------------------- checks (plain references)
import { defineCheck, type TensorValue } from "tilemoe/check";

/** The routing of pairs whose (local) expert is local(p), or -1 when dropped. */
export function alignRef(P: number, L: number, NB: number, BS: number, local: (p: number) => number) {
  const counts = new Float64Array(L);
  for (let p = 0; p < P; p++) { const e = local(p); if (e >= 0 && e < L) counts[e]!++; }
  const off: number[] = [];
  let acc = 0;
  for (let e = 0; e < L; e++) { off.push(acc); acc += Math.ceil(counts[e]! / BS) * BS; }
  const sorted = new Float64Array(NB * BS).fill(P), blockExpert = new Float64Array(NB).fill(-1);
  const next = [...off];
  for (let p = 0; p < P; p++) { const e = local(p); if (e >= 0 && e < L && next[e]! < NB * BS) sorted[next[e]!++] = p; else if (e >= 0 && e < L) next[e]!++; }
  for (let e = 0; e < L; e++)
    for (let b = off[e]! / BS; b < (off[e]! + Math.ceil(counts[e]! / BS) * BS) / BS && b < NB; b++) blockExpert[b] = e;
  return { sorted, block_expert: blockExpert, counts, total: Float64Array.of(acc) };
}

// NB is the capacity in blocks: enough for every pair plus one partial block per expert.
// E = 1 puts every pair on one expert; E > P leaves experts empty; P = 1 is a single pair.
export const moe_align_check = defineCheck({
  kernel: "moe_align",
  dims: { P: [1, 48], E: [1, 24], BS: { values: [1, 2, 4, 16] }, NB: [1, 80] },
  dimsWhere: ({ P, E, BS, NB }) => NB! >= Math.ceil(P! / BS!) + Math.min(E!, P!),
  inputs: { ids: { lo: 0, hi: 23 } },
  reference: ({ ids }: Record<string, TensorValue>, _s, { P, E, NB, BS }) => alignRef(P!, E!, NB!, BS!, (p) => ids!.data[p]!),
});

export const moe_align_ep_check = defineCheck({
  kernel: "moe_align_ep",
  dims: { P: [1, 48], E: [1, 24], L: [1, 12], BS: { values: [1, 2, 4, 16] }, NB: [1, 80] },
  dimsWhere: ({ P, L, BS, NB }) => NB! >= Math.ceil(P! / BS!) + Math.min(L!, P!),
  inputs: { ids: { lo: 0, hi: 23 }, expert_map: { lo: -1, hi: 11 } },
  reference: ({ ids, expert_map }: Record<string, TensorValue>, _s, { P, E, L, NB, BS }) =>
    alignRef(P!, L!, NB!, BS!, (p) => { const g = ids!.data[p]!; return g >= 0 && g < E! ? expert_map!.data[g]! : -1; }),
});
