// simplify: constant folding, removal of unused immutable lets, and of barriers that
// follow another barrier with nothing in between.
import type { Expr, Kernel, Stmt } from "../ir/ir.ts";
import { type TypeEnv, fold, freeVars, mapStmts, stmtExprs, substitute, typeEnvOf, walkExpr, walkStmts } from "../ir/expr.ts";
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
  // The same named barrier twice (a persistent tile's closing `barrier 1, T` right after the
  // staged epilogue's): the same threads meet again with nothing in between.
  const last = acc[acc.length - 1];
  if (s.k === "named_barrier" && last?.k === "named_barrier" && last.id === s.id && last.count === s.count) return acc;
  // barrier; fence.proxy.async; barrier: the fence only orders this thread's earlier writes,
  // so it can move before the first barrier, which then does the second one's job.
  if (s.k === "barrier" && acc.length >= 2 && acc[acc.length - 1]!.k === "fence_async" && acc[acc.length - 2]!.k === "barrier") acc.splice(acc.length - 2, 1);
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

interface Effects { reads: Set<string>; writes: Set<string>; opaque: boolean }

/** Shared buffers the statements touch (nested bodies included). cp.async traffic and
 *  nested barriers make a segment opaque: its ordering is not analysed. */
function effects(stmts: Stmt[], shared: Set<string>, into: Effects): Effects {
  const rd = (b: string) => { if (shared.has(b)) into.reads.add(b); };
  const wr = (b: string) => { if (shared.has(b)) into.writes.add(b); };
  walkStmts(stmts, (s) => {
    switch (s.k) {
      case "barrier": case "cp_async": case "cp_wait": case "cp_commit": into.opaque = true; break;
      // Async-proxy reads of shared memory and the fences that order them: not analysed.
      case "wgmma": case "wgmma_fence": case "wgmma_commit": case "wgmma_wait": case "fence_async": into.opaque = true; break;
      case "store": wr(s.buf); break;
      case "vcopy": wr(s.dst.buf); rd(s.src.buf); break;
      case "ldmatrix": rd(s.addr.buf); break;
      case "atomic": rd(s.buf); wr(s.buf); break;
      case "mma": for (const r of [s.a, s.b, s.c]) rd(r.buf); wr(s.d.buf); break;
      case "dequant": wr(s.dst.buf); break;
      case "let": case "assign": case "if": case "for": case "alloc": case "warp_reduce": break;
      // Statements this analysis does not model (added later to the IR): keep the barriers.
      default: into.opaque = true; break;
    }
    for (const e of stmtExprs(s)) walkExpr(e, (x) => { if (x.k === "load") rd(x.buf); });
  });
  return into;
}

const meets = (a: Set<string>, b: Set<string>) => [...a].some((x) => b.has(x));

/** Removes a barrier when the code between it and its neighbouring barriers (in the same
 *  block) has no shared buffer written on one side and touched on the other. Barriers next
 *  to a block boundary are kept: the code beyond it (a previous loop iteration, the
 *  enclosing block) is not analysed. */
function dropNeedlessBarriers(body: Stmt[], shared: Set<string>): Stmt[] {
  const inner = body.map((s): Stmt => {
    if (s.k === "for") return { ...s, body: dropNeedlessBarriers(s.body, shared) };
    if (s.k === "if") return { ...s, then: dropNeedlessBarriers(s.then, shared), else: dropNeedlessBarriers(s.else, shared) };
    return s;
  });
  const segs: Stmt[][] = [[]];
  for (const s of inner) { if (s.k === "barrier") segs.push([]); else segs[segs.length - 1]!.push(s); }
  const out: Stmt[] = [...segs[0]!];
  let before: Effects | undefined; // effects since the last kept barrier (undefined: unbounded)
  for (let i = 1; i < segs.length; i++) {
    const seg = segs[i]!;
    const after = effects(seg, shared, { reads: new Set(), writes: new Set(), opaque: false });
    const last = i === segs.length - 1;
    const needed = !before || last || before.opaque || after.opaque || meets(before.writes, after.reads) ||
      meets(before.writes, after.writes) || meets(before.reads, after.writes);
    if (needed) { out.push({ k: "barrier" }); before = after; }
    else { for (const x of after.reads) before!.reads.add(x); for (const x of after.writes) before!.writes.add(x); }
    out.push(...seg);
  }
  return out;
}

/** Replaces immutable lets bound to a literal of their own dtype by the literal, in the
 *  rest of their block. Names declared more than once are left alone (no shadowing
 *  analysis needed). */
function propagateConstants(body: Stmt[], env?: TypeEnv): Stmt[] {
  const count = new Map<string, number>();
  walkStmts(body, (s) => {
    const names = s.k === "let" ? [s.name] : s.k === "for" ? s.vars : [];
    for (const n of names) count.set(n, (count.get(n) ?? 0) + 1);
  });
  const litOf = (s: Stmt): Expr | undefined => {
    if (s.k !== "let" || s.mutable || count.get(s.name) !== 1) return undefined;
    const e = s.value;
    if (e.k === "int" && (e.dtype ?? "i32") === s.dtype) return e;
    if (e.k === "float" && (e.dtype ?? "f32") === s.dtype) return e;
    return undefined;
  };
  const block = (stmts: Stmt[]): Stmt[] => {
    const out: Stmt[] = [];
    const m = new Map<string, Expr>();
    for (let s of stmts) {
      if (m.size) s = substitute([s], m)[0]!;
      if (s.k === "for") s = { ...s, body: block(s.body) };
      else if (s.k === "if") s = { ...s, then: block(s.then), else: block(s.else) };
      const lit = litOf(s.k === "let" ? { ...s, value: fold(s.value, env) } : s);
      if (lit && s.k === "let") m.set(s.name, lit);
      out.push(s);
    }
    return out;
  };
  return block(body);
}

export function simplifyBody(body: Stmt[], shared: Set<string> = new Set(), env?: TypeEnv): Stmt[] {
  const folded = foldStmts(propagateConstants(foldStmts(body, env), env), env);
  return dropNeedlessBarriers(dropDoubleBarriers(dropEmpty(dropDeadLets(folded))), shared);
}

export function simplify(k: Kernel): Kernel {
  const shared = new Set<string>();
  walkStmts(k.launch.body, (s) => { if (s.k === "alloc" && s.buf.scope === "shared") shared.add(s.buf.name); });
  return { ...k, launch: { ...k.launch, body: simplifyBody(k.launch.body, shared, typeEnvOf(k)) } };
}
