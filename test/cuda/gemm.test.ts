// dsl-examples/gemm.ts through the whole pipeline (front end -> lower -> emitCuda -> nvcc),
// compile-only, for sm_80 and sm_90a and a few configs.
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { type Target, SM80, SM90A, lower } from "../../src/passes/pipeline.ts";
import { nvccWarning } from "./kernels.ts";

const nvcc = await nvccAvailable();
nvccWarning(nvcc, "gemm compile tests (test/cuda/gemm.test.ts)");

const kernels = parseKernels(new URL("../../dsl-examples/gemm.ts", import.meta.url).pathname);
const gemm = (name: string) => {
  const k = kernels.find((x) => x.name === name);
  if (!k) throw new Error(`dsl-examples/gemm.ts has no kernel ${name}`);
  return k;
};

const TARGETS: [Target, "sm_80" | "sm_90a"][] = [[SM80, "sm_80"], [SM90A, "sm_90a"]];
const CONFIGS: Record<string, number>[] = [
  {},
  { BM: 128, BN: 128, BK: 32, stages: 3, warps: 8 },
];

async function build(kernel: string, config: Record<string, number>, target: Target, arch: "sm_80" | "sm_90a") {
  const out = emitCuda(lower(gemm(kernel), config, target));
  const res = await compileCuda(out.cu, { arch, outputs: ["cubin", "ptx"] });
  const r = res.resources[out.kernelSymbol];
  if (!r) throw new Error(`no ptxas report for ${out.kernelSymbol}:\n${res.log}`);
  return { out, res, r };
}

describe.skipIf(!nvcc)("gemm.ts lowered and compiled", () => {
  for (const [target, arch] of TARGETS) {
    for (const kernel of ["gemm_bf16", "gemm_f16"]) {
      for (const config of CONFIGS) {
        it(`${kernel} ${arch} ${JSON.stringify(config)}: tensor-core PTX`, async () => {
          const { out, res } = await build(kernel, config, target, arch);
          const t = kernel === "gemm_bf16" ? "bf16" : "f16";
          if (arch === "sm_90a") {
            // sm_90a: the gemm goes through wgmma (test/wgmma/nvcc.test.ts checks it in detail).
            expect(res.ptx).toMatch(new RegExp(`wgmma\\.mma_async\\.sync\\.aligned\\.m64n\\d+k16\\.f32\\.${t}\\.${t}`));
          } else {
            expect(res.ptx).toContain(`mma.sync.aligned.m16n8k16.row.col.f32.${t}.${t}.f32`);
            expect(res.ptx).toContain("ldmatrix.sync.aligned.m8n8.x4");
          }
          expect(res.ptx).toMatch(/cp\.async\.cg\.shared\.global/);
          expect(res.ptx).toContain("cp.async.wait_group");
          expect(out.smemBytes).toBeGreaterThan(0);
        }, 180_000);
      }
    }
    // The default config (64x64x32, 2 stages, 4 warps) once spilled (element-path copies hoisted
    // by nvcc); since the copies' element path stays a rolled loop it does not (63 registers).
    it(`gemm_bf16 ${arch} default config: ptxas reports no spills`, async () => {
      const { r } = await build("gemm_bf16", {}, target, arch);
      expect(r.spillStores + r.spillLoads).toBe(0);
    }, 180_000);
  }
});
