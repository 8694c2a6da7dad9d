// Lowering of the tile ops that MoE gating and routing need (reduce, topk, scan) and of the
// atomic update. The tile ops are first rewritten into tile-level code the rest of the
// lowering already handles: a T.parallel loop over the kept rows, one thread per row, with
// a serial loop along the reduced axis (which may have a run-time extent). Fragments are
// staged through shared scratch tiles, since a row's elements live in several threads.
// A reduce whose rows leave threads idle is spread over the lanes of a warp instead
// (warpRows): `width` consecutive threads share a row, each combines a strided part of it,
// and a warp_reduce butterfly combines the parts.
import { type DType, type Expr, type Region, type Stmt, bin, int, isFloat, v, flt } from "../ir/ir.ts";
import { evalConst, fold } from "../ir/expr.ts";
import { type Ctx, fail, info, unflatten } from "./lower-ctx.ts";

type MoeOp = Extract<Stmt, { k: "reduce" | "topk" | "scan" }>;

/** Register type a row is combined in: f32 for narrow floats, i32 for narrow ints. */
function accType(t: DType): DType {
  if (t === "f64" || t === "i64" || t === "u32") return t;
  return isFloat(t) ? "f32" : "i32";
}

const constOf = (e: Expr, what: string, s: Stmt): number => {
  const n = evalConst(e);
  if (n === undefined) fail(s.loc, `${what} must be a compile-time constant (only the reduced axis may be a run-time value)`);
  return n;
};

const whole = (name: string, ext: number[]): Region => ({ buf: name, offsets: ext.map(() => int(0)), extents: ext.map((n) => int(n)) });

/** A shared scratch tile of the given shape, registered with the lowering. */
function scratch(c: Ctx, hint: string, dtype: DType, shape: number[], out: Stmt[]): string {
  const name = c.fresh(hint);
  const buf = { name, scope: "shared" as const, dtype, shape: shape.map((n) => int(n)) };
  c.bufs.set(name, { buf, shape, size: shape.reduce((a, b) => a * b, 1), stages: 1 });
  out.push({ k: "alloc", buf });
  return name;
}

/** A region to read in scalar code: fragments are copied to a shared scratch tile first. */
function readable(c: Ctx, r: Region, s: Stmt, pre: Stmt[]): Region {
  const b = info(c, r.buf);
  if (b.buf.scope === "shared") return r;
  if (b.buf.scope !== "fragment") fail(s.loc, `${s.k} reads '${r.buf}', a ${b.buf.scope} buffer; use a shared or fragment tile`);
  const ext = r.extents.map((e) => constOf(e, `the extents of fragment '${r.buf}' in ${s.k}`, s));
  const name = scratch(c, `${r.buf}_s`, b.buf.dtype, ext, pre);
  pre.push({ k: "copy", src: r, dst: whole(name, ext) });
  return whole(name, ext);
}

/** A region to write in scalar code; for fragments, a scratch tile and the copy back. */
function writable(c: Ctx, r: Region, ext: number[] | undefined, s: Stmt, pre: Stmt[], post: Stmt[], keep = false): Region {
  const b = info(c, r.buf);
  if (b.buf.scope === "shared") return r;
  if (b.buf.scope !== "fragment") fail(s.loc, `${s.k} writes '${r.buf}', a ${b.buf.scope} buffer; use a shared or fragment tile`);
  if (!ext) return fail(s.loc, `${s.k} into fragment '${r.buf}' needs compile-time extents; write into a shared tile instead`);
  const name = scratch(c, `${r.buf}_s`, b.buf.dtype, ext, pre);
  if (keep) pre.push({ k: "copy", src: r, dst: whole(name, ext) });
  post.push({ k: "copy", src: whole(name, ext), dst: { ...r, extents: ext.map((n) => int(n)) } });
  return whole(name, ext);
}

const plus = (a: Expr, b: Expr) => fold(bin("+", a, b));
const ld = (r: Region, idx: Expr[]): Expr => ({ k: "load", buf: r.buf, idx });

/** A parallel loop over the constant extents `rows` (unit dims dropped) and the index of
 *  each dim of that shape in terms of the loop variables. */
function rowLoop(c: Ctx, rows: number[], body: (coord: Expr[]) => Stmt[]): Stmt {
  const nonUnit = rows.filter((n) => n !== 1);
  const vars = (nonUnit.length ? nonUnit : [1]).map(() => c.fresh("row"));
  let j = 0;
  const coord = rows.map((n) => (n === 1 ? int(0) : v(vars[j++]!)));
  return { k: "for", vars, starts: vars.map(() => int(0)), extents: (nonUnit.length ? nonUnit : [1]).map((n) => int(n)), kind: "parallel", body: body(coord) };
}

function combine(op: string, a: Expr, b: Expr): Expr {
  return op === "sum" ? bin("+", a, b) : bin(op === "max" ? "max" : "min", a, b);
}

function identity(op: string, t: DType): Expr {
  if (op === "sum") return isFloat(t) ? flt(0) : int(0);
  if (isFloat(t)) return flt(op === "max" ? -Infinity : Infinity);
  return int(op === "max" ? -2147483648 : 2147483647);
}

/** Lanes per row when a reduce is spread over warps: the most (up to 32) that still give
 *  every row its own group in one pass, and no more than the row has elements (when that is
 *  known). undefined keeps one thread per row: rows fill the block already, the combine type
 *  has no shuffle (f64, i64), or the block has a partial warp (collectives need whole ones). */
export function warpWidth(threads: number, rows: number, n: number | undefined, t: DType): number | undefined {
  if (!(t === "f32" || t === "i32" || t === "u32") || threads % 32 !== 0) return undefined;
  let w = 32;
  while (w > 1 && (w * rows > threads || (n !== undefined && w / 2 >= n))) w >>= 1;
  return w >= 2 ? w : undefined;
}

/** The reduce with each row spread over `w` lanes (see warpWidth). Lane l of a row combines
 *  elements l, l + w, ... in order, then warp_reduce combines the lanes; lane 0 stores.
 *  Every thread reaches the warp_reduce (rows past the last one combine the identity). */
function warpRows(c: Ctx, s: Extract<Stmt, { k: "reduce" }>, src: Region, dst: Region, keptShape: number[], t: DType, w: number): Stmt[] {
  const rows = keptShape.reduce((a, b) => a * b, 1);
  const lane = c.fresh("lane"), row = c.fresh("row"), part = c.fresh("part"), red = c.fresh("red"), jj = c.fresh("jj"), j = c.fresh("j");
  const nonUnit = keptShape.filter((n) => n !== 1);
  // Kept coordinates of the row, as lets (fresh names each time: two blocks bind them).
  const coordsOf = (out: Stmt[]): Expr[] => {
    const q = nonUnit.length ? unflatten(v(row), nonUnit) : [];
    let k = 0;
    return keptShape.map((n) => {
      if (n === 1) return int(0);
      const e = q[k]!;
      if (e.k === "var") { k++; return e; }
      const name = c.fresh("r");
      out.push({ k: "let", name, dtype: "i32", mutable: false, value: q[k++]! });
      return v(name);
    });
  };
  const n = src.extents[s.axis]!;
  const nc = evalConst(n);
  const someRowIdle = rows * w < c.threads;
  const rowOk = bin("<", v(row), int(rows));
  const readLets: Stmt[] = [];
  const rc = coordsOf(readLets);
  let q = 0;
  const at = src.offsets.map((o, d) => (d === s.axis ? plus(o, v(j)) : plus(o, rc[q++]!)));
  const step: Stmt = { k: "assign", name: part, value: combine(s.op, v(part), ld(src, at)) };
  const strided: Stmt = { k: "for", vars: [jj], starts: [int(0)], extents: [fold(bin("cdiv", n, int(w)))], kind: "serial", body: [
    { k: "let", name: j, dtype: "i32", mutable: false, value: bin("+", bin("*", v(jj), int(w)), v(lane)) },
    ...(nc !== undefined && nc % w === 0 ? [step] : [{ k: "if" as const, cond: bin("<", v(j), n), then: [step], else: [] }]),
  ] };
  const writeLets: Stmt[] = [];
  const wc = coordsOf(writeLets);
  const kept = wc.filter((_, i) => keptShape[i] !== 1);
  let k2 = 0;
  const dIdx = dst.offsets.map((o, d) => (evalConst(dst.extents[d]!) === 1 ? o : plus(o, kept[k2++] ?? int(0))));
  const lead = bin("==", v(lane), int(0));
  return [
    { k: "let", name: lane, dtype: "i32", mutable: false, value: bin("%", c.tx, int(w)) },
    { k: "let", name: row, dtype: "i32", mutable: false, value: bin("/", c.tx, int(w)) },
    { k: "let", name: part, dtype: t, mutable: true, value: identity(s.op, t) },
    ...(someRowIdle ? [{ k: "if" as const, cond: rowOk, then: [...readLets, strided], else: [] }] : [...readLets, strided]),
    { k: "warp_reduce", op: s.op, dtype: t, value: v(part), width: w, result: red },
    { k: "if", cond: someRowIdle ? bin("&&", lead, rowOk) : lead, then: [
      ...writeLets,
      { k: "store", buf: dst.buf, idx: dIdx, value: s.accumulate ? combine(s.op, ld(dst, dIdx), v(red)) : v(red) },
    ], else: [] },
  ];
}

function lowerReduce(c: Ctx, s: Extract<Stmt, { k: "reduce" }>): Stmt[] {
  const pre: Stmt[] = [], post: Stmt[] = [];
  const src = readable(c, s.src, s, pre);
  const kept = src.extents.map((e, d) => (d === s.axis ? 1 : constOf(e, `extent ${d} of the reduced tile`, s)));
  const keptShape = kept.filter((_, d) => d !== s.axis);
  const dExt = s.dst.extents.map((e) => evalConst(e));
  const sq = (xs: number[]) => xs.filter((n) => n !== 1).join(",");
  if (dExt.every((x) => x !== undefined) && sq(dExt as number[]) !== sq(keptShape))
    fail(s.loc, `reduce of a [${src.extents.map((e) => evalConst(e) ?? "?").join(", ")}] tile along axis ${s.axis} into a [${dExt.join(", ")}] tile: the kept extents differ`);
  const dst = writable(c, s.dst, dExt.every((x) => x !== undefined) ? dExt as number[] : undefined, s, pre, post, s.accumulate);
  const t = accType(info(c, src.buf).buf.dtype);
  // A run-time row length is still at most the tile's extent along the axis.
  const rowLen = evalConst(src.extents[s.axis]!) ?? info(c, src.buf).shape[s.axis];
  const w = warpWidth(c.threads, keptShape.reduce((a, b) => a * b, 1), rowLen, t);
  // Shared memory on both sides: barriers before (src written by others) and after (dst).
  if (w !== undefined) return [...pre, { k: "barrier" }, ...warpRows(c, s, src, dst, keptShape, t, w), { k: "barrier" }, ...post];
  const loop = rowLoop(c, keptShape, (coord) => {
    let j = 0;
    const srcRow = src.offsets.map((o, d) => (d === s.axis ? o : plus(o, coord[j++]!)));
    // dst's non-unit dims take the kept coordinates in order.
    const nonUnit = coord.filter((_, i) => keptShape[i] !== 1);
    let q = 0;
    const dIdx = dst.offsets.map((o, d) => (evalConst(dst.extents[d]!) === 1 ? o : plus(o, nonUnit[q++] ?? int(0))));
    const acc = c.fresh("acc"), jj = c.fresh("j");
    const at = srcRow.map((o, d) => (d === s.axis ? plus(o, v(jj)) : o));
    return [
      { k: "let", name: acc, dtype: t, mutable: true, value: s.accumulate ? ld(dst, dIdx) : identity(s.op, t) },
      { k: "for", vars: [jj], starts: [int(0)], extents: [src.extents[s.axis]!], kind: "serial",
        body: [{ k: "assign", name: acc, value: combine(s.op, v(acc), ld(src, at)) }] },
      { k: "store", buf: dst.buf, idx: dIdx, value: v(acc) },
    ];
  });
  return [...pre, loop, ...post];
}

/** The order topk picks in: (x, n) comes strictly after the pick (pv, pi) when its value
 *  is smaller, or equal with a larger index. NaN is after nothing, so it is never picked. */
const after = (x: Expr, n: Expr, pv: Expr, pi: Expr): Expr =>
  bin("||", bin("<", x, pv), bin("&&", bin("==", x, pv), bin(">", n, pi)));

/** Largest i32: "no pick" among the lanes' candidate indices (an index is always below it). */
const NO_INDEX = 2147483647;

/** j-th pick = the best element strictly after the previous pick in the order (value desc,
 *  index asc): no per-row scratch, O(count * N) per row. One thread per row, or `w` lanes
 *  per row (see warpRows) when warpWidth gives them. */
function lowerTopk(c: Ctx, s: Extract<Stmt, { k: "topk" }>): Stmt[] {
  const pre: Stmt[] = [], post: Stmt[] = [];
  const src = readable(c, s.src, s, pre);
  const R = constOf(src.extents[0]!, "the row count of topk", s);
  const cnt = evalConst(s.count);
  const values = writable(c, s.values, cnt === undefined ? undefined : [R, cnt], s, pre, post);
  const indices = writable(c, s.indices, cnt === undefined ? undefined : [R, cnt], s, pre, post);
  const t = accType(info(c, src.buf).buf.dtype);
  const rowLen = evalConst(src.extents[1]!) ?? info(c, src.buf).shape[1];
  // u32 has no "nothing picked" value below every element that a max could combine.
  const w = t === "u32" ? undefined : warpWidth(c.threads, R, rowLen, t);
  if (w !== undefined) return [...pre, { k: "barrier" }, ...topkWarpRows(c, s, src, values, indices, R, t, w), { k: "barrier" }, ...post];
  return [...pre, topkThreadRows(c, s, src, values, indices, R, t), ...post];
}

/** One thread per row: each round scans the whole row. */
function topkThreadRows(c: Ctx, s: Extract<Stmt, { k: "topk" }>, src: Region, values: Region, indices: Region, R: number, t: DType): Stmt {
  const N = src.extents[1]!;
  const hi = isFloat(t) ? flt(Infinity) : int(2147483647);
  return rowLoop(c, [R], ([r]) => {
    const pv = c.fresh("pv"), pi = c.fresh("pi"), bv = c.fresh("bv"), bi = c.fresh("bi"), x = c.fresh("x");
    const j = c.fresh("j"), n = c.fresh("n");
    const better = bin("||", bin("<", v(bi), int(0)), bin(">", v(x), v(bv)));
    return [
      { k: "let", name: pv, dtype: t, mutable: true, value: hi },
      { k: "let", name: pi, dtype: "i32", mutable: true, value: int(-1) },
      { k: "for", vars: [j], starts: [int(0)], extents: [s.count], kind: "serial", body: [
        { k: "let", name: bv, dtype: t, mutable: true, value: isFloat(t) ? flt(-Infinity) : int(-2147483648) },
        { k: "let", name: bi, dtype: "i32", mutable: true, value: int(-1) },
        { k: "for", vars: [n], starts: [int(0)], extents: [N], kind: "serial", body: [
          { k: "let", name: x, dtype: t, mutable: false, value: ld(src, [plus(src.offsets[0]!, r!), plus(src.offsets[1]!, v(n))]) },
          { k: "if", cond: bin("&&", after(v(x), v(n), v(pv), v(pi)), better), then: [
            { k: "assign", name: bv, value: v(x) }, { k: "assign", name: bi, value: v(n) }], else: [] },
        ] },
        { k: "store", buf: values.buf, idx: [plus(values.offsets[0]!, r!), plus(values.offsets[1]!, v(j))], value: v(bv) },
        { k: "store", buf: indices.buf, idx: [plus(indices.offsets[0]!, r!), plus(indices.offsets[1]!, v(j))], value: v(bi) },
        { k: "assign", name: pv, value: v(bv) },
        // Once a row is exhausted, nothing comes after the last pick.
        { k: "assign", name: pi, value: { k: "select", cond: bin("<", v(bi), int(0)), a: N, b: v(bi) } },
      ] },
    ];
  });
}

/** Each row spread over `w` lanes (as warpRows). A round is a parallel argmax: lane l takes
 *  the best of elements l, l + w, ... that come after the previous pick (the first of equal
 *  values, so its lowest index); warp_reduce.max gives the round's value m, and
 *  warp_reduce.min over the indices of the lanes whose best equals m gives the lowest index
 *  holding it: the tie rule of the one-thread lowering, in two butterflies (as many shuffles
 *  as one butterfly over (value, index) pairs). Lanes without a candidate offer the lowest
 *  value and NO_INDEX; a round where every lane has none stores -inf (the identity) and -1.
 *  Every thread runs every round and reaches both warp_reduces (count is block-uniform). */
function topkWarpRows(c: Ctx, s: Extract<Stmt, { k: "topk" }>, src: Region, values: Region, indices: Region, R: number, t: DType, w: number): Stmt[] {
  const N = src.extents[1]!;
  const nc = evalConst(N);
  const lane = c.fresh("lane"), row = c.fresh("row"), pv = c.fresh("pv"), pi = c.fresh("pi"), bv = c.fresh("bv"), bi = c.fresh("bi");
  const j = c.fresh("j"), jj = c.fresh("jj"), n = c.fresh("n"), x = c.fresh("x"), m = c.fresh("m"), win = c.fresh("win");
  const someRowIdle = R * w < c.threads;
  const rowOk = bin("<", v(row), int(R));
  const better = bin("||", bin("<", v(bi), int(0)), bin(">", v(x), v(bv)));
  const visit: Stmt[] = [
    { k: "let", name: x, dtype: t, mutable: false, value: ld(src, [plus(src.offsets[0]!, v(row)), plus(src.offsets[1]!, v(n))]) },
    { k: "if", cond: bin("&&", after(v(x), v(n), v(pv), v(pi)), better), then: [
      { k: "assign", name: bv, value: v(x) }, { k: "assign", name: bi, value: v(n) }], else: [] },
  ];
  const strided: Stmt = { k: "for", vars: [jj], starts: [int(0)], extents: [fold(bin("cdiv", N, int(w)))], kind: "serial", body: [
    { k: "let", name: n, dtype: "i32", mutable: false, value: bin("+", bin("*", v(jj), int(w)), v(lane)) },
    ...(nc !== undefined && nc % w === 0 ? visit : [{ k: "if" as const, cond: bin("<", v(n), N), then: visit, else: [] }]),
  ] };
  const none = bin("==", v(win), int(NO_INDEX));
  const lead = bin("==", v(lane), int(0));
  return [
    { k: "let", name: lane, dtype: "i32", mutable: false, value: bin("%", c.tx, int(w)) },
    { k: "let", name: row, dtype: "i32", mutable: false, value: bin("/", c.tx, int(w)) },
    { k: "let", name: pv, dtype: t, mutable: true, value: identity("min", t) },
    { k: "let", name: pi, dtype: "i32", mutable: true, value: int(-1) },
    { k: "for", vars: [j], starts: [int(0)], extents: [s.count], kind: "serial", body: [
      { k: "let", name: bv, dtype: t, mutable: true, value: identity("max", t) },
      { k: "let", name: bi, dtype: "i32", mutable: true, value: int(-1) },
      ...(someRowIdle ? [{ k: "if" as const, cond: rowOk, then: [strided], else: [] }] : [strided]),
      { k: "warp_reduce", op: "max", dtype: t, value: v(bv), width: w, result: m },
      { k: "warp_reduce", op: "min", dtype: "i32", width: w, result: win,
        value: { k: "select", cond: bin("&&", bin(">=", v(bi), int(0)), bin("==", v(bv), v(m))), a: v(bi), b: int(NO_INDEX) } },
      { k: "if", cond: someRowIdle ? bin("&&", lead, rowOk) : lead, then: [
        { k: "store", buf: values.buf, idx: [plus(values.offsets[0]!, v(row)), plus(values.offsets[1]!, v(j))], value: v(m) },
        { k: "store", buf: indices.buf, idx: [plus(indices.offsets[0]!, v(row)), plus(indices.offsets[1]!, v(j))],
          value: { k: "select", cond: none, a: int(-1), b: v(win) } },
      ], else: [] },
      { k: "assign", name: pv, value: v(m) },
      // Once a row is exhausted, nothing comes after the last pick.
      { k: "assign", name: pi, value: { k: "select", cond: none, a: N, b: v(win) } },
    ] },
  ];
}

function lowerScan(c: Ctx, s: Extract<Stmt, { k: "scan" }>): Stmt[] {
  const pre: Stmt[] = [], post: Stmt[] = [];
  const src = readable(c, s.src, s, pre);
  const rank = src.extents.length;
  if (s.dst.extents.length !== rank) fail(s.loc, `scan from a rank-${rank} tile into a rank-${s.dst.extents.length} tile`);
  const rows = src.extents.slice(0, -1).map((e) => constOf(e, "the row extents of scan", s));
  const dExt = s.dst.extents.map((e) => evalConst(e));
  const dst = writable(c, s.dst, dExt.every((x) => x !== undefined) ? dExt as number[] : undefined, s, pre, post);
  const t = accType(info(c, dst.buf).buf.dtype);
  const loop = rowLoop(c, rows.length ? rows : [1], (coord) => {
    const acc = c.fresh("acc"), j = c.fresh("j"), x = c.fresh("x");
    const at = (r: Region) => r.offsets.map((o, d) => (d === rank - 1 ? plus(o, v(j)) : plus(o, coord[d]!)));
    const bump: Stmt = { k: "assign", name: acc, value: bin("+", v(acc), v(x)) };
    const store: Stmt = { k: "store", buf: dst.buf, idx: at(dst), value: v(acc) };
    return [
      { k: "let", name: acc, dtype: t, mutable: true, value: isFloat(t) ? flt(0) : int(0) },
      { k: "for", vars: [j], starts: [int(0)], extents: [src.extents[rank - 1]!], kind: "serial", body: [
        { k: "let", name: x, dtype: t, mutable: false, value: ld(src, at(src)) },
        ...(s.exclusive ? [store, bump] : [bump, store]),
      ] },
    ];
  });
  return [...pre, loop, ...post];
}

/** reduce / topk / scan -> thread-level statements (through the ordinary lowering). */
export function lowerMoeOp(c: Ctx, s: MoeOp): Stmt[] {
  const tile = s.k === "reduce" ? lowerReduce(c, s) : s.k === "topk" ? lowerTopk(c, s) : lowerScan(c, s);
  return c.lowerBody(c, tile);
}
