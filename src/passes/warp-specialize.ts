// warpSpecialize (Target.warpSpecialize, `--ws`): producer/consumer warp specialization of the
// TMA pipelines. lower-pipeline-tma.ts has already split each pipelined loop by role:
//
//   if (tx == 0) { mbar.init ... }  barrier
//   if (tx >= T) { setmaxnreg.dec P; if (tx == T) { ...every TMA load of the loop... } }
//   else         { setmaxnreg.inc C; ...wait full, wgmma, release empty... }
//
// where T is the kernel's `threads`. This pass adds the producer warpgroup that makes
// `tx >= T` true (threads T .. T+127) and keeps it out of everything else:
//
//   launch ... threads T + 128 {
//     ...every shared alloc...                 (one copy each: the CUDA emitter carves smem once)
//     if (tx >= T) { setmaxnreg.dec P; the producer's slice }
//                                               lets, loops and ifs around a role split, the
//                                               split's producer side, and the barrier just
//                                               before it (after the inits), which becomes
//                                               `barrier 2, T + 128` in both roles (so does the
//                                               one after the inits of a running pipeline's
//                                               setup, ahead of a persistent tile loop)
//     else { setmaxnreg.inc C; the body, with each split's consumer side, and every other
//            barrier a named barrier `barrier 1, T` over the consumer threads }
//   (each role's setmaxnreg moves to its start, so a persistent tile loop runs it once)
//   }
//
// The producer slice must not compute anything the consumers see: it only keeps scalar lets
// and assignments that read nothing but global tensors (block coordinates, the persistent
// tile loop's index, a MoE block's expert id); one it needs that reads shared or local memory
// is a user error (build without --ws). It
// runs after persistentGrid, so a persistent tile loop is sliced like any other loop.
//
// Register counts (setmaxnreg): a block of T + 128 threads starts at R = launchRegs(T + 128, B)
// per thread (src/ir/registers.ts), B the blocks per SM planned for (wsBlocksPerSM: one for big
// tiles, up to four for small ones; Launch.perSM, `per_sm B` in the IR text). The producer drops to 40 (it holds addresses only); the
// consumers take what that frees, C = the largest multiple of 8 with T * C + 128 * 40 <=
// (T + 128) * R, at most 256; inc only when C > R. T = 256: R = 168, C = 232.
import { type Expr, type Kernel, type Stmt, bin, int, v } from "../ir/ir.ts";
import { evalConst, stmtExprs, walkExpr, walkStmts } from "../ir/expr.ts";
import { BLOCK_RESERVED_SHARED, launchRegs, SM_SHARED_BYTES } from "../ir/registers.ts";
import { userError } from "../util/user-error.ts";
import type { PassOptions } from "./types.ts";

/** Per-thread registers of the producer warpgroup after setmaxnreg.dec. */
export const PRODUCER_REGS = 40;
/** The consumers' named barrier (0 is __syncthreads'). */
export const CONSUMER_BARRIER = 1;
/** The named barrier both roles take after the mbarrier inits (all T + 128 threads: the
 *  producer and the consumers reach it at different statements, which bar.sync 0 allows on
 *  the GPU but an id of their own makes explicit, and the interpreter matches by id). */
export const ROLE_BARRIER = 2;

/** setmaxnreg counts for T consumer threads plus the producer warpgroup, `perSM` such blocks
 *  on an SM (consumer undefined: the launch count is already all the consumers can get). */
export function maxnregCounts(T: number, perSM = 1): { producer: number; consumer?: number } {
  const R = launchRegs(T + 128, perSM);
  const producer = Math.min(PRODUCER_REGS, R);
  const consumer = Math.min(256, Math.floor(((T + 128) * R - 128 * producer) / T / 8) * 8);
  return consumer > R ? { producer, consumer } : { producer };
}

/** Registers a consumer thread needs beyond its accumulators (addresses, loop state, wgmma
 *  descriptors, the epilogue's temporaries): the 128x256 GEMM's consumers (128 accumulator
 *  registers) run without spills at 232, the 64x64 grouped GEMMs' (32) at 104 and up. */
export const CONSUMER_REG_HEADROOM = 72;
/** At most this many warp-specialized blocks share an SM (beyond it the producer warpgroups,
 *  one per block, take more issue slots than they save). */
export const MAX_WS_BLOCKS_PER_SM = 4;

/**
 * How many warp-specialized blocks of T consumer threads the register budget plans for on one
 * SM: the most (up to MAX_WS_BLOCKS_PER_SM) whose consumers still get their accumulators plus
 * CONSUMER_REG_HEADROOM registers and whose shared memory fits the SM together. One block per
 * SM (the default plan) gives a big tile's consumers up to 232 registers; a small tile (the MoE
 * layer's 16- and 64-row grouped GEMMs, thousands of short blocks) needs far fewer, and with
 * one block per SM each SM idles through every block's pipeline fill and epilogue. Measured on
 * an H200: Qwen3's 64x64 down projection took 1.5 ms at one block per SM (bench/RESULTS.md).
 */
export function wsBlocksPerSM(T: number, accRegs: number, smemBytes: number): number {
  let best = 1;
  for (let b = 2; b <= MAX_WS_BLOCKS_PER_SM; b++) {
    const { consumer } = maxnregCounts(T, b);
    const regs = consumer ?? launchRegs(T + 128, b);
    if (regs < accRegs + CONSUMER_REG_HEADROOM || (smemBytes + BLOCK_RESERVED_SHARED) * b > SM_SHARED_BYTES) break;
    best = b;
  }
  return best;
}

type If = Extract<Stmt, { k: "if" }>;

export function warpSpecialize(k: Kernel, opts: PassOptions): Kernel {
  if (!opts.target.warpSpecialize) return k;
  const L = k.launch;
  if (L.level !== "thread" || !L.threadVar) throw new Error("warpSpecialize runs on thread-level kernels (after lowerToThreads)");
  const T = evalConst(L.threads);
  if (T === undefined) throw new Error("warpSpecialize: the block's thread count must be constant");
  const tx = L.threadVar;
  const isSplit = (s: Stmt): boolean =>
    s.k === "if" && s.then[0]?.k === "setmaxnreg" && s.then[0].op === "dec" &&
    s.cond.k === "bin" && s.cond.op === ">=" && s.cond.a.k === "var" && s.cond.a.name === tx && evalConst(s.cond.b) === T;
  const splits: If[] = [];
  const find = (ss: Stmt[]) => { for (const s of ss) { if (isSplit(s)) splits.push(s as If); else if (s.k === "for") find(s.body); else if (s.k === "if") { find(s.then); find(s.else); } } };
  find(L.body);
  if (splits.length === 0) return k; // no loop took the TMA path: nothing to specialize
  // Each role sets its register limit once, first thing: a split inside a persistent tile loop
  // would otherwise repeat it per tile (and each setmaxnreg needs its warpgroup synchronised).
  const regs = (ss: Stmt[]) => ss[0]?.k === "setmaxnreg" ? [ss[0]] : [];
  const dec = regs(splits[0]!.then), inc = regs(splits[0]!.else);
  if (T + 128 > 1024) throw userError(`warp specialization adds a producer warpgroup to the ${T} threads of '${k.name}', over the 1024 a block may have; use fewer warps or build without --ws`);

  const shared: Stmt[] = [];
  const hoist = (ss: Stmt[]): Stmt[] => ss.flatMap((s): Stmt[] => {
    if (s.k === "alloc" && s.buf.scope === "shared") {
      if (!shared.some((x) => x.k === "alloc" && x.buf.name === s.buf.name)) shared.push(s);
      return [];
    }
    if (s.k === "for") return [{ ...s, body: hoist(s.body) }];
    if (s.k === "if") return [{ ...s, then: hoist(s.then), else: hoist(s.else) }];
    return [s];
  });
  const body = hoist(L.body);

  const globals = new Set(k.params.filter((p) => p.kind === "tensor").map((p) => p.name));
  const dropped = new Set<string>();
  const producer = producerSlice(body, isSplit, T, globals, dropped);
  for (const s of flat(producer))
    for (const e of stmtExprs(s))
      walkExpr(e, (x) => {
        if (x.k === "var" && dropped.has(x.name))
          throw userError(`warp specialization of '${k.name}': the producer warpgroup needs '${x.name}', which is computed from shared or local memory that only the consumer warps hold; build without --ws`);
      });
  const consumer = consumerPart(body, isSplit, T);
  const ws: Stmt = { k: "if", cond: bin(">=", v(tx), int(T)), then: [...dec, ...producer], else: [...inc, ...consumer] };
  return { ...k, launch: { ...L, threads: int(T + 128), body: [...shared, ws] } };
}

/** Does the statement read shared or local memory (the producer may read only globals)? */
const readsNonGlobal = (s: Stmt, globals: Set<string>): boolean => {
  let found = false;
  for (const e of stmtExprs(s)) walkExpr(e, (x: Expr) => { if (x.k === "load" && !globals.has(x.buf)) found = true; });
  return found;
};
const flat = (ss: Stmt[]): Stmt[] => { const out: Stmt[] = []; walkStmts(ss, (s) => { out.push(s); }); return out; };

/** The barrier both roles take: the one that publishes the mbarrier inits, in front of a
 *  role split, or at the end of the launch's setup (the running pipeline of persistent
 *  blocks, lower-pipeline-tma.ts: its inits precede the tile loop, the splits are inside). */
function isRoleBarrier(ss: Stmt[], i: number, isSplit: (s: Stmt) => boolean): boolean {
  const next = ss[i + 1], prev = ss[i - 1];
  if (next && isSplit(next)) return true;
  return prev?.k === "if" && prev.then.some((x) => x.k === "mbar_init");
}

/** What the producer warpgroup runs: the control flow around the role splits. */
function producerSlice(ss: Stmt[], isSplit: (s: Stmt) => boolean, T: number, globals: Set<string>, dropped: Set<string>): Stmt[] {
  const out: Stmt[] = [];
  ss.forEach((s, i) => {
    if (isSplit(s)) out.push(...(s as If).then.slice(1)); // less its setmaxnreg.dec (hoisted)
    else if (s.k === "barrier") { if (isRoleBarrier(ss, i, isSplit)) out.push({ k: "named_barrier", id: ROLE_BARRIER, count: T + 128, loc: s.loc }); }
    else if (s.k === "let" || s.k === "assign") { if (readsNonGlobal(s, globals)) dropped.add(s.name); else out.push(s); }
    else if (s.k === "for") { const b = producerSlice(s.body, isSplit, T, globals, dropped); if (b.some(kept)) out.push({ ...s, body: b }); }
    else if (s.k === "if") {
      const t = producerSlice(s.then, isSplit, T, globals, dropped), e = producerSlice(s.else, isSplit, T, globals, dropped);
      if (t.some(kept) || e.some(kept)) out.push({ ...s, then: t, else: e });
    }
  });
  return out;
}
/** A statement that keeps its enclosing loop or if in the producer's slice: anything but a
 *  let (scoped to the block, so it matters only to what the block keeps). An assignment
 *  counts: it changes a variable after the block, e.g. a grouped tile order that reassigns
 *  the block coordinates under `if (GROUP_M > 1)`; dropping it had the producer load another
 *  block's tiles (and wait on barriers its consumers never reach: the MoE layer hung). */
const kept = (s: Stmt): boolean => s.k !== "let";

/** What the consumer warps run: the body with the splits' consumer sides and named barriers. */
function consumerPart(ss: Stmt[], isSplit: (s: Stmt) => boolean, T: number): Stmt[] {
  return ss.flatMap((s, i): Stmt[] => {
    if (isSplit(s)) { const e = (s as If).else; return consumerPart(e[0]?.k === "setmaxnreg" ? e.slice(1) : e, isSplit, T); }
    if (s.k === "barrier") return isRoleBarrier(ss, i, isSplit) ? [{ k: "named_barrier", id: ROLE_BARRIER, count: T + 128, loc: s.loc }] : [{ k: "named_barrier", id: CONSUMER_BARRIER, count: T, loc: s.loc }];
    if (s.k === "for") return [{ ...s, body: consumerPart(s.body, isSplit, T) }];
    if (s.k === "if") return [{ ...s, then: consumerPart(s.then, isSplit, T), else: consumerPart(s.else, isSplit, T) }];
    return [s];
  });
}
