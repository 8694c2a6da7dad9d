// Building blocks of a register-fused dequant (fuse-dequant-gemm.ts feeds mma.sync B
// fragments with them; another consumer of dequantized registers, e.g. a register-operand
// wgmma, can use the same): the front end's T.dequant loop body (src/frontend/dequant.ts),
//  - planned once per gemm (`planTile`): what dequant-uniform.ts shows to be the same for
//    every word of the tile (the scale / zero-point reads, the K mask);
//  - its per-tile part (`tileScales`): the scale and zero point of some rows at w = 0,
//    rounded to the tile's type into local arrays, placed before the pipeline's wait when
//    allowed (`placeEarly`);
//  - one instance per (row, word, pair) (`dequantPair`): the two neighbouring values
//    2p, 2p + 1 of a word, with or without the K mask.
// The numerics are those of the unfused path: the same expressions, the same two roundings.
import { type Buffer, type Expr, type Stmt, bin, flt, int, v } from "../ir/ir.ts";
import { evalConst, fold, freeVars, mapExpr, stmtExprs, substitute, walkExpr, walkStmts } from "../ir/expr.ts";
import type { Ctx } from "./lower-ctx.ts";
import type { DequantGemm } from "./fuse-dequant-gemm.ts";
import { type TileFacts, tileFacts, wholeTileCond } from "./dequant-uniform.ts";

type Store = Extract<Stmt, { k: "store" }>;
type Select = Extract<Expr, { k: "select" }>;

export interface TilePlan {
  f: DequantGemm;
  dtype: Buffer["dtype"];
  /** The loop's row and word variables, and the store loop's value index. */
  r: string; w: string; j: string;
  /** Words per row of the tile. */
  W: number;
  /** The body before the dequant (its value buffer's alloc aside). */
  prefix: Stmt[];
  /** Its pure lets, all a per-tile instance needs (kq for the K mask). */
  kept: Stmt[];
  /** Scale and zero point once per tile (`tileScales`) instead of per word: one per slice
   *  of `slice` words of a row (W when the tile lies in one group). */
  perTileScales: boolean;
  slice: number;
  /** Whether the zero point is an expression to read (not a literal folded into the magic). */
  zeroRead: boolean;
  /** The K mask of the store loop, and the condition under which a whole tile passes it. */
  select?: Select;
  wholeTile?: Expr;
}

/** Lets of `stmts`, each value with the earlier ones substituted. */
export function letValues(stmts: Stmt[]): Map<string, Expr> {
  const m = new Map<string, Expr>();
  for (const s of stmts) if (s.k === "let" && !s.mutable) m.set(s.name, substitute(s.value, m));
  return m;
}

/** Variables the statements read that they do not bind themselves. */
export function freeNames(stmts: Stmt[]): Set<string> {
  const used = new Set<string>(), bound = new Set<string>();
  walkStmts(stmts, (s) => {
    if (s.k === "let") bound.add(s.name);
    if (s.k === "for") s.vars.forEach((x) => bound.add(x));
    if (s.k === "alloc") bound.add(s.buf.name);
    for (const e of stmtExprs(s)) freeVars(e, used);
  });
  return new Set([...used].filter((x) => !bound.has(x)));
}

/** A local register array of the lowering (registered in c.bufs) and its alloc. */
export function localArray(c: Ctx, hint: string, dtype: Buffer["dtype"], n: number): { name: string; alloc: Stmt } {
  const name = c.fresh(hint);
  c.bufs.set(name, { buf: { name, scope: "local", dtype, shape: [int(n)] }, shape: [n], size: n, stages: 1 });
  return { name, alloc: { k: "alloc", buf: { name, scope: "local", dtype, shape: [int(n)] } } };
}

/** The plan of a fused pair; `written`: buffers the kernel writes (their reads stay per word). */
export function planTile(c: Ctx, f: DequantGemm, written: Set<string>): TilePlan {
  const dtype = c.bufs.get(f.tile)!.buf.dtype;
  const [r, w] = f.loop.vars as [string, string];
  const j = f.stores.vars[0]!;
  const st = f.stores.body[0] as Store;
  const W = evalConst(f.loop.extents[1]!)!;
  const di = f.loop.body.indexOf(f.dequant);
  const ordered = di === f.loop.body.length - 2 && f.loop.body.at(-1) === f.stores;
  const prefix = f.loop.body.slice(0, Math.max(di, 0)).filter((s) => !(s.k === "alloc" && s.buf.name === f.tmp));
  const readOnly = (b: string) => c.bufs.get(b)?.buf.scope === "global" && !written.has(b);
  const facts: TileFacts | undefined = ordered ? tileFacts(prefix, w, W, readOnly) : undefined;
  // The masked reads and what depends on them are skipped per instance, and must not be
  // needed by the word or the stores.
  const skipped = new Set<string>();
  const kept: Stmt[] = [];
  for (const s of prefix) {
    const reads = stmtExprs(s).some((e) => { let l = false; walkExpr(e, (x) => { if (x.k === "load") l = true; }); return l; });
    if (s.k === "let" && !s.mutable && !reads && ![...freeVars(s.value)].some((x) => skipped.has(x))) kept.push(s);
    else if (s.k === "let") skipped.add(s.name);
    else walkStmts([s], (x) => { if (x.k === "let") skipped.add(x.name); });
  }
  const needs = [f.dequant.word, st.value].flatMap((e) => [...freeVars(e)]);
  const uniform = (fx?: TileFacts) => fx !== undefined && fx.dep(f.dequant.scale) <= 1 && fx.dep(f.dequant.zero) <= 1;
  // A group smaller than the tile: one scale per slice of the row, up to 4 slices (registers),
  // each of whole k-steps (16 values), so that a k-step's scale does not depend on the lane.
  let slice = W;
  if (facts && !uniform(facts))
    for (let sw = W / 2; sw >= W / 4 && Number.isInteger(sw) && (sw * f.per) % 16 === 0; sw /= 2)
      if (uniform(tileFacts(prefix, w, W, readOnly, sw))) { slice = sw; break; }
  const perTileScales = facts !== undefined && (slice < W || uniform(facts)) && !needs.some((x) => skipped.has(x));
  const select = st.value.k === "select" && st.value.a.k === "load" && st.value.a.buf === f.tmp ? st.value : undefined;
  const whole = facts && select ? wholeTileCond(facts, select.cond, w, W, j, f.per) : undefined;
  const wholeOk = whole !== undefined && ![...freeVars(whole)].some((x) => x === r || skipped.has(x) || facts!.lets.has(x));
  const zeroRead = f.dequant.zero.k !== "int" && f.dequant.zero.k !== "float";
  return { f, dtype, r, w, j, W, prefix, kept, perTileScales, slice, zeroRead, select, wholeTile: wholeOk ? whole : undefined };
}

/**
 * Scale and zero point of rows rowOf(i), i < n, once (plan.perTileScales must hold): the
 * body's reads at the first word of each slice, into local arrays of the tile's type.
 * rowOf must be an expression of the thread index and outer names (the block may run before
 * the caller's own lets). scale(i, w) / zero(i, w): the value for row i's word w (any word of
 * the k-step: slices are whole k-steps, so pass the k-step's first to keep lanes out of it).
 */
export function tileScales(c: Ctx, plan: TilePlan, n: number, rowOf: (i: Expr) => Expr): {
  block: Stmt[]; scale: (i: Expr, w: Expr) => Expr; zero?: (i: Expr, w: Expr) => Expr;
} {
  const { f, dtype } = plan;
  const S = plan.W / plan.slice;
  const sb = localArray(c, "dqs", dtype, n * S), zb = plan.zeroRead ? localArray(c, "dqz", dtype, n * S) : undefined;
  const i = c.fresh("nj"), si = S > 1 ? c.fresh("sl") : undefined;
  const at = si ? fold(bin("+", bin("*", v(i), int(S)), v(si))) : v(i);
  const inst: Stmt[] = [
    { k: "let", name: plan.r, dtype: "i32", value: fold(rowOf(v(i))), mutable: false },
    { k: "let", name: plan.w, dtype: "i32", value: si ? fold(bin("*", v(si), int(plan.slice))) : int(0), mutable: false },
    ...plan.prefix,
    { k: "store", buf: sb.name, idx: [at], value: { k: "cast", dtype, a: f.dequant.scale } },
    ...(zb ? [{ k: "store", buf: zb.name, idx: [at], value: { k: "cast", dtype, a: f.dequant.zero } } as Stmt] : []),
  ];
  const perRow: Stmt[] = si ? [{ k: "for", vars: [si], starts: [int(0)], extents: [int(S)], kind: "unroll", body: inst }] : inst;
  const block: Stmt[] = [sb.alloc, ...(zb ? [zb.alloc] : []),
    { k: "for", vars: [i], starts: [int(0)], extents: [int(n)], kind: "unroll", body: c.lowerBody(c, perRow) }];
  const read = (b: string) => (x: Expr, w: Expr): Expr =>
    ({ k: "cast", dtype: "f32", a: { k: "load", buf: b, idx: [S > 1 ? fold(bin("+", bin("*", x, int(S)), bin("/", w, int(plan.slice)))) : x] } });
  return { block, scale: read(sb.name), ...(zb ? { zero: read(zb.name) } : {}) };
}

/** Puts `block` at the top of the pipelined loop body, before its wait, when it reads nothing
 *  the body binds; else appends it to `fallback` (after the wait, still once per tile). */
export function placeEarly(c: Ctx, block: Stmt[], fallback: Stmt[]): void {
  const early = c.beforeWait;
  if (early && ![...freeNames(block)].some((x) => early.bound.has(x))) early.stmts.push(...block);
  else fallback.push(...block);
}

export interface PairSite {
  /** The word's index in its row (the loop's w); the row variable plan.r is bound by the caller. */
  w: Expr;
  /** The packed word (a register, or the body's own read of the tile when undefined). */
  word?: Expr;
  /** Which pair of the word (values 2 pair, 2 pair + 1), and the index of its first value. */
  pair: Expr; inWord: Expr;
  /** Per-tile scale / zero point (tileScales), else the body's own reads. */
  scale?: Expr; zero?: Expr;
  /** Keep the K mask (a ragged tile), or drop it (plan.wholeTile holds). */
  masked: boolean;
}

/** One instance: lowered statements leaving the two values, of the tile's type, in `values`. */
export function dequantPair(c: Ctx, plan: TilePlan, s: PairSite): { stmts: Stmt[]; values: [string, string] } {
  const { f, dtype } = plan;
  const st = f.stores.body[0] as Store;
  const pairBuf = localArray(c, "bq", dtype, 2);
  const body: Stmt[] = [{ k: "let", name: plan.w, dtype: "i32", value: s.w, mutable: false }];
  const dq: Stmt = { ...f.dequant, word: s.word ?? f.dequant.word, dst: { buf: pairBuf.name, idx: [int(0)] }, pair: s.pair,
    ...(s.scale ? { scale: s.scale } : {}), ...(s.zero ? { zero: s.zero } : {}) };
  if (s.scale) body.push(...plan.kept, dq);
  else for (const x of f.loop.body) {
    if (x === f.stores) continue;
    if (x.k === "alloc" && x.buf.name === f.tmp) continue;
    body.push(x === f.dequant ? dq : x);
  }
  const stored = s.masked || !plan.select ? st.value : plan.select.a;
  const values = [0, 1].map((i) => {
    const name = c.fresh("bv");
    // The store loop's value at j = inWord + i, reading the pair buffer for tmp.
    const value = mapExpr(stored, (x) => {
      if (x.k === "load" && x.buf === f.tmp) return { k: "load", buf: pairBuf.name, idx: [int(i)] };
      if (x.k === "var" && x.name === plan.j) return fold(bin("+", s.inWord, int(i)));
      return undefined;
    });
    body.push({ k: "let", name, dtype, value, mutable: false });
    return name;
  }) as [string, string];
  return { stmts: c.lowerBody(c, [pairBuf.alloc, ...body]), values };
}

/** Whether the dequant has no scale (T.dequant without `scales`: a literal 1). */
export const unscaled = (plan: TilePlan): boolean => evalConst(plan.f.dequant.scale) === 1;

/**
 * The bias of the unscaled u4 decode into bf16 with a literal zero point z (0 <= z <= 15):
 * its pairs can be fed to the mma as 128 + q, the lop3's output as it is (exact in bf16), for
 * a bias of 128 + z that the gemm takes off once per row (lower-gemm-mma.ts rowBias); else
 * undefined. Needs the per-tile plan (its kept lets are all an instance reads) and a K mask,
 * if any, that drops the value to 0 and does not depend on the row: the ones of the row sums
 * are masked by the same condition (onesPair), so both sides of the fold see the same k.
 */
export function biasFold(plan: TilePlan): number | undefined {
  const dq = plan.f.dequant, z = evalConst(dq.zero);
  if (dq.format !== "u4" || plan.dtype !== "bf16" || !unscaled(plan) || !plan.perTileScales) return undefined;
  if (z === undefined || !Number.isInteger(z) || z < 0 || z > 15) return undefined;
  const st = plan.f.stores.body[0] as Store;
  const tmpJ = (e: Expr) => e.k === "load" && e.buf === plan.f.tmp;
  if (plan.select) {
    if (evalConst(plan.select.b) !== 0) return undefined;
    const cond = substitute(plan.select.cond, letValues(plan.kept));
    if (freeVars(cond).has(plan.r)) return undefined;
  } else if (!tmpJ(st.value)) return undefined;
  return 128 + z;
}

/** The ones of a biased pair's row sums (biasFold): the pair's stored values with every
 *  dequantized value 1, so 1, or 0 where the K mask drops the value; `values` as dequantPair's. */
export function onesPair(c: Ctx, plan: TilePlan, s: { w: Expr; inWord: Expr; masked: boolean }): { stmts: Stmt[]; values: [string, string] } {
  const st = plan.f.stores.body[0] as Store;
  // The row is any (biasFold: the mask does not read it); the kept lets may name it.
  const body: Stmt[] = [
    { k: "let", name: plan.r, dtype: "i32", value: int(0), mutable: false },
    { k: "let", name: plan.w, dtype: "i32", value: s.w, mutable: false },
    ...plan.kept,
  ];
  const stored = s.masked || !plan.select ? st.value : plan.select.a;
  const values = [0, 1].map((i) => {
    const name = c.fresh("one");
    const value = mapExpr(stored, (x) => {
      if (x.k === "load" && x.buf === plan.f.tmp) return flt(1, plan.dtype);
      if (x.k === "var" && x.name === plan.j) return fold(bin("+", s.inWord, int(i)));
      return undefined;
    });
    body.push({ k: "let", name, dtype: plan.dtype, value, mutable: false });
    return name;
  }) as [string, string];
  return { stmts: c.lowerBody(c, body), values };
}
