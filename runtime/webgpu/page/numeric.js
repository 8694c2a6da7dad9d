// Plain-JS helpers for the page: the byte encodings the WGSL backend's buffers use (dense,
// little-endian, docs/WEBGPU.md) and an evaluator for the bundle's IR expression trees.
// No imports: the page stays a static folder that any browser loads as ES modules.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 value -> bf16 bits, round to nearest even (NaN stays NaN). */
export function bf16Bits(x) {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}
export function bf16Value(h) { u32[0] = h << 16; return f32[0]; }

/** Number -> f16 bits, round to nearest even, overflow to infinity. */
export function f16Bits(x) {
  if (Number.isNaN(x)) return 0x7e00;
  const s = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  let a = Math.abs(x);
  if (a >= 65520) return s | 0x7c00;              // rounds to infinity
  if (a < 2 ** -14) return s | roundEven(a / 2 ** -24); // subnormal (0x400 = smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; else if (2 ** (e + 1) <= a) e++;
  let m = roundEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) { m = 0; e++; }
  return s | ((e + 15) << 10) | m;
}
export function f16Value(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  return e ? s * 2 ** (e - 15) * (1 + m / 1024) : s * 2 ** -14 * (m / 1024);
}
function roundEven(v) {
  const f = Math.floor(v), d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** The value x takes once stored as dtype (what the kernel reads). */
export function roundTo(dtype, x) {
  switch (dtype) {
    case "f32": return Math.fround(x);
    case "bf16": return bf16Value(bf16Bits(x));
    case "f16": return f16Value(f16Bits(x));
    case "i32": return x | 0;
    case "u32": return x >>> 0;
    default: throw new Error(`the page does not handle ${dtype} tensors`);
  }
}

export function encode(dtype, values) {
  const n = values.length;
  const bytes = new Uint8Array(Math.max(4, Math.ceil((n * elemBytes(dtype)) / 4) * 4));
  const v = new DataView(bytes.buffer);
  for (let i = 0; i < n; i++) {
    const x = values[i];
    switch (dtype) {
      case "f32": v.setFloat32(4 * i, x, true); break;
      case "i32": v.setInt32(4 * i, x, true); break;
      case "u32": v.setUint32(4 * i, x >>> 0, true); break;
      case "bf16": v.setUint16(2 * i, bf16Bits(x), true); break;
      case "f16": v.setUint16(2 * i, f16Bits(x), true); break;
      default: throw new Error(`the page does not handle ${dtype} tensors`);
    }
  }
  return bytes;
}

export function decode(dtype, bytes, n) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case "f32": out[i] = v.getFloat32(4 * i, true); break;
      case "i32": out[i] = v.getInt32(4 * i, true); break;
      case "u32": out[i] = v.getUint32(4 * i, true); break;
      case "bf16": out[i] = bf16Value(v.getUint16(2 * i, true)); break;
      case "f16": out[i] = f16Value(v.getUint16(2 * i, true)); break;
      default: throw new Error(`the page does not handle ${dtype} tensors`);
    }
  }
  return out;
}

export function elemBytes(dtype) {
  return dtype === "bf16" || dtype === "f16" ? 2 : 4;
}

/** Evaluates an IR expression tree over integer dims / config (C integer semantics). */
export function evalExpr(e, env) {
  switch (e.k) {
    case "int": case "float": return e.v;
    case "var":
      if (!(e.name in env)) throw new Error(`no value for '${e.name}'`);
      return env[e.name];
    case "un": { const a = evalExpr(e.a, env); return e.op === "neg" ? -a : e.op === "not" ? +!a : ~a; }
    case "select": return evalExpr(e.cond, env) ? evalExpr(e.a, env) : evalExpr(e.b, env);
    case "cast": return evalExpr(e.a, env);
    case "bin": {
      const a = evalExpr(e.a, env), b = evalExpr(e.b, env);
      switch (e.op) {
        case "+": return a + b;
        case "-": return a - b;
        case "*": return a * b;
        case "/": return Math.trunc(a / b);
        case "%": return a % b;
        case "cdiv": return Math.trunc((a + b - 1) / b);
        case "min": return Math.min(a, b);
        case "max": return Math.max(a, b);
        case "<": return +(a < b);
        case "<=": return +(a <= b);
        case ">": return +(a > b);
        case ">=": return +(a >= b);
        case "==": return +(a === b);
        case "!=": return +(a !== b);
        case "&&": return +(a && b);
        case "||": return +(a || b);
        default: throw new Error(`operator ${e.op} in a shape or grid expression`);
      }
    }
    default: throw new Error(`expression kind ${e.k} in a shape or grid expression`);
  }
}
