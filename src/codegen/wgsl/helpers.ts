// Small WGSL functions the emitted code calls for what WGSL lacks: rounding into narrow
// float formats (bf16, f16 without shader-f16, fp8), their bit patterns, and erf.
// Rounding follows src/numeric/dtype.ts: round to nearest even, overflow to +-Inf, except
// fp8 which saturates to +-max; NaN stays NaN.
import type { DType } from "../../ir/ir.ts";

interface Fmt { mant: number; ebits: number; bias: number; emin: number; max: string; hasInf: boolean; saturate: boolean; nan: string }

// Narrow float formats rounded with the generic helpers (bf16 has a cheaper bit trick).
const FMT: Partial<Record<DType, Fmt>> = {
  f16: { mant: 10, ebits: 5, bias: 15, emin: -14, max: "65504.0", hasInf: true, saturate: false, nan: "0x7e00u" },
  fp8e4m3: { mant: 3, ebits: 4, bias: 7, emin: -6, max: "448.0", hasInf: false, saturate: true, nan: "0x7fu" },
  fp8e5m2: { mant: 2, ebits: 5, bias: 15, emin: -14, max: "57344.0", hasInf: true, saturate: true, nan: "0x7eu" },
};

/** Name of the function rounding an f32 to a value of t (t needing rounding). */
export function roundFn(t: DType): string { return `_round_${t}`; }
/** Name of the function giving the bit pattern of an already rounded value of t. */
export function bitsFn(t: DType): string { return `_bits_${t}`; }
/** Name of the function decoding a bit pattern of t to f32. */
export function decodeFn(t: DType): string { return `_decode_${t}`; }

const ROUND_GENERIC = `
fn _round_fmt(x: f32, mant: i32, emin: i32, maxv: f32, saturate: bool) -> f32 {
  if (_is_nan(x) || x == 0.0) { return x; }
  let a = abs(x);
  if (a > _f32bits(0x7f7fffffu)) { return select(x, sign(x) * maxv, saturate); }
  let e = max(frexp(a).exp - 1, emin);
  let r = round(ldexp(a, mant - e));  // WGSL round() is round-half-to-even
  var y = ldexp(r, e - mant);
  if (y > maxv) { y = select(_f32bits(0x7f800000u), maxv, saturate); }
  return select(y, -y, x < 0.0);
}`;

const ENCODE_GENERIC = `
fn _fmt_bits(y: f32, mant: i32, ebits: i32, bias: i32, emin: i32, nanbits: u32) -> u32 {
  if (_is_nan(y)) { return nanbits; }
  let s = select(0u, 1u << u32(ebits + mant), y < 0.0 || (y == 0.0 && bitcast<u32>(y) != 0u));
  let a = abs(y);
  if (a == 0.0) { return s; }
  if (a > _f32bits(0x7f7fffffu)) { return s | (((1u << u32(ebits)) - 1u) << u32(mant)); }
  let e = frexp(a).exp - 1;
  if (e < emin) { return s | u32(ldexp(a, mant - emin)); }
  let m = u32(ldexp(a, mant - e)) - (1u << u32(mant));
  return s | (u32(e + bias) << u32(mant)) | m;
}`;

const DECODE_GENERIC = `
fn _fmt_decode(b: u32, mant: u32, ebits: u32, bias: i32, emin: i32, has_inf: bool) -> f32 {
  let neg = ((b >> (ebits + mant)) & 1u) == 1u;
  let ef = (b >> mant) & ((1u << ebits) - 1u);
  let m = b & ((1u << mant) - 1u);
  let ones = (1u << ebits) - 1u;
  var y: f32;
  if (has_inf && ef == ones) {
    y = select(_f32bits(0x7fc00000u), _f32bits(0x7f800000u), m == 0u);
  } else if (!has_inf && ef == ones && m == (1u << mant) - 1u) {
    y = _f32bits(0x7fc00000u);
  } else if (ef == 0u) {
    y = ldexp(f32(m), emin - i32(mant));
  } else {
    y = ldexp(1.0 + ldexp(f32(m), -i32(mant)), i32(ef) - bias);
  }
  return select(y, -y, neg);
}`;

const BF16: Record<string, string> = {
  round: `
fn _round_bf16(x: f32) -> f32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return bitcast<f32>(b | 0x00400000u); }
  return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);
}`,
  bits: "fn _bits_bf16(x: f32) -> u32 { return bitcast<u32>(x) >> 16u; }",
  decode: "fn _decode_bf16(b: u32) -> f32 { return bitcast<f32>(b << 16u); }",
};

// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), enough for f32 results.
const ERF = `
fn _erf(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign(x) * (1.0 - p * exp(-x * x));
}`;

// TypeScript's Math.pow where WGSL's pow (exp2(y * log2(x))) is undefined: x ** 0 = 1 for every x,
// a negative x with an integer y (the sign of an odd power), NaN for a negative x with a fractional y,
// 0 ** y (lavapipe's log2(0) is not -Infinity).
const POW = `
fn _pow(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x == 0.0) { return select(0.0, _f32bits(0x7f800000u), y < 0.0); }
  let r = pow(abs(x), y);
  if (x < 0.0) {
    if (y != trunc(y)) { return _f32bits(0x7fc00000u); }
    if (trunc(y * 0.5) != y * 0.5) { return -r; }
  }
  return r;
}`;

function fmtHelper(kind: string, t: DType, f: Fmt): string {
  const sat = f.saturate;
  switch (kind) {
    case "round": return `fn _round_${t}(x: f32) -> f32 { return _round_fmt(x, ${f.mant}, ${f.emin}, ${f.max}, ${sat}); }`;
    case "bits": return `fn _bits_${t}(x: f32) -> u32 { return _fmt_bits(x, ${f.mant}, ${f.ebits}, ${f.bias}, ${f.emin}, ${f.nan}); }`;
    default: return `fn _decode_${t}(b: u32) -> f32 { return _fmt_decode(b, ${f.mant}u, ${f.ebits}u, ${f.bias}, ${f.emin}, ${f.hasInf}); }`;
  }
}

// A function call is never a const-expression, so Inf and NaN made through it are not
// rejected by the WGSL compiler's constant evaluation.
// NaN is tested on its bits: a shader compiler may fold x != x to false.
const F32BITS = `fn _f32bits(b: u32) -> f32 { return bitcast<f32>(b); }
fn _is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }`;

const GENERIC: Record<string, string> = { round: ROUND_GENERIC, bits: ENCODE_GENERIC, decode: DECODE_GENERIC };

/** WGSL source of the helpers named in `used` ("round_bf16", "decode_fp8e4m3", ...), only
 *  those, so that shaders stay small (lavapipe's compile time grows with them). */
export function helperSource(used: Set<string>, erf: boolean, needBits = false, pow = false): string {
  const parts: string[] = [];
  const uses = [...used].sort().map((u) => { const i = u.indexOf("_"); return { kind: u.slice(0, i), t: u.slice(i + 1) as DType }; });
  const generic = uses.filter((u) => FMT[u.t]);
  if (generic.length || needBits || pow) parts.push(F32BITS);
  for (const kind of ["round", "bits", "decode"]) if (generic.some((u) => u.kind === kind)) parts.push(GENERIC[kind]!);
  for (const u of uses) parts.push(u.t === "bf16" ? BF16[u.kind]! : fmtHelper(u.kind, u.t, FMT[u.t]!));
  if (erf) parts.push(ERF);
  if (pow) parts.push(POW);
  return parts.map((x) => x.trim()).join("\n");
}
