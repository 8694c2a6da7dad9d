// A cp.async pipeline whose loop ends in a wgmma gemm: the wgmma of tile j keeps running
// while the loop issues the loads of later tiles and the wgmma of tile j + 1 (one commit group
// in flight, `wgmma.wait 1`), instead of waiting for it before the next iteration starts.
//
// With S stages, the tile being multiplied and the one still in flight each hold a stage, so
// S - 2 tiles are loaded ahead (lower-pipeline.ts loads S - 1 ahead):
//   prologue: issue tiles 0 .. S-3, one cp.async group each; wgmma.wait 0 (see below)
//   iteration j: cp.wait S-3              tile j has landed (this thread's copies)
//                fence.proxy.async        ... and is visible to the async proxy
//                barrier                  every thread's copies of tile j are in; every
//                                         warpgroup has retired the wgmma of tile j-2
//                issue tile j+S-2 into stage (j+S-2) % S = (j-2) % S, commit
//                wgmma of tile j (stage j % S), commit, wgmma.wait 1 (retires tile j-1)
//   after the loop: wgmma.wait 0, cp.wait 0, barrier
// The gemm must be the last statement of the body and its accumulator unused elsewhere in the
// loop: between iterations the accumulator is still being written by the hardware.
import { type Stmt, bin, int, v } from "../ir/ir.ts";
import { fold, walkExpr, walkStmts, stmtExprs } from "../ir/expr.ts";
import { type Ctx, countedLoop, info } from "./lower-ctx.ts";
import { pipelineIssuer } from "./lower-copy.ts";

type For = Extract<Stmt, { k: "for" }>;
type Copy = Extract<Stmt, { k: "copy" }>;

/** Does this pipelined loop qualify (see above)? */
export function wgmmaOverlap(c: Ctx, loop: For, copies: Copy[], S: number): boolean {
  if (!c.target.wgmma || S < 3 || loop.vars.length !== 1) return false;
  const compute = loop.body.slice(copies.length);
  const last = compute[compute.length - 1];
  if (!last || last.k !== "gemm") return false;
  if (info(c, last.c.buf).buf.layout?.kind !== "wgmma_acc") return false;
  const dsts = new Set(copies.map((cp) => cp.dst.buf));
  // A register-A dequant gemm (dequant-wgmma.ts) reads only its activation tile asynchronously.
  if (!dsts.has(last.a.buf) || !(dsts.has(last.b.buf) || c.dequantGemms.has(last))) return false;
  let used = false;
  walkStmts(compute.slice(0, -1), (s) => {
    if ((s.k === "store" && s.buf === last.c.buf) || (s.k === "copy" && (s.src.buf === last.c.buf || s.dst.buf === last.c.buf))
      || (s.k === "fill" && s.dst.buf === last.c.buf) || (s.k === "gemm" && s.c.buf === last.c.buf)) used = true;
    for (const e of stmtExprs(s)) walkExpr(e, (x) => { if (x.k === "load" && x.buf === last.c.buf) used = true; });
  });
  return !used;
}

export function lowerWgmmaPipeline(c: Ctx, loop: For, copies: Copy[], S: number): Stmt[] {
  const kv = loop.vars[0]!, start = loop.starts[0]!, n = loop.extents[0]!;
  const compute = loop.body.slice(copies.length);
  const issue = pipelineIssuer(c, loop, copies);
  const prologue = countedLoop(c, "p", int(S - 2), (p) => [...issue(p, p, bin("<", p, n)), { k: "cp_commit" }]);
  const j = fold(bin("-", v(kv), start));
  const ahead = fold(bin("+", j, int(S - 2)));
  const saved = new Map(c.stage);
  for (const cp of copies) c.stage.set(cp.dst.buf, fold(bin("%", j, int(S))));
  const prev = c.wgmmaInPipeline;
  c.wgmmaInPipeline = true;
  const body: Stmt[] = [
    { k: "cp_wait", n: S - 3 },
    { k: "fence_async" },
    { k: "barrier" },
    ...issue(ahead, fold(bin("%", ahead, int(S))), bin("<", ahead, n)),
    { k: "cp_commit" },
    ...c.lowerBody(c, compute),
  ];
  c.wgmmaInPipeline = prev;
  c.stage = saved;
  return [
    ...issue.prelude,
    ...prologue,
    // Nothing is in flight yet; the wait marks where the accumulator's last non-wgmma write
    // (its fill) must have happened. Without it nvcc may sink the fill into the zero-trip path
    // of the loop, past the wgmma of the other path, and ptxas then serializes every wgmma.
    { k: "wgmma_wait", n: 0 },
    { k: "for", vars: [kv], starts: [start], extents: [n], kind: "serial", body, loc: loop.loc },
    { k: "wgmma_wait", n: 0 },
    { k: "cp_wait", n: 0 },
    { k: "barrier" },
  ];
}
