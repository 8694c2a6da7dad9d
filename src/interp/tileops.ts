// Whole-tile operations of the tile level: copy, fill, gemm over rectangular regions.
// Region semantics (ir.ts): reads outside the buffer give 0, writes outside are dropped.
import { rounder } from "../numeric/dtype.ts";
import { Fault } from "./fault.ts";
import type { RtBuf } from "./memory.ts";

/** Calls f(flatRegionIndex, flatBufferIndex | -1) for every element of the region, row-major. */
function forRegion(b: RtBuf, off: number[], ext: number[], site: number, f: (e: number, bi: number) => void): void {
  const rank = b.shape.length;
  if (off.length !== rank || ext.length !== rank)
    throw new Fault(`region of ${b.name} has ${off.length} offsets and ${ext.length} extents, the buffer has rank ${rank}`, site);
  const n = ext.reduce((a, x) => a * x, 1);
  const pos = new Array<number>(rank).fill(0);
  for (let e = 0; e < n; e++) {
    let bi = 0, inside = true;
    for (let d = 0; d < rank; d++) {
      const i = off[d]! + pos[d]!;
      if (i < 0 || i >= b.shape[d]!) inside = false;
      bi = bi * b.shape[d]! + i;
    }
    f(e, inside ? bi : -1);
    for (let d = rank - 1; d >= 0; d--) {
      if (++pos[d]! < ext[d]!) break;
      pos[d] = 0;
    }
  }
}

export function readRegion(b: RtBuf, off: number[], ext: number[], site: number): Float64Array {
  const out = new Float64Array(ext.reduce((a, x) => a * x, 1));
  const data = b.data;
  forRegion(b, off, ext, site, (e, bi) => { if (bi >= 0) out[e] = data[bi]!; });
  return out;
}

export function writeRegion(b: RtBuf, off: number[], ext: number[], vals: Float64Array, site: number): void {
  const round = rounder(b.dtype);
  const data = b.data;
  forRegion(b, off, ext, site, (e, bi) => { if (bi >= 0) data[bi] = round(vals[e]!); });
}

export function copy(site: number, src: RtBuf, so: number[], se: number[], dst: RtBuf, dOff: number[], de: number[]): void {
  const ns = se.reduce((a, x) => a * x, 1), nd = de.reduce((a, x) => a * x, 1);
  if (ns !== nd) throw new Fault(`copy from ${src.name} [${se.join(", ")}] to ${dst.name} [${de.join(", ")}]: element counts differ`, site);
  writeRegion(dst, dOff, de, readRegion(src, so, se, site), site);
}

/** A row gather (the copy's `rows`): region row i is row idx[i] of the 2-d src; rows outside
 *  src (or idx entries past idx's end) read 0, like any out-of-range element. */
export function gatherRows(site: number, src: RtBuf, so: number[], se: number[], idx: RtBuf, dst: RtBuf, dOff: number[], de: number[]): void {
  if (src.shape.length !== 2 || se.length !== 2) throw new Fault(`copy with rows from ${src.name}: the source must be a 2-d region`, site);
  const [R, W] = [se[0]!, se[1]!];
  if (R * W !== de.reduce((a, x) => a * x, 1)) throw new Fault(`copy with rows from ${src.name} [${se.join(", ")}] to ${dst.name} [${de.join(", ")}]: element counts differ`, site);
  const vals = new Float64Array(R * W);
  for (let i = 0; i < R; i++) {
    const row = i < idx.data.length ? idx.data[i]! : -1;
    if (!(row >= 0 && row < src.shape[0]!)) continue;
    for (let j = 0; j < W; j++) {
      const col = so[1]! + j;
      if (col >= 0 && col < src.shape[1]!) vals[i * W + j] = src.data[row * src.shape[1]! + col]!;
    }
  }
  writeRegion(dst, dOff, de, vals, site);
}

/** The mirror of gatherRows: row i of the source region goes to row idx[i] of the 2-d dst
 *  (columns dOff[1] + j); rows outside [0, rows of dst) and columns outside it are dropped. */
export function scatterRows(site: number, src: RtBuf, so: number[], se: number[], idx: RtBuf, dst: RtBuf, dOff: number[], de: number[]): void {
  if (dst.shape.length !== 2 || de.length !== 2) throw new Fault(`copy with rows into ${dst.name}: the destination must be a 2-d region`, site);
  const [R, W] = [de[0]!, de[1]!];
  if (R * W !== se.reduce((a, x) => a * x, 1)) throw new Fault(`copy with rows from ${src.name} [${se.join(", ")}] to ${dst.name} [${de.join(", ")}]: element counts differ`, site);
  const vals = readRegion(src, so, se, site);
  const round = rounder(dst.dtype);
  for (let i = 0; i < R; i++) {
    const row = i < idx.data.length ? idx.data[i]! : -1;
    if (!(row >= 0 && row < dst.shape[0]!)) continue;
    for (let j = 0; j < W; j++) {
      const col = dOff[1]! + j;
      if (col >= 0 && col < dst.shape[1]!) dst.data[row * dst.shape[1]! + col] = round(vals[i * W + j]!);
    }
  }
}

export function fill(site: number, dst: RtBuf, off: number[], ext: number[], value: number): void {
  const data = dst.data;
  forRegion(dst, off, ext, site, (_e, bi) => { if (bi >= 0) data[bi] = value; });
}

/** The two non-unit-padded trailing extents of a region used as a matrix. */
function matrixExt(name: string, ext: number[], site: number): [number, number] {
  const lead = ext.slice(0, -2);
  if (ext.length < 2 || lead.some((x) => x !== 1))
    throw new Fault(`gemm operand ${name} must be a 2-d region, got extents [${ext.join(", ")}]`, site);
  return [ext.at(-2)!, ext.at(-1)!];
}

/** c += op(a) * op(b): exact products summed in float64, rounded to c's dtype once. */
export function gemm(site: number, A: RtBuf, ao: number[], ae: number[], B: RtBuf, bo: number[], be: number[],
                     C: RtBuf, co: number[], ce: number[], transA: boolean, transB: boolean): void {
  const [a0, a1] = matrixExt(A.name, ae, site), [b0, b1] = matrixExt(B.name, be, site), [M, N] = matrixExt(C.name, ce, site);
  const [am, ak] = transA ? [a1, a0] : [a0, a1];
  const [bk, bn] = transB ? [b1, b0] : [b0, b1];
  if (am !== M || bn !== N || ak !== bk)
    throw new Fault(`gemm shapes do not agree: a ${am}x${ak}, b ${bk}x${bn}, c ${M}x${N}`, site);
  const K = ak;
  const a = readRegion(A, ao, ae, site), b = readRegion(B, bo, be, site), c = readRegion(C, co, ce, site);
  // Row-major access strides for op(a)[m, k] and op(b)[k, n].
  const [asm, ask] = transA ? [1, M] : [K, 1];
  const [bsk, bsn] = transB ? [1, K] : [N, 1];
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[m * asm + k * ask]! * b[k * bsk + n * bsn]!;
      c[m * N + n] = c[m * N + n]! + s;
    }
  writeRegion(C, co, ce, c, site);
}
