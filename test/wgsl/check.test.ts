// `tilemoe check --backend webgpu` in CI: the checker (fast-check cases, float64 reference,
// dtype-aware tolerance) runs the dsl-examples GEMMs on the WebGPU adapter, through the same
// backendFor("webgpu") the CLI uses. Shapes are narrowed to small ragged ones and configs
// fixed to a few, because every new config is a new shader and lavapipe compiles slowly;
// the cases themselves take a few ms each.
import { describe, expect } from "vitest";
import type { Kernel } from "../../src/ir/ir.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import type { CheckSpec } from "../../src/check/spec.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import type { Config } from "../../src/tune/space.ts";
import { gpuIt } from "./gpu.ts";

const files = new Map<string, { kernels: Kernel[]; specs: Map<string, CheckSpec> }>();
async function load(file: string) {
  if (!files.has(file)) files.set(file, { kernels: parseKernels(file), specs: await loadSpecs(file) });
  return files.get(file)!;
}

interface Case {
  file: string; kernel: string; configs: Config[]; cases: number; dims: Record<string, readonly [number, number]>;
  /** false: warp_reduce through workgroup memory even though the adapter has subgroups. */
  subgroups?: boolean;
}

const SMALL = { M: [1, 40], N: [1, 40], K: [1, 40] } as const;
const GEMM16 = { BM: 64, BN: 64, BK: 32, stages: 2, warps: 4, GROUP_M: 1 };

const CASES: Case[] = [
  { file: "dsl-examples/gemm_f32.ts", kernel: "gemm_f32", configs: [{ BM: 32, BN: 32, BK: 16, warps: 2 }, { BM: 64, BN: 32, BK: 16, warps: 4 }], cases: 80, dims: SMALL },
  { file: "dsl-examples/gemm.ts", kernel: "gemm_bf16", configs: [GEMM16], cases: 80, dims: SMALL },
  { file: "dsl-examples/gemm.ts", kernel: "gemm_f16", configs: [GEMM16], cases: 80, dims: SMALL },
  // Atomics (src/codegen/wgsl/atomic.ts): shared i32 adds in the routing kernels, f32 adds
  // into global outputs in the MoE down GEMM and split-K w4a16 (zero-initialized by the checker).
  { file: "dsl-examples/moe_align.ts", kernel: "moe_align", configs: [{ EMAX: 256, CH: 256 }, { EMAX: 256, CH: 32 }], cases: 20, dims: {} },
  { file: "dsl-examples/moe_align.ts", kernel: "moe_align_ep", configs: [{ EMAX: 256, CH: 256 }, { EMAX: 256, CH: 32 }], cases: 15, dims: {} },
  { file: "dsl-examples/moe_gemm_down.ts", kernel: "moe_gemm_down", configs: [{ BM: 16, BN: 64, BK: 32, stages: 2, warps: 4 }], cases: 30, dims: { N: [1, 40], H: [1, 40] } },
  // Gating: T.reduce lowers to warp_reduce (src/codegen/wgsl/subgroup.ts), with subgroups
  // (lavapipe's size 8: width 8 rows shuffle, width 32 rows fall back at run time) and
  // with the workgroup-memory expansion only. BT 4 gives width 32 rows, BT 16 width 8.
  ...[true, false].flatMap((subgroups) => [
    { file: "dsl-examples/moe_gate.ts", kernel: "moe_gate_softmax", configs: [{ BT: 4, EMAX: 128, KMAX: 8 }, { BT: 16, EMAX: 128, KMAX: 8 }], cases: 30, dims: {}, subgroups },
    { file: "dsl-examples/moe_gate.ts", kernel: "moe_gate_sigmoid", configs: [{ BT: 4, EMAX: 128, KMAX: 8 }], cases: 30, dims: {}, subgroups },
    { file: "dsl-examples/moe_gate_grouped.ts", kernel: "moe_gate_grouped", configs: [{ BT: 4, GMAX: 8, SMAX: 32, KMAX: 8 }], cases: 30, dims: {}, subgroups },
  ]),
  { file: "dsl-examples/gemm_w4a16.ts", kernel: "gemm_w4a16", configs: [{ BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, splitK: 2 }, { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, splitK: 4 }], cases: 20, dims: { M: [1, 20], N: [1, 70], K: [1, 600] } },
  // The mma order on WGSL: the front end's shared-tile expansion at the order's columns.
  { file: "dsl-examples/gemm_w4a16.ts", kernel: "gemm_w4a16_mma", configs: [{ BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, splitK: 2 }], cases: 8, dims: { M: [1, 20], N: [1, 70], K: [1, 300] } },
  // Group scales on partial sums: T.dequant without scales (a multiply by 1 in WGSL), the scaled accumulate.
  { file: "dsl-examples/gemm_w4a16.ts", kernel: "gemm_w4a16_mma_gs", configs: [{ BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, splitK: 2 }], cases: 8, dims: { M: [1, 20], N: [1, 70], K: [1, 300] } },
];

/** Runs the checker on one kernel over the given configs; returns the failures. */
async function checkOnWebGpu(c: Case): Promise<{ passed: number; failures: string[] }> {
  const { kernels, specs } = await load(c.file);
  const k = kernels.find((x) => x.name === c.kernel);
  const spec = specs.get(c.kernel);
  if (!k || !spec) throw new Error(`${c.file}: no kernel or check spec '${c.kernel}'`);
  const backend = await backendFor("webgpu", { level: "thread", arch: "sm_80", subgroups: c.subgroups });
  let passed = 0, last = performance.now();
  const failures: string[] = [];
  for (const [i, config] of c.configs.entries()) {
    const r = await checkKernel(k, { ...spec, dims: { ...spec.dims, ...c.dims } }, {
      backendName: "webgpu", backend, cases: c.cases, seed: 1000 + i, config,
      reproduce: `tilemoe check ${c.file} --kernel ${c.kernel} --backend webgpu${c.subgroups === false ? " --subgroups off" : ""}`,
      log: process.env.WGSL_TRACE ? (l) => { const t = performance.now(); console.log(`${(t - last).toFixed(0)} ms ${l}`); last = t; } : undefined,
    });
    passed += r.passed;
    failures.push(...r.failures, ...(r.counterexample ? [r.counterexample] : []));
  }
  return { passed, failures };
}

describe("tilemoe check --backend webgpu over the dsl-examples GEMMs, atomic and gating kernels", () => {
  for (const c of CASES) {
    gpuIt(`${c.kernel}${c.subgroups === false ? " (subgroups off)" : ""}: ${c.cases * c.configs.length} cases`, async () => {
      const r = await checkOnWebGpu(c);
      expect(r.failures).toEqual([]);
      expect(r.passed).toBe(c.cases * c.configs.length);
    }, 120_000);
  }

  // A tile past the adapter's workgroup memory is a case the device cannot run: skipped, with the
  // reason, not reported as a wrong kernel (it was, before: "kernel failed" and a counterexample).
  gpuIt("a config past the device's workgroup memory is skipped, not failed", async () => {
    const { kernels, specs } = await load("dsl-examples/gemm_w4a16.ts");
    const k = kernels.find((x) => x.name === "gemm_w4a16")!;
    const backend = await backendFor("webgpu", { level: "thread", arch: "sm_80" });
    const r = await checkKernel(k, specs.get("gemm_w4a16")!, { backendName: "webgpu", backend, cases: 2, seed: 1,
      config: { BM: 16, BN: 64, BK: 128, stages: 3, warps: 4, splitK: 1 }, reproduce: "x" });
    expect(r).toMatchObject({ passed: 0, failed: 0, skipped: 2 });
    expect(r.skips[0]).toMatch(/^gemm_w4a16: needs \d+ bytes of workgroup memory, the device has \d+$/);
  }, 120_000);
});
