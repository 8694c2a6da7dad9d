// What the MoE kernels share: kernel-code helpers, imported by moe_gemm_up.ts,
// moe_gemm_up_w4a16.ts, moe_gemm_down*.ts and moe_permute.ts and inlined where called
// (docs/DSL.md, Helper functions). Not a kernel file: build-all compiles the top level of
// dsl-examples/ only.
import { T, type Buf, type Tensor } from "tilemoe";

// Grouped tile order (as in gemm.ts): GROUP_M row tiles sweep the column tiles together, so the
// blocks in flight share weight tiles in L2 (an expert's routing blocks are consecutive) instead
// of every row tile streaming all of its expert's weights. Block (gx, gy) of a grid of tilesN
// column tiles by tilesM row tiles works on row tile groupedRow(...), column tile groupedCol(...).

/** The row tile of block (gx, gy) in the grouped order. */
export function groupedRow(gx: number, gy: number, tilesN: number, tilesM: number, GROUP_M: number) {
  const pid = gy * tilesN + gx;
  const group = Math.floor(pid / (GROUP_M * tilesN));
  const rows = T.max(1, T.min(tilesM - group * GROUP_M, GROUP_M));  // >= 1 in the grid; T.max tells non-neg.ts
  return group * GROUP_M + (pid % (GROUP_M * tilesN)) % rows;
}

/** The column tile of block (gx, gy) in the grouped order. */
export function groupedCol(gx: number, gy: number, tilesN: number, tilesM: number, GROUP_M: number) {
  const pid = gy * tilesN + gx;
  const group = Math.floor(pid / (GROUP_M * tilesN));
  const rows = T.max(1, T.min(tilesM - group * GROUP_M, GROUP_M));  // >= 1 in the grid; T.max tells non-neg.ts
  return Math.floor((pid % (GROUP_M * tilesN)) / rows);
}

/** Where block (gx, gy) of a routed GEMM works, as [bx, b, r0, e]: column tile bx, routing block b,
 *  the first row r0 of its BM-row tile in that block, and the block's expert e (-1: none, no work).
 *  The grid is [cols, NB * cdiv(BS, BM)]; GROUP_M > 1 takes the grouped order above, GROUP_M = 1
 *  keeps the grid's own (and its registers). */
export function routedTile(gx: number, gy: number, cols: number, block_expert: Tensor<"NB", "i32">, BS: number, BM: number,
                           GROUP_M: number) {
  const [NB] = block_expert.shape;
  let bx = gx;
  let by = gy;
  if (GROUP_M > 1) {
    by = groupedRow(gx, gy, cols, NB * T.cdiv(BS, BM), GROUP_M);
    bx = groupedCol(gx, gy, cols, NB * T.cdiv(BS, BM), GROUP_M);
  }
  const tiles = T.cdiv(BS, BM);
  const b = Math.floor(by / tiles);
  return [bx, b, (by % tiles) * BM, block_expert[b]] as const;
}

/** The row scatter's rows of the down projection's pair kernels: row i of the `rows`-row tile at
 *  row r0 of routing block b goes to its pair's row of Y (sorted[b][r0 + i]), or nowhere (-1) for
 *  pads (ids >= P) and rows past the block. */
export function pairRows(yrow: Buf<"i32", readonly [number]>, sorted: Tensor<"NB, BS", "i32">, b: number, r0: number, rows: number, P: number) {
  const [, BS] = sorted.shape;
  for (const i of T.parallel(rows)) {
    let row = -1;
    if (r0 + i < BS) {
      const pair = sorted[b][r0 + i];
      if (pair >= 0 && pair < P) row = pair;
    }
    yrow[i] = row;
  }
}

/** The routing gather's rows: row i of the `rows`-row tile at row r0 of routing block b is the
 *  token row of its pair (sorted[b][r0 + i] / top_k), or -1 (the row copy reads 0) for pads
 *  (ids >= tokens * top_k) and rows past the block. */
export function tokenRows(xrow: Buf<"i32", readonly [number]>, sorted: Tensor<"NB, BS", "i32">, b: number, r0: number,
                          rows: number, tokens: number, top_k: number) {
  const [, BS] = sorted.shape;
  for (const i of T.parallel(rows)) {
    const r = r0 + i;
    let row = -1;
    if (r < BS) {
      const pair = sorted[b][r];
      if (pair >= 0 && pair < tokens * top_k) row = Math.floor(pair / top_k);
    }
    xrow[i] = row;
  }
}

/** The gate/up kernels' epilogue: gate <- act(gate) * up, then the tile's rows to Y at routing
 *  block b's rows r0.., whole where the tile lies inside the block (the staged 16-byte store on
 *  sm_90a), else row by row (a block's ragged last tile: rows past BS are the next block's). */
export function storeGateUp(gate: Buf<"f32", readonly [number, number]>, up: Buf<"f32", readonly [number, number]>,
                            Y: Tensor<"NB * BS, N", "bf16">, b: number, r0: number, bx: number, N: number, BS: number, BM: number, BN: number,
                            act: (g: number) => number) {
  for (const [i, j] of T.parallel(BM, BN)) {
    const g = gate[i][j];
    gate[i][j] = act(g) * up[i][j];
  }
  if (r0 + BM <= BS) {
    T.copy(gate, Y.tile([b * BS + r0, bx * BN], [BM, BN]));
  } else {
    for (const [i, j] of T.parallel(BM, BN)) {
      if (r0 + i < BS && bx * BN + j < N) {
        Y[b * BS + r0 + i][bx * BN + j] = T.cast(gate[i][j], "bf16");
      }
    }
  }
}
