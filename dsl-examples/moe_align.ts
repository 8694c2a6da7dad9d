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
//
// One launch of G = cdiv(P, CH) blocks of 256 threads; block g places the pairs of its chunk
// [g * CH, (g + 1) * CH). There is no grid-wide sync, so every block counts all P pairs
// itself (ids staged through shared memory STAGE at a time, double-buffered, then shared
// atomics), into per-expert counts of: the pairs before its chunk, each 32-pair slice of its
// chunk, and the pairs after it. From those it knows every expert's padded offset (a
// parallel scan) and where each slice's pairs of an expert start. Then, in parallel:
//   - a pair's place: that start + its rank among the earlier pairs of its slice with the
//     same expert (up to 31 compares over shared memory; stable, so pairs keep their order);
//   - block_expert and the pad slots: each expert's thread writes its routing blocks b with
//     b % G == g (the blocks share them out) and, in the block owning its last routing block,
//     its < BS pad slots;
//   - blocks and slots past the total: a grid-stride loop over every block's threads.
// No loop over experts inside a loop over slots, no loop over P in one thread: a block's
// longest loops are P / 256 ids a thread (counting) and BS - 1 pad slots (one thread an
// expert). Experts at or above EMAX are dropped (the layer takes E <= 256).
import { T, type Buf, type Tensor } from "tilemoe";

/** Threads a block: one per expert (EMAX <= THREADS) and per pair of a chunk (CH <= THREADS). */
const THREADS = 256;
/** Pairs of a slice: a pair's rank within its slice is counted by compares, across slices from counts. */
const SLICE = 32;
/** Ids a counting round stages in shared memory: 16 a thread (four 16-byte copies), two rounds in flight. */
const STAGE = 4096;

/** A 1-d shared buffer of i32, as the helpers below take them. */
type Shared1d = Buf<"i32", readonly [number]>;
/** Per-expert counts (columns) of the pairs before the block's chunk (row 0), of each slice of the
 *  chunk (rows 1 .. CH / SLICE) and after it (the last row); exclusive prefix sums down the rows after layoutGroups. */
type Counts2d = Buf<"i32", readonly [number, number]>;

// The two kernels differ only in how a pair's (local) expert is found: `localOf` below, passed
// to the shared body as a helper; E the number of experts ids name, L the local ones.

/** The expert of id `raw`, or -1 for an id outside [0, min(E, EMAX)). (No expert map: `map` is unused.) */
export function directExpert(raw: number, map: Tensor<"E", "i32">, E: number, L: number, EMAX: number) {
  return raw >= 0 && raw < T.min(E, EMAX) ? raw : -1;
}

/** The local expert of global id `raw` through the expert map, or -1 (an id outside [0, E), a
 *  non-local expert, a local id outside [0, min(L, EMAX))). The map index is clamped so that the
 *  read stays in bounds where a backend evaluates both arms of a select (WGSL's select); an
 *  empty map is not read. */
function mappedExpert(raw: number, map: Tensor<"E", "i32">, E: number, L: number, EMAX: number) {
  const l = E > 0 ? map[T.min(T.max(raw, 0), E - 1)] : -1;
  return raw >= 0 && raw < E && l >= 0 && l < T.min(L, EMAX) ? l : -1;
}

/** Rows of the per-expert counts (Counts2d) for a chunk of CH pairs. */
export function countRows(CH: number) {
  return Math.floor(CH / SLICE) + 2;
}

/** Zero counts; no pair in the chunk yet (-1). */
export function clearCounts(rows: Counts2d, chunk: Shared1d, EMAX: number, CH: number) {
  for (const [r, z] of T.parallel(countRows(CH), EMAX)) {
    rows[r][z] = 0;
  }
  for (const i of T.parallel(CH)) {
    chunk[i] = -1;
  }
}

/** Every pair's expert counted into `rows` (by where the pair lies against the block's chunk,
 *  see Counts2d); the chunk's own experts into `chunk` (-1: dropped or past P). */
function countPairs(ids: Tensor<"P", "i32">, map: Tensor<"E", "i32">, localOf: typeof directExpert, rows: Counts2d, chunk: Shared1d,
                    stage: Shared1d, E: number, L: number, EMAX: number, CH: number, bx: number) {
  const [P] = ids.shape;
  clearCounts(rows, chunk, EMAX, CH);
  for (const k of T.pipelined(T.cdiv(P, STAGE), 2)) {
    T.copy(ids.tile([k * STAGE], [STAGE]), stage);
    for (const i of T.parallel(STAGE)) {
      const p = k * STAGE + i;
      const e = localOf(stage[i], map, E, L, EMAX);
      if (p < P && e >= 0) {
        const at = p - bx * CH;
        T.atomicAdd(rows[at < 0 ? 0 : at >= CH ? Math.floor(CH / SLICE) + 1 : 1 + Math.floor(at / SLICE)][e], 1);
      }
      if (p < P && p >= bx * CH && p < bx * CH + CH) {
        chunk[p - bx * CH] = e;
      }
    }
  }
}

/** Each expert's count (cnt), padded size (pad), padded offset (off) and end (end), and the
 *  rows turned into exclusive prefix sums (row r: the expert's pairs in rows before r); block
 *  0 writes counts and total. The offsets are a Hillis-Steele scan over EMAX <= 256 (4
 *  radix-4 steps, ping-pong between `end` and `tmp`, a barrier each): T.cumsum lowers to one
 *  thread's serial loop of EMAX steps. */
function layoutGroups(rows: Counts2d, cnt: Shared1d, pad: Shared1d, end: Shared1d, tmp: Shared1d, off: Shared1d,
                      counts: Tensor<"E", "i32">, total: Tensor<"1", "i32">, BS: number, E: number, EMAX: number, CH: number, bx: number) {
  for (const q of T.parallel(EMAX)) {
    let c = 0;
    for (const r of T.serial(Math.floor(CH / SLICE) + 2)) {
      const v = rows[r][q];
      rows[r][q] = c;
      c += v;
    }
    cnt[q] = c;
    pad[q] = T.cdiv(c, BS) * BS;
    end[q] = T.cdiv(c, BS) * BS;
  }
  // Radix 4: a step turns sums of the last d experts into sums of the last 4d (windows 4, 16,
  // 64, 256), so 4 steps and 4 barriers (radix 2 took 8).
  for (const s of T.serial(2)) {
    for (const q of T.parallel(EMAX)) {
      let v = end[q];
      for (const j of T.unroll(1, 4)) {
        if (q >= j << (4 * s)) {
          v += end[q - (j << (4 * s))];
        }
      }
      tmp[q] = v;
    }
    for (const q of T.parallel(EMAX)) {
      let w = tmp[q];
      for (const j of T.unroll(1, 4)) {
        if (q >= (4 * j) << (4 * s)) {
          w += tmp[q - ((4 * j) << (4 * s))];
        }
      }
      end[q] = w;
    }
  }
  for (const q of T.parallel(EMAX)) {
    off[q] = end[q] - pad[q];
  }
  for (const u of T.parallel(E)) {
    if (bx === 0) {
      let n = 0;
      if (u < EMAX) {
        n = cnt[u];
      }
      counts[u] = n;
    }
  }
  for (const i of T.parallel(1)) {
    if (bx === 0) {
      total[i] = end[EMAX - 1];
    }
  }
}

/** block_expert and the pad slots of `sorted` (every slot no pair takes holds P), shared out
 *  over the G blocks: expert e's routing blocks b with b % G == bx, the pad slots (< BS) of
 *  its last block by the block that owns it, and blocks and slots past the total in a
 *  grid-stride loop. */
function markBlocks(cnt: Shared1d, pad: Shared1d, off: Shared1d, end: Shared1d,
                    sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">, P: number, EMAX: number, bx: number, G: number) {
  const [NB, BS] = sorted.shape;
  for (const e of T.parallel(EMAX)) {
    const b0 = Math.floor(off[e] / BS);
    const nb = Math.floor(pad[e] / BS);
    const first = b0 + (bx + G - b0 % G) % G;
    for (const k of T.serial(T.cdiv(nb, G))) {
      const b = first + k * G;
      if (b < b0 + nb && b < NB) {
        block_expert[b] = e;
        if (b === b0 + nb - 1) {
          // The expert's pairs end inside its last block: the rest of that block is pads.
          for (const r of T.serial(off[e] + cnt[e] - b * BS, BS)) {
            sorted[b][r] = P;
          }
        }
      }
    }
  }
  for (const t of T.parallel(THREADS)) {
    for (const k of T.serial(T.cdiv(NB, G * THREADS))) {
      const b = (k * G + bx) * THREADS + t;
      if (b < NB && b * BS >= end[EMAX - 1]) {
        block_expert[b] = -1;
      }
    }
    for (const k of T.serial(T.cdiv(NB * BS, G * THREADS))) {
      const pos = (k * G + bx) * THREADS + t;
      if (pos < NB * BS && pos >= end[EMAX - 1]) {
        sorted[Math.floor(pos / BS)][pos % BS] = P;
      }
    }
  }
}

/** Each pair of the block's chunk (its expert in `chunk`, -1 if dropped) to its place: the
 *  expert's offset, its pairs before the pair's slice (rows, as prefix sums), and the pair's
 *  rank among the slice's earlier pairs of the same expert. */
function placeChunk(chunk: Shared1d, rows: Counts2d, off: Shared1d, sorted: Tensor<"NB, BS", "i32">, CH: number, bx: number) {
  const [NB, BS] = sorted.shape;
  for (const i of T.parallel(CH)) {
    const e = chunk[i];
    if (e >= 0) {
      const s = Math.floor(i / SLICE);
      let n = 0;
      for (const j of T.serial(SLICE)) {
        if (chunk[s * SLICE + j] === e && s * SLICE + j < i) {
          n += 1;
        }
      }
      const at = off[e] + rows[1 + s][e] + n;
      if (at < NB * BS) {
        sorted[Math.floor(at / BS)][at % BS] = bx * CH + i;
      }
    }
  }
}

/** The routing of both kernels: one block per chunk of CH pairs, the pair's expert found by localOf. */
function align(ids: Tensor<"P", "i32">, map: Tensor<"E", "i32">, localOf: typeof directExpert, sorted: Tensor<"NB, BS", "i32">,
               block_expert: Tensor<"NB", "i32">, counts: Tensor<"L", "i32">, total: Tensor<"1", "i32">, E: number, EMAX: number, CH: number) {
  const [P] = ids.shape;
  const [, BS] = sorted.shape;
  const [L] = counts.shape;
  const G = T.max(T.cdiv(P, CH), 1);
  T.launch([G], { threads: THREADS }, (bx) => {
    const rows = T.shared([countRows(CH), EMAX], "i32");
    const cnt = T.shared([EMAX], "i32");
    const pad = T.shared([EMAX], "i32");
    const end = T.shared([EMAX], "i32");
    const tmp = T.shared([EMAX], "i32");
    const off = T.shared([EMAX], "i32");
    const chunk = T.shared([CH], "i32");
    const stage = T.shared([STAGE], "i32");
    countPairs(ids, map, localOf, rows, chunk, stage, E, L, EMAX, CH, bx);
    layoutGroups(rows, cnt, pad, end, tmp, off, counts, total, BS, L, EMAX, CH, bx);
    markBlocks(cnt, pad, off, end, sorted, block_expert, P, EMAX, bx, G);
    placeChunk(chunk, rows, off, sorted, CH, bx);
  });
}

/** The routing of P <= CH pairs by one block (G = 1, the block's chunk is every pair), whose
 *  (local) experts the caller has written into `chunk` (-1: dropped) after clearCounts(rows,
 *  chunk): the same counts, offsets, blocks and places as `align` computes in its block 0, so
 *  the same outputs. (moe_gate_align.ts: the gating's picks go straight into `chunk`.) */
export function alignChunk(chunk: Shared1d, rows: Counts2d, sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">,
                           counts: Tensor<"L", "i32">, total: Tensor<"1", "i32">, P: number, EMAX: number, CH: number) {
  const [, BS] = sorted.shape;
  const [L] = counts.shape;
  const cnt = T.shared([EMAX], "i32");
  const pad = T.shared([EMAX], "i32");
  const end = T.shared([EMAX], "i32");
  const tmp = T.shared([EMAX], "i32");
  const off = T.shared([EMAX], "i32");
  // As countPairs in block 0 with every pair in the chunk: rows 0 and the last (pairs before
  // and after the chunk) stay 0.
  for (const i of T.parallel(CH)) {
    const e = chunk[i];
    if (e >= 0) {
      T.atomicAdd(rows[1 + Math.floor(i / SLICE)][e], 1);
    }
  }
  layoutGroups(rows, cnt, pad, end, tmp, off, counts, total, BS, L, EMAX, CH, 0);
  markBlocks(cnt, pad, off, end, sorted, block_expert, P, EMAX, 0, 1);
  placeChunk(chunk, rows, off, sorted, CH, 0);
}

// CH: pairs a block (a multiple of SLICE, at most THREADS: one thread a pair). 256 for the
// layer; 32 has the checks' small P span several blocks.
export const moe_align = T.kernel(
  { tune: { EMAX: [256], CH: [256, 32] }, where: ({ EMAX, CH }) => CH % SLICE === 0 && CH <= THREADS && EMAX <= THREADS },
  function moe_align(ids: Tensor<"P", "i32">, sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">,
                     counts: Tensor<"E", "i32">, total: Tensor<"1", "i32">, { EMAX, CH }: T.Config) {
    const [E] = counts.shape;
    align(ids, ids, directExpert, sorted, block_expert, counts, total, E, EMAX, CH);
  },
);

export const moe_align_ep = T.kernel(
  { tune: { EMAX: [256], CH: [256, 32] }, where: ({ EMAX, CH }) => CH % SLICE === 0 && CH <= THREADS && EMAX <= THREADS },
  function moe_align_ep(ids: Tensor<"P", "i32">, expert_map: Tensor<"E", "i32">, sorted: Tensor<"NB, BS", "i32">,
                        block_expert: Tensor<"NB", "i32">, counts: Tensor<"L", "i32">, total: Tensor<"1", "i32">,
                        { EMAX, CH }: T.Config) {
    const [E] = expert_map.shape;
    align(ids, expert_map, mappedExpert, sorted, block_expert, counts, total, E, EMAX, CH);
  },
);

// ---------------------------------------------------------------- checks (plain references)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { routingBlocks } from "tilemoe/moe";

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

// NB is the capacity in blocks: at least routingBlocks, the most any routing takes (the layer's).
// E = 1 puts every pair on one expert; E > P leaves experts empty; P = 1 is a single pair;
// P up to 100 spans up to 4 blocks at CH = 32 (test/moe/moe.test.ts adds P past STAGE).
export const moe_align_check = defineCheck({
  kernel: "moe_align",
  dims: { P: [1, 100], E: [1, 24], BS: { values: [1, 2, 4, 16] }, NB: [1, 160] },
  dimsWhere: ({ P, E, BS, NB }) => NB! >= routingBlocks(P!, E!, BS!),
  inputs: { ids: { lo: 0, hi: 23 } },
  reference: ({ ids }: Record<string, TensorValue>, _s, { P, E, NB, BS }) => alignRef(P!, E!, NB!, BS!, (p) => ids!.data[p]!),
});

export const moe_align_ep_check = defineCheck({
  kernel: "moe_align_ep",
  dims: { P: [1, 100], E: [1, 24], L: [1, 12], BS: { values: [1, 2, 4, 16] }, NB: [1, 160] },
  dimsWhere: ({ P, L, BS, NB }) => NB! >= routingBlocks(P!, L!, BS!),
  inputs: { ids: { lo: 0, hi: 23 }, expert_map: { lo: -1, hi: 11 } },
  reference: ({ ids, expert_map }: Record<string, TensorValue>, _s, { P, E, L, NB, BS }) =>
    alignRef(P!, L!, NB!, BS!, (p) => { const g = ids!.data[p]!; return g >= 0 && g < E! ? expert_map!.data[g]! : -1; }),
});
