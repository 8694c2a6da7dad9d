// cp.async, cp.async.commit_group, cp.async.wait_group and plain vector copies at thread
// level. An async copy reads global memory when issued and lands in shared memory when a
// wait retires its group; until then the destination elements are marked pending, so that
// touching them is reported as a missing wait.
import { byteSize } from "../ir/ir.ts";
import { decode, encode, roundTo } from "../numeric/dtype.ts";
import { Fault } from "./fault.ts";
import type { RtBuf, SharedChecker } from "./memory.ts";

interface PendingCopy { dst: RtBuf; at: number; vals: Float64Array; tid: number }

export interface ThreadState {
  tid: number;
  open: PendingCopy[];
  groups: PendingCopy[][];
}

/** Element values moved between buffers as bits: equal dtypes copy, equal widths reinterpret. */
function moveBits(src: RtBuf, vals: Float64Array, dst: RtBuf, site: number): Float64Array {
  if (src.dtype === dst.dtype) return vals;
  const bytes = encode(src.dtype, vals);
  if (bytes.length % byteSize(dst.dtype) !== 0) throw new Fault(`copy from ${src.dtype} ${src.name} to ${dst.dtype} ${dst.name}: sizes do not match`, site);
  return decode(dst.dtype, bytes);
}

function span(b: RtBuf, at: number, n: number, site: number, what: string): void {
  if (!(at >= 0 && at + n <= b.size)) throw new Fault(`${what}: ${b.name}[${at} .. ${at + n - 1}] is out of bounds (${b.size} elements)`, site);
  if (b.scope !== "local" && b.scope !== "fragment" && at % n !== 0)
    throw new Fault(`${what}: ${b.scope} ${b.name}[${at}] is not aligned to the ${n}-element vector`, site);
}

export function makeCopies(chk: SharedChecker) {
  const readAll = (b: RtBuf, at: number, n: number, tid: number, site: number) => {
    if (b.track) for (let j = 0; j < n; j++) chk.read(b, at + j, tid, site);
    return b.data.slice(at, at + n);
  };
  const writeAll = (b: RtBuf, at: number, vals: Float64Array, tid: number, site: number) => {
    if (b.track) for (let j = 0; j < vals.length; j++) chk.write(b, at + j, tid, site);
    b.data.set(vals, at);
  };

  function vcopy(ts: ThreadState, site: number, dst: RtBuf, di: number, src: RtBuf, si: number, lanes: number, convert = false): void {
    span(src, si, lanes, site, "vcopy source");
    const raw = readAll(src, si, lanes, ts.tid, site);
    const vals = convert ? raw.map((x) => roundTo(dst.dtype, x)) : moveBits(src, raw, dst, site);
    span(dst, di, vals.length, site, "vcopy destination");
    writeAll(dst, di, vals, ts.tid, site);
  }
  function vzero(ts: ThreadState, site: number, dst: RtBuf, di: number, lanes: number): void {
    if (dst.scope === "global") return;
    span(dst, di, lanes, site, "vcopy destination");
    writeAll(dst, di, new Float64Array(lanes), ts.tid, site);
  }

  function issue(ts: ThreadState, site: number, dst: RtBuf, di: number, vals: Float64Array): void {
    if (dst.scope !== "shared") throw new Fault(`cp.async destination ${dst.name} is ${dst.scope}, not shared`, site);
    span(dst, di, vals.length, site, "cp.async destination");
    const tr = dst.track!;
    for (let j = 0; j < vals.length; j++) {
      chk.write(dst, di + j, ts.tid, site);
      tr.pend[di + j]!++;
      tr.pendT[di + j] = ts.tid;
    }
    ts.open.push({ dst, at: di, vals, tid: ts.tid });
  }
  function cpa(ts: ThreadState, site: number, dst: RtBuf, di: number, src: RtBuf, si: number, bytes: number): void {
    if (bytes !== 4 && bytes !== 8 && bytes !== 16) throw new Fault(`cp.async of ${bytes} bytes (4, 8 or 16 allowed)`, site);
    if (src.scope !== "global") throw new Fault(`cp.async source ${src.name} is ${src.scope}, not global`, site);
    const n = bytes / byteSize(src.dtype);
    span(src, si, n, site, "cp.async source");
    issue(ts, site, dst, di, moveBits(src, src.data.slice(si, si + n), dst, site));
  }
  function cpz(ts: ThreadState, site: number, dst: RtBuf, di: number, bytes: number): void {
    issue(ts, site, dst, di, new Float64Array(bytes / byteSize(dst.dtype)));
  }
  function cpCommit(ts: ThreadState): void {
    ts.groups.push(ts.open);
    ts.open = [];
  }
  function cpWait(ts: ThreadState, n: number, site: number): void {
    while (ts.groups.length > n) {
      for (const p of ts.groups.shift()!) {
        const tr = p.dst.track!;
        for (let j = 0; j < p.vals.length; j++) {
          tr.pend[p.at + j]!--;
          chk.write(p.dst, p.at + j, p.tid, site, true);
        }
        p.dst.data.set(p.vals, p.at);
      }
    }
  }
  return { vcopy, vzero, cpa, cpz, cpCommit, cpWait };
}
