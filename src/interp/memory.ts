// Buffers at run time and the checked element accesses that generated code calls.
// Every access is bounds-checked per dimension; shared accesses at thread level also
// feed the race detector and the cp.async pending-write check.
import type { DType, Scope } from "../ir/ir.ts";
import { Fault } from "./fault.ts";

export interface RtBuf {
  name: string;
  dtype: DType;
  scope: Scope;
  shape: number[];
  size: number;
  data: Float64Array;
  /** Shared buffers at thread level only: per-element access history. */
  track?: SharedTrack;
  /** Local buffers read by wgmma as register A operands (interp/wgmma.ts): per element the
   *  checker's clock at its last write, and how many issued, unretired wgmma read it. */
  reg?: { w: Float64Array; busy: Int32Array };
}

/** Last writer (thread, epoch), up to two distinct readers in the epoch, and pending cp.async writes. */
export interface SharedTrack {
  wT: Int32Array; wE: Int32Array;
  rT: Int32Array; rT2: Int32Array; rE: Int32Array;
  pend: Int32Array; pendT: Int32Array;
  /** Last writer through the generic proxy, and that thread's fence.proxy.async count then. */
  gW: Int32Array; gF: Int32Array;
}

export function newBuf(name: string, dtype: DType, scope: Scope, shape: number[], fill: number, data?: Float64Array): RtBuf {
  const size = shape.reduce((a, b) => a * b, 1);
  if (!Number.isInteger(size) || size < 0) throw new Error(`buffer ${name}: bad shape [${shape.join(", ")}]`);
  return { name, dtype, scope, shape, size, data: data ?? new Float64Array(size).fill(fill) };
}

export function newTrack(size: number): SharedTrack {
  const m = () => new Int32Array(size).fill(-1);
  return { wT: m(), wE: m(), rT: m(), rT2: m(), rE: m(), pend: new Int32Array(size), pendT: m(), gW: m(), gF: m() };
}

/** Uninitialised memory reads as NaN (floats) so that a missing write shows in results. */
export function garbage(dtype: DType): number {
  return dtype.startsWith("f") ? NaN : dtype === "bool" ? 1 : 0x5a;
}

export function oob(b: RtBuf, idx: number[], site: number): never {
  throw new Fault(`index [${idx.join(", ")}] is out of bounds of ${b.scope} ${b.name}[${b.shape.join(", ")}]`, site);
}

export function ix1(b: RtBuf, i: number, site: number): number {
  if (!(i >= 0 && i < b.size) || i !== Math.floor(i)) oob(b, [i], site);
  return i;
}
export function ix2(b: RtBuf, i: number, j: number, site: number): number {
  const s = b.shape;
  if (!(i >= 0 && i < s[0]! && j >= 0 && j < s[1]!)) oob(b, [i, j], site);
  return i * s[1]! + j;
}
export function ix3(b: RtBuf, i: number, j: number, k: number, site: number): number {
  const s = b.shape;
  if (!(i >= 0 && i < s[0]! && j >= 0 && j < s[1]! && k >= 0 && k < s[2]!)) oob(b, [i, j, k], site);
  return (i * s[1]! + j) * s[2]! + k;
}
export function ixN(b: RtBuf, idx: number[], site: number): number {
  const s = b.shape;
  if (idx.length !== s.length) throw new Fault(`${b.name} has rank ${s.length}, indexed with ${idx.length} indices`, site);
  let f = 0;
  for (let d = 0; d < s.length; d++) {
    const i = idx[d]!;
    if (!(i >= 0 && i < s[d]!)) oob(b, idx, site);
    f = f * s[d]! + i;
  }
  return f;
}

/** Race and pending-write bookkeeping for one shared element; `epoch` counts barriers. */
export class SharedChecker {
  epoch = 0;
  /** fence.proxy.async executed per thread of the current block (reset with each block). */
  fences = new Int32Array(0);
  /** Ticks at every write of a wgmma register operand and every wgmma.fence (order of events). */
  clock = 0;
  constructor(public race: boolean) {}

  /** An async-proxy read (wgmma): the element's last generic write must be followed by a
   *  fence.proxy.async of its writer (PTX memory model, proxies). */
  readAsync(b: RtBuf, i: number, t: number, site: number): void {
    const tr = b.track!, w = tr.gW[i]!;
    if (w >= 0 && (this.fences[w] ?? 0) <= tr.gF[i]!)
      throw new Fault(`wgmma reads shared ${b.name}[${i}], written by thread ${w} with no fence.proxy.async after the write: missing fence.proxy.async`, site);
    this.read(b, i, t, site);
  }

  read(b: RtBuf, i: number, t: number, site: number): void {
    const tr = b.track!;
    if (tr.pend[i]! > 0)
      throw new Fault(`thread ${t} reads shared ${b.name}[${i}] while an async copy into it (cp.async or tma.load, issued by thread ${tr.pendT[i]}) is still pending: missing cp.wait, or mbar.wait on the right phase`, site);
    if (!this.race) return;
    const e = this.epoch;
    if (tr.wE[i] === e && tr.wT[i] !== t)
      throw new Fault(`data race on shared ${b.name}[${i}]: written by thread ${tr.wT[i]} and read by thread ${t} with no barrier between`, site);
    if (tr.rE[i] !== e) { tr.rE[i] = e; tr.rT[i] = t; tr.rT2[i] = -1; }
    else if (tr.rT[i] !== t && tr.rT2[i] === -1) tr.rT2[i] = t;
  }

  write(b: RtBuf, i: number, t: number, site: number, asyncWrite = false): void {
    const tr = b.track!;
    if (!asyncWrite && tr.pend[i]! > 0)
      throw new Fault(`thread ${t} writes shared ${b.name}[${i}] while an async copy into it (cp.async or tma.load, issued by thread ${tr.pendT[i]}) is still pending: missing cp.wait, or mbar.wait on the right phase`, site);
    tr.gW[i] = t; tr.gF[i] = this.fences[t] ?? 0;
    if (!this.race) return;
    const e = this.epoch;
    if (tr.wE[i] === e && tr.wT[i] !== t)
      throw new Fault(`data race on shared ${b.name}[${i}]: written by thread ${tr.wT[i]} and by thread ${t} with no barrier between`, site);
    if (tr.rE[i] === e) {
      const other = tr.rT[i] !== t ? tr.rT[i]! : tr.rT2[i]!;
      if (other !== -1 && other !== t)
        throw new Fault(`data race on shared ${b.name}[${i}]: read by thread ${other} and written by thread ${t} with no barrier between`, site);
    }
    tr.wE[i] = e; tr.wT[i] = t;
  }
}
