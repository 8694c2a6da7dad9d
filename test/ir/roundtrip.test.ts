import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { arbExpr, arbInfixExpr, arbKernel, arbStmt } from "../../src/ir/arbitrary.ts";
import type { Expr, Kernel, Stmt } from "../../src/ir/ir.ts";
import { parseExpr, parseKernel, parseStmts } from "../../src/ir/parse.ts";
import { printExpr, printKernel, printStmts } from "../../src/ir/print.ts";

/** Deep copy without `loc` fields (the parser adds them, generators don't), with plain
 *  prototypes (fast-check records have none, which toStrictEqual would notice). */
function stripLoc<T>(x: T): T {
  if (Array.isArray(x)) return x.map(stripLoc) as T;
  if (x && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).filter(([key]) => key !== "loc").map(([key, val]) => [key, stripLoc(val)])) as T;
  }
  return x;
}

describe("IR text round trip", () => {
  it("parseExpr(printExpr(e)) equals e", () => {
    fc.assert(fc.property(arbExpr(), (e: Expr) => {
      expect(parseExpr(printExpr(e))).toStrictEqual(stripLoc(e));
    }), { numRuns: 400 });
  });

  it("keeps precedence and associativity of nested infix operators", () => {
    fc.assert(fc.property(arbInfixExpr(5), (e: Expr) => {
      const text = printExpr(e);
      expect(parseExpr(text)).toStrictEqual(stripLoc(e));
      expect(printExpr(parseExpr(text))).toBe(text);
    }), { numRuns: 300 });
  });

  it("parseStmts(printStmts(s)) equals s at both levels", () => {
    fc.assert(fc.property(fc.array(arbStmt(), { maxLength: 4 }), (ss: Stmt[]) => {
      const text = printStmts(ss);
      const back = parseStmts(text);
      expect(stripLoc(back)).toStrictEqual(stripLoc(ss));
      expect(printStmts(back)).toBe(text);
    }), { numRuns: 200 });
  });

  it.each(["tile", "thread", undefined] as const)("parseKernel(printKernel(k)) equals k, level %s", (level) => {
    fc.assert(fc.property(arbKernel(level), (k: Kernel) => {
      const text = printKernel(k);
      const back = parseKernel(text);
      expect(stripLoc(back)).toStrictEqual(stripLoc(k));
      expect(printKernel(back)).toBe(text);
    }), { numRuns: 150 });
  });
});
