// Every narrow dtype on the adapter: f32 -> T (rounding in the shader, packed stores) and
// T -> f32 (packed loads, decoding) must give exactly what src/numeric/dtype.ts says, for
// special values, rounding ties and random values; f16 both native and emulated.
import { describe, expect } from "vitest";
import type { DType } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { emitWgsl } from "../../src/codegen/wgsl/index.ts";
import { runCompiled } from "../../runtime/webgpu/host.ts";
import { decode, floatToInt, roundTo } from "../../src/numeric/dtype.ts";
import { isFloat, isInt } from "../../src/ir/ir.ts";
import { rng } from "../../src/numeric/random.ts";
import { gpuHandle, gpuIt } from "./gpu.ts";

const convKernel = (from: DType, to: DType) => parseKernel(`kernel cvt(X: global ${from}[N], Y: global ${to}[N] out)
  dims N
launch thread grid [cdiv(N, 64)] threads 64 blocks [bx] thread tx {
  let i: i32 = bx * 64 + tx
  if (i < N) {
    store Y[i] = cast<${to}>(X[i])
  }
}`);

const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)) || (a === 0 && b === 0);

async function check(from: DType, to: DType, xs: number[], f16: boolean) {
  const k = convKernel(from, to);
  const wk = emitWgsl(k, { f16, subgroups: false });
  const X = { dtype: from, shape: [xs.length], data: Float64Array.from(xs, (x) => roundTo(from, x)) };
  const r = await runCompiled(gpuHandle(), k, wk, { X }, {});
  const got = r.outputs.Y!.data;
  const bad: string[] = [];
  X.data.forEach((x, i) => {
    // A float becomes an integer saturated (floatToInt); everything else rounds or wraps.
    const want = isFloat(from) && isInt(to) ? floatToInt(to, x) : roundTo(to, x);
    if (!same(got[i]!, want)) bad.push(`${from} ${x} -> ${to}: got ${got[i]}, want ${want}`);
  });
  expect(bad.slice(0, 8)).toEqual([]);
}

// Ties and edges of each format, plus specials and random magnitudes across the range.
function floatInputs(): number[] {
  const r = rng(7);
  const xs = [0, -0, 1, -1, 0.1, 1 / 3, 65504, 65520, 70000, -1e6, 448, 464, 500, 57344, 61440, 1e-8, 6e-8, 3e-5, 2 ** -7, 2 ** -10,
    1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -4, 1 + 3 * 2 ** -4, 1e30, Infinity, -Infinity, NaN];
  for (let i = 0; i < 300; i++) xs.push((r() - 0.5) * 2 ** Math.floor(r() * 40 - 20));
  return xs.map(Math.fround);
}

describe("conversions on WebGPU match src/numeric/dtype.ts", () => {
  const floats: [DType, boolean][] = [["bf16", false], ["f16", false], ["f16", true], ["fp8e4m3", false], ["fp8e5m2", false]];
  for (const [t, f16] of floats) {
    gpuIt(`f32 -> ${t} -> f32${t === "f16" ? (f16 ? " (shader-f16)" : " (emulated)") : ""}`, async () => {
      await check("f32", t, floatInputs(), f16);
      const bits = t.startsWith("fp8") ? 256 : 65536;
      const bytes = new Uint8Array(bits * (bits === 256 ? 1 : 2));
      if (bits === 256) bytes.forEach((_, i) => (bytes[i] = i));
      else new Uint16Array(bytes.buffer).forEach((_, i, a) => (a[i] = i));
      await check(t, "f32", [...decode(t, bytes)], f16);
    }, 60_000);
  }
  for (const t of ["i8", "u8", "i16", "u16", "bool"] as DType[]) {
    gpuIt(`f32 -> ${t} -> f32`, async () => {
      const r = rng(3);
      const xs = [0, -0.5, 0.5, 127.9, -128.9, 255, 256.5, -1, 40000.2, -40000.7, 65535, 70000];
      for (let i = 0; i < 200; i++) xs.push((r() - 0.5) * 2 ** Math.floor(r() * 20));
      await check("f32", t, xs.map(Math.fround), false);
      await check(t, "f32", xs.map((x) => roundTo(t, x)), false);
    }, 60_000);
  }
});
