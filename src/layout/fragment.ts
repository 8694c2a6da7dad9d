// Which thread holds which element of a fragment buffer, as IR expressions of the
// thread index. Lowering uses these to turn tile-level fragment accesses into per-thread
// slot accesses; the interpreter has its own, independent copy of the PTX layouts so that
// a mistake here shows up as a failing fuzz case rather than agreeing with itself.
import { type Expr, type Layout, bin, int } from "../ir/ir.ts";
import { fold } from "../ir/expr.ts";
import { wgmmaAccCoord } from "./wgmma.ts";

export interface FragmentShape { rows: number; cols: number; threads: number }

/** Elements each thread holds. */
export function fragmentSlots(layout: Layout, s: FragmentShape): number {
  if (layout.kind === "xor_swizzle") throw new Error("xor_swizzle is a shared-memory layout, not a fragment layout");
  return Math.ceil((s.rows * s.cols) / s.threads);
}

/** Checks that an mma_acc layout tiles the fragment exactly; returns a reason when not. */
export function mmaAccProblem(l: { warpsM: number; warpsN: number }, s: FragmentShape): string | undefined {
  const warps = s.threads / 32;
  if (!Number.isInteger(warps) || l.warpsM * l.warpsN !== warps)
    return `mma_acc(${l.warpsM}, ${l.warpsN}) needs ${l.warpsM * l.warpsN * 32} threads, the block has ${s.threads}`;
  if (s.rows % (16 * l.warpsM) !== 0) return `rows ${s.rows} are not a multiple of 16 * warpsM = ${16 * l.warpsM}`;
  if (s.cols % (8 * l.warpsN) !== 0) return `cols ${s.cols} are not a multiple of 8 * warpsN = ${8 * l.warpsN}`;
  return undefined;
}

/**
 * Row and column of slot `slot` (a compile-time number) of thread `tx`.
 * `valid` is set when some (thread, slot) pairs fall outside the fragment (cyclic layouts
 * whose size is not a multiple of the thread count).
 */
export function fragmentCoord(layout: Layout, s: FragmentShape, tx: Expr, slot: number): { row: Expr; col: Expr; valid?: Expr } {
  switch (layout.kind) {
    case "cyclic": {
      const e = bin("+", int(slot * s.threads), tx);
      const total = s.rows * s.cols;
      const valid = (slot + 1) * s.threads > total ? bin("<", e, int(total)) : undefined;
      return { row: bin("/", e, int(s.cols)), col: bin("%", e, int(s.cols)), valid };
    }
    case "mma_acc": {
      // PTX m16n8 f32 accumulator: lane l holds c0,c1 at (l/4, 2*(l%4) + {0,1}) and
      // c2,c3 eight rows below. Warps tile the fragment warpsM x warpsN; inside a warp
      // the 16x8 tiles are numbered m-major, four slots per tile.
      const warpRows = s.rows / layout.warpsM;
      const warpCols = s.cols / layout.warpsN;
      const tilesN = warpCols / 8;
      const tile = Math.floor(slot / 4);
      const i = slot % 4;
      const tm = Math.floor(tile / tilesN);
      const tn = tile % tilesN;
      const warp = bin("/", tx, int(32));
      const lane = bin("%", tx, int(32));
      const wm = bin("/", warp, int(layout.warpsN));
      const wn = bin("%", warp, int(layout.warpsN));
      const row = bin("+", bin("*", wm, int(warpRows)), bin("+", bin("/", lane, int(4)), int(tm * 16 + (i >= 2 ? 8 : 0))));
      const col = bin("+", bin("*", wn, int(warpCols)), bin("+", bin("*", bin("%", lane, int(4)), int(2)), int(tn * 8 + (i & 1))));
      return { row, col };
    }
    case "xor_swizzle":
      throw new Error("xor_swizzle is a shared-memory layout, not a fragment layout");
    case "wgmma_acc": {
      const c = wgmmaAccCoord(layout, s, tx, int(slot));
      return { row: fold(c.row), col: fold(c.col) };
    }
  }
}
