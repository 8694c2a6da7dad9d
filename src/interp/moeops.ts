// Tile-level semantics of reduce / topk / scan and the atomic update (both levels), as
// ir.ts defines them. Written directly over regions, independent of how lowering does it,
// so that the interpreter's tile level is a reference for the lowered code.
import { rounder } from "../numeric/dtype.ts";
import { Fault } from "./fault.ts";
import type { RtBuf } from "./memory.ts";
import { readRegion, writeRegion } from "./tileops.ts";

const count = (ext: number[]) => ext.reduce((a, x) => a * x, 1);

const IDENTITY: Record<string, number> = { sum: 0, max: -Infinity, min: Infinity };
const COMBINE: Record<string, (a: number, b: number) => number> = {
  sum: (a, b) => a + b, max: Math.max, min: Math.min,
  add: (a, b) => a + b,
};

export function reduce(site: number, op: string, S: RtBuf, so: number[], se: number[], D: RtBuf, dOff: number[], de: number[],
                       axis: number, accumulate: boolean): void {
  if (axis < 0 || axis >= se.length) throw new Fault(`reduce axis ${axis} of a rank-${se.length} region`, site);
  const outer = count(se.slice(0, axis)), n = se[axis]!, inner = count(se.slice(axis + 1));
  if (outer * inner !== count(de))
    throw new Fault(`reduce of ${S.name} [${se.join(", ")}] along axis ${axis} into ${D.name} [${de.join(", ")}]: element counts differ`, site);
  const src = readRegion(S, so, se, site);
  const out = accumulate ? readRegion(D, dOff, de, site) : new Float64Array(outer * inner).fill(IDENTITY[op]!);
  const f = COMBINE[op]!;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let acc = out[o * inner + i]!;
      for (let j = 0; j < n; j++) acc = f(acc, src[(o * n + j) * inner + i]!);
      out[o * inner + i] = acc;
    }
  writeRegion(D, dOff, de, out, site);
}

/** Larger value first, equal values lower index first; NaNs never picked. */
export function topk(site: number, S: RtBuf, so: number[], se: number[], V: RtBuf, vo: number[], ve: number[],
                     I: RtBuf, io: number[], ie: number[], k: number): void {
  if (se.length !== 2 || ve.length !== 2 || ie.length !== 2) throw new Fault("topk regions must be 2-d", site);
  const [R, N] = se as [number, number];
  if (ve[0] !== R || ie[0] !== R) throw new Fault(`topk of ${R} rows into values/indices of ${ve[0]}/${ie[0]} rows`, site);
  if (k < 0 || k > ve[1]! || k > ie[1]!) throw new Fault(`topk count ${k} exceeds the values/indices extent ${Math.min(ve[1]!, ie[1]!)}`, site);
  if (k === 0) return;
  const src = readRegion(S, so, se, site);
  const vals = new Float64Array(R * k), idx = new Float64Array(R * k);
  for (let r = 0; r < R; r++) {
    const order = [...Array(N).keys()].filter((j) => !Number.isNaN(src[r * N + j]!));
    order.sort((a, b) => src[r * N + b]! - src[r * N + a]! || a - b);
    for (let j = 0; j < k; j++) {
      vals[r * k + j] = j < order.length ? src[r * N + order[j]!]! : -Infinity;
      idx[r * k + j] = j < order.length ? order[j]! : -1;
    }
  }
  writeRegion(V, vo, [R, k], vals, site);
  writeRegion(I, io, [R, k], idx, site);
}

export function scan(site: number, S: RtBuf, so: number[], se: number[], D: RtBuf, dOff: number[], de: number[], exclusive: boolean): void {
  if (count(se) !== count(de)) throw new Fault(`scan of ${S.name} [${se.join(", ")}] into ${D.name} [${de.join(", ")}]: element counts differ`, site);
  const src = readRegion(S, so, se, site);
  const n = se.at(-1) ?? 1;
  const round = rounder(D.dtype);
  const out = new Float64Array(src.length);
  for (let r = 0; r * n < src.length; r++) {
    let acc = 0;
    for (let j = 0; j < n; j++) {
      const x = src[r * n + j]!;
      if (exclusive) { out[r * n + j] = acc; acc = round(acc + x); } else { acc = round(acc + x); out[r * n + j] = acc; }
    }
  }
  writeRegion(D, dOff, de, out, site);
}

/** buf[i] = op(buf[i], v) at flat index i (already bounds-checked); returns the old value. */
export function atomic(b: RtBuf, i: number, v: number, op: string): number {
  const old = b.data[i]!;
  b.data[i] = rounder(b.dtype)(COMBINE[op]!(old, v));
  return old;
}
