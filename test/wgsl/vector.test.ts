// Vectorized vcopy reads on WebGPU: which inputs become array<vec4<..>>, and on the
// adapter, that the vector path (aligned source) and its element fallback (unaligned
// source, same shader) copy exactly the same values.
import { describe, expect, it } from "vitest";
import type { DType, Kernel } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
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
