// mbarriers and TMA tile loads (sm_90a) in the interpreter, written from the PTX ISA
// (mbarrier, cp.async.bulk.tensor) independently of the lowering that emits them:
//  - an mbarrier (one i64 element of a shared buffer) counts a phase's pending arrivals and
//    its transaction bytes: arrive.expect_tx adds bytes to wait for, TMA copies deliver them.
//    The phase completes when no arrival is pending and the delivered bytes equal the
//    announced ones; the phase number then advances, and try_wait.parity P succeeds while the
//    current phase's parity differs from P (the phase of parity P is done).
//  - TMA copies land as late as the hardware may let them: when a thread waits on their
//    barrier (or the barrier's next phase starts). Until then their destination elements are
//    pending, so a read of a stage before its barrier completed (no wait, a wait on the wrong
//    phase) is a fault, as is a wgmma that retires after its stage was refilled.
//  - more bytes delivered than announced (a missing or short expect_tx), more arrivals than
//    the count, use before mbar.init, TMA on a barrier whose init was never fenced, and
//    copies still in flight when the block ends are faults; a wait that can never complete
//    is reported as a deadlock by the scheduler (threads.ts).
// The TMA box: element (r, c) of a [rows, cols] box at coordinates (y, x) is the tensor's
// element (y + r, x + c), zero outside the tensor; it lands at byte offset (r * cols + c) * size
// from the destination, with a W-byte swizzle XORing address bits [4, 4 + log2(W / 16)) with
// bits [7, ...) (destinations are taken to start at multiples of 8 * W bytes; checked).
import { byteSize } from "../ir/ir.ts";
import { Fault } from "./fault.ts";
import type { RtBuf, SharedChecker } from "./memory.ts";

interface Landing { dst: RtBuf; at: number[]; vals: number[]; bytes: number; tid: number }
interface Mbar { count: number; pending: number; tx: number; delivered: number; phase: number; copies: Landing[]; initBy: number; fenced: boolean }

export interface MbarWait { sid: number; mbar: RtBuf; off: number; parity: number }

export function makeTma(chk: SharedChecker) {
  /** Set by the scheduler for each block: which warpgroup still has a wgmma reading [lo, hi) of buf. */
  let busy: (buf: RtBuf, lo: number, hi: number) => number | undefined = () => undefined;
  const bars = new WeakMap<RtBuf, Map<number, Mbar>>();
  const live = new Set<{ buf: RtBuf; off: number; m: Mbar }>();
  const name = (b: RtBuf, off: number) => `${b.name}[${off}]`;

  function get(b: RtBuf, off: number, site: number, what: string): Mbar {
    const m = bars.get(b)?.get(off);
    if (!m) throw new Fault(`${what} on ${name(b, off)}, which no mbar.init has initialised`, site);
    return m;
  }

  /** Completes the current phase if everything it waits for is in. */
  function tryComplete(b: RtBuf, off: number, m: Mbar, site: number): boolean {
    if (m.delivered > m.tx)
      throw new Fault(`TMA copies deliver ${m.delivered} bytes on mbarrier ${name(b, off)} in a phase whose arrive.expect_tx announced ${m.tx}: missing or short expect_tx`, site);
    if (m.pending > 0 || m.delivered !== m.tx) return false;
    for (const l of m.copies) {
      const tr = l.dst.track!;
      l.at.forEach((e, j) => {
        tr.pend[e]!--;
        tr.gW[e] = -1; // written through the async proxy: no proxy fence needed before wgmma
        l.dst.data[e] = l.vals[j]!;
      });
    }
    m.copies = [];
    m.phase++;
    m.pending = m.count;
    m.tx = 0;
    m.delivered = 0;
    return true;
  }

  function mbarInit(tid: number, site: number, b: RtBuf, off: number, count: number): void {
    if (b.scope !== "shared" || b.dtype !== "i64") throw new Fault(`mbar.init on ${b.scope} ${b.dtype} ${b.name}; an mbarrier is a shared i64`, site);
    const old = bars.get(b)?.get(off);
    if (old && old.copies.length > 0) throw new Fault(`mbar.init on ${name(b, off)} while TMA copies complete on it`, site);
    if (b.track) chk.write(b, off, tid, site);
    let per = bars.get(b);
    if (!per) bars.set(b, (per = new Map()));
    const m: Mbar = { count, pending: count, tx: 0, delivered: 0, phase: 0, copies: [], initBy: tid, fenced: false };
    per.set(off, m);
    live.add({ buf: b, off, m });
  }
  function mbarFenceInit(tid: number): void {
    for (const x of live) if (x.m.initBy === tid) x.m.fenced = true;
  }
  function mbarArrive(tid: number, site: number, b: RtBuf, off: number, tx: number): void {
    const m = get(b, off, site, "mbar.arrive");
    if (b.track) chk.read(b, off, tid, site);
    tryComplete(b, off, m, site); // a phase that was complete ends before this arrival counts
    if (m.pending === 0) throw new Fault(`mbar.arrive on ${name(b, off)}: more arrivals than its count ${m.count} in one phase`, site);
    m.tx += tx;
    m.pending--;
    if (m.copies.length === 0) tryComplete(b, off, m, site); // nothing to land: completes now
  }
  /** try_wait.parity: true once the phase of this parity has completed. */
  function mbarTry(tid: number, site: number, b: RtBuf, off: number, parity: number): boolean {
    if (parity !== 0 && parity !== 1) throw new Fault(`mbar.wait parity ${parity} must be 0 or 1`, site);
    const m = get(b, off, site, "mbar.wait");
    if (b.track) chk.read(b, off, tid, site);
    if ((m.phase & 1) !== parity) return true;
    return tryComplete(b, off, m, site);
  }
  function tma(tid: number, site: number, g: RtBuf, box: number[], swizzle: number, dst: RtBuf, dOff: number, coords: number[], b: RtBuf, off: number): void {
    const m = get(b, off, site, "tma.load");
    if (!m.fenced)
      throw new Fault(`tma.load completes on ${name(b, off)}, whose mbar.init (thread ${m.initBy}) was not followed by mbar.fence_init: the TMA unit may not see it`, site);
    if (g.scope !== "global") throw new Fault(`tma.load source ${g.name} is ${g.scope}, not global`, site);
    if (dst.scope !== "shared") throw new Fault(`tma.load destination ${dst.name} is ${dst.scope}, not shared`, site);
    if (g.dtype !== dst.dtype) throw new Fault(`tma.load from ${g.dtype} ${g.name} into ${dst.dtype} ${dst.name}`, site);
    if (box.length !== 2 || coords.length !== 2 || g.shape.length !== 2) throw new Fault(`tma.load here is 2-d (box [${box.join(", ")}] of ${g.name}[${g.shape.join(", ")}])`, site);
    const size = byteSize(g.dtype);
    const [rows, cols] = box as [number, number];
    const start = dOff * size;
    if (start % 128 !== 0 || (swizzle && start % (8 * swizzle) !== 0))
      throw new Fault(`tma.load destination ${dst.name}[${dOff}] is not aligned to ${swizzle ? 8 * swizzle : 128} bytes`, site);
    if (swizzle && cols * size !== swizzle) throw new Fault(`tma.load box rows of ${cols * size} bytes with a ${swizzle}-byte swizzle (they must match)`, site);
    const reader = busy(dst, dOff, dOff + (rows * cols * size) / byteSize(dst.dtype));
    if (reader !== undefined)
      throw new Fault(`tma.load refills ${dst.name}[${dOff}..] while a wgmma of warpgroup ${reader} that reads it has not retired: the stage was released too early`, site);
    tryComplete(b, off, m, site);
    const at: number[] = [], vals: number[] = [];
    const [y, x] = coords as [number, number];
    const tr = dst.track!;
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        let o = start + (r * cols + c) * size;
        if (swizzle) o ^= ((o >> 7) & (swizzle / 16 - 1)) << 4;
        const e = o / size;
        if (!(e >= 0 && e < dst.size)) throw new Fault(`tma.load box element (${r}, ${c}) lands at ${dst.name}[${e}], outside the buffer (${dst.size})`, site);
        const gy = y + r, gx = x + c;
        const inside = gy >= 0 && gy < g.shape[0]! && gx >= 0 && gx < g.shape[1]!;
        if (tr.pend[e]! > 0) throw new Fault(`tma.load into ${dst.name}[${e}] while an earlier async copy into it (thread ${tr.pendT[e]}) is still pending`, site);
        tr.pend[e]!++;
        tr.pendT[e] = tid;
        at.push(e);
        vals.push(inside ? g.data[gy * g.shape[1]! + gx]! : 0);
      }
    m.copies.push({ dst, at, vals, bytes: rows * cols * size, tid });
    m.delivered += rows * cols * size;
    if (m.delivered > m.tx && m.pending === 0)
      throw new Fault(`TMA copies deliver ${m.delivered} bytes on mbarrier ${name(b, off)} in a phase whose arrive.expect_tx announced ${m.tx}: missing or short expect_tx`, site);
  }
  /** The scheduler's test for a thread parked in mbar.wait (may complete the phase). */
  function ready(w: MbarWait): boolean {
    const m = get(w.mbar, w.off, w.sid, "mbar.wait");
    return (m.phase & 1) !== w.parity || tryComplete(w.mbar, w.off, m, w.sid);
  }
  function describe(w: MbarWait): string {
    const m = bars.get(w.mbar)?.get(w.off);
    if (!m) return `mbarrier ${name(w.mbar, w.off)} (not initialised)`;
    return `mbarrier ${name(w.mbar, w.off)} for the phase of parity ${w.parity} (phase ${m.phase} is current: ${m.pending} of ${m.count} arrivals pending, ${m.delivered} of ${m.tx} announced bytes delivered)`;
  }
  /** Called when a block ends: copies that never completed would be lost. */
  function leftover(): string | undefined {
    let out: string | undefined;
    for (const { buf, off, m } of live)
      if (m.copies.length > 0 && out === undefined)
        out = `TMA copies on mbarrier ${name(buf, off)} were never waited for (${m.delivered} bytes delivered, ${m.tx} announced by expect_tx, ${m.pending} arrivals pending)`;
    live.clear();
    return out;
  }
  const setBusy = (f: typeof busy) => { busy = f; };
  return { setBusy, mbarInit, mbarFenceInit, mbarArrive, mbarTry, tma, ready, describe, leftover };
}

export type TmaRuntime = ReturnType<typeof makeTma>;
