// How IR dtypes map to CUDA C++: the storage type a buffer element or variable has, and the
// value type its arithmetic runs in. 16-bit and 8-bit floats are stored as themselves but
// computed in float (the brief: accuracy first, one rounding per store).
import type { DType } from "../../ir/ir.ts";

export function storageType(t: DType): string {
  switch (t) {
    case "bool": return "bool";
    case "i8": return "int8_t";
    case "u8": return "uint8_t";
    case "i16": return "int16_t";
    case "u16": return "uint16_t";
    case "i32": return "int";
    case "u32": return "unsigned";
    case "i64": return "int64_t";
    case "f16": return "__half";
    case "bf16": return "__nv_bfloat16";
    case "f32": return "float";
    case "f64": return "double";
    case "fp8e4m3": return "__nv_fp8_e4m3";
    case "fp8e5m2": return "__nv_fp8_e5m2";
  }
}

/** True for dtypes whose C storage type is not the type arithmetic happens in. */
export function isNarrowFloat(t: DType): boolean {
  return t === "f16" || t === "bf16" || t === "fp8e4m3" || t === "fp8e5m2";
}

/** The dtype whose C type an expression of dtype t is computed in. */
export function valueDType(t: DType): DType {
  return isNarrowFloat(t) ? "f32" : t;
}

export function valueType(t: DType): string {
  return storageType(valueDType(t));
}

/** C code turning a storage-typed expression into its value type. */
export function toValue(code: string, t: DType): string {
  switch (t) {
    case "bf16": return `__bfloat162float(${code})`;
    case "f16": return `__half2float(${code})`;
    case "fp8e4m3": case "fp8e5m2": return `static_cast<float>(${code})`;
    default: return code;
  }
}

/** C code turning a value-typed expression into storage (rounding to nearest even). */
export function toStorage(code: string, t: DType): string {
  switch (t) {
    case "bf16": return `__float2bfloat16_rn(${code})`;
    case "f16": return `__float2half_rn(${code})`;
    case "fp8e4m3": case "fp8e5m2": return `${storageType(t)}(${code})`;
    default: return code;
  }
}

// ------------------------------------------------------------- literals

interface FloatFormat { mant: number; emin: number; max: number }
const F16: FloatFormat = { mant: 10, emin: -14, max: 65504 };
const BF16: FloatFormat = { mant: 7, emin: -126, max: (2 - 2 ** -7) * 2 ** 127 };

function roundHalfEven(y: number): number {
  const f = Math.floor(y);
  const d = y - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Rounds a double to the nearest value of a binary float format (ties to even). */
function roundTo(x: number, fmt: FloatFormat): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  const e = Math.max(Math.floor(Math.log2(a)), fmt.emin);
  // log2 can be off by one near powers of two; fix the binade exactly.
  let exp = e;
  if (2 ** exp > a && exp > fmt.emin) exp -= 1;
  else if (2 ** (exp + 1) <= a) exp += 1;
  const q = 2 ** (exp - fmt.mant);
  const r = roundHalfEven(a / q) * q;
  const out = r > fmt.max ? Infinity : r;
  return x < 0 ? -out : out;
}

/** The value a float literal of dtype t denotes. */
export function roundLiteral(v: number, t: DType): number {
  if (t === "f16") return roundTo(v, F16);
  if (t === "bf16") return roundTo(v, BF16);
  if (t === "f32") return Math.fround(v);
  return v;
}

/** Shortest decimal that reads back as the same float (f32: fewest digits that round to it). */
function shortest(v: number, single: boolean): string {
  if (!single) return String(v);
  for (let p = 1; p <= 9; p++) {
    const s = String(Number(v.toPrecision(p)));
    if (Math.fround(Number(s)) === v) return s;
  }
  return String(v);
}

function floatText(v: number, single: boolean): string {
  const s = shortest(v, single);
  const body = /[.e]/.test(s) ? s : `${s}.0`;
  return single ? `${body}f` : body;
}

/** A C float literal of value type `t` (f32 or f64) for the IR literal v of dtype t. */
export function floatLiteral(v: number, t: DType): string {
  if (t === "fp8e4m3" || t === "fp8e5m2") return `static_cast<float>(${storageType(t)}(${floatLiteral(v, "f32")}))`;
  const single = t !== "f64";
  const x = roundLiteral(v, t);
  if (Number.isNaN(x)) return single ? "__int_as_float(0x7fffffff)" : "__longlong_as_double(0x7ff8000000000000ll)";
  if (x === Infinity) return single ? "__int_as_float(0x7f800000)" : "__longlong_as_double(0x7ff0000000000000ll)";
  if (x === -Infinity) return single ? "__int_as_float(0xff800000)" : "__longlong_as_double(0xfff0000000000000ll)";
  if (Object.is(x, -0)) return single ? "-0.0f" : "-0.0";
  return floatText(x, single);
}

export function intLiteral(v: number, t: DType): string {
  if (!Number.isInteger(v)) throw new Error(`int literal ${v} is not an integer`);
  switch (t) {
    case "i32": return String(v);
    case "u32": return `${v}u`;
    case "i64": return `${v}ll`;
    case "bool": return v ? "true" : "false";
    default:
      if (isNarrowFloat(t) || t === "f32" || t === "f64") return floatLiteral(v, t);
      return `(${storageType(t)})${v}`;
  }
}
