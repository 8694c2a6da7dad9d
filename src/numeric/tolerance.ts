// How far a kernel's output may be from a float64 reference computed on the same
// (already rounded) inputs.
//
// Model for one output element of a dot product of length k accumulated in f32 and
// stored in dtype `out`:
//  - products of 16-bit (or narrower) inputs are exact in f32; the k-1 f32 additions
//    (in any order, on tensor cores with their own internal rounding) err by at most
//    about k * u32 * sum|a_i b_i|; with random signs the partial sums grow like
//    sqrt(k) * mag, so we allow atol_acc = 2 * k * sqrt(k) * u32 * mag (already
//    worst-case in k, and still ~1e-3 of the sqrt(k) * mag error a layout bug causes);
//  - the final rounding to `out` is relative: rtol = 2 * u(out), where u = eps / 2 is
//    the unit roundoff (factor 2 for double rounding f32 -> out and order changes);
//  - plus the smallest normal of `out`, so results that flush to or below it still pass.
// `mag` is a bound on |a_i * b_i| (1 for inputs in [-1, 1]). Integer/bool outputs: exact.
import { type DType, isFloat } from "../ir/ir.ts";
import { eps, minNormal } from "./dtype.ts";

export interface Tolerance { atol: number; rtol: number }

export function tolerance(out: DType, k: number, mag = 1): Tolerance {
  if (!isFloat(out)) return { atol: 0, rtol: 0 }; // integer and bool outputs (indices, counts) must be exact
  const u32 = 2 ** -24;
  const uOut = eps(out) / 2;
  const kk = Math.max(1, k);
  return {
    atol: 2 * kk * Math.sqrt(kk) * u32 * mag + minNormal(out),
    rtol: 2 * Math.max(uOut, u32),
  };
}

export interface Mismatch { index: number; got: number; want: number; err: number; allowed: number }

/** First element where |got - want| > atol + rtol * |want| (NaN/Inf must match exactly). */
export function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): Mismatch | undefined {
  if (got.length !== want.length) throw new Error(`firstMismatch: lengths ${got.length} and ${want.length} differ`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!, w = want[i]!;
    const allowed = tol.atol + tol.rtol * Math.abs(w);
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (Object.is(g, w) || (g === w)) continue;
      return { index: i, got: g, want: w, err: Math.abs(g - w), allowed };
    }
    const err = Math.abs(g - w);
    if (!(err <= allowed)) return { index: i, got: g, want: w, err, allowed };
  }
  return undefined;
}
