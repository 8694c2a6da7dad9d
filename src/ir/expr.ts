// Expression and statement utilities shared by every stage: traversal, substitution,
// constant folding, typing and fresh names. Everything here is pure: inputs are never
// mutated, results share unchanged subtrees with their inputs.
import {
  type BinOp, type Buffer, type DType, type Expr, type Kernel, type Ref, type Region, type Stmt, type TunableValue,
  byteSize, isFloat, isInt,
} from "./ir.ts";
import { floatToInt, roundTo } from "../numeric/dtype.ts";

// ---------------------------------------------------------------- booleans

// There is no boolean literal node: a bool is an int literal with dtype "bool" (1 or 0).
export const TRUE: Expr = { k: "int", v: 1, dtype: "bool" };
export const FALSE: Expr = { k: "int", v: 0, dtype: "bool" };
export const boolLit = (b: boolean): Expr => (b ? TRUE : FALSE);

/** true / false when `e` is a literal (any nonzero number counts as true). */
export function litBool(e: Expr): boolean | undefined {
  return e.k === "int" || e.k === "float" ? e.v !== 0 : undefined;
}

export const and = (a: Expr, b: Expr): Expr => ({ k: "bin", op: "&&", a, b });

// ---------------------------------------------------------------- expression traversal

/** Rebuilds `e` bottom-up: children first, then `f` on the node with mapped children.
 *  `f` returns undefined to keep the node. */
export function mapExpr(e: Expr, f: (e: Expr) => Expr | undefined): Expr {
  let r: Expr;
  switch (e.k) {
    case "int": case "float": case "var": r = e; break;
    case "bin": {
      const a = mapExpr(e.a, f), b = mapExpr(e.b, f);
      r = a === e.a && b === e.b ? e : { ...e, a, b };
      break;
    }
    case "un": { const a = mapExpr(e.a, f); r = a === e.a ? e : { ...e, a }; break; }
    case "cast": { const a = mapExpr(e.a, f); r = a === e.a ? e : { ...e, a }; break; }
    case "call": { const args = mapList(e.args, f); r = args === e.args ? e : { ...e, args }; break; }
    case "select": {
      const cond = mapExpr(e.cond, f), a = mapExpr(e.a, f), b = mapExpr(e.b, f);
      r = cond === e.cond && a === e.a && b === e.b ? e : { ...e, cond, a, b };
      break;
    }
    case "load": { const idx = mapList(e.idx, f); r = idx === e.idx ? e : { ...e, idx }; break; }
  }
  return f(r) ?? r;
}

function mapList(es: Expr[], f: (e: Expr) => Expr | undefined): Expr[] {
  let changed = false;
  const out = es.map((x) => { const y = mapExpr(x, f); if (y !== x) changed = true; return y; });
  return changed ? out : es;
}

/** Visits every node of `e`, parents before children. */
export function walkExpr(e: Expr, f: (e: Expr) => void): void {
  f(e);
  switch (e.k) {
    case "bin": walkExpr(e.a, f); walkExpr(e.b, f); break;
    case "un": case "cast": walkExpr(e.a, f); break;
    case "call": e.args.forEach((x) => walkExpr(x, f)); break;
    case "select": walkExpr(e.cond, f); walkExpr(e.a, f); walkExpr(e.b, f); break;
    case "load": e.idx.forEach((x) => walkExpr(x, f)); break;
    default: break;
  }
}

/** Names of the variables `e` reads. */
export function freeVars(e: Expr, into: Set<string> = new Set()): Set<string> {
  walkExpr(e, (x) => { if (x.k === "var") into.add(x.name); });
  return into;
}

// ---------------------------------------------------------------- statement traversal

type EF = (e: Expr) => Expr;
const mapRegion = (r: Region, f: EF): Region => ({ ...r, offsets: r.offsets.map(f), extents: r.extents.map(f) });
const mapRef = (r: Ref, f: EF): Ref => ({ ...r, idx: r.idx.map(f) });
const mapBuffer = (b: Buffer, f: EF): Buffer => ({ ...b, shape: b.shape.map(f) });

/** Applies `f` to every top-level expression held directly by `s` (not nested bodies):
 *  values, conditions, loop bounds, region offsets/extents, ref indices, alloc shapes. */
export function mapStmtExprs(s: Stmt, f: EF): Stmt {
  switch (s.k) {
    case "alloc": return { ...s, buf: mapBuffer(s.buf, f) };
    case "let": case "assign": return { ...s, value: f(s.value) };
    case "store": return { ...s, idx: s.idx.map(f), value: f(s.value) };
    case "for": return { ...s, starts: s.starts.map(f), extents: s.extents.map(f) };
    case "if": return { ...s, cond: f(s.cond) };
    case "copy": return { ...s, src: mapRegion(s.src, f), dst: mapRegion(s.dst, f) };
    case "fill": return { ...s, dst: mapRegion(s.dst, f), value: f(s.value) };
    case "gemm": return { ...s, a: mapRegion(s.a, f), b: mapRegion(s.b, f), c: mapRegion(s.c, f) };
    case "reduce": case "scan": return { ...s, src: mapRegion(s.src, f), dst: mapRegion(s.dst, f) };
    case "topk": return { ...s, src: mapRegion(s.src, f), values: mapRegion(s.values, f), indices: mapRegion(s.indices, f), count: f(s.count) };
    case "atomic": return { ...s, idx: s.idx.map(f), value: f(s.value) };
    case "warp_reduce": return { ...s, value: f(s.value) };
    case "barrier": case "named_barrier": case "setmaxnreg": case "cp_commit": case "cp_wait": return s;
    case "vcopy": case "cp_async": return { ...s, dst: mapRef(s.dst, f), src: mapRef(s.src, f), pred: f(s.pred) };
    case "ldmatrix": return { ...s, dst: mapRef(s.dst, f), addr: mapRef(s.addr, f) };
    case "dequant": {
      const d = { ...s, dst: mapRef(s.dst, f), word: f(s.word), scale: f(s.scale), zero: f(s.zero) };
      return s.pair ? { ...d, pair: f(s.pair) } : d;
    }
    case "mma": return { ...s, d: mapRef(s.d, f), a: mapRef(s.a, f), b: mapRef(s.b, f), c: mapRef(s.c, f) };
    case "wgmma": return { ...s, d: mapRef(s.d, f), a: { ...s.a, ref: mapRef(s.a.ref, f) }, b: { ...s.b, ref: mapRef(s.b.ref, f) } };
    case "wgmma_fence": case "wgmma_commit": case "wgmma_wait": case "fence_async": case "mbar_fence_init": case "griddep": return s;
    case "mbar_init": case "mbar_arrive": return { ...s, bar: mapRef(s.bar, f) };
    case "mbar_wait": return { ...s, bar: mapRef(s.bar, f), parity: f(s.parity) };
    case "tma_load": return { ...s, dst: mapRef(s.dst, f), coords: s.coords.map(f), bar: mapRef(s.bar, f) };
  }
}

/** Visits every expression held directly by `s` (not nested bodies). */
export function stmtExprs(s: Stmt): Expr[] {
  const out: Expr[] = [];
  mapStmtExprs(s, (e) => { out.push(e); return e; });
  return out;
}

/** Rebuilds a statement list bottom-up: nested bodies first, then `f` on each statement,
 *  which may return one statement, a list (spliced in), or undefined to keep it. */
export function mapStmts(stmts: Stmt[], f: (s: Stmt) => Stmt | Stmt[] | undefined): Stmt[] {
  const out: Stmt[] = [];
  for (const s0 of stmts) {
    let s = s0;
    if (s.k === "for") s = { ...s, body: mapStmts(s.body, f) };
    else if (s.k === "if") s = { ...s, then: mapStmts(s.then, f), else: mapStmts(s.else, f) };
    const r = f(s) ?? s;
    if (Array.isArray(r)) out.push(...r); else out.push(r);
  }
  return out;
}

/** Visits every statement, parents before their nested bodies. */
export function walkStmts(stmts: Stmt[], f: (s: Stmt) => void): void {
  for (const s of stmts) {
    f(s);
    if (s.k === "for") walkStmts(s.body, f);
    else if (s.k === "if") { walkStmts(s.then, f); walkStmts(s.else, f); }
  }
}

/** Every buffer name the statements mention, once per mention (a store's or atomic's target,
 *  a tile op's regions, a load in any expression, a row gather's or scatter's index buffer, any
 *  Ref of the lower-level statements): every string field named `buf`, `rows` or `dstRows`,
 *  nested bodies included.
 *  An alloc's buffer is an object, not a mention. */
export function bufferMentions(stmts: Stmt[]): string[] {
  const out: string[] = [];
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) { x.forEach(visit); return; }
    if (!x || typeof x !== "object") return;
    for (const [key, val] of Object.entries(x)) {
      if ((key === "buf" || key === "rows" || key === "dstRows") && typeof val === "string") out.push(val);
      else visit(val);
    }
  };
  visit(stmts);
  return out;
}

/** Applies `f` to every expression of every statement, nested bodies included. */
export function mapAllExprs(stmts: Stmt[], f: EF): Stmt[] {
  return mapStmts(stmts, (s) => mapStmtExprs(s, f));
}

// ---------------------------------------------------------------- substitution

/** Replaces variables by expressions. Binding names (let/assign/for vars) are left as they
 *  are: callers substitute names that are not rebound (tunables, dims, fresh loop vars). */
export function substitute(e: Expr, m: Map<string, Expr>): Expr;
export function substitute(s: Stmt[], m: Map<string, Expr>): Stmt[];
export function substitute(x: Expr | Stmt[], m: Map<string, Expr>): Expr | Stmt[] {
  const f = (e: Expr) => mapExpr(e, (n) => (n.k === "var" ? m.get(n.name) : undefined));
  return Array.isArray(x) ? mapAllExprs(x, f) : f(x);
}

// ---------------------------------------------------------------- typing

/** Types of the names an expression may mention. */
export interface TypeEnv {
  vars: Map<string, DType>;
  bufs: Map<string, DType>;
}

/**
 * Promotion of two operand types (documented rule, used by typeOf, fold and inferTypes):
 *  - float with float: the wider one; f16 with bf16 (neither holds the other) and any fp8
 *    mix go to f32.
 *  - float with int or bool: the float type.
 *  - int with int: the wider one; equal width signed vs unsigned: unsigned (as C).
 *  - bool with bool: bool; bool with int: the int.
 */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  const fa = isFloat(a), fb = isFloat(b);
  if (fa && fb) {
    const rank = (t: DType) => (t === "f64" ? 3 : t === "f32" ? 2 : 1);
    if (rank(a) !== rank(b)) return rank(a) > rank(b) ? a : b;
    return "f32";
  }
  if (fa) return a;
  if (fb) return b;
  if (a === "bool") return b;
  if (b === "bool") return a;
  const sa = byteSize(a), sb = byteSize(b);
  if (sa !== sb) return sa > sb ? a : b;
  return a.startsWith("u") ? a : b;
}

const CMP = new Set<BinOp>(["<", "<=", ">", ">=", "==", "!="]);
const isCmp = (op: BinOp) => CMP.has(op);

/** An untyped literal adapts to the other operand: `x + 1` keeps x's type, `h * 0.5`
 *  with h: f16 stays f16; only an int literal against a float is widened to it. */
function weak(e: Expr): boolean {
  return (e.k === "int" || e.k === "float") && e.dtype === undefined;
}

function litType(e: Expr & { k: "int" | "float" }): DType {
  return e.dtype ?? (e.k === "int" ? "i32" : "f32");
}

/** The dtype of `e`. Unknown names throw a plain Error (callers validate names first). */
export function typeOf(e: Expr, env: TypeEnv): DType {
  switch (e.k) {
    case "int": case "float": return litType(e);
    case "var": {
      const t = env.vars.get(e.name);
      if (!t) throw new Error(`typeOf: unknown variable '${e.name}'`);
      return t;
    }
    case "load": {
      const t = env.bufs.get(e.buf);
      if (!t) throw new Error(`typeOf: unknown buffer '${e.buf}'`);
      return t;
    }
    case "cast": return e.dtype;
    case "un": return e.op === "not" ? "bool" : typeOf(e.a, env);
    case "call": {
      const t = e.args.map((x) => typeOf(x, env)).reduce(promote);
      return isFloat(t) ? t : "f32";
    }
    case "select": return binType(e.a, e.b, env);
    case "bin": {
      if (isCmp(e.op) || e.op === "&&" || e.op === "||") return "bool";
      if (e.op === "<<" || e.op === ">>") return typeOf(e.a, env);
      return binType(e.a, e.b, env);
    }
  }
}

function binType(a: Expr, b: Expr, env: TypeEnv): DType {
  const ta = typeOf(a, env), tb = typeOf(b, env);
  if (weak(a) && !weak(b) && !(a.k === "float" && !isFloat(tb))) return tb;
  if (weak(b) && !weak(a) && !(b.k === "float" && !isFloat(ta))) return ta;
  return promote(ta, tb);
}

/** Collects the types of every name declared in a kernel: params, dims, block/thread vars,
 *  loop vars (i32), lets, allocs, and tunables still unspecialized (i32 / bool). */
export function typeEnvOf(k: Kernel): TypeEnv {
  const vars = new Map<string, DType>(), bufs = new Map<string, DType>();
  for (const p of k.params) (p.kind === "tensor" ? bufs : vars).set(p.name, p.dtype);
  for (const d of k.dims) vars.set(d, "i32");
  for (const [n, vals] of Object.entries(k.tunables))
    if (typeof vals[0] !== "string") vars.set(n, typeof vals[0] === "boolean" ? "bool" : "i32");
  for (const b of k.launch.blockVars) vars.set(b, "i32");
  if (k.launch.threadVar) vars.set(k.launch.threadVar, "i32");
  walkStmts(k.launch.body, (s) => {
    if (s.k === "alloc") bufs.set(s.buf.name, s.buf.dtype);
    else if (s.k === "let") vars.set(s.name, s.dtype);
    else if (s.k === "for") s.vars.forEach((x) => vars.set(x, "i32"));
    else if (s.k === "atomic" && s.result) vars.set(s.result, bufs.get(s.buf) ?? "i32");
    else if (s.k === "warp_reduce") vars.set(s.result, s.dtype);
  });
  return { vars, bufs };
}

/** Makes every implicit conversion in `e` an explicit cast (WGSL has no implicit ones, and
 *  C++ has surprising ones for bf16): operands of arithmetic and comparisons go to their
 *  promoted type, select arms to the select's type, math arguments to the call's type.
 *  Untyped literals are retyped rather than cast. */
export function explicitCasts(e: Expr, env: TypeEnv): Expr {
  const to = (x: Expr, t: DType): Expr => {
    const have = typeOf(x, env);
    if (have === t) return x;
    if (weak(x) && (isFloat(t) || x.k === "int") && t !== "bool")
      return fold({ k: "cast", dtype: t, a: x }) as Expr;
    return { k: "cast", dtype: t, a: x };
  };
  return mapExpr(e, (x) => {
    switch (x.k) {
      case "bin": {
        if (x.op === "&&" || x.op === "||") return { ...x, a: to(x.a, "bool"), b: to(x.b, "bool") };
        if (x.op === "<<" || x.op === ">>") return undefined;
        const t = binType(x.a, x.b, env);
        const a = to(x.a, t), b = to(x.b, t);
        return a === x.a && b === x.b ? undefined : { ...x, a, b };
      }
      case "select": {
        const t = typeOf(x, env);
        return { ...x, cond: to(x.cond, "bool"), a: to(x.a, t), b: to(x.b, t) };
      }
      case "call": {
        const t = typeOf(x, env);
        return { ...x, args: x.args.map((y) => to(y, t)) };
      }
      default: return undefined;
    }
  });
}

// ---------------------------------------------------------------- constant folding

/** Wraps an integer to the range of `t` (two's complement); undefined if it cannot be
 *  represented exactly in a JS number (i64 beyond 2^53). */
function wrapInt(v: number, t: DType): number | undefined {
  switch (t) {
    case "bool": return v !== 0 ? 1 : 0;
    case "i8": return (v << 24) >> 24;
    case "u8": return v & 0xff;
    case "i16": return (v << 16) >> 16;
    case "u16": return v & 0xffff;
    case "i32": return v | 0;
    case "u32": return v >>> 0;
    default: return Number.isSafeInteger(v) ? v : undefined;
  }
}

function mkLit(v: number, t: DType, typed: boolean): Expr | undefined {
  if (isFloat(t)) {
    v = roundTo(t, v); // round-to-nearest-even, as the hardware converts
    return typed && t !== "f32" ? { k: "float", v, dtype: t } : { k: "float", v };
  }
  const w = wrapInt(v, t);
  if (w === undefined) return undefined;
  if (w === 0) v = 0; // no -0 among integers
  if (t === "bool") return boolLit(w !== 0);
  return typed && t !== "i32" ? { k: "int", v: w + 0, dtype: t } : { k: "int", v: w + 0 };
}

/** Type of a literal-only binary operation, with the weak-literal rule. */
function litBinType(a: Expr & { k: "int" | "float" }, b: Expr & { k: "int" | "float" }): DType {
  const ta = litType(a), tb = litType(b);
  if (a.dtype === undefined && b.dtype !== undefined && !(a.k === "float" && !isFloat(tb))) return tb;
  if (b.dtype === undefined && a.dtype !== undefined && !(b.k === "float" && !isFloat(ta))) return ta;
  return promote(ta, tb);
}

function evalBin(op: BinOp, x: number, y: number, t: DType): number | undefined {
  const fl = isFloat(t);
  switch (op) {
    case "+": return x + y;
    case "-": return x - y;
    case "*": return fl ? x * y : Number(BigInt.asIntN(64, BigInt(x) * BigInt(y)));
    case "/": if (fl) return x / y; return y === 0 ? undefined : Math.trunc(x / y);
    case "%": if (fl) return x % y; return y === 0 ? undefined : x % y;
    case "<": return +(x < y);
    case "<=": return +(x <= y);
    case ">": return +(x > y);
    case ">=": return +(x >= y);
    case "==": return +(x === y);
    case "!=": return +(x !== y);
    case "&&": return +(x !== 0 && y !== 0);
    case "||": return +(x !== 0 || y !== 0);
    case "min": return Math.min(x, y);
    case "max": return Math.max(x, y);
    case "cdiv": return fl || y === 0 ? undefined : Math.ceil(x / y);
    case "floordiv": return fl || y === 0 ? undefined : Math.floor(x / y);
    case "&": case "|": case "^": case "<<": case ">>": {
      if (fl || byteSize(t) > 4) return undefined;
      if (op === "&") return x & y;
      if (op === "|") return x | y;
      if (op === "^") return x ^ y;
      if (y < 0 || y >= byteSize(t) * 8) return undefined; // C leaves these undefined
      if (op === "<<") return x << y;
      return t.startsWith("u") ? x >>> y : x >> y;
    }
  }
}

const isPosLit = (e: Expr): e is Expr & { k: "int" } => e.k === "int" && e.dtype === undefined && e.v > 0;
/** Builds x op c and folds the result once more. */
function mk(op: BinOp, x: Expr, c: number): Expr {
  const e: Expr & { k: "bin" } = { k: "bin", op, a: x, b: { k: "int", v: c } };
  return foldBin(e) ?? e;
}
const isLit = (e: Expr): e is Expr & { k: "int" | "float" } => e.k === "int" || e.k === "float";
const isIntLit = (e: Expr, v: number) => e.k === "int" && e.v === v && e.dtype !== "bool";

/** Syntactically integer: built from int literals, vars (index vars are ints) and
 *  integer-only operators, no loads, casts to float, calls or float literals. Used to
 *  allow x*0 -> 0 and reassociation, which are wrong for floats (NaN, rounding). */
export function looksInt(e: Expr, env?: TypeEnv): boolean {
  if (env) { try { return isInt(typeOf(e, env)); } catch { return false; } }
  let ok = true;
  walkExpr(e, (x) => {
    if (x.k === "float" || x.k === "call" || x.k === "load" || x.k === "select") ok = false;
    else if (x.k === "cast" && !isInt(x.dtype)) ok = false;
    else if (x.k === "int" && x.dtype && !isInt(x.dtype)) ok = false;
  });
  return ok;
}

/** Constant folding and algebraic identities, bottom-up. Integer arithmetic follows C
 *  (truncating division, wraparound to the literal's dtype); float results are rounded to
 *  f32 / f64; 16/8-bit float results and math calls are left for run time.
 *  Identities that are wrong for floats (x*0, reassociation) need the operands to be ints:
 *  with `env` that is their type, without it a syntactic guess (vars count as ints). */
export function fold(e: Expr, env?: TypeEnv): Expr {
  foldEnv = env;
  try { return mapExpr(e, foldNode); } finally { foldEnv = undefined; }
}

let foldEnv: TypeEnv | undefined;

function foldNode(e: Expr): Expr | undefined {
  switch (e.k) {
    case "bin": return foldBin(e);
    case "un": {
      if (!isLit(e.a)) return undefined;
      const t = litType(e.a);
      if (e.op === "neg") return mkLit(-e.a.v, t, e.a.dtype !== undefined);
      if (e.op === "not") return boolLit(e.a.v === 0);
      return isInt(t) && byteSize(t) <= 4 ? mkLit(~e.a.v, t, e.a.dtype !== undefined) : undefined;
    }
    case "select": {
      const c = litBool(e.cond);
      return c === undefined ? undefined : c ? e.a : e.b;
    }
    case "cast": {
      if (!isLit(e.a)) return e.a.k === "cast" && e.a.dtype === e.dtype ? e.a : undefined;
      if (isFloat(e.dtype)) return mkLit(e.a.v, e.dtype, true);
      if (e.dtype === "bool") return boolLit(e.a.v !== 0);
      if (e.a.k === "float" || (e.a.dtype !== undefined && isFloat(e.a.dtype))) return mkLit(floatToInt(e.dtype, e.a.v), e.dtype, true);
      return mkLit(Math.trunc(e.a.v), e.dtype, true);
    }
    default: return undefined;
  }
}

function foldBin(e: Expr & { k: "bin" }): Expr | undefined {
  const { op, a, b } = e;
  if (isLit(a) && isLit(b)) {
    const t = litBinType(a, b);
    const typed = a.dtype !== undefined || b.dtype !== undefined;
    const r = evalBin(op, a.v, b.v, t);
    if (r === undefined) return undefined;
    if (isCmp(op) || op === "&&" || op === "||") return boolLit(r !== 0);
    return mkLit(r, t, typed);
  }
  // Boolean short cuts: exact for any operands (expressions have no side effects).
  if (op === "&&" || op === "||") {
    const la = litBool(a), lb = litBool(b);
    if (op === "&&") {
      if (la === false || lb === false) return FALSE;
      if (la === true) return b;
      if (lb === true) return a;
    } else {
      if (la === true || lb === true) return TRUE;
      if (la === false) return b;
      if (lb === false) return a;
    }
    return undefined;
  }
  const ints = looksInt(a, foldEnv) && looksInt(b, foldEnv);
  switch (op) {
    case "+":
      if (isIntLit(b, 0)) return a;
      if (isIntLit(a, 0)) return b;
      if (ints && (isDivMul(a, b) || isDivMul(b, a))) return a.k === "bin" && a.op === "%" ? a.a : (b as Expr & { k: "bin" }).a;
      if (ints) return reassoc(e);
      return undefined;
    case "-":
      if (isIntLit(b, 0)) return a;
      return undefined;
    case "*":
      if (isIntLit(b, 1)) return a;
      if (isIntLit(a, 1)) return b;
      if (ints && (isIntLit(a, 0) || isIntLit(b, 0))) return { k: "int", v: 0 };
      if (ints) return reassoc(e);
      return undefined;
    case "/": {
      if (isIntLit(b, 1) && looksInt(a, foldEnv)) return a;
      if (!ints || !isPosLit(b) || a.k !== "bin" || !isPosLit(a.b)) return undefined;
      const c1 = a.b.v, c2 = b.v;
      // All exact under truncating division (the real quotients are equal):
      //   (x * c1) / c2 = x * (c1 / c2) when c2 | c1;  (x * c1) / c2 = x / (c2 / c1) when c1 | c2;
      //   (x / c1) / c2 = x / (c1 * c2).
      if (a.op === "*" && c1 % c2 === 0) return mk("*", a.a, c1 / c2);
      if (a.op === "*" && c2 % c1 === 0) return mk("/", a.a, c2 / c1);
      if (a.op === "/" && c1 * c2 <= 0x7fffffff) return mk("/", a.a, c1 * c2);
      return undefined;
    }
    case "%": {
      if (ints && isIntLit(b, 1)) return { k: "int", v: 0 };
      if (!ints || !isPosLit(b) || a.k !== "bin" || !isPosLit(a.b)) return undefined;
      const c1 = a.b.v, c2 = b.v;
      // (x * c1) % c2: 0 when c2 | c1, (x % (c2 / c1)) * c1 when c1 | c2 (C remainder keeps
      // the dividend's sign on both sides); (x % c1) % c2 = x % c2 when c2 | c1.
      if (a.op === "*" && c1 % c2 === 0) return { k: "int", v: 0 };
      if (a.op === "*" && c2 % c1 === 0) return mk("*", mk("%", a.a, c2 / c1), c1);
      if (a.op === "%" && c1 % c2 === 0) return mk("%", a.a, c2);
      return undefined;
    }
    case "min": case "max":
      return exprEq(a, b) ? a : undefined;
    case "cdiv": case "floordiv":
      if (ints && isIntLit(b, 1)) return a;
      return undefined;
    default:
      return undefined;
  }
}

/** (x / c) * c and x % c: their sum is x exactly (C division and remainder agree). */
function isDivMul(p: Expr, q: Expr): boolean {
  return p.k === "bin" && p.op === "*" && p.a.k === "bin" && p.a.op === "/" && isPosLit(p.b) && exprEq(p.a.b, p.b)
    && q.k === "bin" && q.op === "%" && exprEq(q.b, p.b) && exprEq(q.a, p.a.a);
}

/** Integer reassociation of constants: (x + c1) + c2 -> x + (c1 + c2), c + x -> x + c,
 *  (x * c1) * c2 -> x * (c1 * c2). Keeps constants on the right so later rules see them. */
function reassoc(e: Expr & { k: "bin" }): Expr | undefined {
  const { op, a, b } = e;
  if (op !== "+" && op !== "*") return undefined;
  if (a.k === "int" && a.dtype === undefined && b.k !== "int") return foldBin({ k: "bin", op, a: b, b: a }) ?? { k: "bin", op, a: b, b: a };
  if (b.k === "int" && b.dtype === undefined && a.k === "bin" && a.op === op && a.b.k === "int" && a.b.dtype === undefined) {
    const c = op === "+" ? a.b.v + b.v : a.b.v * b.v;
    if (!Number.isSafeInteger(c) || Math.abs(c) > 0x7fffffff) return undefined;
    const inner: Expr = { k: "bin", op, a: a.a, b: { k: "int", v: c } };
    return foldBin(inner) ?? inner;
  }
  return undefined;
}

/** Structural equality of expressions (literal dtypes included). */
export function exprEq(a: Expr, b: Expr): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Value of `e` when it is constant after binding `env` (booleans bind as 1/0, results
 *  come back as 1/0). Integer numbers bind as i32 literals, others as f64 literals so that
 *  config and shape arithmetic is not rounded to f32. */
export function evalConst(e: Expr, env?: Map<string, number> | Record<string, number | boolean>): number | undefined {
  let r = e;
  if (env) {
    const m = new Map<string, Expr>();
    const entries = env instanceof Map ? [...env.entries()] : Object.entries(env);
    for (const [n, val] of entries) {
      const x = typeof val === "boolean" ? +val : val;
      m.set(n, Number.isInteger(x) ? { k: "int", v: x } : { k: "float", v: x, dtype: "f64" });
    }
    r = substitute(r, m);
  }
  const f = fold(r);
  return isLit(f) ? f.v : undefined;
}

// ---------------------------------------------------------------- names

/** Every name a kernel declares (params, dims, tunables, block/thread vars, buffers,
 *  lets, loop vars). */
export function declaredNames(k: Kernel): Set<string> {
  const names = new Set<string>([...k.params.map((p) => p.name), ...k.dims, ...Object.keys(k.tunables), ...k.launch.blockVars]);
  if (k.launch.threadVar) names.add(k.launch.threadVar);
  walkStmts(k.launch.body, (s) => {
    if (s.k === "alloc") names.add(s.buf.name);
    else if (s.k === "let") names.add(s.name);
    else if (s.k === "for") s.vars.forEach((x) => names.add(x));
    else if (s.k === "atomic" && s.result) names.add(s.result);
    else if (s.k === "warp_reduce") names.add(s.result);
  });
  return names;
}

/** A generator of names unused in `k` (and unused by earlier calls): hint, hint_1, ... */
export function freshNamer(k: Kernel): (hint: string) => string {
  const used = declaredNames(k);
  return (hint: string) => {
    let name = hint;
    for (let i = 1; used.has(name); i++) name = `${hint}_${i}`;
    used.add(name);
    return name;
  };
}

/** A config's values as expression evaluation binds them: numbers, booleans as 1/0
 *  (string tunables take no part in arithmetic). */
export function numericConfig(config: Record<string, TunableValue>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [n, x] of Object.entries(config)) if (typeof x !== "string") out[n] = +x;
  return out;
}
