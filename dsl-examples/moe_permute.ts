// The activation rows of a MoE layer in routing order: Xp[b * BS + r] = X[sorted[b][r] / top_k]
// for every row r of every used routing block b (moe_align.ts's grouping); pad rows (pair ids
// >= T * top_k) are zeros, and blocks with block_expert[b] < 0 are not written (the grouped
// GEMMs skip them too). With Xp in routing order the gate/up GEMM reads its activation as
// plain [BM, BK] tiles (moe_gemm_up_permuted), which TMA can load on sm_90a, where a gather by
// token id cannot.
// A pure bandwidth kernel: each block moves BR rows of one routing block, BH columns at a time,
// through a shared tile: the row gather arrives by cp.async of 16-byte chunks (stages ahead)
// and leaves in 16-byte vector stores. A tile never crosses a routing block: BR <= BS with BS
// a multiple of BR keeps every tile whole; a block's ragged last tile stores row by row.
import { T, type Tensor } from "tilemoe";
import { tokenRows } from "./lib/moe_tiles.ts";

const SMEM_BYTES = 96 * 1024;

export const moe_permute = T.kernel(
  {
    tune: { BR: [16, 32, 64, 128], BH: [256, 128, 512], stages: [3, 2, 4], warps: [4, 8] },
    where: ({ BR, BH, stages }) => BR * BH * 2 * stages <= SMEM_BYTES,
  },
  function moe_permute(X: Tensor<"T, H", "bf16">, sorted: Tensor<"NB, BS", "i32">, block_expert: Tensor<"NB", "i32">,
                       top_k: T.i32, Xp: Tensor<"NB * BS, H", "bf16">, { BR, BH, stages, warps }: T.Config) {
    const [tokens, H] = X.shape;
    const [NB, BS] = sorted.shape;
    T.launch([NB * T.cdiv(BS, BR)], { threads: warps * 32 }, (by) => {
      const tiles = T.cdiv(BS, BR);
      const b = Math.floor(by / tiles);
      const r0 = (by % tiles) * BR;
      // Row i of the tile is its pair's token row, or -1 (reads 0) for pads and rows past the block.
      const xrow = T.shared([BR], "i32");
      tokenRows(xrow, sorted, b, r0, BR, tokens, top_k);
      const Xs = T.shared([BR, BH], "bf16");
      if (block_expert[b] >= 0) {
        for (const h of T.pipelined(T.cdiv(H, BH), stages)) {
          T.copy(X.rows(xrow, h * BH, BH), Xs);
          if (r0 + BR <= BS) {
            T.copy(Xs, Xp.tile([b * BS + r0, h * BH], [BR, BH]));
          } else {
            // The block's last tile is ragged: rows past BS belong to the next block.
            for (const [i, j] of T.parallel(BR, BH)) {
              if (r0 + i < BS && h * BH + j < H) {
                Xp[b * BS + r0 + i][h * BH + j] = Xs[i][j];
              }
            }
          }
        }
      }
    });
  },
);

// ---- what the checker compares against (runs in `tilemoe check`; plain float64)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { routingBlocks } from "tilemoe/moe";
import { routing } from "./moe_gemm_up.ts";

/** Xp as the kernel writes it; rows of unused blocks keep `fill` (the kernel does not write them). */
export function permuteRef(X: TensorValue, sorted: TensorValue, blockExpert: TensorValue, topK: number,
  dims: Record<string, number>, fill: number): Float64Array {
  const { T: T_, H, NB, BS } = dims as Record<"T" | "H" | "NB" | "BS", number>;
  const Xp = new Float64Array(NB * BS * H).fill(fill);
  for (let b = 0; b < NB; b++) {
    if (blockExpert.data[b]! < 0) continue;
    for (let r = 0; r < BS; r++) {
      const pair = sorted.data[b * BS + r]!;
      const row = (b * BS + r) * H;
      if (pair >= T_ * topK) { Xp.fill(0, row, row + H); continue; }
      const x = Math.floor(pair / topK) * H;
      for (let h = 0; h < H; h++) Xp[row + h] = X.data[x + h]!;
    }
  }
  return Xp;
}

// Unused blocks must stay as they were: Xp starts at a sentinel the reference keeps there.
const UNTOUCHED = -3;

// As the grouped GEMMs' checks (moe_gemm_up.ts): T = 1 is a single token, E > T * top_k leaves
// experts empty, TOPK = E routes every token everywhere, skew 1 puts all tokens on few experts.
// BS 4 and 16 make ragged last tiles for BR above them.
export const moe_permute_check = defineCheck({
  kernel: "moe_permute",
  dims: { T: [1, 12], H: [1, 300], E: [1, 6], TOPK: [1, 6], skew: [0, 2], BS: { values: [1, 4, 16, 64, 128] }, NB: [1, 90] },
  dimsWhere: ({ T: t, E, TOPK, BS, NB }) =>
    TOPK! <= E! && NB! >= routingBlocks(t! * TOPK!, E!, BS!) && NB! * BS! <= 1024,
  inputs: { X: { lo: -1, hi: 1 } },
  derive: ({ T: t, E, TOPK, NB, BS, skew }, rand) => {
    const r = routing(t!, E!, TOPK!, NB!, BS!, skew!, rand);
    return { tensors: { sorted: r.sorted, block_expert: r.block_expert }, scalars: { top_k: TOPK! } };
  },
  outputs: { Xp: { fill: UNTOUCHED } },
  reference: ({ X, sorted, block_expert }, { top_k }, d) => ({ Xp: permuteRef(X!, sorted!, block_expert!, top_k!, d, UNTOUCHED) }),
});
