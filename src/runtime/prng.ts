// The GPU runner's random fill, computed in TypeScript, so that a CPU reference can be
// built from a plan's seed without downloading the inputs (runtime/cuda/numeric.h has
// the same definition):
//   element i = splitmix64 output for state seed + (i + 1) * 0x9E3779B97F4A7C15
//   u = (that >> 11) * 2^-53
//   floats: roundTo(dtype, lo + (hi - lo) * u); ints: lo + floor(u * (hi - lo + 1)), at most hi
// 64-bit arithmetic on pairs of uint32 halves: BigInt costs ~50x more per element.
import { type DType, isFloat } from "../ir/ir.ts";
import { roundTo } from "../numeric/dtype.ts";

const TWO32 = 4294967296;

/** High 32 bits of the 64-bit product of two uint32s. */
function mulHi32(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + Math.floor(p01 / 65536) + Math.floor(p10 / 65536) + Math.floor(mid / 65536)) >>> 0;
}

/** (hi, lo) * (bHi, bLo) mod 2^64. */
function mul64(hi: number, lo: number, bHi: number, bLo: number): [number, number] {
  const rlo = Math.imul(lo, bLo) >>> 0;
  const rhi = (mulHi32(lo, bLo) + Math.imul(hi, bLo) + Math.imul(lo, bHi)) >>> 0;
  return [rhi, rlo];
}

/** x ^= x >>> s for 0 < s < 32, on (hi, lo). */
function xorShr(hi: number, lo: number, s: number): [number, number] {
  const slo = ((lo >>> s) | (hi << (32 - s))) >>> 0;
  return [(hi ^ (hi >>> s)) >>> 0, (lo ^ slo) >>> 0];
}

const GAMMA_HI = 0x9e3779b9, GAMMA_LO = 0x7f4a7c15;
const M1_HI = 0xbf58476d, M1_LO = 0x1ce4e5b9;
const M2_HI = 0x94d049bb, M2_LO = 0x133111eb;

/** splitmix64(seed, i) as [hi, lo] uint32 halves. */
export function splitmix(seed: number, i: number): [number, number] {
  const n = i + 1;
  let [hi, lo] = mul64(Math.floor(n / TWO32) >>> 0, n >>> 0, GAMMA_HI, GAMMA_LO);
  const sLo = seed >>> 0, sHi = Math.floor(seed / TWO32) >>> 0;
  const sum = lo + sLo;
  lo = sum >>> 0;
  hi = (hi + sHi + (sum >= TWO32 ? 1 : 0)) >>> 0;
  [hi, lo] = xorShr(hi, lo, 30);
  [hi, lo] = mul64(hi, lo, M1_HI, M1_LO);
  [hi, lo] = xorShr(hi, lo, 27);
  [hi, lo] = mul64(hi, lo, M2_HI, M2_LO);
  return xorShr(hi, lo, 31);
}

/** Uniform double in [0, 1) for element i of the fill with this seed. */
export function uniform(seed: number, i: number): number {
  const [hi, lo] = splitmix(seed, i);
  return (hi * 2097152 + (lo >>> 11)) * 2 ** -53;
}

/** The values the runner uploads for {"random": {seed, lo, hi}} of `count` elements, from
 *  element `start` on (a slice of a tensor too big to compute whole: one expert's rows). */
export function fillValues(dtype: DType, seed: number, lo: number, hi: number, count: number, start = 0): Float64Array {
  const out = new Float64Array(count);
  const float = isFloat(dtype);
  for (let i = 0; i < count; i++) {
    const u = uniform(seed, start + i);
    if (float) out[i] = roundTo(dtype, lo + (hi - lo) * u);
    else out[i] = roundTo(dtype, Math.min(hi, lo + Math.floor(u * (hi - lo + 1))));
  }
  return out;
}
