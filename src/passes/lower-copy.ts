// Thread-level lowering of tile copies and fills.
//  - a fragment on either side: each thread moves its own slots (no barrier needed);
//  - otherwise cooperative: the block's threads stride over the tile's elements, with
//    16-byte vectors between global and shared memory when alignment allows (checked at
//    run time on the global's row length, which is a run-time dim);
//  - globals are masked at their bounds: loads outside read 0, stores outside are dropped.
import { type Buffer, type DType, type Expr, type Loc, type Region, type Stmt, bin, byteSize, int } from "../ir/ir.ts";
import { TRUE, evalConst, fold, substitute, walkStmts } from "../ir/expr.ts";
import {
  type BufInfo, type Ctx, addr, fail, constExtents, countedLoop, slotLoop, fragLayout, fragShape, guard, inBounds, info, letI32,
  regionIdx, slotPairLoop, slotsOf, squeezed, unflatten,
} from "./lower-ctx.ts";
import { fragCoordExpr } from "./frag-coord.ts";
import { wholeBuffer } from "./infer-layouts.ts";
import { stagedEpilogue } from "./lower-epilogue.ts";

const cast = (t: DType, have: DType, e: Expr): Expr => (t === have ? e : { k: "cast", dtype: t, a: e });
const zero = (t: DType): Expr => (t === "f32" || t === "f64" || t === "f16" || t === "bf16" || t.startsWith("fp8") ? { k: "float", v: 0, dtype: t === "f32" ? undefined : t } : { k: "int", v: 0, dtype: t === "i32" ? undefined : t });

export interface CopyMode {
  /** Inside a cp.async pipeline: vectors become cp_async, `valid` predicates the whole copy. */
  async?: boolean;
  valid?: Expr;
  /** A row gather's vector path reads its rows from this per-thread table (pipelineIssuer),
   *  entry `it` for unit `it * threads + tx`, instead of the shared index buffer. */
  rowTable?: string;
}

/** Moves one element src[si] -> dst[di] if pred; non-global destinations read 0 otherwise. */
function moveElem(c: Ctx, dst: BufInfo, di: Expr[], src: BufInfo, si: Expr[], pred: Expr): Stmt[] {
  const dref = addr(c, dst.buf.name, di), sref = addr(c, src.buf.name, si);
  if (dst.buf.dtype === src.buf.dtype) return [{ k: "vcopy", dst: dref, src: sref, lanes: 1, pred: fold(pred) }];
  const store = (value: Expr): Stmt => ({ k: "store", buf: dref.buf, idx: dref.idx, value });
  const val = cast(dst.buf.dtype, src.buf.dtype, { k: "load", buf: sref.buf, idx: sref.idx });
  return guard(pred, [store(val)], dst.buf.scope === "global" ? [] : [store(zero(dst.buf.dtype))]);
}

/** Fragment coordinates of a slot, as indices of the fragment buffer (rank 1 or 2). */
function slotIndex(c: Ctx, f: BufInfo, slot: Expr, pre: Stmt[]): { idx: Expr[]; valid: Expr } {
  const co = fragCoordExpr(fragLayout(f), fragShape(c, f), c.tx, slot);
  const row = letI32(c, "r", co.row, pre), col = letI32(c, "c", co.col, pre);
  return { idx: f.shape.length === 1 ? [col] : [row, col], valid: co.valid ?? TRUE };
}

/** Squeezed coordinates of buffer index idx inside region r, and whether it lies inside.
 *  `dims`: the buffer's shape, which idx is known to respect (fragment coordinates). */
function regionLocal(r: Region, idx: Expr[], dims: number[]): { q: Expr[]; inside: Expr } {
  const ext = constExtents(r);
  let inside: Expr = TRUE;
  const q: Expr[] = [];
  idx.forEach((i, d) => {
    const local = fold(bin("-", i, r.offsets[d]!));
    if (!(r.offsets[d]!.k === "int" && r.offsets[d]!.v === 0)) inside = bin("&&", inside, bin(">=", local, int(0)));
    if (!(r.offsets[d]!.k === "int" && r.offsets[d]!.v + ext[d]! >= dims[d]!)) inside = bin("&&", inside, bin("<", local, int(ext[d]!)));
    if (ext[d] !== 1) q.push(local);
  });
  return { q: q.length ? q : [int(0)], inside: fold(inside) };
}

/** Per-slot copy between a fragment and another buffer (either direction). */
function copyFragment(c: Ctx, s: { src: Region; dst: Region }, fragIsDst: boolean): Stmt[] {
  const fr = fragIsDst ? s.dst : s.src, other = fragIsDst ? s.src : s.dst;
  const f = info(c, fr.buf), o = info(c, other.buf);
  // A fragment's extents that exceed the fragment (whole tile) need no membership test.
  return slotLoop(c, int(slotsOf(c, f)), (slot) => {
    const pre: Stmt[] = [];
    const { idx, valid } = slotIndex(c, f, slot, pre);
    const { q, inside } = regionLocal(fr, idx, f.shape);
    const oi = regionIdx(other, q);
    const fref = { buf: f.buf.name, idx: [slot] };
    const fval: Expr = { k: "load", buf: f.buf.name, idx: [slot] };
    const oref = addr(c, o.buf.name, oi);
    const bounds = inBounds(c, o.buf.name, oi);
    let body: Stmt[];
    if (fragIsDst) {
      const val = cast(f.buf.dtype, o.buf.dtype, { k: "load", buf: oref.buf, idx: oref.idx });
      body = guard(bounds, [{ k: "store", buf: fref.buf, idx: fref.idx, value: val }],
        [{ k: "store", buf: fref.buf, idx: fref.idx, value: zero(f.buf.dtype) }]);
    } else {
      body = guard(bounds, [{ k: "store", buf: oref.buf, idx: oref.idx, value: cast(o.buf.dtype, f.buf.dtype, fval) }]);
    }
    return [...pre, ...guard(bin("&&", valid, inside), body)];
  });
}

/** Whether fragment f's slots 2i, 2i+1 (neighbouring columns of an mma accumulator, or of an
 *  untransposed wgmma one: a transposed one pairs rows) may leave for global o as one 2-element
 *  vector: o not known to be less aligned than a pair, and the same dtype or f32 into bf16/f16.
 *  A converting pair is one `vcopy ... convert` (two registers rounded into one bf16x2 / half2
 *  store): through a 2-element temporary whose address a plain vector store takes, nvcc kept it
 *  on the stack (8-byte frame, spills at 128 registers, 128x128 bf16 GEMM). */
function columnPairs(f: BufInfo, o: BufInfo): { convert: boolean } | undefined {
  const fl = fragLayout(f);
  if ((fl.kind !== "mma_acc" && (fl.kind !== "wgmma_acc" || fl.trans)) || f.shape.length !== 2 || o.buf.scope !== "global") return undefined;
  if (o.align !== undefined && o.align < 2 * byteSize(o.buf.dtype)) return undefined;
  const convert = o.buf.dtype !== f.buf.dtype;
  if (convert && !(f.buf.dtype === "f32" && (o.buf.dtype === "bf16" || o.buf.dtype === "f16"))) return undefined;
  return { convert };
}

/** Fragment -> global for accumulators (columnPairs): slots 2i and 2i+1 leave as one 2-element
 *  vector when the global's rows keep pairs aligned (checked at run time). */
function pairedStore(c: Ctx, s: { src: Region; dst: Region }): Stmt[] | undefined {
  const f = info(c, s.src.buf), o = info(c, s.dst.buf);
  const ext = constExtents(s.dst);
  const pairs = columnPairs(f, o);
  if (!pairs || ext.length !== 2 || ext.some((n) => n === 1)) return undefined;
  if (!wholeBuffer(s.src, f.buf) || ext[0] !== f.shape[0] || ext[1] !== f.shape[1]) return undefined;
  const lastDim = o.buf.shape[1]!;
  if (evalConst(bin("%", s.dst.offsets[1]!, int(2))) !== 0) return undefined;
  const { convert } = pairs;
  const paired = slotPairLoop(c, f, ({ slot, row, col, pre }) => {
    const oi = regionIdx(s.dst, [row, col]);
    const pred = fold(bin("&&", inBounds(c, o.buf.name, oi, true), bin("<=", bin("+", oi[1]!, int(2)), lastDim)));
    const dst = addr(c, o.buf.name, oi);
    return [...pre, { k: "vcopy", dst, src: { buf: f.buf.name, idx: [slot] }, lanes: 2, pred, ...(convert ? { convert } : {}) }];
  });
  return guard(bin("==", bin("%", lastDim, int(2)), int(0)), paired, copyFragment(c, s, false));
}

/** A row-scattering copy (`dstRows`) of a whole fragment: each thread stores its own slots, tile row
 *  i into global row rows[i] (rows < 0 or past the tensor are dropped, as are columns past it).
 *  Accumulators whose slots 2i, 2i+1 are neighbouring columns (columnPairs) store them as one
 *  2-element vector where the global's rows and the first column keep pairs aligned (checked at
 *  run time), as pairedStore does for plain tiles: stored one f32 at a time, a warp's stores fill half of each
 *  32-byte sector (ncu on the MoE down kernel's rows: 43% of its global sectors excess). */
function scatterFragment(c: Ctx, s: { src: Region; dst: Region; rows: string }): Stmt[] {
  const f = info(c, s.src.buf), o = info(c, s.dst.buf);
  const lastDim = o.buf.shape[1]!, c0 = s.dst.offsets[1]!;
  const target = (row: Expr, col: Expr, pre: Stmt[]) => {
    const g = letI32(c, "g", { k: "load", ...addr(c, s.rows, [row]) }, pre);
    return { g, oi: [g, fold(bin("+", c0, col))] };
  };
  const elementwise = slotLoop(c, int(slotsOf(c, f)), (slot) => {
    const pre: Stmt[] = [];
    const { idx, valid } = slotIndex(c, f, slot, pre);
    const { g, oi } = target(idx[0]!, idx[1]!, pre);
    const oref = addr(c, o.buf.name, oi);
    const value = cast(o.buf.dtype, f.buf.dtype, { k: "load", buf: f.buf.name, idx: [slot] });
    // inBounds assumes a loaded index is non-negative; a scattered row may be -1 (dropped).
    return [...pre, ...guard(bin("&&", valid, bin("&&", bin(">=", g, int(0)), inBounds(c, o.buf.name, oi))),
      [{ k: "store", buf: oref.buf, idx: oref.idx, value }])];
  });
  const pairs = columnPairs(f, o);
  if (!pairs) return elementwise;
  const { convert } = pairs;
  const paired = slotPairLoop(c, f, ({ slot, row, col, valid, pre }) => {
    const { g, oi } = target(row, col, pre);
    const pred = fold(bin("&&", valid ?? TRUE, bin("&&", bin(">=", g, int(0)),
      bin("&&", inBounds(c, o.buf.name, oi, true), bin("<=", bin("+", oi[1]!, int(2)), lastDim)))));
    return [...pre, { k: "vcopy", dst: addr(c, o.buf.name, oi), src: { buf: f.buf.name, idx: [slot] }, lanes: 2, pred, ...(convert ? { convert } : {}) }];
  });
  return guard(bin("&&", bin("==", bin("%", lastDim, int(2)), int(0)), bin("==", bin("%", c0, int(2)), int(0))), paired, elementwise);
}

/** A row-scattering copy out of a whole shared tile (the staged epilogue's copy-out of a row
 *  scatter, lower-epilogue.ts): tile row i into global row rows[i], 16-byte vectors where the
 *  global's rows and the first column keep them aligned (checked at run time), else element by
 *  element; rows < 0 or past the tensor and columns past it are dropped. */
function scatterShared(c: Ctx, s: { src: Region; dst: Region; rows: string }): Stmt[] {
  const o = info(c, s.dst.buf);
  const [R, W] = constExtents(s.src) as [number, number];
  const lastDim = o.buf.shape[1]!, c0 = s.dst.offsets[1]!;
  const lanes = 16 / byteSize(o.buf.dtype);
  const loop = (n: number) => countedLoop(c, "it", int(Math.ceil((R * W) / n / c.threads)), (it) => {
    const pre: Stmt[] = [];
    const u = letI32(c, "u", bin("+", bin("*", it, int(c.threads)), c.tx), pre);
    const e = fold(bin("*", u, int(n)));
    const i = fold(bin("/", e, int(W))), j = fold(bin("%", e, int(W)));
    const g = letI32(c, "g", { k: "load", ...addr(c, s.rows, [i]) }, pre);
    const oi = [g, fold(bin("+", c0, j))];
    // inBounds takes loaded values for non-negative, but a scattered row may be -1 (dropped).
    const pred = fold(bin("&&", bin(">=", g, int(0)), n === 1 ? inBounds(c, o.buf.name, oi)
      : bin("&&", inBounds(c, o.buf.name, oi, true), bin("<=", bin("+", oi[1]!, int(n)), lastDim))));
    const body: Stmt[] = [{ k: "vcopy", dst: addr(c, o.buf.name, oi), src: addr(c, s.src.buf, regionIdx(s.src, [i, j])), lanes: n, pred }];
    return (R * W) / n % c.threads === 0 ? [...pre, ...body] : guard(bin("<", u, int((R * W) / n)), [...pre, ...body]);
  }, n === 1 ? 1 : 32);
  if (W % lanes !== 0) return loop(1);
  return guard(fold(bin("&&", bin("==", bin("%", lastDim, int(lanes)), int(0)), bin("==", bin("%", c0, int(lanes)), int(0)))), loop(lanes), loop(1));
}

/** Vector width (elements) usable between these buffers, or 0. */
function vectorLanes(c: Ctx, src: BufInfo, sr: Region, dst: BufInfo, dr: Region): number {
  if (src.buf.dtype !== dst.buf.dtype) return 0;
  const scopes = [src.buf.scope, dst.buf.scope].sort().join(",");
  if (scopes !== "global,shared") return 0;
  const lanes = 16 / byteSize(src.buf.dtype);
  if (lanes < 2) return 0;
  const sq = squeezed(sr);
  const last = sq[sq.length - 1]!;
  if (last % lanes !== 0) return 0;
  // The vectorized dim must be the last dim of both buffers (contiguous in memory).
  for (const r of [sr, dr]) if (evalConst(r.extents[r.extents.length - 1]!) !== last) return 0;
  const [g, gr, sh, shr] = src.buf.scope === "global" ? [src, sr, dst, dr] : [dst, dr, src, sr];
  if (g.align !== undefined && g.align < 16) return 0;
  if (evalConst(bin("%", gr.offsets[gr.offsets.length - 1]!, int(lanes))) !== 0) return 0;
  const cols = sh.shape[sh.shape.length - 1]!;
  if (cols % lanes !== 0 || evalConst(bin("%", shr.offsets[shr.offsets.length - 1]!, int(lanes))) !== 0) return 0;
  if (sh.buf.layout?.kind === "xor_swizzle" && lanes !== 8) return 0;
  return lanes;
}

/** Cooperative copy: threads stride over the tile, `lanes` elements at a time. */
function cooperative(c: Ctx, s: { src: Region; dst: Region }, lanes: number, mode: CopyMode): Stmt[] {
  const src = info(c, s.src.buf), dst = info(c, s.dst.buf);
  const sq = squeezed(s.src);
  const total = sq.reduce((a, b) => a * b, 1);
  const units = total / lanes;
  const valid = mode.valid ?? TRUE;
  // The element path is the fallback for unaligned rows: kept a rolled loop so that nvcc
  // does not hoist its per-iteration addresses out of the main loop into registers.
  return countedLoop(c, "it", int(Math.ceil(units / c.threads)), (it) => {
    const pre: Stmt[] = [];
    const u = letI32(c, "u", bin("+", bin("*", it, int(c.threads)), c.tx), pre);
    const q = unflatten(fold(bin("*", u, int(lanes))), sq);
    const si = regionIdx(s.src, q), di = regionIdx(s.dst, q);
    let body: Stmt[];
    if (lanes === 1) {
      body = moveElem(c, dst, di, src, si, bin("&&", valid, bin("&&", inBounds(c, src.buf.name, si), inBounds(c, dst.buf.name, di))));
    } else {
      const [gname, gi] = src.buf.scope === "global" ? [src.buf.name, si] : [dst.buf.name, di];
      const g = info(c, gname);
      const lastDim = g.buf.shape[g.buf.shape.length - 1]!;
      const pred = fold(bin("&&", valid, bin("&&", inBounds(c, gname, gi, true),
        bin("<=", bin("+", gi[gi.length - 1]!, int(lanes)), lastDim))));
      const dref = addr(c, dst.buf.name, di), sref = addr(c, src.buf.name, si);
      body = mode.async && dst.buf.scope === "shared"
        ? [{ k: "cp_async", dst: dref, src: sref, bytes: 16, pred }]
        : [{ k: "vcopy", dst: dref, src: sref, lanes, pred }];
    }
    return [...pre, ...guard(units % c.threads === 0 ? TRUE : bin("<", u, int(units)), body)];
  }, lanes === 1 ? 1 : 32);
}

/** A row-gathering copy (`rows`): as `cooperative`, but row i of the source region is
 *  global row rows[i], read from the index buffer per unit; rows outside the tensor are
 *  predicated off, so they read 0 (cp.async zero-fills, vcopy zeroes). */
function gatherCopy(c: Ctx, s: { src: Region; dst: Region; rows: string }, lanes: number, mode: CopyMode): Stmt[] {
  const src = info(c, s.src.buf), dst = info(c, s.dst.buf);
  const [R, W] = constExtents(s.src) as [number, number];
  const dsq = squeezed(s.dst);
  const units = (R * W) / lanes;
  const valid = mode.valid ?? TRUE;
  const cols = src.buf.shape[1]!;
  return countedLoop(c, "it", int(Math.ceil(units / c.threads)), (it) => {
    const pre: Stmt[] = [];
    const u = letI32(c, "u", bin("+", bin("*", it, int(c.threads)), c.tx), pre);
    const e = fold(bin("*", u, int(lanes)));
    const i = fold(bin("/", e, int(W))), j = fold(bin("%", e, int(W)));
    const ri = mode.rowTable !== undefined && lanes > 1 ? { buf: mode.rowTable, idx: [it] } : addr(c, s.rows, [i]);
    const row = letI32(c, "g", { k: "load", buf: ri.buf, idx: ri.idx }, pre);
    const col = fold(bin("+", s.src.offsets[1]!, j));
    const di = regionIdx(s.dst, unflatten(e, dsq));
    const dref = addr(c, dst.buf.name, di), sref = addr(c, src.buf.name, [row, col]);
    // inBounds takes loaded values for non-negative, but a gathered row may be -1 (a pad).
    const inside = (skipLast: boolean) => bin("&&", bin(">=", row, int(0)), inBounds(c, src.buf.name, [row, col], skipLast));
    let body: Stmt[];
    if (lanes === 1) {
      body = moveElem(c, dst, di, src, [row, col], bin("&&", valid, bin("&&", inside(false), inBounds(c, dst.buf.name, di))));
    } else {
      const pred = fold(bin("&&", valid, bin("&&", inside(true), bin("<=", bin("+", col, int(lanes)), cols))));
      body = mode.async && dst.buf.scope === "shared"
        ? [{ k: "cp_async", dst: dref, src: sref, bytes: 16, pred }]
        : [{ k: "vcopy", dst: dref, src: sref, lanes, pred }];
    }
    // Units past the tile read no index (the index buffer may be exactly R long).
    return units % c.threads === 0 ? [...pre, ...body] : guard(bin("<", u, int(units)), [...pre, ...body]);
  }, lanes === 1 ? 1 : 32);
}

/** Every thread moves every element (per-thread local buffers). */
function perThread(c: Ctx, s: { src: Region; dst: Region }): Stmt[] {
  const src = info(c, s.src.buf), dst = info(c, s.dst.buf);
  const sq = squeezed(s.src);
  const total = sq.reduce((a, b) => a * b, 1);
  return countedLoop(c, "e", int(total), (e) => {
    const q = unflatten(e, sq);
    const si = regionIdx(s.src, q), di = regionIdx(s.dst, q);
    return moveElem(c, dst, di, src, si, bin("&&", inBounds(c, src.buf.name, si), inBounds(c, dst.buf.name, di)));
  });
}

const writesShared = (c: Ctx, r: Region) => info(c, r.buf).buf.scope === "shared";

export function lowerCopy(c: Ctx, s: { src: Region; dst: Region; rows?: string; dstRows?: string; loc?: Loc }, mode: CopyMode = {}): Stmt[] {
  const src = info(c, s.src.buf), dst = info(c, s.dst.buf);
  if (dst.buf.scope === "fragment" && src.buf.scope === "fragment") {
    // Same layout and shape (inferLayouts unifies them): slot to slot.
    const sig = (b: BufInfo) => JSON.stringify([b.shape, fragLayout(b)]);
    if (sig(src) !== sig(dst) || !wholeBuffer(s.src, src.buf) || !wholeBuffer(s.dst, dst.buf))
      fail(s.loc, `copy between fragments '${src.buf.name}' and '${dst.buf.name}' needs whole fragments of one shape and layout; stage it through a shared tile`);
    return slotLoop(c, int(slotsOf(c, dst)), (slot) =>
      [{ k: "store", buf: dst.buf.name, idx: [slot], value: cast(dst.buf.dtype, src.buf.dtype, { k: "load", buf: src.buf.name, idx: [slot] }) }]);
  }
  if (dst.buf.scope === "fragment") return copyFragment(c, s, true);
  if (s.dstRows !== undefined) {
    if (src.buf.scope !== "fragment" || dst.buf.scope !== "global" || !wholeBuffer(s.src, src.buf))
      fail(s.loc, `a row scatter (${s.dst.buf}.rows as the destination) stores a whole fragment into a global tensor; '${s.src.buf}' is ${wholeBuffer(s.src, src.buf) ? "" : "a part of "}a ${src.buf.scope} buffer: store its elements in a T.parallel loop instead`);
    const sc = { src: s.src, dst: s.dst, rows: s.dstRows };
    return stagedEpilogue(c, sc, c.epilogueHosts?.get(s as Stmt), (c2, t) => scatterShared(c2, { ...t, rows: sc.rows })) ?? scatterFragment(c, sc);
  }
  if (src.buf.scope === "fragment") {
    const staged = stagedEpilogue(c, s, c.epilogueHosts?.get(s as Stmt), lowerCopy);
    if (staged) return staged;
    return withBarriers(c, writesShared(c, s.dst), pairedStore(c, s) ?? copyFragment(c, s, false));
  }
  if (s.rows !== undefined) {
    if (src.buf.scope !== "global" || (dst.buf.scope !== "shared" && dst.buf.scope !== "local"))
      fail(s.loc, `a row gather copies a global tensor into a shared or local tile; '${s.dst.buf}' is ${dst.buf.scope}`);
    const g = { src: s.src, dst: s.dst, rows: s.rows };
    const gl = dst.buf.scope === "shared" ? vectorLanes(c, src, s.src, dst, s.dst) : 0;
    const out = gl > 1
      ? guard(fold(bin("==", bin("%", src.buf.shape[1]!, int(gl)), int(0))), gatherCopy(c, g, gl, mode), gatherCopy(c, g, 1, { ...mode, rowTable: undefined }))
      : gatherCopy(c, g, 1, mode);
    return mode.async ? out : withBarriers(c, writesShared(c, s.dst), out);
  }
  if (src.buf.scope === "local" || dst.buf.scope === "local") return perThread(c, s);
  const lanes = vectorLanes(c, src, s.src, dst, s.dst);
  let out: Stmt[];
  if (lanes > 1) {
    const g = src.buf.scope === "global" ? src : dst;
    const cond = fold(bin("==", bin("%", g.buf.shape[g.buf.shape.length - 1]!, int(lanes)), int(0)));
    out = guard(cond, cooperative(c, s, lanes, mode), cooperative(c, s, 1, mode));
  } else out = cooperative(c, s, 1, mode);
  return mode.async ? out : withBarriers(c, writesShared(c, s.dst), out);
}

/** Cooperative writes to shared memory: wait for readers of the old contents before, and
 *  for all writers after. simplify removes the doubled ones. */
export function withBarriers(_c: Ctx, shared: boolean, body: Stmt[]): Stmt[] {
  return shared ? [{ k: "barrier" }, ...body, { k: "barrier" }] : body;
}

export function lowerFill(c: Ctx, s: { dst: Region; value: Expr }): Stmt[] {
  const d = info(c, s.dst.buf);
  if (d.buf.scope === "fragment") {
    return slotLoop(c, int(slotsOf(c, d)), (slot) => {
      const pre: Stmt[] = [];
      const { idx, valid } = slotIndex(c, d, slot, pre);
      const { inside } = regionLocal(s.dst, idx, d.shape);
      return [...pre, ...guard(bin("&&", valid, inside), [{ k: "store", buf: d.buf.name, idx: [slot], value: s.value }])];
    });
  }
  const sq = squeezed(s.dst);
  const total = sq.reduce((a, b) => a * b, 1);
  const store = (e: Expr): Stmt[] => {
    const di = regionIdx(s.dst, unflatten(e, sq));
    const ref = addr(c, d.buf.name, di);
    return guard(inBounds(c, d.buf.name, di), [{ k: "store", buf: ref.buf, idx: ref.idx, value: s.value }]);
  };
  if (d.buf.scope === "local") return countedLoop(c, "e", int(total), store);
  const body = countedLoop(c, "it", int(Math.ceil(total / c.threads)), (it) => {
    const pre: Stmt[] = [];
    const e = letI32(c, "u", bin("+", bin("*", it, int(c.threads)), c.tx), pre);
    return [...pre, ...guard(total % c.threads === 0 ? TRUE : bin("<", e, int(total)), store(e))];
  });
  return withBarriers(c, d.buf.scope === "shared", body);
}

/**
 * For a software-pipelined loop: a function issuing the loop's leading global->shared copies
 * of iteration `it` (counted from the loop's start) into pipeline `stage`, as cp.async
 * predicated by `valid`. Shared by the mma.sync and wgmma pipelines.
 */
export function pipelineIssuer(c: Ctx, loop: Extract<Stmt, { k: "for" }>, copies: Extract<Stmt, { k: "copy" }>[]) {
  const kv = loop.vars[0]!, start = loop.starts[0]!;
  const tables = new Map<Stmt, string>();
  const prelude: Stmt[] = [];
  for (const cp of copies) {
    if (cp.rows === undefined) continue;
    const rows = cp.rows;
    walkStmts(loop.body, (s) => {
      if ((s.k === "store" || s.k === "atomic") && s.buf === rows || (s.k !== "for" && s.k !== "if" && "dst" in s && (s.dst as { buf?: string }).buf === rows))
        fail(s.loc ?? loop.loc, `'${rows}' holds the rows of a gather in this pipelined loop, which issues its copies ahead: write it before the loop, not inside`);
    });
    const t = rowTable(c, cp);
    if (t) { tables.set(cp, t.name); prelude.push(...t.fill); }
  }
  const issue = (it: Expr, stage: Expr, valid: Expr): Stmt[] => {
    const m = new Map([[kv, fold(bin("+", start, it))]]);
    const saved = new Map(c.stage);
    for (const cp of copies) c.stage.set(cp.dst.buf, stage);
    const out = copies.flatMap((cp) => {
      const src = { ...cp.src, offsets: cp.src.offsets.map((o) => fold(substitute(o, m))) };
      return lowerCopy(c, { src, dst: cp.dst, rows: cp.rows }, { async: true, valid: fold(valid), rowTable: tables.get(cp) });
    });
    c.stage = saved;
    return out;
  };
  /** To place before the pipeline's prologue: the gathers' row tables, filled once. */
  return Object.assign(issue, { prelude });
}

/** The rows a thread's 16-byte units of a gather read, loaded once before its pipelined loop
 *  into a per-thread table (registers once unrolled): the index is loop-invariant, but the
 *  loop's barriers would make nvcc reload it from shared memory for every issue. Only for the
 *  vector path (the element fallback reads the shared index per element). */
function rowTable(c: Ctx, cp: Extract<Stmt, { k: "copy" }>): { name: string; fill: Stmt[] } | undefined {
  const src = info(c, cp.src.buf), dst = info(c, cp.dst.buf);
  if (dst.buf.scope !== "shared") return undefined;
  const lanes = vectorLanes(c, src, cp.src, dst, cp.dst);
  if (lanes < 2) return undefined;
  const [R, W] = constExtents(cp.src) as [number, number];
  const units = (R * W) / lanes, n = Math.ceil(units / c.threads);
  const name = c.fresh(`${cp.rows}_rows`);
  const buf: Buffer = { name, scope: "local", dtype: "i32", shape: [int(n)] };
  c.bufs.set(name, { buf, shape: [n], size: n, stages: 1 });
  c.hoisted.push({ k: "alloc", buf });
  const fill = countedLoop(c, "it", int(n), (it) => {
    const pre: Stmt[] = [];
    const u = letI32(c, "u", bin("+", bin("*", it, int(c.threads)), c.tx), pre);
    const ri = addr(c, cp.rows!, [fold(bin("/", bin("*", u, int(lanes)), int(W)))]);
    const body: Stmt[] = [...pre, { k: "store", buf: name, idx: [it], value: { k: "load", buf: ri.buf, idx: ri.idx } }];
    return units % c.threads === 0 ? body : guard(bin("<", u, int(units)), body);
  }, 32);
  return { name, fill };
}
