// fragmentCoord (layout/fragment.ts) with the slot as an expression instead of a number,
// so that a loop over slots can stay a loop (`unroll`) rather than being expanded here.
// test/passes/frag-coord.test.ts checks it against fragmentCoord slot by slot.
import { type Expr, type Layout, bin, int } from "../ir/ir.ts";
import { fold } from "../ir/expr.ts";
import { type FragmentShape, fragmentSlots } from "../layout/fragment.ts";
import { wgmmaAccCoord } from "../layout/wgmma.ts";

export interface Coord { row: Expr; col: Expr; valid?: Expr }

const b = (op: "+" | "*" | "/" | "%", x: Expr, y: Expr | number) => bin(op, x, typeof y === "number" ? int(y) : y);

export function fragCoordExpr(layout: Layout, s: FragmentShape, tx: Expr, slot: Expr): Coord {
  switch (layout.kind) {
    case "cyclic": {
      const e = b("+", b("*", slot, s.threads), tx);
      const total = s.rows * s.cols;
      const valid = fragmentSlots(layout, s) * s.threads > total ? bin("<", e, int(total)) : undefined;
      // slot and tx are non-negative and tx < threads, so when one of threads and cols
      // divides the other, e / cols and e % cols split into a per-slot and a per-thread part
      // (a thread then keeps one column, or one run of a row).
      if (s.threads % s.cols === 0)
        return { row: fold(b("+", b("*", slot, s.threads / s.cols), b("/", tx, s.cols))), col: fold(b("%", tx, s.cols)), valid: valid && fold(valid) };
      if (s.cols % s.threads === 0) {
        const per = s.cols / s.threads;
        return { row: fold(b("/", slot, per)), col: fold(b("+", b("*", b("%", slot, per), s.threads), tx)), valid: valid && fold(valid) };
      }
      return { row: fold(b("/", e, s.cols)), col: fold(b("%", e, s.cols)), valid: valid && fold(valid) };
    }
    case "mma_acc": {
      const warpRows = s.rows / layout.warpsM, warpCols = s.cols / layout.warpsN, tilesN = warpCols / 8;
      const tile = b("/", slot, 4), i = b("%", slot, 4);
      const warp = b("/", tx, 32), lane = b("%", tx, 32);
      const row = b("+", b("+", b("*", b("/", warp, layout.warpsN), warpRows), b("/", lane, 4)),
        b("+", b("*", b("/", tile, tilesN), 16), b("*", b("/", i, 2), 8)));
      const col = b("+", b("+", b("*", b("%", warp, layout.warpsN), warpCols), b("*", b("%", lane, 4), 2)),
        b("+", b("*", b("%", tile, tilesN), 8), b("%", i, 2)));
      return { row: fold(row), col: fold(col) };
    }
    case "xor_swizzle":
      throw new Error("xor_swizzle is a shared-memory layout, not a fragment layout");
    case "wgmma_acc": return wgmmaAccCoord(layout, s, tx, slot);
  }
}
