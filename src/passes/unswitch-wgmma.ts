// Loop unswitching for the wgmma a gemm's `rows` guards (lower-gemm-wgmma.ts): a warpgroup
// whose rows all lie past `rows` skips its wgmma, `if (tx / 128 * 64 < n) { wgmma ... }`.
// Inside the K loop that branch costs more than it saves: ptxas cannot tell that it is uniform
// over the warpgroup, injects warpgroup.arrive on the path and serializes every wgmma of the
// kernel (C7520, "wgmma.mma_async instructions are serialized ... in divergent path"): the MoE
// GEMMs ran 10-20% slower on an H200 with it (bench/RESULTS.md, ninth session). So the branch
// moves out of the outermost loop in which its condition does not change:
//   for (...) { A; if (c) { W }; B }   ->   if (c) { for (...) { A; W; B } } else { for (...) { A; B } }
// Both copies keep every barrier, mbarrier wait and arrive, commit and wait of the loop (a
// warpgroup that skips its wgmma still takes part in the pipeline), so the two warpgroups of a
// block may run different copies. The branch around a whole loop is what warp specialization's
// role branch already is, which ptxas accepts without serializing.
import type { Stmt } from "../ir/ir.ts";
import { freeVars, walkExpr, walkStmts } from "../ir/expr.ts";
import { printExpr } from "../ir/print.ts";
import type { Pass } from "./types.ts";

const hasWgmma = (body: Stmt[]): boolean => {
  let found = false;
  walkStmts(body, (s) => { if (s.k === "wgmma") found = true; });
  return found;
};

/** A guard around wgmma: an `if` without else whose then-branch issues wgmma and whose condition reads no memory. */
const isGuard = (s: Stmt): s is Extract<Stmt, { k: "if" }> => {
  if (s.k !== "if" || s.else.length > 0 || !hasWgmma(s.then)) return false;
  let loads = false;
  walkExpr(s.cond, (e) => { if (e.k === "load") loads = true; });
  return !loads;
};

/** Names a loop binds or changes: its variables and every let, var, assignment and atomic result inside. */
function changedIn(loop: Extract<Stmt, { k: "for" }>): Set<string> {
  const out = new Set<string>(loop.vars);
  walkStmts(loop.body, (s) => {
    if (s.k === "let" || s.k === "assign") out.add(s.name);
    else if (s.k === "for") s.vars.forEach((x) => out.add(x));
    else if (s.k === "atomic" && s.result !== undefined) out.add(s.result);
    else if (s.k === "warp_reduce") out.add(s.result);
  });
  return out;
}

/** The body with every guard of condition `cond` replaced by its then-branch (taken) or removed. */
function resolve(body: Stmt[], cond: string, taken: boolean): Stmt[] {
  const out: Stmt[] = [];
  for (const s of body) {
    if (isGuard(s) && printExpr(s.cond) === cond) { if (taken) out.push(...resolve(s.then, cond, taken)); continue; }
    if (s.k === "for") out.push({ ...s, body: resolve(s.body, cond, taken) });
    else if (s.k === "if") out.push({ ...s, then: resolve(s.then, cond, taken), else: resolve(s.else, cond, taken) });
    else out.push(s);
  }
  return out;
}

/** The first guard inside `loop` whose condition the loop does not change. */
function invariantGuard(loop: Extract<Stmt, { k: "for" }>): Extract<Stmt, { k: "if" }> | undefined {
  const changed = changedIn(loop);
  let found: Extract<Stmt, { k: "if" }> | undefined;
  walkStmts(loop.body, (s) => {
    if (!found && isGuard(s) && [...freeVars(s.cond)].every((x) => !changed.has(x))) found = s;
  });
  return found;
}

function unswitch(stmts: Stmt[]): Stmt[] {
  return stmts.map((s): Stmt => {
    if (s.k === "if") return { ...s, then: unswitch(s.then), else: unswitch(s.else) };
    if (s.k !== "for") return s;
    const g = invariantGuard(s);
    // Not here: perhaps in a loop inside (the condition changes with this loop's iterations).
    if (!g) return { ...s, body: unswitch(s.body) };
    const cond = printExpr(g.cond);
    // The copies may hold further guards of other conditions.
    return { k: "if", cond: g.cond, then: unswitch([{ ...s, body: resolve(s.body, cond, true) }]),
      else: unswitch([{ ...s, body: resolve(s.body, cond, false) }]) };
  });
}

export const unswitchWgmma: Pass = (k) => ({ ...k, launch: { ...k.launch, body: unswitch(k.launch.body) } });
