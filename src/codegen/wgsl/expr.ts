// IR expressions -> WGSL expressions. Types follow ir/expr.ts (typeOf, with its weak-literal
// and promotion rules); WGSL has no implicit conversions, so every operand is converted to
// the operation's type explicitly, and values of narrow dtypes held in wider registers are
// re-rounded after each operation (what the interpreter and the CUDA path compute).
import { CompileError, type DType, type Expr, type MathFn, isFloat, isInt } from "../../ir/ir.ts";
import { type TypeEnv, typeOf } from "../../ir/expr.ts";
import { INT_RANGE, floatToInt, roundTo } from "../../numeric/dtype.ts";
import { decodeFn, roundFn } from "./helpers.ts";
import { type Feats, type GlobalStorage, needsRounding, regType } from "./types.ts";
import { wgslName } from "./names.ts";
import { atomicLoadWord } from "./atomic.ts";
import { wordAt } from "./vector.ts";

/** What the expression emitter knows about a buffer. */
export interface BufInfo {
  name: string;       // WGSL identifier
  scope: "global" | "shared" | "local";
  dtype: DType;
  shape: string[];    // WGSL i32 expressions per dim (only the inner ones matter)
  storage?: GlobalStorage;
  atomic?: boolean;   // global packed output: words are atomic<u32>
  /** One element per atomic word (a target of atomic statements): the register type whose
   *  bits the word holds (f32 as u32 bits). Every access goes through atomicLoad/Store. */
  atomicWord?: "i32" | "u32" | "f32";
  /** Read-only global declared array<vec4<word>> for vector copies (vector.ts). */
  vec4?: boolean;
}

export interface ExprCtx {
  feats: Feats;
  env: TypeEnv;
  bufs: Map<string, BufInfo>;
  /** Tunables bound by specialization, inlined as literals. */
  consts: Record<string, number | string | boolean>;
  /** Helpers the module needs: "round_bf16", "decode_fp8e4m3", "bits_f16", ... */
  used: Set<string>;
  usesErf: boolean;
  /** Inf/NaN literals need the _f32bits helper. */
  usesF32Bits?: boolean;
  /** The shader calls _pow (helpers.ts: TypeScript's Math.pow). */
  usesPow?: boolean;
}

function err(message: string): never {
  throw new CompileError([{ severity: "error", message }]);
}

export function exprType(e: Expr, cx: ExprCtx): DType {
  try {
    return typeOf(e, cx.env);
  } catch (x) {
    return err(`WGSL codegen: ${(x as Error).message}`);
  }
}

/** The type both operands of a binary operation are converted to (typeOf of a select
 *  applies the same weak-literal and promotion rules as arithmetic). */
function operandType(a: Expr, b: Expr, cx: ExprCtx): DType {
  return exprType({ k: "select", cond: { k: "int", v: 1, dtype: "bool" }, a, b }, cx);
}

// ---------------------------------------------------------------- literals and conversions

function f32Lit(v: number, cx: ExprCtx): string {
  if (!Number.isFinite(v)) cx.usesF32Bits = true;
  if (Number.isNaN(v)) return "_f32bits(0x7fc00000u)";
  if (v === Infinity) return "_f32bits(0x7f800000u)";
  if (v === -Infinity) return "_f32bits(0xff800000u)";
  if (Object.is(v, -0)) return "(-0.0f)";
  const s = String(Math.fround(v)) + "f";
  return v < 0 ? `(${s})` : s;
}

function literal(v: number, t: DType, cx: ExprCtx): string {
  if (t === "bool") return v !== 0 ? "true" : "false";
  if (isInt(t)) {
    const x = roundTo(t, v);
    if (regType(t, cx.feats) === "u32") return `${x >>> 0}u`;
    return x === -2147483648 ? "i32(-2147483647 - 1)" : x < 0 ? `(${x}i)` : `${x}i`;
  }
  if (t === "f16" && cx.feats.f16) {
    const x = roundTo("f16", v);
    return Number.isFinite(x) ? (x < 0 ? `(${x}h)` : `${x}h`) : `f16(${f32Lit(x, cx)})`;
  }
  return f32Lit(roundTo(t, v), cx);
}

/** Brings a value of a narrow dtype, computed in its register type, back into the dtype. */
export function fix(code: string, t: DType, cx: ExprCtx): string {
  if (!needsRounding(t, cx.feats)) return code;
  switch (t) {
    case "i8": return `extractBits(${code}, 0u, 8u)`;
    case "i16": return `extractBits(${code}, 0u, 16u)`;
    case "u8": return `(${code} & 0xffu)`;
    case "u16": return `(${code} & 0xffffu)`;
    default:
      cx.used.add(`round_${t}`);
      return `${roundFn(t)}(${code})`;
  }
}

/** Converts a value of dtype `from` to dtype `to` (C conversion semantics as in ir.ts). */
export function convert(code: string, from: DType, to: DType, cx: ExprCtx): string {
  if (from === to) return code;
  const rt = regType(to, cx.feats), rf = regType(from, cx.feats);
  if (to === "bool") return rf === "bool" ? code : `(${code} != ${literal(0, from, cx)})`;
  if (from === "bool") return fix(`select(${literal(0, to, cx)}, ${literal(1, to, cx)}, ${code})`, to, cx);
  if (isFloat(from) && isInt(to)) {
    cx.usesF32Bits = true;
    return fix(floatToIntWgsl(rf === "f32" ? code : `f32(${code})`, to, rt), to, cx);
  }
  return fix(rt === rf ? code : `${rt}(${code})`, to, cx);
}

/** f32 x to an integer dtype: truncated, saturated to the range, NaN -> 0 (numeric/dtype.ts
 *  floatToInt). The bounds are explicit: WGSL leaves NaN's conversion open (lavapipe: -2^31).
 *  The NaN test is helpers.ts's _is_nan (on the bits). */
function floatToIntWgsl(x: string, to: DType, rt: string): string {
  const zero = rt === "u32" ? "0u" : "0i";
  let v: string;
  if (to === "i32") v = `select(i32(max(${x}, -2147483648.0f)), 2147483647i, ${x} >= 2147483648.0f)`;
  else if (to === "u32") v = `select(u32(max(${x}, 0.0f)), 4294967295u, ${x} >= 4294967296.0f)`;
  else {
    const [lo, hi] = INT_RANGE[to]!;
    v = `${rt}(clamp(${x}, ${lo}.0f, ${hi}.0f))`;
  }
  return `select(${v}, ${zero}, _is_nan(${x}))`;
}

/** A literal's value converted from dtype `from` to `to` (C semantics, as in convert). */
function convertValue(v: number, from: DType, to: DType): number {
  if (to === "bool") return v !== 0 ? 1 : 0;
  if (isInt(to) && isFloat(from)) return floatToInt(to, v);
  return roundTo(to, v);
}

// ---------------------------------------------------------------- expressions

/** WGSL code computing e, converted to dtype `want` when given. */
export function emitExpr(e: Expr, cx: ExprCtx, want?: DType): string {
  const t = exprType(e, cx);
  // Literals are converted here rather than in the shader.
  if (want && (e.k === "int" || e.k === "float")) return literal(convertValue(roundTo(t, e.v), t, want), want, cx);
  const c = e.k === "var" ? cx.consts[e.name] : undefined;
  if (want && (typeof c === "number" || typeof c === "boolean")) return literal(convertValue(roundTo(t, +c), t, want), want, cx);
  const code = emitNatural(e, t, cx);
  return want ? convert(code, t, want, cx) : code;
}

function emitNatural(e: Expr, t: DType, cx: ExprCtx): string {
  switch (e.k) {
    case "int": case "float": return literal(e.v, t, cx);
    case "var": {
      const c = cx.consts[e.name];
      if (c !== undefined) {
        if (typeof c === "string") err(`WGSL codegen: string tunable '${e.name}' used as a value`);
        return literal(typeof c === "boolean" ? +c : c, t, cx);
      }
      return wgslName(e.name);
    }
    case "load": return emitLoad(e.buf, e.idx.map((x) => emitExpr(x, cx, "i32")), cx);
    case "cast": return emitExpr(e.a, cx, e.dtype);
    case "un": {
      if (e.op === "not") return `!(${emitExpr(e.a, cx, "bool")})`;
      const a = emitExpr(e.a, cx, t);
      return fix(e.op === "neg" ? `-(${a})` : `~(${a})`, t, cx);
    }
    case "select": {
      const c = emitExpr(e.cond, cx, "bool");
      return `select(${emitExpr(e.b, cx, t)}, ${emitExpr(e.a, cx, t)}, ${c})`;
    }
    case "call": return emitCall(e.fn, e.args, t, cx);
    case "bin": return emitBin(e, t, cx);
  }
}

/** TypeScript's Math.max / Math.min of floats: NaN if either operand is (WGSL's max() / min()
 *  return the other one). The NaN test is helpers.ts's _is_nan, on the bits: WGSL lets a compiler
 *  assume no NaN and fold `x != x` away (lavapipe does); the caller sets usesF32Bits. */
export function nanMinMax(op: "min" | "max", a: string, b: string): string {
  return `select(${op}(${a}, ${b}), ${a} + ${b}, _is_nan(f32(${a})) || _is_nan(f32(${b})))`;
}

function emitBin(e: Expr & { k: "bin" }, t: DType, cx: ExprCtx): string {
  const { op } = e;
  if (op === "&&" || op === "||") return `(${emitExpr(e.a, cx, "bool")} ${op} ${emitExpr(e.b, cx, "bool")})`;
  if (op === "<<" || op === ">>") {
    const a = emitExpr(e.a, cx, t);
    return fix(`(${a} ${op} u32(${emitExpr(e.b, cx)}))`, t, cx);
  }
  const ot = op === "<" || op === "<=" || op === ">" || op === ">=" || op === "==" || op === "!=" ? operandType(e.a, e.b, cx) : t;
  const a = emitExpr(e.a, cx, ot), b = emitExpr(e.b, cx, ot);
  if (ot === "bool" && (op === "+" || op === "-" || op === "*")) err(`WGSL codegen: arithmetic '${op}' on bool operands`);
  switch (op) {
    case "min": case "max":
      if (!isFloat(ot)) return `${op}(${a}, ${b})`;
      cx.usesF32Bits = true;
      return nanMinMax(op, a, b);
    case "cdiv": return `((${a} + ${b} - ${literal(1, ot, cx)}) / ${b})`;
    case "floordiv": return err("floordiv reached the WGSL emitter: the lowerIntDivision pass must run first");
    case "<": case "<=": case ">": case ">=": case "==": case "!=": return `(${a} ${op} ${b})`;
    case "&": case "|": case "^":
      if (ot === "bool") return `(${a} ${op} ${b})`;
      return fix(`(${a} ${op} ${b})`, t, cx);
    default: return fix(`(${a} ${op} ${b})`, t, cx);
  }
}

const DIRECT: Partial<Record<MathFn, string>> = {
  exp: "exp", exp2: "exp2", log: "log", log2: "log2", sqrt: "sqrt", rsqrt: "inverseSqrt", abs: "abs",
  tanh: "tanh", sin: "sin", cos: "cos", floor: "floor", ceil: "ceil", fma: "fma",
};

function emitCall(fn: MathFn, args: Expr[], t: DType, cx: ExprCtx): string {
  if (!isFloat(t)) err(`WGSL codegen: ${fn} of a non-float type ${t}`);
  // Narrow floats are computed in f32 (or f16 with the feature) and rounded once.
  const rt = regType(t, cx.feats) === "f16" ? "f16" : "f32";
  const xs = args.map((a) => emitExpr(a, cx, t));
  let code: string;
  const d = DIRECT[fn];
  if (d) code = `${d}(${xs.join(", ")})`;
  else if (fn === "sigmoid") code = `(1.0 / (1.0 + exp(-(${xs[0]}))))`;
  // TypeScript's Math.round: halves toward +Infinity (WGSL's round() goes to even). x - floor(x)
  // is exact, where floor(x + 0.5) would round 0.49999997 up.
  else if (fn === "round") code = `select(floor(${xs[0]}), floor(${xs[0]}) + 1.0, ${xs[0]} - floor(${xs[0]}) >= 0.5)`;
  else if (fn === "pow") {
    cx.usesPow = true;
    code = rt === "f16" ? `f16(_pow(f32(${xs[0]}), f32(${xs[1]})))` : `_pow(${xs[0]}, ${xs[1]})`;
  } else if (fn === "erf") {
    cx.usesErf = true;
    code = rt === "f16" ? `f16(_erf(f32(${xs[0]})))` : `_erf(${xs[0]})`;
  } else return err(`WGSL codegen: no lowering for ${fn}`);
  return fix(code, t, cx);
}

// ---------------------------------------------------------------- memory

/** Row-major flat index from per-dim index code (Horner form). */
export function flatIndex(b: BufInfo, idx: string[]): string {
  if (idx.length !== b.shape.length)
    err(`WGSL codegen: ${b.name} has rank ${b.shape.length}, indexed with ${idx.length} indices`);
  let code = idx[0]!;
  for (let d = 1; d < idx.length; d++) code = `(${code}) * ${b.shape[d]} + ${idx[d]}`;
  return code;
}

export function bufInfo(name: string, cx: ExprCtx): BufInfo {
  const b = cx.bufs.get(name);
  if (!b) err(`WGSL codegen: unknown buffer '${name}'`);
  return b;
}

/** Value (in the buffer dtype's register type) of element at flat index `flat`. */
export function loadFlat(b: BufInfo, flat: string, cx: ExprCtx): string {
  if (b.atomicWord) return atomicLoadWord(b, flat);
  if (b.scope !== "global") return `${b.name}[${flat}]`;
  if (b.storage!.kind === "word") return wordAt(b, flat);
  const word = b.atomic ? `atomicLoad(&${b.name}[(${flat}) / ${32 / b.storage!.bits}])` : wordAt(b, `(${flat}) / ${32 / b.storage!.bits}`);
  return `_ld_${b.name}(${word}, ${flat})`;
}

export function emitLoad(buf: string, idx: string[], cx: ExprCtx): string {
  const b = bufInfo(buf, cx);
  return loadFlat(b, flatIndex(b, idx), cx);
}

/** The function extracting one packed element of a global from its word, as a value in
 *  the dtype's register type. */
export function unpackFn(b: BufInfo, cx: ExprCtx): string {
  const bits = b.storage!.kind === "packed" ? b.storage!.bits : 32;
  const per = 32 / bits;
  const raw = `(w >> (u32(e % ${per}) * ${bits}u)) & ${bits === 16 ? "0xffffu" : "0xffu"}`;
  let value: string;
  switch (b.dtype) {
    case "u8": case "u16": value = raw; break;
    case "i8": case "i16": value = `extractBits(i32(${raw}), 0u, ${bits}u)`; break;
    case "bool": value = `(${raw}) != 0u`; break;
    case "f16": value = cx.feats.f16 ? `f16(unpack2x16float(${raw}).x)` : `unpack2x16float(${raw}).x`; break;
    default:
      cx.used.add(`decode_${b.dtype}`);
      value = `${decodeFn(b.dtype)}(${raw})`;
  }
  return `fn _ld_${b.name}(w: u32, e: i32) -> ${regType(b.dtype, cx.feats)} { return ${value}; }`;
}
