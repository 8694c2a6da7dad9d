// The WGSL emitter without a device: golden output for a small kernel (IR text in, WGSL
// out), naming, feature-dependent storage, and diagnostics for what WGSL cannot express.
import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { CompileError, type Kernel } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { emitWgsl } from "../../src/codegen/wgsl/index.ts";

const here = (f: string) => new URL(f, import.meta.url);
const NO = { f16: false, subgroups: false };
const kernel = (text: string): Kernel => parseKernel(text);

const ELEMWISE = (decl: string, body: string) => `kernel k(${decl})
  dims N
launch thread grid [cdiv(N, 64)] threads 64 blocks [bx] thread tx {
${body}
}`;

describe("emitWgsl", () => {
  it("matches the golden WGSL for a small kernel (UPDATE_GOLDEN=1 rewrites it)", () => {
    const k = kernel(readFileSync(here("golden/scale.ir"), "utf8"));
    const got = emitWgsl(k, NO).wgsl;
    if (process.env.UPDATE_GOLDEN) writeFileSync(here("golden/scale.wgsl"), got);
    expect(got).toBe(readFileSync(here("golden/scale.wgsl"), "utf8"));
  });

  it("binds tensors in parameter order, read-only inputs as `read`, dims and scalars in the uniform", () => {
    const k = kernel(readFileSync(here("golden/scale.ir"), "utf8"));
    const w = emitWgsl(k, NO);
    expect(w.bindings.map((b) => [b.param, b.binding, b.access])).toEqual([["X", 0, "read"], ["Y", 1, "read_write"], ["H", 2, "read_write"]]);
    expect(w.uniform).toEqual({ binding: 3, size: 16, fields: [
      { name: "N", source: "dim", dtype: "i32", wgslType: "i32", offset: 0 },
      { name: "alpha", source: "scalar", dtype: "f32", wgslType: "f32", offset: 4 },
    ] });
    expect(w.workgroupSize).toBe(64);
    expect(w.workgroupBytes).toBe(256);
  });

  it("uses native f16 storage and `enable f16;` only when the adapter has shader-f16", () => {
    const k = kernel(ELEMWISE("X: global f16[N], Y: global f16[N] out", "  let i: i32 = bx * 64 + tx\n  if (i < N) {\n    store Y[i] = X[i] * 2.0\n  }"));
    const on = emitWgsl(k, { f16: true, subgroups: false });
    expect(on.wgsl).toContain("enable f16;");
    expect(on.wgsl).toContain("var<storage, read> X: array<f16>;");
    expect(on.wgsl).toContain("Y[i] = (X[i] * 2h);");
    expect(on.features).toEqual(["shader-f16"]);
    const off = emitWgsl(k, NO);
    expect(off.wgsl).not.toContain("enable f16");
    expect(off.wgsl).toContain("var<storage, read_write> Y: array<atomic<u32>>;");
    expect(off.wgsl).toContain("_round_f16(");
  });

  it("renames IR names that are WGSL words or start with an underscore", () => {
    const k = kernel(ELEMWISE("X: global f32[N], Y: global f32[N] out", "  let select: i32 = bx * 64 + tx\n  let _t: f32 = 1.0\n  if (select < N) {\n    store Y[select] = X[select] + _t\n  }"));
    const w = emitWgsl(k, NO).wgsl;
    expect(w).toContain("let select_: i32 =");
    expect(w).toContain("let v_t: f32 = 1f;");
    expect(w).toContain("Y[select_] = (X[select_] + v_t);");
  });

  it("inlines specialized tunables and zero-fills a masked vcopy into shared memory", () => {
    const k = kernel(ELEMWISE("X: global f32[N], Y: global f32[N] out", "  alloc S: shared f32[128]\n  vcopy S[tx * 2] <- X[bx * 128 + tx * 2] lanes 2 if (bx * 128 + tx * 2 + 2 <= N)\n  barrier\n  store Y[bx * 64 + tx] = S[tx] * BM"));
    k.config = { BM: 4 };
    const w = emitWgsl(k, NO).wgsl;
    expect(w).toContain("S[_d0 + 1] = X[_s0 + 1];");
    expect(w).toMatch(/} else {\n\s+S\[_d0\] = 0f;\n\s+S\[_d0 \+ 1\] = 0f;/);
    expect(w).toContain("(S[tx] * 4f)");
  });

  it("reports what WGSL cannot express as CompileError", () => {
    const mma = kernel(ELEMWISE("X: global f16[N]", "  alloc a: local f16[8]\n  alloc c: local f32[4]\n  mma.f16 c[0] = a[0] * a[0] + c[0]"));
    expect(() => emitWgsl(mma, NO)).toThrow(CompileError);
    expect(() => emitWgsl(mma, NO)).toThrow(/mma off/);
    const f64 = kernel(ELEMWISE("X: global f64[N]", "  barrier"));
    expect(() => emitWgsl(f64, NO)).toThrow(/64-bit/);
    const tile = kernel("kernel t(X: global f32[N] out)\n  dims N\nlaunch tile grid [1] threads 32 blocks [bx] {\n  fill X[0 : +4] = 0.0\n}");
    expect(() => emitWgsl(tile, NO)).toThrow(/thread-level/);
    // No atomic<f16> and no atomic local memory: diagnostics, not silently plain stores.
    const local = kernel(ELEMWISE("X: global f32[N] out", "  alloc L: local i32[4]\n  atomic.add L[0], 1"));
    expect(() => emitWgsl(local, NO)).toThrow(/global or shared/);
    const sh16 = kernel(ELEMWISE("X: global f16[N] out", "  alloc S: shared f16[64]\n  atomic.add S[tx], 1.0"));
    expect(() => emitWgsl(sh16, { f16: true, subgroups: false })).toThrow(/atomics on f16/);
  });

  it("declares atomically updated buffers atomic and reaches every access through atomics", () => {
    const k = kernel(ELEMWISE("X: global f32[N] out, C: global i32[4] out", "  alloc S: shared f32[64]\n  store S[tx] = 0.0\n  barrier\n  atomic.max S[tx], 2.0 -> old\n  atomic.add C[0], 1\n  atomic.min C[1], tx\n  barrier\n  if (bx * 64 + tx < N) {\n    atomic.add X[bx * 64 + tx], S[tx] + old\n  }"));
    const w = emitWgsl(k, NO).wgsl;
    expect(w).toContain("var<storage, read_write> X: array<atomic<u32>>;");
    expect(w).toContain("var<storage, read_write> C: array<atomic<i32>>;");
    expect(w).toContain("var<workgroup> S: array<atomic<u32>, 64>;");
    expect(w).toContain("atomicStore(&S[tx], bitcast<u32>(0f));");
    expect(w).toContain("let old: f32 = _atm_max_S(tx, 2f);");
    expect(w).toContain("atomicAdd(&C[0i], 1i);");
    expect(w).toContain("atomicMin(&C[1i], tx);");
    expect(w).toContain("_atm_add_X(((bx * 64i) + tx), (bitcast<f32>(atomicLoad(&S[tx])) + old));");
    expect(w).toMatch(/fn _atm_add_X\(e: i32, v: f32\) -> f32 \{[^]*atomicCompareExchangeWeak\(&X\[e\], w, bitcast<u32>\(n\)\)/);
  });
});
