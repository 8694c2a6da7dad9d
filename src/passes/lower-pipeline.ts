// `pipelined` loops. With cp.async and stages S >= 2, the global -> shared copies at the
// top of the body become a classic multi-stage pipeline over S shared buffers:
//   prologue: issue tiles 0 .. S-2, one commit group each
//   iteration j: wait until tile j has landed (at most S-2 groups pending), barrier,
//                issue tile j+S-1 into the stage tile j-1 used (everyone finished reading
//                it before this barrier), commit, compute on stage j % S
// Issues past the last tile are predicated off but still commit an (empty) group, so the
// group count per iteration, and with it the wait depth, stays constant.
// Otherwise: a serial loop; the copies' own barriers separate them from the compute.
import { type Expr, type Stmt, bin, int, v } from "../ir/ir.ts";
import { bufferMentions, evalConst, fold, renameBuffers, substitute, walkStmts } from "../ir/expr.ts";
import { type Ctx, info, countedLoop, guard } from "./lower-ctx.ts";
import { freeNames } from "./dequant-instance.ts";
import { pipelineIssuer } from "./lower-copy.ts";
import { lowerWgmmaPipeline, wgmmaOverlap } from "./lower-pipeline-wgmma.ts";
import { lowerTmaPipeline, tmaCopies } from "./lower-pipeline-tma.ts";

type For = Extract<Stmt, { k: "for" }>;
type Copy = Extract<Stmt, { k: "copy" }>;

/** The copies a pipelined loop can issue ahead: leading global -> shared copies. */
export function pipelineCopies(c: { bufs: Ctx["bufs"] }, loop: For): Copy[] {
  const out: Copy[] = [];
  for (const s of loop.body) {
    if (s.k !== "copy") break;
    if (c.bufs.get(s.src.buf)?.buf.scope !== "global" || c.bufs.get(s.dst.buf)?.buf.scope !== "shared") break;
    out.push(s);
  }
  return out;
}

export function pipelineStages(target: { cpAsync: boolean }, loop: For): number {
  return target.cpAsync && loop.kind === "pipelined" && (loop.stages ?? 1) >= 2 ? loop.stages! : 1;
}

/** Names bound anywhere in the statements (lets, loop variables, allocations). */
function boundNames(body: Stmt[]): Set<string> {
  const out = new Set<string>();
  walkStmts(body, (s) => {
    if (s.k === "let") out.add(s.name);
    if (s.k === "for") s.vars.forEach((x) => out.add(x));
    if (s.k === "alloc") out.add(s.buf.name);
  });
  return out;
}

/**
 * The statements placed before the wait (Ctx.beforeWait: the fused dequant's group scales)
 * run one iteration ahead: the first before the loop, then each iteration takes the values
 * read by the one before (register moves) and reads the next iteration's, so that a read's
 * latency spans a whole iteration instead of stalling the wait right after it. Their local
 * arrays (top-level allocs) get a second copy that carries the values across. Only when the
 * block is the same function of the loop variable at any iteration: it reads no buffer the
 * loop writes, no shared memory, and no variable the loop assigns. Undefined otherwise (the
 * block stays at the top of the body).
 */
function prefetchEarly(c: Ctx, loop: For, block: Stmt[]): { before: Stmt[]; top: Stmt[] } | undefined {
  if (block.length === 0 || loop.vars.length !== 1) return undefined;
  const arrays = block.filter((s): s is Extract<Stmt, { k: "alloc" }> => s.k === "alloc");
  if (arrays.length === 0 || arrays.some((a) => a.buf.scope !== "local" || evalConst(a.buf.shape.reduce((x, y) => bin("*", x, y), int(1))) === undefined)) return undefined;
  const own = new Set(arrays.map((a) => a.buf.name));
  const written = new Set<string>(), assigned = new Set<string>();
  walkStmts(loop.body, (s) => {
    if (s.k === "store" || s.k === "atomic") written.add(s.buf);
    if (s.k === "copy" || s.k === "fill") written.add(s.dst.buf);
    if (s.k === "assign") assigned.add(s.name);
  });
  const rest = block.filter((s) => s.k !== "alloc");
  let ok = true;
  for (const b of bufferMentions(rest)) {
    const scope = c.bufs.get(b)?.buf.scope;
    if (!own.has(b) && (scope !== "global" || written.has(b))) ok = false;
  }
  walkStmts(rest, (s) => { if (s.k === "store" && !own.has(s.buf)) ok = false; });
  for (const x of freeNames(rest)) if (assigned.has(x)) ok = false;
  if (!ok) return undefined;
  const kv = loop.vars[0]!, start = loop.starts[0]!, end = fold(bin("+", start, loop.extents[0]!));
  const next = new Map(arrays.map((a) => [a.buf.name, c.fresh(`${a.buf.name}_next`)]));
  const at = (i: Expr) => renameBuffers(substitute(rest, new Map([[kv, i]])), next);
  const before: Stmt[] = [];
  const moves: Stmt[] = [];
  for (const a of arrays) {
    const name = next.get(a.buf.name)!;
    const buf = { ...a.buf, name };
    const n = evalConst(a.buf.shape.reduce((x, y) => bin("*", x, y), int(1)))!;
    c.bufs.set(name, { buf, shape: [n], size: n, stages: 1 });
    before.push({ k: "alloc", buf });
    moves.push(...countedLoop(c, "pf", int(n), (i) => [{ k: "store", buf: a.buf.name, idx: [i], value: { k: "load", buf: name, idx: [i] } }], Infinity));
  }
  const kNext = fold(bin("+", v(kv), int(1)));
  before.push(...guard(bin("<", start, end), at(start)));
  return { before, top: [...arrays, ...moves, ...guard(bin("<", kNext, end), at(kNext))] };
}

export function lowerPipelined(c: Ctx, loop: For): Stmt[] {
  const S = pipelineStages(c.target, loop);
  const copies = pipelineCopies(c, loop);
  if (S < 2 || copies.length === 0 || loop.vars.length !== 1) {
    return [{ ...loop, kind: "serial", stages: undefined, body: c.lowerBody(c, loop.body) }];
  }
  for (const cp of copies)
    if (info(c, cp.dst.buf).stages < S) throw new Error(`lowerPipelined: '${cp.dst.buf}' was allocated with fewer than ${S} stages`);
  if (wgmmaOverlap(c, loop, copies, S)) {
    if (c.target.tma) {
      const tma = tmaCopies(c, copies);
      if (typeof tma !== "string") return lowerTmaPipeline(c, loop, copies, S, tma);
    }
    return lowerWgmmaPipeline(c, loop, copies, S);
  }
  const kv = loop.vars[0]!, start = loop.starts[0]!, n = loop.extents[0]!;
  const compute = loop.body.slice(copies.length);

  const issue = pipelineIssuer(c, loop, copies, { hoist: { first: int(S - 1) } });

  const prologue = countedLoop(c, "p", int(S - 1), (p) => [...issue(p, p, bin("<", p, n)), { k: "cp_commit" }]);
  const j = fold(bin("-", v(kv), start));
  const ahead = fold(bin("+", j, int(S - 1)));
  const saved = new Map(c.stage), savedEarly = c.beforeWait;
  for (const cp of copies) c.stage.set(cp.dst.buf, fold(bin("%", j, int(S))));
  // The issue first, then the compute: the order in which they take fresh names.
  const issued = issue(ahead, fold(bin("%", ahead, int(S))), bin("<", ahead, n), true);
  const early = { stmts: [] as Stmt[], bound: boundNames(compute) };
  c.beforeWait = early;
  const lowered = c.lowerBody(c, compute);
  c.beforeWait = savedEarly;
  const ahead1 = prefetchEarly(c, loop, early.stmts);
  const body: Stmt[] = [
    ...(ahead1 ? ahead1.top : early.stmts),
    { k: "cp_wait", n: S - 2 },
    { k: "barrier" },
    ...issued,
    { k: "cp_commit" },
    ...lowered,
  ];
  c.stage = saved;
  const trips = evalConst(n);
  return [
    ...issue.prelude,
    ...(ahead1 ? ahead1.before : []),
    ...prologue,
    { k: "for", vars: [kv], starts: [start], extents: [n], kind: "serial", body, loc: loop.loc },
    { k: "cp_wait", n: 0 },
    ...(trips === 0 ? [] : [{ k: "barrier" } as Stmt]),
  ];
}
