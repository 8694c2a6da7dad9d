import { describe, expect, it } from "vitest";
import { runKernel } from "../../src/interp/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { erf } from "../../src/numeric/erf.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import type { DType } from "../../src/ir/ir.ts";

/** Runs `body` (tile level, one block) with X: f64[8] = xs and returns Y: f64[16]. */
function run(body: string, xs: number[] = [], xdtype: DType = "f64"): number[] {
  const k = parseKernel(`kernel t(X: global ${xdtype}[8], Y: global f64[16] out)
launch tile grid [1] threads 1 blocks [bx] {
${body}
}`);
  const X = zeros(xdtype, [8]);
  xs.forEach((x, i) => (X.data[i] = roundTo(xdtype, x)));
  const Y = zeros("f64", [16]);
  runKernel(k, { tensors: { X, Y } });
  return [...Y.data];
}

describe("scalar semantics", () => {
  it("f16 and bf16 operations round once per operation, literals adapt to the other operand", () => {
    const y = run(`  let h: f16 = X[0]
  let b: bf16 = X[1]
  store Y[0] = h * 0.1
  store Y[1] = h + h
  store Y[2] = b * b
  store Y[3] = b / 3.0`, [1.2345, 1.7]);
    const h = roundTo("f16", 1.2345), b = roundTo("bf16", 1.7);
    expect(y.slice(0, 4)).toEqual([
      roundTo("f16", h * roundTo("f16", Math.fround(0.1))), roundTo("f16", h + h),
      roundTo("bf16", b * b), roundTo("bf16", b / 3),
    ]);
    expect(y[0]).not.toBe(Math.fround(h * 0.1)); // rounding to f16 did happen
  });

  it("integers wrap as C fixed-width types; shifts; conversions truncate", () => {
    const y = run(`  let u: u32 = 0 - 1
  store Y[0] = u
  store Y[1] = u + 2
  store Y[2] = -8 >> 1
  store Y[3] = cast<u32>(-8) >> 1
  store Y[4] = cast<i32>(X[0])
  store Y[5] = cast<u8>(300)
  store Y[6] = cast<i8>(200)
  store Y[7] = 1 << 31
  store Y[8] = 7 / -2
  store Y[9] = -7 % 3
  store Y[10] = cdiv(10, 4)
  store Y[11] = ~(5)
  store Y[12] = 2147483647 + 1`, [-2.7]);
    expect(y.slice(0, 13)).toEqual([4294967295, 1, -4, 2147483644, -2, 44, -56, -2147483648, -3, -1, 3, -6, -2147483648]);
  });

  it("&& short-circuits (a guarded out-of-bounds load is never made), select and comparisons", () => {
    const y = run(`  let i: i32 = 8
  store Y[0] = select(i < 8 && X[i] > 0.0, 1.0, 2.0)
  store Y[1] = select(X[0] >= X[1], X[0], X[1])
  store Y[2] = cast<f64>(X[0] == X[0])
  store Y[3] = cast<f64>(!(X[2] < X[2]))`, [3, 5, NaN]);
    expect(y.slice(0, 4)).toEqual([2, 5, 1, 1]);
  });

  it("math functions: f32 results are rounded to f32; round() takes halves up, as TypeScript's Math.round", () => {
    const y = run(`  store Y[0] = exp(cast<f32>(X[0]))
  store Y[1] = erf(X[0])
  store Y[2] = round(-2.5)
  store Y[3] = sigmoid(X[1])
  store Y[4] = rsqrt(4.0)
  store Y[5] = fma(X[0], X[1], 1.0)
  store Y[6] = max(X[0], X[1])`, [0.5, -1]);
    expect(y.slice(0, 7)).toEqual([Math.fround(Math.exp(0.5)), erf(0.5), -2, 1 / (1 + Math.E), 0.5, 0.5, 0.5]);
  });

  it("integer division by zero is an error naming the statement", () => {
    expect(() => run(`  let z: i32 = cast<i32>(X[0])
  store Y[0] = 1 / z`, [0])).toThrow(/integer division by zero[\s\S]*at: store Y\[0\] = 1 \/ z/);
  });

  it("an unspecialized tunable is reported", () => {
    const k = parseKernel(`kernel t(Y: global f32[N] out)
  dims N
  tune BM = [64, 128]
launch tile grid [cdiv(N, BM)] threads 32 blocks [bx] {
  store Y[0] = 1.0
}`);
    expect(() => runKernel(k, { tensors: { Y: zeros("f32", [4]) } })).toThrow(/unspecialized tunable/);
    expect(() => runKernel({ ...k, config: { BM: 64 } }, { tensors: { Y: zeros("f32", [4]) } })).not.toThrow();
  });
});
