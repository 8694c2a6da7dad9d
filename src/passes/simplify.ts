// simplify: constant folding, removal of unused immutable lets, and of barriers that
// follow another barrier with nothing in between.
import type { Kernel, Stmt } from "../ir/ir.ts";
import { freeVars, mapStmts, stmtExprs, walkStmts } from "../ir/expr.ts";
import { foldStmts } from "./specialize.ts";

function usedNames(body: Stmt[]): Set<string> {
  const used = new Set<string>();
  walkStmts(body, (s) => {
    for (const e of stmtExprs(s)) freeVars(e, used);
    if (s.k === "assign") used.add(s.name);
  });
  return used;
}

function dropDeadLets(body: Stmt[]): Stmt[] {
  // Iterate: removing one let can make the lets it read dead too.
  for (;;) {
    const used = usedNames(body);
    let removed = false;
    const out = mapStmts(body, (s) => {
      if (s.k === "let" && !used.has(s.name)) { removed = true; return []; }
      return undefined;
    });
    if (!removed) return out;
    body = out;
  }
}

function dropDoubleBarriers(body: Stmt[]): Stmt[] {
  return mapStmts(body, (s) => {
    if (s.k === "for") return { ...s, body: dedupe(s.body) };
    if (s.k === "if") return { ...s, then: dedupe(s.then), else: dedupe(s.else) };
    return undefined;
  }).reduce<Stmt[]>((acc, s) => dedupeInto(acc, s), []);
}
const dedupe = (b: Stmt[]) => b.reduce<Stmt[]>((acc, s) => dedupeInto(acc, s), []);
function dedupeInto(acc: Stmt[], s: Stmt): Stmt[] {
  if (s.k === "barrier" && acc.length && acc[acc.length - 1]!.k === "barrier") return acc;
  acc.push(s);
  return acc;
}

/** Empty loops and ifs do nothing (expressions have no side effects). */
function dropEmpty(body: Stmt[]): Stmt[] {
  return mapStmts(body, (s) => {
    if (s.k === "for" && (s.body.length === 0 || s.extents.some((e) => e.k === "int" && e.v <= 0))) return [];
    if (s.k === "if" && s.then.length === 0 && s.else.length === 0) return [];
    return undefined;
  });
}

export function simplifyBody(body: Stmt[]): Stmt[] {
  return dropDoubleBarriers(dropEmpty(dropDeadLets(foldStmts(body))));
}

export function simplify(k: Kernel): Kernel {
  return { ...k, launch: { ...k.launch, body: simplifyBody(k.launch.body) } };
}
