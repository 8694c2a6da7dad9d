// `pipelined` loops. With cp.async and stages S >= 2, the global -> shared copies at the
// top of the body become a classic multi-stage pipeline over S shared buffers:
//   prologue: issue tiles 0 .. S-2, one commit group each
//   iteration j: wait until tile j has landed (at most S-2 groups pending), barrier,
//                issue tile j+S-1 into the stage tile j-1 used (everyone finished reading
//                it before this barrier), commit, compute on stage j % S
// Issues past the last tile are predicated off but still commit an (empty) group, so the
// group count per iteration, and with it the wait depth, stays constant.
// Otherwise: a serial loop; the copies' own barriers separate them from the compute.
import { type Stmt, bin, int, v } from "../ir/ir.ts";
import { evalConst, fold, walkStmts } from "../ir/expr.ts";
import { type Ctx, info, countedLoop } from "./lower-ctx.ts";
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

  const issue = pipelineIssuer(c, loop, copies);

  const prologue = countedLoop(c, "p", int(S - 1), (p) => [...issue(p, p, bin("<", p, n)), { k: "cp_commit" }]);
  const j = fold(bin("-", v(kv), start));
  const ahead = fold(bin("+", j, int(S - 1)));
  const saved = new Map(c.stage), savedEarly = c.beforeWait;
  for (const cp of copies) c.stage.set(cp.dst.buf, fold(bin("%", j, int(S))));
  // The issue first, then the compute: the order in which they take fresh names.
  const issued = issue(ahead, fold(bin("%", ahead, int(S))), bin("<", ahead, n));
  const early = { stmts: [] as Stmt[], bound: boundNames(compute) };
  c.beforeWait = early;
  const lowered = c.lowerBody(c, compute);
  c.beforeWait = savedEarly;
  const body: Stmt[] = [
    ...early.stmts,
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
    ...prologue,
    { k: "for", vars: [kv], starts: [start], extents: [n], kind: "serial", body, loc: loop.loc },
    { k: "cp_wait", n: 0 },
    ...(trips === 0 ? [] : [{ k: "barrier" } as Stmt]),
  ];
}
