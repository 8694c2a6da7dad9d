// Runs one block of a thread-level kernel: one generator per thread, each run until its
// next synchronisation point. A barrier releases when every thread of the block waits at
// it; a warp collective (ldmatrix, mma, warp_reduce) executes when all 32 lanes of the warp wait at the
// same one. Anything else (a thread exits while others wait, lanes of a warp at different
// points) is a deadlock or divergence and is reported, never a hang.
import type { Stmt } from "../ir/ir.ts";
import { launchRegs, validMaxnreg } from "../ir/registers.ts";
import type { AllocDecl, Compiled } from "./compile.ts";
import type { ThreadState } from "./cpasync.ts";
import { Fault, InterpError, stmtHead, where } from "./fault.ts";
import { garbage, newBuf, newTrack, type RtBuf, type SharedChecker, type SharedTrack } from "./memory.ts";
import { type LdmatrixArrival, type MmaArrival, type WarpReduceArrival, ldmatrix, mma, warpReduce } from "./warp.ts";
import type { MbarWait, TmaRuntime } from "./tma.ts";
import { type WarpgroupState, type WgmmaArrival, newWarpgroupState, wgmmaCommit, wgmmaFence, wgmmaReads, wgmmaIssue, wgmmaLeft, wgmmaWait } from "./wgmma.ts";

/** Statements that the 128 threads of a warpgroup execute together. */
const WARPGROUP = new Set<Stmt["k"]>(["wgmma", "wgmma_fence", "wgmma_commit", "wgmma_wait", "setmaxnreg"]);

/** A thread waiting at `bar.sync named, count`. */
interface NamedArrival { sid: number; named: number; count: number }
type Arrival = number | LdmatrixArrival | MmaArrival | WgmmaArrival | WarpReduceArrival | MbarWait | NamedArrival | { sid: number };
const isMbarWait = (w: unknown): w is MbarWait => typeof w === "object" && w !== null && "mbar" in w;
const isNamed = (w: unknown): w is NamedArrival => typeof w === "object" && w !== null && "named" in w;


const DONE = -1;

export function runThreadBlock(c: Compiled, rtFn: (...a: unknown[]) => Generator<Arrival>, G: RtBuf[], block: number[],
                               nThreads: number, chk: SharedChecker, kernel: string, mmaTowardZero = false,
                               tma?: TmaRuntime, perSM = 1): void {
  const S: (RtBuf | undefined)[] = [];
  c.allocs.forEach((a, i) => {
    if (a.scope !== "shared") { S[i] = undefined; return; }
    if (a.over !== undefined) {
      // Placed over another buffer: views of the same elements and the same access history,
      // so the race check sees a write here against the host's last readers.
      S[i] = overlay(a, S.find((h) => h?.name === a.over));
      return;
    }
    const b = newBuf(a.name, a.dtype, "shared", a.shape, garbage(a.dtype));
    b.track = newTrack(b.size);
    S[i] = b;
  });
  chk.epoch++;
  chk.fences = new Int32Array(nThreads);
  const fail = (msg: string, t: number | string | undefined, site: number | undefined): never => {
    const at = site === undefined ? "" : `\n  at: ${stmtHead(c.sites[site])}`;
    throw new InterpError(`${where(kernel, block, t)}: ${msg}${at}`);
  };
  const gens: Generator<Arrival>[] = [];
  const wgState = new Map<number, WarpgroupState>();
  const waits: (Arrival | typeof DONE)[] = new Array(nThreads);
  const step = (t: number) => {
    let r: IteratorResult<Arrival>;
    try {
      r = gens[t]!.next();
    } catch (e) {
      if (e instanceof Fault) fail(e.message, t, e.site);
      if (e instanceof InterpError) throw e;
      fail(`internal error: ${(e as Error).stack ?? e}`, t, undefined);
    }
    waits[t] = r!.done ? DONE : r!.value;
  };
  for (let t = 0; t < nThreads; t++) {
    const ts: ThreadState = { tid: t, open: [], groups: [] };
    gens.push(rtFn(G, S, ts, t, block[0] ?? 0, block[1] ?? 0, block[2] ?? 0));
  }
  tma?.setBusy((buf, lo, hi) => {
    for (const [g0, st] of wgState) if (wgmmaReads(st, buf, lo, hi)) return g0 / 128;
    return undefined;
  });
  for (let t = 0; t < nThreads; t++) step(t);
  // setmaxnreg: each warpgroup's per-thread register limit, and the block's pool (PTX ISA:
  // dec returns registers to the pool; inc blocks until the pool has them).
  const regs = new Map<number, number>();
  let pool = 0;
  const blockedInc = new Set<number>();

  const describe = (t: number): string => {
    const w = waits[t]!;
    if (w === DONE) return `thread ${t} has exited`;
    const sid = typeof w === "number" ? w : w.sid;
    if (isMbarWait(w) && tma) return `thread ${t} waits on ${tma.describe(w)}`;
    return `thread ${t} waits at '${stmtHead(c.sites[sid])}'`;
  };

  for (;;) {
    let ran = false;
    // Threads parked in mbar.wait run on once their phase has completed (never collective).
    for (let t = 0; t < nThreads; t++) {
      const w = waits[t];
      if (!isMbarWait(w)) continue;
      let ok = false;
      try { ok = tma!.ready(w); } catch (e) { if (e instanceof Fault) fail(e.message, t, e.site); throw e; }
      if (ok) { step(t); ran = true; }
    }
    for (let base = 0; base < nThreads; base += 32) {
      let lead = -1;
      for (let l = base; l < Math.min(base + 32, nThreads); l++) { const w = waits[l]; if (typeof w === "object" && !isMbarWait(w) && !isNamed(w)) { lead = l; break; } }
      if (lead < 0) continue;
      const sid = (waits[lead] as { sid: number }).sid;
      const s = c.sites[sid]! as Stmt;
      if (WARPGROUP.has(s.k)) {
        // Runs once all four warps of the group are there; until then the others may still be
        // on their way (a mismatch that never resolves is reported as a deadlock below).
        const g0 = base - (base % 128);
        if (g0 + 128 > nThreads) fail(`warpgroup-collective ${s.k} in a partial warpgroup (block has ${nThreads} threads)`, lead, sid);
        if (base !== g0) continue;
        let all = true;
        for (let t = g0; t < g0 + 128; t++) { const w = waits[t]!; if (typeof w !== "object" || w.sid !== sid) { all = false; break; } }
        if (!all) continue;
        if (s.k === "setmaxnreg") {
          const cur = regs.get(g0) ?? launchRegs(nThreads, perSM);
          const where = `warpgroup ${g0 / 128}: setmaxnreg.${s.op} ${s.regs}`;
          if (!validMaxnreg(s.regs)) fail(`${where}: the count must be a multiple of 8 in [24, 256]`, `${g0}..${g0 + 127}`, sid);
          if (s.op === "dec" && s.regs > cur) fail(`${where} raises its limit (now ${cur}): dec must not exceed the current count`, `${g0}..${g0 + 127}`, sid);
          if (s.op === "inc" && s.regs < cur) fail(`${where} lowers its limit (now ${cur}): inc must not go below the current count`, `${g0}..${g0 + 127}`, sid);
          const need = 128 * (s.regs - cur);
          if (need > pool) { blockedInc.add(g0); continue; } // waits for another warpgroup's dec
          blockedInc.delete(g0);
          pool -= need;
          regs.set(g0, s.regs);
          for (let t = g0; t < g0 + 128; t++) step(t);
          ran = true;
          continue;
        }
        const st = wgState.get(g0) ?? newWarpgroupState();
        wgState.set(g0, st);
        try {
          if (s.k === "wgmma") wgmmaIssue(s, waits.slice(g0, g0 + 128) as WgmmaArrival[], g0, st);
          else if (s.k === "wgmma_commit") wgmmaCommit(st);
          else if (s.k === "wgmma_fence") wgmmaFence(st, chk);
          else if (s.k === "wgmma_wait") wgmmaWait(st, s.n, chk, mmaTowardZero);
        } catch (e) {
          if (e instanceof Fault) fail(e.message, `${g0}..${g0 + 127} (warpgroup ${g0 / 128})`, e.site);
          throw e;
        }
        for (let t = g0; t < g0 + 128; t++) step(t);
        ran = true;
        continue;
      }
      if (base + 32 > nThreads) fail(`warp-collective ${s.k} in a partial warp (block has ${nThreads} threads)`, lead, sid);
      for (let l = base; l < base + 32; l++) {
        const w = waits[l]!;
        if (typeof w !== "object" || w.sid !== sid)
          fail(`warp divergence at a warp-collective ${s.k}: thread ${lead} waits at it but ${describe(l)}`, l, sid);
      }
      const lanes = waits.slice(base, base + 32) as never[];
      try {
        if (s.k === "ldmatrix") ldmatrix(s, lanes as LdmatrixArrival[], base, chk);
        else if (s.k === "mma") mma(s, lanes as MmaArrival[], mmaTowardZero);
        else if (s.k === "warp_reduce") warpReduce(lanes as WarpReduceArrival[]);
        else fail(`unknown collective ${s.k}`, lead, sid);
      } catch (e) {
        if (e instanceof Fault) fail(e.message, `${base}..${base + 31} (warp ${base / 32})`, e.site);
        throw e;
      }
      for (let l = base; l < base + 32; l++) step(l);
      ran = true;
    }
    // Named barriers release once `count` threads wait at them, in whole warps.
    const named = new Map<number, number[]>();
    for (let t = 0; t < nThreads; t++) {
      const w = waits[t];
      if (!isNamed(w)) continue;
      const ts = named.get(w.named);
      if (ts) ts.push(t);
      else named.set(w.named, [t]);
    }
    for (const [id, ts] of named) {
      const count = (waits[ts[0]!] as NamedArrival).count;
      for (const t of ts) {
        const w = waits[t] as NamedArrival;
        if (w.count !== count) fail(`named barrier ${id}: thread ${ts[0]} waits for ${count} threads, thread ${t} for ${w.count}`, t, w.sid);
      }
      if (ts.length < count) continue;
      if (ts.length > count) fail(`named barrier ${id} expects ${count} threads but ${ts.length} wait at it`, ts[count]!, (waits[ts[0]!] as NamedArrival).sid);
      for (const t of ts)
        for (let l = t - (t % 32); l < Math.min(t - (t % 32) + 32, nThreads); l++)
          if (!isNamed(waits[l]) || (waits[l] as NamedArrival).named !== id)
            fail(`named barrier ${id} is released by part of warp ${Math.floor(t / 32)}: thread ${t} waits at it but ${describe(l)} (bar.sync counts whole warps)`, l, (waits[t] as NamedArrival).sid);
      // The race checker's epoch is block-wide: accesses of threads outside the barrier are
      // not checked against it (warp specialization keeps the producer off shared data).
      chk.epoch++;
      for (const t of ts) step(t);
      ran = true;
    }
    if (ran) continue;
    // A blocked setmaxnreg.inc first: it is why the others wait.
    for (const g0 of blockedInc) {
      const s = c.sites[(waits[g0] as { sid: number }).sid] as Extract<Stmt, { k: "setmaxnreg" }>;
      fail(`deadlock: warpgroup ${g0 / 128} blocks in setmaxnreg.inc ${s.regs} (now ${regs.get(g0) ?? launchRegs(nThreads, perSM)}): the block's register pool has ${pool} free registers, it needs ${128 * (s.regs - (regs.get(g0) ?? launchRegs(nThreads, perSM)))}`, g0, (waits[g0] as { sid: number }).sid);
    }
    for (const [id, ts] of named) {
      const w = waits[ts[0]!] as NamedArrival;
      const other = waits.findIndex((x) => !(isNamed(x) && x.named === id));
      fail(`deadlock: ${ts.length} of the ${w.count} threads of named barrier ${id} wait at it${other >= 0 ? `; ${describe(other)}` : ""}`, ts[0]!, w.sid);
    }
    let atBarrier = -1, exited = -1;
    for (let t = 0; t < nThreads; t++) {
      const w = waits[t]!;
      if (w === DONE) { if (exited < 0) exited = t; }
      else if (atBarrier < 0) atBarrier = t;
    }
    if (atBarrier < 0) {
      for (const [g0, st] of wgState)
        if (wgmmaLeft(st) > 0) fail(`warpgroup ${g0 / 128} ends with ${wgmmaLeft(st)} wgmma never retired by a wgmma.wait`, g0, undefined);
      const lost = tma?.leftover();
      if (lost) fail(lost, undefined, undefined);
      return; // every thread finished
    }
    for (let t = 0; t < nThreads; t++) {
      const w = waits[t];
      if (isMbarWait(w)) {
        const other = waits.findIndex((x, u) => u !== t && !isMbarWait(x));
        fail(`deadlock: ${describe(t)}, which can never complete${other >= 0 ? `; ${describe(other)}` : ""}`, t, w.sid);
      }
    }
    const sid = waits[atBarrier] as number;
    if (exited >= 0)
      fail(`deadlock: ${describe(atBarrier)} but ${describe(exited)} and will never arrive`, atBarrier, sid);
    for (let t = 0; t < nThreads; t++)
      if (waits[t] !== sid) fail(`threads wait at different barriers: ${describe(atBarrier)}, ${describe(t)}`, t, sid);
    chk.epoch++;
    for (let t = 0; t < nThreads; t++) step(t);
  }
}

/** A shared buffer placed over its host's first elements (Buffer.over). */
function overlay(a: AllocDecl, host: RtBuf | undefined): RtBuf {
  const size = a.shape.reduce((x, y) => x * y, 1);
  if (!host || host.dtype !== a.dtype || size > host.size)
    throw new InterpError(`shared buffer ${a.name} is placed over ${a.over}, which ${!host ? "is not allocated before it" : host.dtype !== a.dtype ? `has dtype ${host.dtype}, not ${a.dtype}` : `has only ${host.size} elements`}`);
  const t = host.track!;
  const sub = (x: Int32Array) => x.subarray(0, size);
  const track: SharedTrack = { wT: sub(t.wT), wE: sub(t.wE), rT: sub(t.rT), rT2: sub(t.rT2), rE: sub(t.rE), pend: sub(t.pend), pendT: sub(t.pendT), gW: sub(t.gW), gF: sub(t.gF) };
  return { name: a.name, dtype: a.dtype, scope: "shared", shape: a.shape, size, data: host.data.subarray(0, size), track };
}
