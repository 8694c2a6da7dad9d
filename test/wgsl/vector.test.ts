// Vectorized vcopy reads on WebGPU: which inputs become array<vec4<..>>, and on the
// adapter, that the vector path (aligned source) and its element fallback (unaligned
// source, same shader) copy exactly the same values.
import { describe, expect, it } from "vitest";
import type { DType, Kernel } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { emitWgsl } from "../../src/codegen/wgsl/index.ts";
import { runCompiled } from "../../runtime/webgpu/host.ts";
import { gpuHandle, gpuIt } from "./gpu.ts";

const NO = { f16: false, subgroups: false };

// Each thread copies `lanes` elements starting at X[block base + tx*lanes + off] into
// shared memory through one vcopy, then writes them out; off is a run-time scalar, so off=0
// takes the vector path and off=1 the element fallback of the same shader.
function copyKernel(dtype: DType, lanes: number): Kernel {
  const tile = 16 * lanes;
  return parseKernel(`kernel k(X: global ${dtype}[N], Y: global ${dtype}[N] out, off: i32)
  dims N
launch thread grid [cdiv(N, ${tile})] threads 16 blocks [bx] thread tx {
  alloc S: shared ${dtype}[${tile}]
  let g: i32 = bx * ${tile} + tx * ${lanes}
  vcopy S[tx * ${lanes}] <- X[g + off] lanes ${lanes} if (g + off + ${lanes} <= N)
  barrier
  for j in serial(0, ${lanes}) {
    if (g + j < N) {
      store Y[g + j] = S[tx * ${lanes} + j]
    }
  }
}`);
}

describe("vector reads in the WGSL emitter", () => {
  it("declares a read-only 32-bit input vcopied 4 lanes at a time as array<vec4>, outputs stay scalar", () => {
    const w = emitWgsl(copyKernel("f32", 4), NO).wgsl;
    expect(w).toContain("var<storage, read> X: array<vec4<f32>>;");
    expect(w).toContain("var<storage, read_write> Y: array<f32>;");
    expect(w).toMatch(/let _v\d+_0 = X\[\(\(_s\d+\) >> 2u\) \+ 0\];/);
    expect(w).toMatch(/if \(\(\(_s\d+\) & 3\) == 0\) \{/);
  });

  it("reads packed 16-bit inputs a word (2 halves) or a vec4<u32> (8 halves) at a time", () => {
    const two = emitWgsl(copyKernel("bf16", 2), NO).wgsl;
    expect(two).toContain("var<storage, read> X: array<u32>;");
    expect(two).toMatch(/let _v\d+_0: u32 = X\[\(\(_s\d+\) >> 1u\) \+ 0\];/);
    expect(two).toMatch(/_ld_X\(_v\d+_0, 1i\)/);
    const eight = emitWgsl(copyKernel("bf16", 8), NO).wgsl;
    expect(eight).toContain("var<storage, read> X: array<vec4<u32>>;");
    expect(eight).toMatch(/let _v\d+_0 = X\[\(\(_s\d+\) >> 3u\) \+ 0\];/);
    expect(eight).toMatch(/_ld_X\(_v\d+_0\.w, 1i\)/);
  });

  it("leaves 2-lane 32-bit copies and native f16 element-wise", () => {
    expect(emitWgsl(copyKernel("f32", 2), NO).wgsl).toContain("X: array<f32>;");
    const f16 = emitWgsl(copyKernel("f16", 8), { f16: true, subgroups: false }).wgsl;
    expect(f16).toContain("X: array<f16>;");
    expect(f16).not.toMatch(/_v\d+_0/);
  });

  const cases: [DType, number][] = [["f32", 4], ["i32", 8], ["bf16", 2], ["bf16", 8], ["i16", 4]];
  for (const [dtype, lanes] of cases) {
    gpuIt(`copies ${dtype} x${lanes} exactly through the vector path and the unaligned fallback`, async () => {
      const gpu = gpuHandle();
      const k = copyKernel(dtype, lanes);
      const wk = emitWgsl(k, { f16: gpu.hasF16, subgroups: false });
      expect(wk.wgsl).toMatch(/_v\d+_0/);
      const N = 16 * lanes * 2 + 3; // a ragged last tile
      const data = new Float64Array(N).map((_, i) => (dtype === "f32" || dtype === "bf16" ? (i * 37 % 101) / 8 - 6 : (i * 37 % 101) - 50));
      for (const off of [0, 1]) {
        const r = await runCompiled(gpu, k, wk, { X: { dtype, shape: [N], data } }, { off }, { dims: { N } });
        const want = Array.from({ length: N }, (_, i) => {
          // A thread whose whole vector does not fit is masked: it leaves zeros in shared.
          const g = Math.floor(i / lanes) * lanes;
          return g + off + lanes <= N ? data[i + off]! : 0;
        });
        expect(Array.from(r.outputs.Y!.data), `off=${off}`).toEqual(want);
      }
    }, 30_000);
  }
});

describe("inputs without vector copies", () => {
  it("stay scalar arrays", () => {
    const k = parseKernel(`kernel k(X: global f32[N], Y: global f32[N] out)
  dims N
launch thread grid [cdiv(N, 64)] threads 64 blocks [bx] thread tx {
  let i: i32 = bx * 64 + tx
  if (i < N) {
    store Y[i] = X[i]
  }
}`);
    expect(emitWgsl(k, NO).wgsl).toContain("var<storage, read> X: array<f32>;");
  });
});

// Each thread stages `lanes` elements of X in shared memory, then one vcopy writes them to
// Y[g + off .. g + off + lanes); off = 0 takes the vector write, off = 1 its element
// fallback, in the same shader. Y starts with sentinel values: elements no thread writes
// must keep them (a vector write must not spill onto a neighbour's elements).
function storeKernel(dtype: DType, lanes: number): Kernel {
  const tile = 16 * lanes;
  return parseKernel(`kernel k(X: global ${dtype}[N], Y: global ${dtype}[N] out, off: i32)
  dims N
launch thread grid [cdiv(N, ${tile})] threads 16 blocks [bx] thread tx {
  alloc S: shared ${dtype}[${tile}]
  let g: i32 = bx * ${tile} + tx * ${lanes}
  for j in serial(0, ${lanes}) {
    if (g + j < N) {
      store S[tx * ${lanes} + j] = X[g + j]
    }
  }
  vcopy Y[g + off] <- S[tx * ${lanes}] lanes ${lanes} if (g + off + ${lanes} <= N)
}`);
}

describe("vector writes of outputs in the WGSL emitter", () => {
  it("declares a 32-bit output vcopied 4 lanes at a time as array<vec4>: vec4 stores when aligned, component stores otherwise", () => {
    const w = emitWgsl(storeKernel("f32", 4), NO).wgsl;
    expect(w).toContain("var<storage, read_write> Y: array<vec4<f32>>;");
    expect(w).toMatch(/if \(\(\(_d(\d+)\) & 3\) == 0\) \{\n\s+Y\[\(\(_d\1\) >> 2u\) \+ 0\] = vec4<f32>\(_w\1_0, _w\1_1, _w\1_2, _w\1_3\);\n\s+\} else \{\n\s+Y\[\(_d\1\) >> 2u\]\[\(_d\1\) & 3\] = _w\1_0;/);
    const eight = emitWgsl(storeKernel("i32", 8), NO).wgsl;
    expect(eight).toMatch(/Y\[\(\(_d(\d+)\) >> 2u\) \+ 1\] = vec4<i32>\(_w\1_4, _w\1_5, _w\1_6, _w\1_7\);/);
  });

  it("packed outputs: whole words by atomicStore when the copy covers them, per-element atomics otherwise", () => {
    const bf = emitWgsl(storeKernel("bf16", 2), NO).wgsl;
    expect(bf).toContain("var<storage, read_write> Y: array<atomic<u32>>;");
    expect(bf).toMatch(/if \(\(\(_d(\d+)\) & 1\) == 0\) \{\n\s+atomicStore\(&Y\[\(\(_d\1\) >> 1u\) \+ 0\], \(_bits_bf16\(_w\1_0\) & 0xffffu\) \| \(\(_bits_bf16\(_w\1_1\) & 0xffffu\) << 16u\)\);\n\s+\} else \{\n\s+_st_Y\(_d\1, _w\1_0\);/);
    const u8 = emitWgsl(storeKernel("u8", 8), NO).wgsl;
    expect(u8).toMatch(/atomicStore\(&Y\[\(\(_d(\d+)\) >> 2u\) \+ 1\], \(_w\1_4 & 0xffu\) \| \(\(_w\1_5 & 0xffu\) << 8u\) \| \(\(_w\1_6 & 0xffu\) << 16u\) \| \(\(_w\1_7 & 0xffu\) << 24u\)\);/);
  });

  it("leaves 2-lane 32-bit writes, 1-lane packed writes and native f16 element-wise", () => {
    const two = emitWgsl(storeKernel("f32", 2), NO);
    expect(two.wgsl).toContain("Y: array<f32>;");
    expect(two.wgsl).not.toMatch(/_w\d+_0/);
    expect(emitWgsl(storeKernel("bf16", 1), NO).wgsl).not.toMatch(/atomicStore/);
    const f16 = emitWgsl(storeKernel("f16", 8), { f16: true, subgroups: false }).wgsl;
    expect(f16).toContain("Y: array<f16>;");
    expect(f16).not.toMatch(/_w\d+_0/);
  });

  const cases: [DType, number][] = [["f32", 4], ["f32", 8], ["i32", 4], ["u32", 8], ["bf16", 2], ["bf16", 8], ["f16", 4], ["i16", 4], ["i8", 4], ["u8", 8], ["fp8e4m3", 4]];
  for (const [dtype, lanes] of cases) {
    gpuIt(`writes ${dtype} x${lanes} exactly through the vector write and the unaligned fallback, neighbours untouched`, async () => {
      const gpu = gpuHandle();
      const k = storeKernel(dtype, lanes);
      // f16 packed (without shader-f16) is the case that has a vector write.
      const wk = emitWgsl(k, { f16: false, subgroups: false });
      expect(wk.wgsl).toMatch(/_w\d+_0/);
      const N = 16 * lanes * 2 + 3; // a ragged last tile
      const isF = ["f32", "bf16", "f16", "fp8e4m3"].includes(dtype);
      const val = (i: number) => roundTo(dtype, isF ? (i * 37 % 101) / 8 - 6 : dtype.startsWith("u") ? (i * 37 % 101) : (i * 37 % 101) - 50);
      const data = new Float64Array(N).map((_, i) => val(i));
      const sentinel = new Float64Array(N).map((_, i) => val(i + 500));
      for (const off of [0, 1]) {
        const r = await runCompiled(gpu, k, wk, { X: { dtype, shape: [N], data }, Y: { dtype, shape: [N], data: sentinel.slice() } }, { off }, { dims: { N } });
        const want = Array.from(sentinel);
        for (let g = 0; g < N; g += lanes)
          if (g + off + lanes <= N) for (let l = 0; l < lanes; l++) want[g + off + l] = data[g + l]!;
        expect(Array.from(r.outputs.Y!.data), `off=${off}`).toEqual(want);
      }
    }, 30_000);
  }
});
