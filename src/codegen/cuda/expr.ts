// Typed emission of IR expressions as C++ code. Every emitted expression carries its IR dtype
// and its C precedence, so parentheses appear only where C needs them (and around operands of
// bitwise operators, where readers and compilers both want them).
import { promote } from "../../ir/expr.ts";
import { type BinOp, type DType, type Expr, type MathFn, type Scope, isFloat } from "../../ir/ir.ts";
import { INT_RANGE, toBits } from "../../numeric/dtype.ts";
import { floatLiteral, intLiteral, isNarrowFloat, storageType, toStorage, toValue, valueDType } from "./types.ts";

/** weak: an untyped literal, which takes the other operand's type (the rule of ir/expr.ts typeOf). */
export interface Code { code: string; prec: number; dtype: DType; weak?: boolean; lit?: number }

export interface BufInfo { c: string; dtype: DType; scope: Scope; shape: Expr[] }
export interface VarInfo { c: string; dtype: DType }

/** Name resolution for the expression emitter; lexical scoping lives with the caller. */
export interface ExprCtx {
  lookupVar(name: string): VarInfo | undefined;
  lookupBuf(name: string): BufInfo | undefined;
  /** Specialized tunables: a var not bound in scope but present here is a constant. */
  config: Record<string, number | string | boolean>;
  /** Integer type used to flatten global indexes (int64 so large tensors never overflow). */
  indexType: string;
}

/** C precedence of a name, a call or a literal: binds tightest. */
export const PRIMARY = 16;
const UNARY = 14, TERNARY = 3;
const PREC: Partial<Record<BinOp, number>> = {
  "*": 13, "/": 13, "%": 13, "+": 12, "-": 12, "<<": 11, ">>": 11,
  "<": 10, "<=": 10, ">": 10, ">=": 10, "==": 9, "!=": 9,
  "&": 8, "^": 7, "|": 6, "&&": 5, "||": 4,
};
const BITWISE = new Set<BinOp>(["&", "|", "^", "<<", ">>"]);
const BOOLEAN = new Set<BinOp>(["<", "<=", ">", ">=", "==", "!=", "&&", "||"]);

function wrap(c: Code, minPrec: number): string {
  return c.prec < minPrec ? `(${c.code})` : c.code;
}

function opType(a: Code, b: Code): DType {
  const floatLit = (c: Code) => isFloat(c.dtype) && c.weak;
  if (a.weak && !b.weak && !(floatLit(a) && !isFloat(b.dtype))) return b.dtype;
  if (b.weak && !a.weak && !(floatLit(b) && !isFloat(a.dtype))) return a.dtype;
  return promote(a.dtype, b.dtype);
}

/** An untyped float literal met by an f64 operand is written as a double, not a float. */
function widenLiteral(c: Code, t: DType): Code {
  if (!c.weak || c.lit === undefined || !isFloat(c.dtype) || t !== "f64") return c;
  const code = floatLiteral(c.lit, "f64");
  return { ...c, code, dtype: "f64" };
}

/** Converts a value-typed expression of dtype `from` to value type of dtype `to`. */
function convert(c: Code, to: DType): Code {
  const vf = valueDType(c.dtype), vt = valueDType(to);
  if (vf === vt) return { ...c, dtype: to };
  if (vt === "bool") return { code: `${wrap(c, 10)} != 0`, prec: 9, dtype: to };
  if (isFloat(vf) && !isFloat(vt)) return { code: floatToInt(c.code, vf, vt), prec: PRIMARY, dtype: to };
  return { code: `(${storageType(vt)})${wrap(c, UNARY)}`, prec: UNARY, dtype: to };
}

/** A float (f32 or f64) to an integer dtype: truncated and saturated, NaN -> 0 (numeric/dtype.ts
 *  floatToInt), through the round-toward-zero intrinsics (cvt.rzi), which saturate; C's cast
 *  leaves out-of-range values undefined, and nvcc wraps the narrow types through int. */
function floatToInt(x: string, from: DType, to: DType): string {
  const f = from === "f64" ? "__double2" : "__float2";
  if (to === "i32") return `${f}int_rz(${x})`;
  if (to === "u32") return `${f}uint_rz(${x})`;
  if (to === "i64") return `(int64_t)${f}ll_rz(${x})`;
  const [lo, hi] = INT_RANGE[to]!;
  return lo < 0 ? `(${storageType(to)})max(min(${f}int_rz(${x}), ${hi}), ${lo})` : `(${storageType(to)})min(${f}uint_rz(${x}), ${hi}u)`;
}

const F32_FN: Record<MathFn, string> = {
  exp: "expf", exp2: "exp2f", log: "logf", log2: "log2f", sqrt: "sqrtf", rsqrt: "rsqrtf",
  abs: "fabsf", tanh: "tanhf", sin: "sinf", cos: "cosf", floor: "floorf", ceil: "ceilf",
  round: "tm_round", erf: "erff", sigmoid: "tm_sigmoid", pow: "powf", fma: "fmaf",
};
const F64_FN: Record<MathFn, string> = {
  exp: "exp", exp2: "exp2", log: "log", log2: "log2", sqrt: "sqrt", rsqrt: "rsqrt",
  abs: "fabs", tanh: "tanh", sin: "sin", cos: "cos", floor: "floor", ceil: "ceil",
  round: "tm_round", erf: "erf", sigmoid: "tm_sigmoid", pow: "pow", fma: "fma",
};

export class ExprEmitter {
  /** Device helpers (tm_round, tm_sigmoid) the emitted code calls; the prelude defines only these. */
  readonly helpers = new Set<string>();

  constructor(private readonly ctx: ExprCtx) {}

  /** The value of e, computed in its value type. */
  emit(e: Expr): Code {
    switch (e.k) {
      case "int": {
        const t = e.dtype ?? "i32";
        const code = intLiteral(e.v, t);
        return { code, prec: e.v < 0 || code.startsWith("(") ? UNARY : PRIMARY, dtype: t, weak: e.dtype === undefined };
      }
      case "float": {
        const t = e.dtype ?? "f32";
        if (!isFloat(t)) return this.emit({ k: "int", v: e.v, dtype: t });
        const code = floatLiteral(e.v, t);
        return { code, prec: code.startsWith("-") ? UNARY : PRIMARY, dtype: t, weak: e.dtype === undefined, lit: e.v };
      }
      case "var": return this.variable(e.name);
      case "load": return this.load(e.buf, e.idx);
      case "un": {
        const a = this.emit(e.a);
        if (e.op === "not") return { code: `!${wrap(a, UNARY)}`, prec: UNARY, dtype: "bool" };
        const op = e.op === "neg" ? "-" : "~";
        // "- -x" must not print as "--x".
        const inner = wrap(a, UNARY);
        return { code: `${op}${inner.startsWith(op) ? `(${inner})` : inner}`, prec: UNARY, dtype: a.dtype === "bool" ? "i32" : a.dtype };
      }
      case "bin": return this.binary(e.op, this.emit(e.a), this.emit(e.b));
      case "select": {
        const c = this.emit(e.cond);
        const a = this.emit(e.a), b = this.emit(e.b);
        const t = opType(a, b);
        const ca = convert(a, t), cb = convert(b, t);
        return { code: `${wrap(c, TERNARY + 1)} ? ${wrap(ca, TERNARY + 1)} : ${wrap(cb, TERNARY)}`, prec: TERNARY, dtype: t };
      }
      case "cast": return this.cast(this.emit(e.a), e.dtype);
      case "call": return this.call(e.fn, e.args.map((a) => this.emit(a)));
    }
  }

  /** The value of e as C code of storage type t (rounded once, for stores and bindings). */
  emitStorage(e: Expr, t: DType): string {
    if (!isNarrowFloat(t)) {
      const c = this.emit(e);
      return valueDType(c.dtype) === t ? c.code : convert(c, t).code;
    }
    if (e.k === "load") {
      const b = this.buf(e.buf);
      if (b.dtype === t) return this.elementRaw(b, e.idx);
    }
    if (e.k === "var") {
      const vi = this.ctx.lookupVar(e.name);
      if (vi && vi.dtype === t) return vi.c;
    }
    if (e.k === "float" && (t === "bf16" || t === "f16") && (e.dtype === undefined || e.dtype === t || e.dtype === "f32")) {
      // A literal as its bit pattern (the value __float2bfloat16_rn of the f32 literal gives):
      // nvcc does not fold that conversion's inline asm, so a literal 1 or 0 stored per k-step
      // (the fused dequant-gemm's ones and K-masked zeros) cost a cvt each time.
      const bits = toBits(t, Math.fround(e.v));
      return `${t === "bf16" ? "__ushort_as_bfloat16" : "__ushort_as_half"}((unsigned short)0x${bits.toString(16).padStart(4, "0")}u)`;
    }
    if (e.k === "select" && this.isStorageOf(e.a, t) && this.isStorageOf(e.b, t)) {
      // Both arms already t (a masked 16-bit value): select the raw values, no round trip
      // through float (the fused dequant-gemm masks every B fragment value this way).
      const c = this.emit(e.cond);
      return `(${wrap(c, TERNARY + 1)} ? ${this.emitStorage(e.a, t)} : ${this.emitStorage(e.b, t)})`;
    }
    const inner = e.k === "cast" && e.dtype === t ? this.emit(e.a) : this.emit(e);
    return this.narrowFrom(inner, t);
  }

  /** e is a load or variable of storage type t, or a literal typed t. */
  private isStorageOf(e: Expr, t: DType): boolean {
    if (e.k === "load") return this.buf(e.buf).dtype === t;
    if (e.k === "var") return this.ctx.lookupVar(e.name)?.dtype === t;
    return e.k === "float" && e.dtype === t;
  }

  /** `&buf[idx]` for a Ref. */
  address(buf: string, idx: Expr[]): string {
    return `&${this.elementRaw(this.buf(buf), idx)}`;
  }

  /** `buf[flat index]` in the buffer's storage type. */
  elementRaw(b: BufInfo, idx: Expr[]): string {
    return `${b.c}[${this.flatIndex(b, idx)}]`;
  }

  buf(name: string): BufInfo {
    const b = this.ctx.lookupBuf(name);
    if (!b) throw new Error(`unknown buffer ${name}`);
    return b;
  }

  flatIndex(b: BufInfo, idx: Expr[]): string {
    if (idx.length !== b.shape.length) throw new Error(`${b.c}: ${idx.length} indexes for a rank-${b.shape.length} buffer`);
    if (idx.length === 1) return this.emit(idx[0]).code;
    const wide = b.scope === "global";
    let acc = this.emit(idx[0]);
    if (wide) acc = { code: `(${this.ctx.indexType})${wrap(acc, UNARY)}`, prec: UNARY, dtype: "i64" };
    for (let i = 1; i < idx.length; i++) {
      const stride = this.emit(b.shape[i]);
      acc = this.binary("+", this.binary("*", acc, stride), this.emit(idx[i]));
    }
    return acc.code;
  }

  private narrowFrom(c: Code, t: DType): string {
    if (c.dtype === "f64" && (t === "bf16" || t === "f16")) return t === "bf16" ? `__double2bfloat16(${c.code})` : `__double2half(${c.code})`;
    const f = valueDType(c.dtype) === "f32" ? c.code : `(float)${wrap(c, UNARY)}`;
    return toStorage(f, t);
  }

  private variable(name: string): Code {
    const vi = this.ctx.lookupVar(name);
    if (vi) return { code: toValue(vi.c, vi.dtype), prec: PRIMARY, dtype: vi.dtype };
    const cfg = this.ctx.config[name];
    if (typeof cfg === "number") return this.emit(Number.isInteger(cfg) ? { k: "int", v: cfg } : { k: "float", v: cfg });
    if (typeof cfg === "boolean") return { code: String(cfg), prec: PRIMARY, dtype: "bool" };
    throw new Error(`unbound variable ${name}`);
  }

  private load(name: string, idx: Expr[]): Code {
    const b = this.buf(name);
    return { code: toValue(this.elementRaw(b, idx), b.dtype), prec: PRIMARY, dtype: b.dtype };
  }

  binary(op: BinOp, a0: Code, b0: Code): Code {
    const t = op === "<<" || op === ">>" ? a0.dtype : opType(a0, b0);
    const a = widenLiteral(a0, t), b = widenLiteral(b0, t);
    const fl = isFloat(t);
    const vt = valueDType(t);
    if (op === "min" || op === "max") {
      // Floats: NaN-propagating, as TypeScript's Math.max / Math.min (emit.ts's tm_fmax / tm_fmin).
      const fn = fl ? `tm_f${op}` : op;
      if (fl) this.helpers.add(`${fn}:${vt}`);
      // Integer min/max overloads need both operands of one type.
      const ca = fl ? a : convert(a, t), cb = fl ? b : convert(b, t);
      return { code: `${fn}(${ca.code}, ${cb.code})`, prec: PRIMARY, dtype: t };
    }
    if (op === "floordiv") throw new Error("floordiv reached the CUDA emitter: the lowerIntDivision pass must run first");
    if (op === "cdiv") {
      const num = this.binary("-", this.binary("+", a, b), { code: "1", prec: PRIMARY, dtype: "i32" });
      return this.binary("/", num, b);
    }
    if (op === "%" && fl) {
      return { code: `${vt === "f64" ? "fmod" : "fmodf"}(${a.code}, ${b.code})`, prec: PRIMARY, dtype: t };
    }
    const p = PREC[op]!;
    const minChild = BITWISE.has(op) ? UNARY : p;
    const code = `${wrap(a, minChild)} ${op} ${wrap(b, BITWISE.has(op) ? UNARY : p + 1)}`;
    return { code, prec: p, dtype: BOOLEAN.has(op) ? "bool" : t };
  }

  private cast(a: Code, t: DType): Code {
    if (a.dtype === t) return a;
    if (isNarrowFloat(t)) return { code: toValue(this.narrowFrom(a, t), t), prec: PRIMARY, dtype: t };
    return convert(a, t);
  }

  private call(fn: MathFn, args: Code[]): Code {
    if (fn === "abs" && args.length === 1 && !isFloat(args[0].dtype)) {
      const t = args[0].dtype;
      return { code: `${t === "i64" ? "llabs" : "abs"}(${args[0].code})`, prec: PRIMARY, dtype: t };
    }
    let t: DType = args.map((a) => a.dtype).reduce((x, y) => promote(x, y));
    if (!isFloat(t)) t = "f32";
    const vt = valueDType(t);
    const name = (vt === "f64" ? F64_FN : F32_FN)[fn];
    if (name.startsWith("tm_")) this.helpers.add(`${name}:${vt}`);
    const cs = args.map((a) => convert(a, vt).code);
    return { code: `${name}(${cs.join(", ")})`, prec: PRIMARY, dtype: t };
  }
}
