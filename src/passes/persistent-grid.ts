// persistentGrid: with Target.persistentBlocks = P (`--persistent P`, e.g. the GPU's SM count),
// a 1-d launch of G blocks becomes min(G, P) blocks that each loop over the tiles
// b, b + P, b + 2P, ... in the order the kernel's own block index gives them (the gemm's
// grouped/rasterized order is computed from it, so it is kept): blocks stay resident, the
// tail wave disappears, and a block's set-up (barrier init, the accumulator's registers) is
// paid once per block instead of once per tile.
//
// It runs on the thread-level kernel (after lowerToThreads, before simplify):
//   launch thread grid [G] ... blocks [pid] { body }
// ->
//   launch thread grid [min(G, P)] ... blocks [pid_blk] {
//     for it in serial(0, cdiv(G - pid_blk, P)) { let pid: i32 = pid_blk + it * P; body; barrier }
//   }
// The barrier at the end of an iteration keeps the next tile's shared-memory writes behind the
// last reads of this one (simplify removes it where one is already there). A TMA pipeline
// initialises its mbarriers again for each tile: by then every phase of the previous tile has
// completed and every thread has passed the pipeline's closing barrier.
import { type Kernel, type Stmt, bin, int, v } from "../ir/ir.ts";
import { fold, freshNamer } from "../ir/expr.ts";
import type { PassOptions } from "./types.ts";

export function persistentGrid(k: Kernel, opts: PassOptions): Kernel {
  const P = opts.target.persistentBlocks;
  if (!P) return k;
  const L = k.launch;
  if (L.level !== "thread") throw new Error("persistentGrid runs on thread-level kernels (after lowerToThreads)");
  if (L.grid.length !== 1 || L.blockVars.length !== 1) return k; // 1-d grids only
  const fresh = freshNamer(k);
  const pid = L.blockVars[0]!;
  const blk = fresh(`${pid}_blk`), it = fresh("tile_it");
  const G = L.grid[0]!;
  const body: Stmt[] = [{
    k: "for", vars: [it], starts: [int(0)], kind: "serial",
    extents: [fold(bin("cdiv", bin("-", G, v(blk)), int(P)))],
    body: [
      { k: "let", name: pid, dtype: "i32", value: fold(bin("+", v(blk), bin("*", v(it), int(P)))), mutable: false },
      ...L.body,
      { k: "barrier" },
    ],
  }];
  return { ...k, launch: { ...L, grid: [fold(bin("min", G, int(P)))], blockVars: [blk], body } };
}
