// Which scalar names of a kernel may the lowering take as non-negative? The bounds test of a
// tile op (lower-ctx.ts inBounds) leaves out `i >= 0` for an index it knows cannot go below 0.
// Dims, block indices and the thread index never do. A name the kernel binds (let, assignment,
// loop variable) counts only when every value it is given is built from non-negative parts, given
// the same of the names it reads (the greatest such set: `c = c + 1` from 0 stays in, `c = c - 1`
// falls out); scalar params and loaded values may be anything. Names the lowering binds itself
// (fresh indices, loaded rows) are not the kernel's: the lowering tests loaded ones explicitly.
// Inside `if (e >= 0) {...}` a name that keeps one value (a const let: an expert id loaded from
// the routing) is non-negative too (provenBy; lower-threads.ts lowers the branch so).
import type { Expr, Kernel } from "../ir/ir.ts";
import { walkStmts } from "../ir/expr.ts";

/** What the lowering knows of the signs of k's scalar names: `unproven`, those that may be negative
 *  (scalar params, and bound names with a value not shown non-negative); `fixed`, those bound once
 *  by an immutable let and never assigned (a test of one holds while it is in scope: provenBy). */
export function signFacts(k: Kernel): { unproven: Set<string>; fixed: Set<string> } {
  const defs = new Map<string, Expr[]>();
  const immutable = new Set<string>();
  const def = (name: string, value: Expr) => defs.set(name, [...(defs.get(name) ?? []), value]);
  walkStmts(k.launch.body, (s) => {
    if (s.k === "let" || s.k === "assign") def(s.name, s.value);
    if (s.k === "let" && !s.mutable) immutable.add(s.name);
    else if (s.k === "for") s.vars.forEach((x, i) => def(x, s.starts[i]!));
  });
  const fixed = new Set([...immutable].filter((n) => defs.get(n)!.length === 1));
  const unproven = new Set(k.params.filter((p) => p.kind === "scalar").map((p) => p.name));
  for (let changed = true; changed;) {
    changed = false;
    for (const [name, values] of defs)
      if (!unproven.has(name) && values.some((e) => !nonNegExpr(e, unproven))) { unproven.add(name); changed = true; }
  }
  return { unproven, fixed };
}

/** The names of `fixed` that `cond`, when true, shows non-negative: conjuncts x >= n (n >= 0),
 *  x > n (n >= -1), n <= x, n < x. */
export function provenBy(cond: Expr, fixed: Set<string>): string[] {
  if (cond.k !== "bin") return [];
  if (cond.op === "&&") return [...provenBy(cond.a, fixed), ...provenBy(cond.b, fixed)];
  const [x, n, op] = cond.a.k === "var" ? [cond.a, cond.b, cond.op] : [cond.b, cond.a, ({ "<=": ">=", "<": ">" } as Record<string, string>)[cond.op]];
  if (x.k !== "var" || n.k !== "int" || !fixed.has(x.name)) return [];
  return (op === ">=" && n.v >= 0) || (op === ">" && n.v >= -1) ? [x.name] : [];
}

/** Runs `f` for the then branch of `if (cond)`: the names of `fixed` the test shows non-negative
 *  are taken out of `unproven` while it runs (lower-threads.ts, lower-int-division.ts). */
export function underGuard<R>(cond: Expr, unproven: Set<string>, fixed: Set<string>, f: () => R): R {
  const proven = provenBy(cond, fixed).filter((n) => unproven.delete(n));
  try {
    return f();
  } finally {
    proven.forEach((n) => unproven.add(n));
  }
}

/** Conservative: true only where e cannot be negative when no name of `unproven` appears in it. */
export function nonNegExpr(e: Expr, unproven: Set<string>): boolean {
  const nn = (x: Expr) => nonNegExpr(x, unproven);
  switch (e.k) {
    case "int": case "float": return e.v >= 0;
    case "var": return !unproven.has(e.name);
    case "cast": return nn(e.a);
    case "select": return nn(e.a) && nn(e.b);
    case "bin":
      switch (e.op) {
        case "+": case "*": case "/": case "min": case "cdiv": case "floordiv": return nn(e.a) && nn(e.b);
        // C's remainder and shifts keep the sign of the left operand; max and & need one side.
        case "%": case ">>": return nn(e.a);
        case "max": case "&": return nn(e.a) || nn(e.b);
        default: return false;
      }
    default: return false;
  }
}
