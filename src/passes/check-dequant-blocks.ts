// checkDequantBlocks: a T.dequant on the mma order (src/quant/format.ts) must cover whole
// 32-value blocks of 4 words per row, because its words hold values 8 apart across the
// block (docs/QUANT.md). The front end cannot tell when the tile width is a tunable (BK);
// after specialize it is a number, so a config such as BK 16 is refused here, at the
// T.dequant call, instead of storing past the tile or failing inside the lowering.
import { type Kernel, type Stmt, v } from "../ir/ir.ts";
import { evalConst, fold, walkExpr, walkStmts } from "../ir/expr.ts";
import { printExpr } from "../ir/print.ts";
import { dequantColumn } from "../quant/column.ts";
import { fail } from "./lower-ctx.ts";
import type { PassOptions } from "./types.ts";

export function checkDequantBlocks(k: Kernel, _opts: PassOptions): Kernel {
  if (k.launch.level !== "tile") return k;
  walkStmts(k.launch.body, (s) => {
    if (s.k !== "for" || s.kind !== "parallel" || s.vars.length !== 2) return;
    const dq = s.body.find((x): x is Extract<Stmt, { k: "dequant" }> => x.k === "dequant");
    const last = s.body.at(-1);
    if (!dq || last?.k !== "for" || last.vars.length !== 1 || last.body[0]?.k !== "store") return;
    // The front end's store column: the tile's column offset + the mma column of (w, j).
    const col = printExpr(fold(dequantColumn("mma", 8, v(s.vars[1]!), v(last.vars[0]!))));
    let mma = false;
    walkExpr(last.body[0].idx[1]!, (e) => { if (!mma && printExpr(fold(e)) === col) mma = true; });
    if (!mma) return;
    const W = evalConst(s.extents[1]!);
    if (W !== undefined && W % 4 !== 0)
      fail(dq.loc, `T.dequant with order "mma" needs whole 32-value blocks (4 words) per tile row: this config gives ${W} words (${W * 8} values); make the tile's K extent (BK) a multiple of 32`);
  });
  return k;
}
