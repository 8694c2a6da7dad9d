// Exact numerics of every IR dtype on the CPU: rounding a real value into a dtype, the
// byte form buffers hold on the device, deterministic random inputs, and the tolerance
// a float64 reference should allow.
//
// Conventions (chosen to match what the generated CUDA does):
//  - f16, bf16: IEEE-style round-to-nearest-even, gradual underflow, overflow to +-Inf.
//  - fp8e4m3 / fp8e5m2 (OCP 8-bit FP): round-to-nearest-even, then SATURATE: finite values
//    and infinities beyond the largest finite value become +-max (448 / 57344), as PTX
//    `cvt.rn.satfinite.e4m3x2/e5m2x2.f32` does. NaN stays NaN. e4m3 has no Inf at all;
//    e5m2 has one, so decode still yields Inf for its Inf bit pattern.
//  - integers from integers: wrap modulo 2^bits like fixed-width two's complement types.
//  - integers from floats (floatToInt): truncate toward zero, then saturate to the type's
//    range; NaN gives 0 (what the GPU's cvt.rzi does; C leaves out-of-range values undefined).
//  - bool: any non-zero (NaN included, as in C) is 1.
import { type DType, byteSize } from "../ir/ir.ts";

export interface FloatFormat {
  mant: number;      // stored mantissa bits
  exp: number;       // exponent bits
  bias: number;
  emin: number;      // exponent of the smallest normal
  max: number;       // largest finite value
  hasInf: boolean;
  saturate: boolean; // overflow to +-max instead of +-Inf
  nanBits: number;   // canonical quiet NaN pattern (sign clear)
}

export const FORMATS: Partial<Record<DType, FloatFormat>> = {
  f16: { mant: 10, exp: 5, bias: 15, emin: -14, max: 65504, hasInf: true, saturate: false, nanBits: 0x7e00 },
  bf16: { mant: 7, exp: 8, bias: 127, emin: -126, max: (2 - 2 ** -7) * 2 ** 127, hasInf: true, saturate: false, nanBits: 0x7fc0 },
  fp8e4m3: { mant: 3, exp: 4, bias: 7, emin: -6, max: 448, hasInf: false, saturate: true, nanBits: 0x7f },
  fp8e5m2: { mant: 2, exp: 5, bias: 15, emin: -14, max: 57344, hasInf: true, saturate: true, nanBits: 0x7e },
};

const F64 = new Float64Array(1), W32 = new Uint32Array(F64.buffer); // W32[1]: high word (little-endian hosts)

/** floor(log2(a)) for finite a > 0, exact: the biased exponent field of the double. */
function exponentOf(a: number): number {
  F64[0] = a;
  const e = (W32[1]! >>> 20) & 0x7ff;
  if (e !== 0) return e - 1023;
  let s = Math.floor(Math.log2(a)); // subnormal double: below every format here, rarely reached
  if (2 ** s > a) s--;
  else if (2 ** (s + 1) <= a) s++;
  return s;
}

function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const d = q - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** roundFloatExact on the double's bit pattern where the result is a normal number of the
 *  format (the interpreter rounds every bf16 / f16 value it computes through here: the
 *  exact path's powers and floors took a third of a layer test's time). Keeps the top
 *  `mant` bits of the double's mantissa, which all lie in its high word, with the dropped
 *  bits' half-even carry. Zero, subnormal results, NaN and infinities take the exact path. */
function roundFloat(f: FloatFormat, x: number): number {
  F64[0] = x;
  const hi = W32[1]!, lo = W32[0]!;
  const e = ((hi >>> 20) & 0x7ff) - 1023;
  if (e < f.emin || e > 1023) return roundFloatExact(f, x);
  const unit = 1 << (20 - f.mant), half = unit >>> 1;
  const rem = hi & (unit - 1);
  let kept = hi - rem;
  if (rem > half || (rem === half && (lo !== 0 || (kept & unit) !== 0))) kept += unit;
  W32[1] = kept; // a carry out of the mantissa raises the exponent: still exact
  W32[0] = 0;
  const r = F64[0]!;
  if (Math.abs(r) > f.max) return Math.sign(x) * (f.saturate ? f.max : Infinity);
  return r;
}

/** Round-to-nearest-even into format f, exact for every double: the reference roundFloat is
 *  tested against. */
export function roundFloatExact(f: FloatFormat, x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (!Number.isFinite(x)) return f.saturate ? Math.sign(x) * f.max : x;
  if (x === 0) return x; // keeps -0
  const a = Math.abs(x);
  const e = Math.max(exponentOf(a), f.emin);
  const quantum = 2 ** (e - f.mant);
  // Rounding with an unbounded exponent range; a carry into the next binade is exact.
  const r = roundHalfEven(a / quantum) * quantum;
  if (r > f.max) return Math.sign(x) * (f.saturate ? f.max : Infinity);
  return x < 0 ? -r : r;
}

/** The [min, max] of an integer dtype (i64's max rounded up to 2^63: a float bound). */
export const INT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  i8: [-128, 127], u8: [0, 255], i16: [-32768, 32767], u16: [0, 65535], i32: [-(2 ** 31), 2 ** 31 - 1], u32: [0, 2 ** 32 - 1],
  i64: [-(2 ** 63), 2 ** 63],
};

/** A float value converted to an integer dtype: truncated, saturated to the range, NaN -> 0. */
export function floatToInt(dtype: DType, x: number): number {
  const r = INT_RANGE[dtype];
  if (!r) return roundTo(dtype, x);
  if (Number.isNaN(x)) return 0;
  return Math.min(r[1], Math.max(r[0], Math.trunc(x))) + 0;
}

const I64_WRAP = (x: number) => Number(BigInt.asIntN(64, BigInt(Math.trunc(x))));

/** The value x becomes when converted to dtype (see the conventions at the top). */
export function roundTo(dtype: DType, x: number): number {
  switch (dtype) {
    case "f64": return x;
    case "f32": return Math.fround(x);
    case "f16": case "bf16": case "fp8e4m3": case "fp8e5m2": return roundFloat(FORMATS[dtype]!, x);
    case "i32": return x | 0;
    case "u32": return x >>> 0;
    case "i16": return (x << 16) >> 16;
    case "u16": return x & 0xffff;
    case "i8": return (x << 24) >> 24;
    case "u8": return x & 0xff;
    case "i64": return Number.isFinite(x) ? I64_WRAP(x) : 0;
    case "bool": return x !== 0 ? 1 : 0;
  }
}

const F32 = new Float32Array(1), U32 = new Uint32Array(F32.buffer);

/** bf16 rounding through the f32 bit pattern, for values that are already f32 (the common
 *  case in kernels); others take the exact path, so results equal roundTo("bf16", x). */
function bf16Fast(x: number): number {
  if (Math.fround(x) !== x) return roundTo("bf16", x); // NaN, or not an f32 value
  F32[0] = x;
  const b = U32[0]!;
  U32[0] = (((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return F32[0]!;
}

const F16_SCALE = Array.from({ length: 32 }, (_, e) => 2 ** (Math.max(e, 1) - 25)); // value of one mantissa unit

/** f16 rounding (nearest even) on the f32 bit pattern, for values that are already f32. */
function f16Fast(x: number): number {
  if (Math.fround(x) !== x) return roundTo("f16", x); // NaN, or not an f32 value
  F32[0] = x;
  const b = U32[0]!;
  const neg = b >>> 31 === 1;
  const e = ((b >>> 23) & 0xff) - 112; // f16 biased exponent
  let m = b & 0x7fffff;
  let bits: number;
  if (((b >>> 23) & 0xff) === 0xff) return x; // +-Inf
  if (e >= 31) bits = 0x7c00;
  else if (e <= 0) {
    if (e < -10) return neg ? -0 : 0;
    m |= 0x800000;
    const shift = 14 - e;
    bits = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (bits & 1))) bits++;
  } else {
    bits = (e << 10) | (m >>> 13);
    const rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (bits & 1))) bits++;
  }
  const E = bits >>> 10, M = bits & 0x3ff;
  const v = E >= 31 ? Infinity : (E === 0 ? M : 1024 + M) * F16_SCALE[E]!;
  return neg ? -v : v;
}

/** A specialised rounding function (avoids the dtype switch in hot loops). */
export function rounder(dtype: DType): (x: number) => number {
  switch (dtype) {
    case "f64": return (x) => x;
    case "f32": return Math.fround;
    case "bf16": return bf16Fast;
    case "f16": return f16Fast;
    case "i32": return (x) => x | 0;
    case "u32": return (x) => x >>> 0;
    default: return (x) => roundTo(dtype, x);
  }
}

/** Machine epsilon (distance from 1 to the next value); 1 for integer types. */
export function eps(dtype: DType): number {
  const f = FORMATS[dtype];
  if (f) return 2 ** -f.mant;
  if (dtype === "f32") return 2 ** -23;
  if (dtype === "f64") return 2 ** -52;
  return 1;
}

/** Largest finite value of a float dtype. */
export function maxFinite(dtype: DType): number {
  const f = FORMATS[dtype];
  if (f) return f.max;
  if (dtype === "f32") return 3.4028234663852886e38;
  if (dtype === "f64") return Number.MAX_VALUE;
  throw new Error(`maxFinite: ${dtype} is not a float type`);
}

/** Smallest positive normal value of a float dtype. */
export function minNormal(dtype: DType): number {
  const f = FORMATS[dtype];
  if (f) return 2 ** f.emin;
  if (dtype === "f32") return 2 ** -126;
  if (dtype === "f64") return 2 ** -1022;
  throw new Error(`minNormal: ${dtype} is not a float type`);
}

// ---------------------------------------------------------------- bit patterns

function floatToBits(f: FloatFormat, v: number): number {
  const signBit = 1 << (f.exp + f.mant);
  if (Number.isNaN(v)) return f.nanBits;
  const sign = v < 0 || Object.is(v, -0) ? signBit : 0;
  const a = Math.abs(v);
  if (a === 0) return sign;
  if (a === Infinity) return sign | (((1 << f.exp) - 1) << f.mant);
  const e = exponentOf(a);
  if (e < f.emin) return sign | (a / 2 ** (f.emin - f.mant)); // subnormal: exponent field 0
  const mant = (a / 2 ** e - 1) * 2 ** f.mant;
  return sign | ((e + f.bias) << f.mant) | mant;
}

function bitsToFloat(f: FloatFormat, bits: number): number {
  const sign = (bits >> (f.exp + f.mant)) & 1 ? -1 : 1;
  const ef = (bits >> f.mant) & ((1 << f.exp) - 1);
  const m = bits & ((1 << f.mant) - 1);
  const allOnes = (1 << f.exp) - 1;
  if (f.hasInf && ef === allOnes) return m === 0 ? sign * Infinity : NaN;
  if (!f.hasInf && ef === allOnes && m === (1 << f.mant) - 1) return NaN; // e4m3: only S.1111.111 is NaN
  if (ef === 0) return sign * m * 2 ** (f.emin - f.mant);
  return sign * (1 + m / 2 ** f.mant) * 2 ** (ef - f.bias);
}

/** Bit pattern of roundTo(dtype, v) for the 8- and 16-bit float types. */
export function toBits(dtype: DType, v: number): number {
  const f = FORMATS[dtype];
  if (!f) throw new Error(`toBits: ${dtype} is not an 8/16-bit float type`);
  return floatToBits(f, roundFloat(f, v));
}

export function fromBits(dtype: DType, bits: number): number {
  const f = FORMATS[dtype];
  if (!f) throw new Error(`fromBits: ${dtype} is not an 8/16-bit float type`);
  return bitsToFloat(f, bits);
}

/** Little-endian bytes of the values, each first converted with roundTo. */
export function encode(dtype: DType, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  const size = byteSize(dtype);
  const out = new Uint8Array(n * size);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const x = values[i]!;
    const o = i * size;
    switch (dtype) {
      case "f64": dv.setFloat64(o, x, true); break;
      case "f32": dv.setFloat32(o, x, true); break;
      case "f16": case "bf16": dv.setUint16(o, toBits(dtype, x), true); break;
      case "fp8e4m3": case "fp8e5m2": dv.setUint8(o, toBits(dtype, x)); break;
      case "i64": dv.setBigInt64(o, BigInt(roundTo("i64", x)), true); break;
      case "i32": case "u32": dv.setUint32(o, roundTo(dtype, x) >>> 0, true); break;
      case "i16": case "u16": dv.setUint16(o, roundTo(dtype, x) & 0xffff, true); break;
      case "i8": case "u8": case "bool": dv.setUint8(o, roundTo(dtype, x) & 0xff); break;
    }
  }
  return out;
}

export function decode(dtype: DType, bytes: Uint8Array): Float64Array {
  const size = byteSize(dtype);
  if (bytes.length % size !== 0) throw new Error(`decode ${dtype}: ${bytes.length} bytes is not a multiple of ${size}`);
  const n = bytes.length / size;
  const out = new Float64Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) {
    const o = i * size;
    switch (dtype) {
      case "f64": out[i] = dv.getFloat64(o, true); break;
      case "f32": out[i] = dv.getFloat32(o, true); break;
      case "f16": case "bf16": out[i] = fromBits(dtype, dv.getUint16(o, true)); break;
      case "fp8e4m3": case "fp8e5m2": out[i] = fromBits(dtype, dv.getUint8(o)); break;
      case "i64": out[i] = Number(dv.getBigInt64(o, true)); break;
      case "i32": out[i] = dv.getInt32(o, true); break;
      case "u32": out[i] = dv.getUint32(o, true); break;
      case "i16": out[i] = dv.getInt16(o, true); break;
      case "u16": out[i] = dv.getUint16(o, true); break;
      case "i8": out[i] = dv.getInt8(o); break;
      case "u8": out[i] = dv.getUint8(o); break;
      case "bool": out[i] = dv.getUint8(o) !== 0 ? 1 : 0; break;
    }
  }
  return out;
}
