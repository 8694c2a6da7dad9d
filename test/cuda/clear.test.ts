// The split-K decode kernel's clear of C on sm_90a (overlap-clears.ts, docs/QUANT.md "Clearing by
// a zero kernel"): the golden of kernel, zero kernel and launcher; the wait's place in the kernel
// (after the main loop, before the atomics); the launcher's order (zero kernel plainly, then the
// kernel with the PDL attribute, no memset); sm_80, --pdl (chain mode) and an output the zero
// kernel cannot store 16 bytes at a time keep the memset; nvcc compile-only for sm_90a and sm_80.
// UPDATE_GOLDEN=1 npx vitest run test/cuda/clear.test.ts rewrites the golden (review the diff).
import { zeroKernel } from "../../src/codegen/cuda/zero-kernel.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { runKernel } from "../../src/interp/index.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { cudaTarget, lower } from "../../src/passes/pipeline.ts";
import { nvccWarning } from "./kernels.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { overlapClears } from "../../src/passes/overlap-clears.ts";

const file = parseKernels("dsl-examples/gemm_w4a16.ts");
const gemm = file.find((k) => k.name === "gemm_w4a16")!;
const decode = { BM: 16, BN: 128, BK: 128, stages: 4, warps: 4, splitK: 4 };
const sm90 = emitCuda(lower(gemm, decode, cudaTarget("sm_90a")));
const sm80 = emitCuda(lower(gemm, decode, cudaTarget("sm_80")));
const chain = emitCuda(lower(gemm, decode, cudaTarget("sm_90a", "wgmma", "tma", undefined, true, { pdl: true })));
const kernelOf = (cu: string) => cu.slice(cu.indexOf("__global__ void __launch_bounds__(128) gemm_w4a16_kernel"), cu.indexOf("\n}\n", cu.indexOf("gemm_w4a16_kernel(")));
const launcherOf = (cu: string, name = "gemm_w4a16") => cu.slice(cu.indexOf(`extern "C" int ${name}(`), cu.indexOf("\n}\n", cu.indexOf(`extern "C" int ${name}(`)));

describe("gemm_w4a16 at split-K 4 on sm_90a: C cleared by the zero kernel", () => {
  it("matches the golden (kernel, zero kernel, launcher)", () => {
    const url = new URL("./golden/gemm_w4a16_clear.cu", import.meta.url);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(url, sm90.cu);
    if (!existsSync(url)) throw new Error("missing golden gemm_w4a16_clear.cu; run with UPDATE_GOLDEN=1 to create it");
    expect(sm90.cu).toBe(readFileSync(url, "utf8"));
  });
  it("the kernel waits once, after its main loop's last mma and before its first atomic add into C", () => {
    const k = kernelOf(sm90.cu);
    const wait = k.indexOf('asm volatile("griddepcontrol.wait;" ::: "memory");');
    expect(wait).toBeGreaterThan(0);
    expect(k.match(/griddepcontrol/g)).toHaveLength(1);
    expect(k.lastIndexOf("mma.sync")).toBeLessThan(wait);
    expect(k.indexOf("atomicAdd(")).toBeGreaterThan(wait);
  });
  it("the zero kernel (emitted from IR) triggers first, then zeroes one word a thread", () => {
    const z = sm90.cu.slice(sm90.cu.indexOf('extern "C" __global__ void __launch_bounds__(256) gemm_w4a16_zero(unsigned* __restrict__ P, int n) {'));
    const body = z.slice(0, z.indexOf("\n}\n"));
    const lines = body.split("\n");
    expect(lines.slice(1, 4)).toEqual(["  const int bx = blockIdx.x;", "  const int tx = threadIdx.x;", '  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");']);
    expect(body).toContain("P[i] = (unsigned)0;");
    expect(body.indexOf("P[i] = (unsigned)0;")).toBeGreaterThan(body.indexOf("griddepcontrol.launch_dependents"));
    expect(body).not.toContain("griddepcontrol.wait");
  });
  it("the launcher launches the zero kernel plainly, then the kernel with the PDL attribute, and no memset", () => {
    const l = launcherOf(sm90.cu);
    const zero = l.indexOf("cudaLaunchKernel((const void*)gemm_w4a16_zero, dim3(tm_zero_blocks, 1, 1), dim3(256, 1, 1), tm_zero_args, 0, stream);");
    const main = l.indexOf("cudaLaunchKernelExC(&tm_cfg, (const void*)gemm_w4a16_kernel, tm_args);");
    expect(zero).toBeGreaterThan(0);
    expect(main).toBeGreaterThan(zero);
    expect(l).toContain("tm_attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;");
    expect(l).toContain("tm_attr[0].val.programmaticStreamSerializationAllowed = 1;");
    expect(l).toContain("const int64_t tm_zero_words = (int64_t)((int64_t)(M) * (int64_t)(N) * 4) / 4;");
    // The early returns (bad arguments, an empty grid) all come before the zero kernel's launch.
    expect((l.slice(zero).match(/return GEMM_W4A16_\w+/g) ?? []).filter((r) => !r.endsWith("_ERR_CUDA"))).toEqual(["return GEMM_W4A16_OK"]);
    // No memset but past INT32_MAX words (the zero kernel's int count).
    expect(sm90.cu.match(/cudaMemsetAsync/g)).toHaveLength(1);
    expect(l).toMatch(/if \(tm_zero_words > INT32_MAX\) \{\n +tm_err = cudaMemsetAsync\(C, 0,/);
    // One plain launcher, no _ex: the kernel's wait guards only C.
    expect(sm90.cu).not.toMatch(/gemm_w4a16_ex\(/);
    expect(sm90.h).toMatch(/cleared C: the kernel only adds into them\. The launcher clears each with the kernel\n\/\/ +gemm_w4a16_zero\(unsigned\* P, int n\) over the output's n 4-byte words/);
  });
  it("splitK 1 has nothing to clear: no zero kernel, no wait, a plain launch", () => {
    const one = emitCuda(lower(gemm, { ...decode, splitK: 1 }, cudaTarget("sm_90a")));
    expect(one.cu).not.toMatch(/griddepcontrol|_zero|cudaLaunchKernelEx|cudaMemsetAsync/);
  });
});

describe("the zero kernel's IR (src/codegen/cuda/zero-kernel.ts)", () => {
  it("verifies, and in the interpreter zeroes every word of a dirty buffer, nothing past it, and runs at n = 0", () => {
    const z = zeroKernel();
    expect(verifyErrors(z)).toEqual([]);
    for (const n of [0, 1, 255, 256, 1000]) {
      const P = randomTensor("u32", [n + 7], 9, 1, 0xffffffff);
      const tail = Array.from(P.data.slice(n));
      runKernel(z, { tensors: { P: { ...P, shape: [n], data: P.data.subarray(0, n) } }, scalars: {} });
      expect(Array.from(P.data.slice(0, n)).every((v) => v === 0), `n = ${n}`).toBe(true);
      expect(Array.from(P.data.slice(n))).toEqual(tail);
    }
  });
});

describe("where the memset stays", () => {
  it("sm_80: no griddepcontrol, no zero kernel, the memset before a plain launch", () => {
    expect(sm80.cu).not.toMatch(/griddepcontrol|_zero|cudaLaunchKernelEx|Programmatic/);
    expect(launcherOf(sm80.cu)).toContain("tm_err = cudaMemsetAsync(C, 0, (size_t)((int64_t)(M) * (int64_t)(N) * 4), stream);");
  });
  it("--pdl (chain mode): the wait and trigger at the top, the _ex launcher, the memset, no zero kernel", () => {
    expect(kernelOf(chain.cu).match(/griddepcontrol/g)).toHaveLength(2);
    expect(chain.cu).not.toContain("gemm_w4a16_zero");
    expect(launcherOf(chain.cu, "gemm_w4a16_ex")).toContain("tm_err = cudaMemsetAsync(C, 0,");
    expect(launcherOf(chain.cu, "gemm_w4a16_ex")).toContain("programmaticStreamSerializationAllowed = programmatic ? 1 : 0;");
  });
  it("an output of 2-byte elements (not whole words for the zero kernel's stores): the memset, and the kernel launched plainly", () => {
    const low = lower(gemm, decode, cudaTarget("sm_90a"));
    const c2 = emitCuda({ ...low, params: low.params.map((p) => (p.name === "C" ? { ...p, dtype: "f16" as const } : p)) });
    expect(c2.cu).not.toMatch(/_zero|cudaLaunchKernelEx/);
    expect(c2.cu).toContain("tm_err = cudaMemsetAsync(C, 0,");
  });
});

describe("a kernel with two outputs it only adds into (hand-written thread-level IR)", () => {
  const src = `kernel two(X: global f32[N], Y: global f32[N] out, Z: global f32[N] out)
  dims N
launch thread grid [cdiv(N, 32), 4] threads 32 blocks [bx, bz] thread tx {
  let i: i32 = bx * 32 + tx
  let v: f32 = select(i < N, X[i], 0.0)
  if (i < N) {
    atomic.add Y[i], v
    atomic.add Z[i], v * 2.0
  }
}
`;
  const low = overlapClears(parseKernel(src), { config: {}, target: cudaTarget("sm_90a") });
  const out = emitCuda(low);
  it("clears each with the zero kernel, in parameter order, then launches the kernel with PDL", () => {
    const l = launcherOf(out.cu, "two");
    const zeros = [...l.matchAll(/unsigned\* tm_zero_p = \(unsigned\*\)(\w+);/g)].map((m) => m[1]);
    expect(zeros).toEqual(["Y", "Z"]);
    expect(l.match(/cudaLaunchKernel\(\(const void\*\)two_zero,/g)).toHaveLength(2);
    expect(l.lastIndexOf("two_zero")).toBeLessThan(l.indexOf("cudaLaunchKernelExC(&tm_cfg, (const void*)two_kernel, tm_args);"));
    expect(out.zeroKernel).toBe("two_zero");
  });
});

const nvcc = await nvccAvailable();
nvccWarning(nvcc, "split-K clear nvcc compile tests (test/cuda/clear.test.ts)");
describe.skipIf(!nvcc)("nvcc compile-only", () => {
  it("sm_90a: the kernel waits, the zero kernel triggers; sm_80 has neither", async () => {
    const a = await compileCuda(sm90.cu, { arch: "sm_90a", outputs: ["obj", "ptx"] });
    const entry = (name: string) => a.ptx!.slice(a.ptx!.indexOf(`.entry ${name}(`), a.ptx!.indexOf("\n}\n", a.ptx!.indexOf(`.entry ${name}(`)));
    expect(entry("gemm_w4a16_kernel").match(/griddepcontrol\.\w+/g)).toEqual(["griddepcontrol.wait"]);
    expect(entry("gemm_w4a16_zero").match(/griddepcontrol\.\w+/g)).toEqual(["griddepcontrol.launch_dependents"]);
    expect(entry("gemm_w4a16_zero")).toMatch(/st\.global\.u32/);
    const b = await compileCuda(sm80.cu, { arch: "sm_80", outputs: ["obj", "ptx"] });
    expect(b.ptx).not.toContain("griddepcontrol");
  }, 240_000);
});
