// GEMMs run on the WebGPU adapter against a float64 reference, over fast-check-drawn small
// ragged shapes (1 included): a hand-built thread-level kernel in f32, f16 (native and
// emulated without shader-f16) and bf16, and the DSL examples lowered for wgsl.
import { describe, expect } from "vitest";
import fc from "fast-check";
import type { DType, Kernel } from "../../src/ir/ir.ts";
import { emitWgsl } from "../../src/codegen/wgsl/index.ts";
import { runCompiled } from "../../runtime/webgpu/host.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { firstMismatch, tolerance } from "../../src/numeric/tolerance.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { lower, WGSL } from "../../src/passes/pipeline.ts";
import { gemmKernel } from "./gemm-kernel.ts";
import { matmulRef } from "./reference.ts";
import { gpu, gpuHandle, gpuIt } from "./gpu.ts";

const dim = fc.integer({ min: 1, max: 40 });

/** Runs k on drawn shapes and compares C with the reference; `f16` picks native or emulated f16. */
async function checkGemm(k: Kernel, ab: DType, c: DType, transB: boolean, f16: boolean, runs: number) {
  const wk = emitWgsl(k, { f16, subgroups: false });
  await fc.assert(fc.asyncProperty(dim, dim, dim, fc.nat(1 << 30), async (M, N, K, seed) => {
    const A = randomTensor(ab, [M, K], seed);
    const B = randomTensor(ab, transB ? [N, K] : [K, N], seed + 1);
    const t0 = performance.now();
    const r = await runCompiled(gpuHandle(), k, wk, { A, B }, {});
    if (process.env.WGSL_TRACE) console.log(k.name, M, N, K, (performance.now() - t0).toFixed(0), "ms");
    const C = r.outputs.C!;
    expect(C.shape).toEqual([M, N]);
    const bad = firstMismatch(C.data, matmulRef(A, B, transB), tolerance(c, K));
    if (bad) throw new Error(`${k.name} ${ab}->${c} M=${M} N=${N} K=${K} seed=${seed}: element ${bad.index} got ${bad.got}, want ${bad.want} (allowed ${bad.allowed})`);
  }), { numRuns: runs });
}

describe("hand-built thread-level GEMM on WebGPU", () => {
  const cases: [DType, DType, boolean][] = [["f32", "f32", true], ["bf16", "bf16", false], ["bf16", "f32", false], ["f16", "f16", true], ["f16", "f16", false]];
  for (const [ab, c, f16] of cases) {
    gpuIt(`${ab} -> ${c}${ab === "f16" ? (f16 ? " (shader-f16)" : " (f16 emulated in f32)") : ""}`, async () => {
      if (f16 && gpu.ok && !gpu.gpu.hasF16) return console.warn("adapter lacks shader-f16; native f16 case not run");
      await checkGemm(gemmKernel({ ab, c, BM: 16, BN: 16, BK: 8, threads: 64 }), ab, c, false, f16, 20);
    }, 120_000);
  }
});

// The front end (ts-morph) is the slow part of these tests: parse each file once.
const files = new Map<string, Kernel[]>();
const parsed = (file: string) => files.get(file) ?? files.set(file, parseKernels(file)).get(file)!;

describe("DSL example GEMMs lowered for wgsl", () => {
  const examples: [string, string, Record<string, number>, DType][] = [
    ["dsl-examples/gemm_f32.ts", "gemm_f32", {}, "f32"],
    ["dsl-examples/gemm.ts", "gemm_bf16", { BM: 64, BN: 64, BK: 32, stages: 2, warps: 4 }, "bf16"],
    ["dsl-examples/gemm.ts", "gemm_f16", { BM: 64, BN: 64, BK: 32, stages: 2, warps: 4 }, "f16"],
  ];
  for (const [file, name, config, dt] of examples) {
    gpuIt(`${name} ${JSON.stringify(config)}`, async () => {
      const k = parsed(file).find((x) => x.name === name)!;
      const low = lower(k, config, WGSL);
      await checkGemm(low, dt, dt, true, gpu.ok && gpu.gpu.hasF16, 10);
    }, 120_000);
  }
});
