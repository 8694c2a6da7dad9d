// lowerIntDivision: the DSL's rounded integer divisions, Math.floor(a / b) (IR floordiv) and
// T.cdiv(a, b) (IR cdiv), become C arithmetic that is right at every sign. C's `/` truncates
// toward zero: the floor and the ceiling only where the quotient is not negative. So:
//  - a and b unsigned, or both shown non-negative (non-neg.ts, guards `if (x >= 0)` included):
//    floordiv is `a / b` and cdiv stays (the emitters' (a + b - 1) / b), the code every such
//    division compiled to before;
//  - b a positive power of two 2^s and a an i32: an arithmetic shift, `a >> s` (the floor) and
//    `(a + 2^s - 1) >> s` (the ceiling);
//  - otherwise the truncated quotient, moved by one where the remainder is not zero and the signs
//    differ (floor: minus one) or agree (ceiling: plus one); the sign test looks only at the sides
//    that may be negative.
// Runs after inferTypes (it reads the operands' types); no emitter sees floordiv.
import { type DType, type Expr, type Kernel, type Stmt, bin, int } from "../ir/ir.ts";
import { type TypeEnv, mapExpr, mapStmtExprs, stmtExprs, typeEnvOf, typeOf, walkExpr, walkStmts } from "../ir/expr.ts";
import { nonNegExpr, signFacts, underGuard } from "./non-neg.ts";

const isRounded = (e: Expr) => e.k === "bin" && (e.op === "floordiv" || e.op === "cdiv");

export function lowerIntDivision(k: Kernel): Kernel {
  let any = false;
  const look = (e: Expr) => walkExpr(e, (x) => { any ||= isRounded(x); });
  k.launch.grid.forEach(look);
  walkStmts(k.launch.body, (s) => stmtExprs(s).forEach(look));
  if (!any) return k;
  const env = typeEnvOf(k);
  const { unproven, fixed } = signFacts(k);
  const expr = (e: Expr) => mapExpr(e, (x) =>
    (x.k === "bin" && isRounded(x) ? rounded(x.op as "floordiv" | "cdiv", x.a, x.b, env, unproven) : undefined));
  const stmts = (list: Stmt[]): Stmt[] => list.map((s) => {
    if (s.k === "for") return { ...mapStmtExprs(s, expr), body: stmts(s.body) } as Stmt;
    if (s.k !== "if") return mapStmtExprs(s, expr);
    // In the then branch the names the test shows non-negative are (as lower-threads.ts does).
    return { ...s, cond: expr(s.cond), then: underGuard(s.cond, unproven, fixed, () => stmts(s.then)), else: stmts(s.else) };
  });
  const launch = k.launch;
  return { ...k, launch: { ...launch, grid: launch.grid.map(expr), body: stmts(launch.body) } };
}

function rounded(op: "floordiv" | "cdiv", a: Expr, b: Expr, env: TypeEnv, unproven: Set<string>): Expr | undefined {
  const ta = typeOf(a, env), tb = typeOf(b, env);
  const nonNeg = (e: Expr, t: DType) => t.startsWith("u") || t === "bool" || nonNegExpr(e, unproven);
  const aNonNeg = nonNeg(a, ta), bNonNeg = nonNeg(b, tb);
  if (aNonNeg && bNonNeg) return op === "floordiv" ? bin("/", a, b) : undefined;
  if (b.k === "int" && b.v > 0 && (b.v & (b.v - 1)) === 0 && ta === "i32") {
    const shift = int(Math.log2(b.v));
    return op === "floordiv" ? bin(">>", a, shift) : bin(">>", bin("+", a, int(b.v - 1)), shift);
  }
  // The sign test; a side known non-negative drops out of it (a remainder != 0 means a != 0).
  const negative = (e: Expr) => bin("<", e, int(0));
  const differ = aNonNeg ? negative(b) : bNonNeg ? negative(a) : bin("!=", negative(a), negative(b));
  const agree = aNonNeg ? bin(">", b, int(0)) : bNonNeg ? bin(">", a, int(0)) : bin("==", negative(a), negative(b));
  const q = bin("/", a, b);
  const inexact = bin("!=", bin("%", a, b), int(0));
  return op === "floordiv"
    ? { k: "select", cond: bin("&&", inexact, differ), a: bin("-", q, int(1)), b: q }
    : { k: "select", cond: bin("&&", inexact, agree), a: bin("+", q, int(1)), b: q };
}
