// persistentGrid: with Target.persistentBlocks = P (`--persistent P`, e.g. the GPU's SM count),
// a launch of G tiles (a 1-d grid, or a grid [Gx, Gy, Gz] of G = Gx * Gy * Gz) becomes min(G, P)
// blocks that each loop over the tiles b, b + P, b + 2P, ... in the order the kernel's own
// block indices give them (the gemm's grouped/rasterized order is computed from them, so it is
// kept): blocks stay resident, the tail wave disappears, and a block's set-up (barrier init,
// the accumulator's registers) is paid once per block instead of once per tile.
//
// It runs on the thread-level kernel (after lowerToThreads, before simplify):
//   launch thread grid [G] ... blocks [pid] setup N { setup; body }
// ->
//   launch thread grid [min(G, P)] ... blocks [pid_blk] {
//     setup
//     for it in serial(0, cdiv(G - pid_blk, P)) { let pid: i32 = pid_blk + it * P; body; barrier }
//   }
// A grid of more dims is linearised x fastest: let t = pid_blk + it * P; let bx = t % Gx;
// let by = t / Gx % Gy; let bz = t / (Gx * Gy). The first N statements (Launch.setup: a warp-specialized TMA pipeline's
// mbarriers, their inits and its running counter) live across the block's tiles, so they stay
// in front of the loop; persistentGrid consumes the count (also when it leaves the grid alone).
// The barrier at the end of an iteration keeps the next tile's shared-memory writes behind the
// last reads of this one (simplify removes it where one is already there; under warp
// specialization it is the consumers' named barrier, which the producer never takes). A TMA
// pipeline that is not warp-specialized initialises its mbarriers again for each tile: by then
// every phase of the previous tile has completed and every thread has passed the pipeline's
// closing barrier.
import { type Expr, type Kernel, type Launch, type Stmt, bin, int, v } from "../ir/ir.ts";
import { fold, freshNamer } from "../ir/expr.ts";
import type { PassOptions } from "./types.ts";

export function persistentGrid(k: Kernel, opts: PassOptions): Kernel {
  const { setup: count, ...L } = k.launch;
  const plain: Kernel = count === undefined ? k : { ...k, launch: L };
  const P = opts.target.persistentBlocks;
  if (!P) return plain;
  if (L.level !== "thread") throw new Error("persistentGrid runs on thread-level kernels (after lowerToThreads)");
  if (L.blockVars.length !== L.grid.length) return plain;
  const fresh = freshNamer(k);
  const vars = L.blockVars;
  const blk = fresh(`${vars[0]}_blk`), it = fresh("tile_it");
  const G = fold(L.grid.slice(1).reduce((a, g) => bin("*", a, g), L.grid[0]!));
  const tile = fold(bin("+", v(blk), bin("*", v(it), int(P))));
  let coords: Stmt[];
  if (L.grid.length === 1) coords = [{ k: "let", name: vars[0]!, dtype: "i32", value: tile, mutable: false }];
  else {
    // x fastest: index d is (t / (G0 * .. * G(d-1))) % Gd, the last one without the modulo.
    const t = fresh("tile");
    coords = [{ k: "let", name: t, dtype: "i32", value: tile, mutable: false }];
    let below: Expr = int(1);
    L.grid.forEach((g, d) => {
      const q = fold(bin("/", v(t), below));
      coords.push({ k: "let", name: vars[d]!, dtype: "i32", value: d === L.grid.length - 1 ? q : fold(bin("%", q, g)), mutable: false });
      below = fold(bin("*", below, g));
    });
  }
  const n = count ?? 0;
  const body: Stmt[] = [...L.body.slice(0, n), {
    k: "for", vars: [it], starts: [int(0)], kind: "serial",
    extents: [fold(bin("cdiv", bin("-", G, v(blk)), int(P)))],
    body: [...coords, ...L.body.slice(n), { k: "barrier" }],
  }];
  const launch: Launch = { ...L, grid: [fold(bin("min", G, int(P)))], blockVars: [blk], body };
  return { ...k, launch };
}
