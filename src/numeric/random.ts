// Deterministic inputs for checks: the same (dtype, shape, seed, range) gives the same
// tensor on every machine, so a failing fuzz case is reproducible from its seed.
import { type DType, isFloat } from "../ir/ir.ts";
import { roundTo } from "./dtype.ts";
import { type TensorValue, numel } from "./tensor.ts";

/** xoshiro128** seeded through splitmix32; returns uniform doubles in [0, 1). */
export function rng(seed: number): () => number {
  let z = seed >>> 0;
  const split = () => {
    z = (z + 0x9e3779b9) >>> 0;
    let t = z;
    t = Math.imul(t ^ (t >>> 16), 0x85ebca6b);
    t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35);
    return (t ^ (t >>> 16)) >>> 0;
  };
  let a = split(), b = split(), c = split(), d = split();
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t;
    d = rotl(d, 11);
    return r / 4294967296;
  };
}
const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/**
 * Values uniform in [lo, hi) for floats (then rounded to dtype, so they are exactly
 * representable), integers uniform in [ceil(lo), floor(hi)] for int types. Never all
 * zeros: if every draw was zero, the first element is set to a non-zero value in range
 * when one exists.
 */
export function randomTensor(dtype: DType, shape: number[], seed: number, lo = -1, hi = 1): TensorValue {
  const n = numel(shape);
  const data = new Float64Array(n);
  const next = rng(seed);
  if (isFloat(dtype)) {
    for (let i = 0; i < n; i++) data[i] = roundTo(dtype, lo + (hi - lo) * next());
  } else {
    const a = Math.ceil(lo), b = Math.floor(hi);
    if (dtype === "bool") for (let i = 0; i < n; i++) data[i] = next() < 0.5 ? 0 : 1;
    else for (let i = 0; i < n; i++) data[i] = roundTo(dtype, a + Math.floor((b - a + 1) * next()));
  }
  if (n > 0 && data.every((x) => x === 0)) {
    const candidates = [hi, lo, 1, -1].map((x) => roundTo(dtype, x)).filter((x) => x !== 0 && x >= lo && x <= hi);
    if (candidates.length) data[0] = candidates[0]!;
  }
  return { dtype, shape: [...shape], data };
}
