// Thread-level lowering of the row-wise tile ops: reduce, top-k and scan. Each output row
// (every index of the kept axes) is computed by one thread, serially along the reduced or
// scanned axis, which may have a run-time length. Fragments are staged through shared
// scratch tiles: their elements live in many threads, and a row needs all of them.
import { type DType, type Expr, type Region, type Stmt, bin, byteSize, int, isFloat, v } from "../ir/ir.ts";
import { TRUE, evalConst, fold } from "../ir/expr.ts";
import { type BufInfo, type Ctx, addr, fail, guard, info, letI32, countedLoop } from "./lower-ctx.ts";
import { lowerCopy, withBarriers } from "./lower-copy.ts";

type Reduce = Extract<Stmt, { k: "reduce" }>;
type TopK = Extract<Stmt, { k: "topk" }>;
type Scan = Extract<Stmt, { k: "scan" }>;

const full = (shape: number[]): Region => ({ buf: "", offsets: shape.map(() => int(0)), extents: shape.map((n) => int(n)) });

/** A shared tile holding `r`'s elements at the same coordinates (the region itself when
 *  it is already shared). `load`: copy the fragment's values in first. */
function staged(c: Ctx, r: Region, load: boolean, pre: Stmt[]): { region: Region; post: Stmt[] } {
  const b = info(c, r.buf);
  if (b.buf.scope === "shared") return { region: r, post: [] };
  if (b.buf.scope !== "fragment") fail(undefined, `'${r.buf}' is ${b.buf.scope} memory; reduce, top-k and scan work on shared or fragment tiles`);
  const name = c.fresh(`${r.buf}_rows`);
  const buf = { name, scope: "shared" as const, dtype: b.buf.dtype, shape: b.shape.map((n) => int(n)) };
  c.hoisted.push({ k: "alloc", buf });
  const sInfo: BufInfo = { buf, shape: b.shape, size: b.shape.reduce((x, y) => x * y, 1), stages: 1 };
  c.bufs.set(name, sInfo);
  const whole = { ...full(b.shape), buf: r.buf }, scratch = { ...full(b.shape), buf: name };
  if (load) pre.push(...lowerCopy(c, { src: whole, dst: scratch }));
  const region = { ...r, buf: name };
  // Back to the fragment after the computation (a barrier first: other threads wrote it).
  return { region, post: [{ k: "barrier" }, ...lowerCopy(c, { src: scratch, dst: whole })] };
}

/** Loops over the kept (non-axis) coordinates of src, one output row per thread step. */
function perRow(c: Ctx, src: Region, axis: number, body: (outer: Expr[]) => Stmt[]): Stmt[] {
  const dims = src.extents.map((e, d) => (d === axis ? 1 : evalConst(e)));
  if (dims.some((n) => n === undefined)) fail(undefined, `only the scanned or reduced axis of '${src.buf}' may have a run-time extent`);
  const ext = dims as number[];
  const total = ext.reduce((x, y) => x * y, 1);
  return countedLoop(c, "row", int(Math.ceil(total / c.threads)), (it) => {
    const pre: Stmt[] = [];
    const e = letI32(c, "o", bin("+", bin("*", it, int(c.threads)), c.tx), pre);
    const coords: Expr[] = [];
    let stride = 1;
    for (let d = ext.length - 1; d >= 0; d--) {
      coords.unshift(fold(bin("%", bin("/", e, int(stride)), int(ext[d]!))));
      stride *= ext[d]!;
    }
    return [...pre, ...guard(total % c.threads === 0 ? TRUE : bin("<", e, int(total)), body(coords))];
  }, 1);
}

/** Buffer indices of src at kept coordinates `outer` and `a` along `axis`. */
const srcIdx = (r: Region, outer: Expr[], axis: number, a: Expr) =>
  r.offsets.map((o, d) => fold(bin("+", o, d === axis ? a : outer[d]!)));

/** Buffer indices of dst for the kept coordinates: dst's non-unit dims take the kept
 *  coordinates of src's non-unit dims, in order. */
function dstIdx(src: Region, dst: Region, outer: Expr[], axis: number, extra?: Expr): Expr[] {
  const kept = outer.filter((_, d) => d !== axis && evalConst(src.extents[d]!) !== 1);
  if (extra) kept.push(extra);
  let j = 0;
  return dst.offsets.map((o, d) => (evalConst(dst.extents[d]!) === 1 && !(extra && d === dst.offsets.length - 1) ? o : fold(bin("+", o, kept[j++] ?? int(0)))));
}

const ld = (c: Ctx, buf: string, idx: Expr[]): Expr => { const r = addr(c, buf, idx); return { k: "load", buf: r.buf, idx: r.idx }; };
const st = (c: Ctx, buf: string, idx: Expr[], value: Expr): Stmt => { const r = addr(c, buf, idx); return { k: "store", buf: r.buf, idx: r.idx, value }; };

function identity(op: "sum" | "max" | "min", t: DType): Expr {
  if (op === "sum") return t.startsWith("f") || t.startsWith("bf") ? { k: "float", v: 0, dtype: t === "f32" ? undefined : t } : { k: "int", v: 0, dtype: t === "i32" ? undefined : t };
  const inf = op === "max" ? -Infinity : Infinity;
  if (t === "f32" || t === "f64" || t === "f16" || t === "bf16") return { k: "float", v: inf, dtype: t === "f32" ? undefined : t };
  const lim = t === "i32" ? (op === "max" ? -2147483648 : 2147483647) : op === "max" ? 0 : 4294967295;
  return { k: "int", v: lim, dtype: t === "i32" ? undefined : t };
}

export function lowerReduce(c: Ctx, s: Reduce): Stmt[] {
  const pre: Stmt[] = [];
  const src = staged(c, s.src, true, pre), dst = staged(c, s.dst, s.accumulate, pre);
  const sb = info(c, src.region.buf), db = info(c, dst.region.buf);
  // Narrow floats accumulate in f32 and round once at the store.
  const t: DType = isFloat(db.buf.dtype) && byteSize(db.buf.dtype) < 4 ? "f32" : db.buf.dtype;
  const out = (e: Expr): Expr => (t === db.buf.dtype ? e : { k: "cast", dtype: db.buf.dtype, a: e });
  const acc = c.fresh("red");
  const body = perRow(c, src.region, s.axis, (outer) => {
    const di = dstIdx(src.region, dst.region, outer, s.axis);
    const conv = (e: Expr, from: DType): Expr => (from === t ? e : { k: "cast", dtype: t, a: e });
    const step = (a: Expr): Expr => s.op === "sum" ? bin("+", v(acc), a) : bin(s.op, v(acc), a);
    return [
      { k: "let", name: acc, dtype: t, value: s.accumulate ? conv(ld(c, dst.region.buf, di), db.buf.dtype) : identity(s.op, t), mutable: true },
      ...countedLoop(c, "a", s.src.extents[s.axis]!, (a) => [{ k: "assign", name: acc, value: step(conv(ld(c, src.region.buf, srcIdx(src.region, outer, s.axis, a)), sb.buf.dtype)) }], 1),
      st(c, dst.region.buf, di, out(v(acc))),
    ];
  });
  return [...withBarriers(c, true, [...pre, { k: "barrier" }, ...body]), ...dst.post];
}

export function lowerScan(c: Ctx, s: Scan): Stmt[] {
  const pre: Stmt[] = [];
  const src = staged(c, s.src, true, pre);
  const same = s.src.buf === s.dst.buf;
  const dst = same ? src : staged(c, s.dst, false, pre);
  const axis = s.src.extents.length - 1;
  const t = info(c, dst.region.buf).buf.dtype, tin = info(c, src.region.buf).buf.dtype;
  const acc = c.fresh("run"), x = c.fresh("x");
  const body = perRow(c, src.region, axis, (outer) => [
    { k: "let", name: acc, dtype: t, value: identity("sum", t), mutable: true },
    ...countedLoop(c, "a", s.src.extents[axis]!, (a) => {
      const di = dstIdx(src.region, dst.region, outer, axis, a);
      const val: Expr = { k: "cast", dtype: t, a: ld(c, src.region.buf, srcIdx(src.region, outer, axis, a)) };
      const xv = tin === t ? (val as { a: Expr }).a : val;
      return s.exclusive
        ? [{ k: "let", name: x, dtype: t, value: xv, mutable: false }, st(c, dst.region.buf, di, v(acc)), { k: "assign", name: acc, value: bin("+", v(acc), v(x)) }]
        : [{ k: "assign", name: acc, value: bin("+", v(acc), xv) }, st(c, dst.region.buf, di, v(acc))];
    }, 1),
  ]);
  return [...withBarriers(c, true, [...pre, { k: "barrier" }, ...body]), ...dst.post];
}

export function lowerTopK(c: Ctx, s: TopK): Stmt[] {
  if (s.src.extents.length !== 2) fail(s.loc, `top-k takes a 2-d tile`);
  const pre: Stmt[] = [];
  const src = staged(c, s.src, true, pre);
  const vals = staged(c, s.values, true, pre), ids = staged(c, s.indices, true, pre);
  const vt = info(c, vals.region.buf).buf.dtype, it = info(c, ids.region.buf).buf.dtype, tin = info(c, src.region.buf).buf.dtype;
  const [pv, pi, bv, bi, x] = ["pv", "pi", "bv", "bi", "x"].map((h) => c.fresh(h)) as [string, string, string, string, string];
  const f32 = (e: Expr): Expr => (tin === "f32" ? e : { k: "cast", dtype: "f32", a: e });
  const body = perRow(c, src.region, 1, (outer) => [
    // The previous pick (value, index): the next is the best element ordered after it.
    { k: "let", name: pv, dtype: "f32", value: { k: "float", v: Infinity }, mutable: true },
    { k: "let", name: pi, dtype: "i32", value: int(-1), mutable: true },
    ...countedLoop(c, "j", s.count, (j) => [
      { k: "let", name: bv, dtype: "f32", value: { k: "float", v: -Infinity }, mutable: true },
      { k: "let", name: bi, dtype: "i32", value: int(-1), mutable: true },
      ...countedLoop(c, "n", s.src.extents[1]!, (n) => [
        { k: "let", name: x, dtype: "f32", value: f32(ld(c, src.region.buf, srcIdx(src.region, outer, 1, n))), mutable: false },
        // after the previous pick: smaller value, or equal value at a larger index (NaN fails both)
        ...guard(bin("||", bin("<", v(x), v(pv)), bin("&&", bin("==", v(x), v(pv)), bin(">", n, v(pi)))), guard(
          // better than the best so far: larger value, or the first seen (ties keep the lower index)
          bin("||", bin(">", v(x), v(bv)), bin("&&", bin("==", v(x), v(bv)), bin("<", v(bi), int(0)))),
          [{ k: "assign", name: bv, value: v(x) }, { k: "assign", name: bi, value: n }])),
      ]),
      st(c, vals.region.buf, dstIdx(src.region, vals.region, outer, 1, j), vt === "f32" ? v(bv) : { k: "cast", dtype: vt, a: v(bv) }),
      st(c, ids.region.buf, dstIdx(src.region, ids.region, outer, 1, j), it === "i32" ? v(bi) : { k: "cast", dtype: it, a: v(bi) }),
      { k: "assign", name: pv, value: v(bv) },
      { k: "assign", name: pi, value: v(bi) },
    ], 1),
  ]);
  return [...withBarriers(c, true, [...pre, { k: "barrier" }, ...body]), ...vals.post, ...ids.post];
}
