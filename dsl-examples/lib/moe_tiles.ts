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
  const rows = T.min(tilesM - group * GROUP_M, GROUP_M);
  return group * GROUP_M + (pid % (GROUP_M * tilesN)) % rows;
}

/** The column tile of block (gx, gy) in the grouped order. */
export function groupedCol(gx: number, gy: number, tilesN: number, tilesM: number, GROUP_M: number) {
  const pid = gy * tilesN + gx;
  const group = Math.floor(pid / (GROUP_M * tilesN));
  const rows = T.min(tilesM - group * GROUP_M, GROUP_M);
  return Math.floor((pid % (GROUP_M * tilesN)) / rows);
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

/** The rows of the `rows`-row tile at row r0 of routing block b that hold pairs, counted to the
 *  last one (one past its row; 0 for a tile of pads), into live[0], for the gemm's `rows` option:
 *  an expert's last routing block ends in pads (ids >= pairs) and the rows past the block are
 *  another block's, so the tensor-core lowerings skip the warps (warpgroups) whose rows all lie
 *  in that tail. One read of sorted a row, a max over the tile. */
export function liveRows(live: Buf<"i32", readonly [number]>, sorted: Tensor<"NB, BS", "i32">, b: number, r0: number,
                         rows: number, pairs: number) {
  const [, BS] = sorted.shape;
  const last = T.shared([1, rows], "i32");
  for (const i of T.parallel(rows)) {
    const r = r0 + i;
    let n = 0;
    if (r < BS) {
      const pair = sorted[b][r];
      if (pair >= 0 && pair < pairs) n = i + 1;
    }
    last[0][i] = n;
  }
  T.reduce(last, live, { op: "max", axis: 1 });
}
