// Compile-only checks of the sm_90a path (nvcc + ptxas here, no GPU): the gemm examples built
// for sm_90a carry wgmma.mma_async (and no mma.sync), ptxas accepts them without spills, and
// the same kernels built for sm_80 keep the mma.sync path.
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { SM80, SM90A, lower } from "../../src/passes/pipeline.ts";
import { nvccWarning } from "../cuda/kernels.ts";
import { SKINNY_CONFIGS, SQUARE_CONFIGS } from "../../bench/plan.ts";

const nvcc = await nvccAvailable();
nvccWarning(nvcc, "wgmma compile tests (test/wgmma/nvcc.test.ts)");

const example = (file: string, name: string) => {
  const k = parseKernels(new URL(`../../dsl-examples/${file}`, import.meta.url).pathname).find((x) => x.name === name);
  if (!k) throw new Error(`dsl-examples/${file} has no kernel ${name}`);
  return k;
};

const CASES: [string, string, Record<string, number>, number][] = [
  // file, kernel, config, wgmma instructions expected in the PTX (k-steps x m-tiles, unrolled)
  ["gemm.ts", "gemm_bf16", { BM: 128, BN: 128, BK: 64, stages: 3, warps: 8 }, 4],
  ["gemm.ts", "gemm_f16", { BM: 128, BN: 128, BK: 32, stages: 4, warps: 4 }, 4],
  ["gemm.ts", "gemm_bf16", { BM: 128, BN: 256, BK: 32, stages: 3, warps: 8 }, 2],
  ["gemm.ts", "gemm_bf16", { BM: 64, BN: 64, BK: 64, stages: 4, warps: 4 }, 4],
];

describe.skipIf(!nvcc)("sm_90a: wgmma in the PTX, accepted by ptxas", () => {
  for (const [file, name, config, count] of CASES) {
    it(`${name} ${JSON.stringify(config)}`, async () => {
      const out = emitCuda(lower(example(file, name), config, SM90A));
      const res = await compileCuda(out.cu, { arch: "sm_90a", outputs: ["cubin", "ptx"] });
      const t = name.endsWith("f16") && !name.endsWith("bf16") ? "f16" : "bf16";
      const ptx = res.ptx ?? "";
      expect(ptx).toMatch(new RegExp(`wgmma\\.mma_async\\.sync\\.aligned\\.m64n\\d+k16\\.f32\\.${t}\\.${t}`));
      expect(ptx.match(/wgmma\.mma_async/g)?.length).toBe(count);
      expect(ptx).toContain("wgmma.fence.sync.aligned");
      expect(ptx).toContain("wgmma.commit_group.sync.aligned");
      expect(ptx).toContain("wgmma.wait_group.sync.aligned");
      expect(ptx).toContain("fence.proxy.async.shared::cta");
      expect(ptx).not.toContain("mma.sync");
      // ptxas serializes wgmma (a large slowdown) when it cannot prove the pipeline safe; it says so.
      expect(res.log).not.toMatch(/serializ/i);
      const r = res.resources[out.kernelSymbol]!;
      expect(r.spillStores + r.spillLoads).toBe(0);
    }, 180_000);
  }

  // Every config the bench measures: wgmma, no spills, and not serialized by ptxas.
  for (const config of [...SQUARE_CONFIGS, ...SKINNY_CONFIGS]) {
    it(`bench config ${JSON.stringify(config)}: wgmma, no spills, not serialized`, async () => {
      const out = emitCuda(lower(example("gemm.ts", "gemm_bf16"), { ...config }, SM90A));
      const res = await compileCuda(out.cu, { arch: "sm_90a", outputs: ["cubin", "ptx"] });
      expect(res.ptx).toContain("wgmma.mma_async");
      expect(res.log).not.toMatch(/serializ/i);
      const r = res.resources[out.kernelSymbol]!;
      expect(r.spillStores + r.spillLoads).toBe(0);
    }, 180_000);
  }

  it("sm_80, and sm_90a without wgmma, keep the mma.sync path", async () => {
    const k = example("gemm.ts", "gemm_bf16");
    const cfg = { BM: 128, BN: 128, BK: 32, stages: 3, warps: 8 };
    const sm80 = emitCuda(lower(k, cfg, SM80));
    const res = await compileCuda(sm80.cu, { arch: "sm_80", outputs: ["ptx"] });
    expect(res.ptx).toContain("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
    expect(res.ptx).not.toContain("wgmma");
    // The same kernel on sm_90a without the wgmma capability lowers as for sm_80.
    const noWg = emitCuda(lower(k, cfg, { ...SM90A, wgmma: false }));
    expect(noWg.cu).toContain("mma.sync.aligned.m16n8k16");
    expect(noWg.cu).not.toContain("wgmma");
  }, 180_000);
});
