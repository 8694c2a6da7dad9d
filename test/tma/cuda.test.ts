// The TMA path as CUDA: a golden of the emitted kernel and launcher (tensor maps as
// __grid_constant__ params, mbarrier/TMA inline PTX, cuTensorMapEncodeTiled in the launcher),
// and compile-only checks with nvcc for sm_90a: the PTX carries the TMA, mbarrier and wgmma
// instructions, ptxas neither spills nor serializes the wgmma, and the launcher compiles.
// UPDATE_GOLDEN=1 npx vitest run test/tma/cuda.test.ts rewrites the golden (review the diff).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { cudaTarget, lower } from "../../src/passes/pipeline.ts";
import { nvccWarning } from "../cuda/kernels.ts";
import { gemmText } from "../wgmma/gemm-text.ts";
import { TMA_CONFIGS } from "../../bench/plan.ts";

// The plain TMA pipeline (warp specialization, the sm_90a default, has its own tests: ws.test.ts).
const TMA = cudaTarget("sm_90a", "wgmma", "tma", undefined, false);
const nvcc = await nvccAvailable();
nvccWarning(nvcc, "TMA compile tests (test/tma/cuda.test.ts)");

const gemmBf16 = () => {
  const k = parseKernels(new URL("../../dsl-examples/gemm.ts", import.meta.url).pathname).find((x) => x.name === "gemm_bf16");
  if (!k) throw new Error("dsl-examples/gemm.ts has no gemm_bf16");
  return k;
};

function golden(file: string, actual: string): void {
  const url = new URL(`./golden/${file}`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === "1") { writeFileSync(url, actual); return; }
  if (!existsSync(url)) throw new Error(`missing golden ${file}; run with UPDATE_GOLDEN=1 to create it`);
  expect(actual).toBe(readFileSync(url, "utf8"));
}

describe("TMA path: emitted CUDA", () => {
  it("matches the golden (gemm, 64x64x64 tiles, 3 stages, one warpgroup)", () => {
    const out = emitCuda(lower(parseKernel(gemmText(3), "g.ir"), { BM: 64, BN: 64, BK: 64, warps: 4 }, TMA));
    golden("gemm_tma.cu", out.cu);
    golden("gemm_tma.h", out.h);
  });

  it("tensor maps are kernel parameters after the dims, and launcher arguments in the same order", () => {
    const out = emitCuda(lower(parseKernel(gemmText(3), "g.ir"), { BM: 64, BN: 64, BK: 64, warps: 4 }, TMA));
    expect(out.cu).toMatch(/int M, int N, int K, const __grid_constant__ CUtensorMap tmap_A, const __grid_constant__ CUtensorMap tmap_B\)/);
    expect(out.cu).toContain("(void*)&tm_dim_K, (void*)&tmap_A, (void*)&tmap_B");
    expect(out.cu).toContain("CU_TENSOR_MAP_SWIZZLE_128B");
    expect(out.cu).toContain("CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE");
    expect(out.h).toContain("_ERR_TMA 6");
  });

  it("warp-specialized (--ws): matches the golden; setmaxnreg, named barriers, one block per SM", () => {
    const out = emitCuda(lower(parseKernel(gemmText(3), "g.ir"), { BM: 128, BN: 64, BK: 64, warps: 8 }, cudaTarget("sm_90a", "wgmma", "tma", undefined, true)));
    golden("gemm_ws.cu", out.cu);
    expect(out.threads).toBe(384);
    expect(out.cu).toContain("__launch_bounds__(384, 1)");
    expect(out.cu).toContain('asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");');
    expect(out.cu).toContain('asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");');
    expect(out.cu).toContain('asm volatile("bar.sync 1, 256;" ::: "memory");');
    expect(out.cu).toContain('asm volatile("bar.sync 2, 384;" ::: "memory");');
    expect(out.cu).not.toContain("__syncthreads()");
  });

  it("with --copy cp.async nothing changes: no tensor maps, no mbarriers", () => {
    const out = emitCuda(lower(parseKernel(gemmText(3), "g.ir"), { BM: 64, BN: 64, BK: 64, warps: 4 }, cudaTarget("sm_90a", "wgmma", "cp.async")));
    expect(out.cu).not.toContain("CUtensorMap");
    expect(out.cu).not.toContain("mbarrier");
    expect(out.h).not.toContain("ERR_TMA");
  });
});

// One config of each kind of TMA build (plain and persistent at 8 and 4 warps, warp-specialized,
// warp-specialized and persistent): nvcc is most of npm test's time on two cores, and
// scripts/gpu-check-tma.sh and the bench compile every one of TMA_CONFIGS.
const kindOf = (c: (typeof TMA_CONFIGS)[number]) => `${c.persistent ? "persistent " : ""}${c.ws ? "ws " : ""}${c.warps}`;
// (The ping-pong rows have their own compile tests: test/tma/pingpong-nvcc.test.ts.)
const ONE_OF_EACH_KIND = TMA_CONFIGS.filter((c) => !c.pingpong).filter((c, i, all) => all.findIndex((d) => kindOf(d) === kindOf(c)) === i);

describe.skipIf(!nvcc)("TMA path: nvcc compile-only for sm_90a", () => {
  it("covers every kind of TMA config", () => expect(ONE_OF_EACH_KIND.length).toBeGreaterThanOrEqual(5));
  for (const config of ONE_OF_EACH_KIND) {
    it(`gemm_bf16 ${JSON.stringify(config)}: TMA, mbarriers and wgmma in the PTX; no spills, not serialized`, async () => {
      const { cores: _c, copy: _p, persistent, ws, ...tunables } = config;
      const out = emitCuda(lower(gemmBf16(), tunables, cudaTarget("sm_90a", "wgmma", "tma", persistent, ws)));
      const res = await compileCuda(out.cu, { arch: "sm_90a", outputs: ["cubin", "ptx"] });
      const ptx = res.ptx ?? "";
      expect(ptx).toContain("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes");
      expect(ptx).toContain("mbarrier.init.shared::cta.b64");
      expect(ptx).toContain("fence.mbarrier_init.release.cluster");
      expect(ptx).toContain("mbarrier.arrive.expect_tx.shared::cta.b64");
      expect(ptx).toContain("mbarrier.arrive.shared::cta.b64");
      expect(ptx).toContain("mbarrier.try_wait.parity.shared::cta.b64");
      expect(ptx).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n\d+k16\.f32\.bf16\.bf16/);
      expect(ptx).not.toContain("mma.sync");
      if (ws) {
        // Warp-specialized: the producer warpgroup's register release, the consumers' claim,
        // and their named barrier (T = warps * 32 consumer threads; the block has T + 128).
        const T = tunables.warps * 32;
        expect(out.threads).toBe(T + 128);
        expect(ptx).toContain("setmaxnreg.dec.sync.aligned.u32 40;");
        expect(ptx).toMatch(/setmaxnreg\.inc\.sync\.aligned\.u32 \d+;/);
        expect(ptx).toContain(`bar.sync 1, ${T};`);
        expect(ptx).toContain(`bar.sync 2, ${T + 128};`);
        expect(out.cu).toContain(`__launch_bounds__(${T + 128}, 1)`);
        expect(res.log).not.toMatch(/setmaxnreg ignored/i);
      }
      expect(res.log).not.toMatch(/serializ/i);
      const r = res.resources[out.kernelSymbol]!;
      expect(r.spillStores + r.spillLoads).toBe(0);
    }, 180_000);
  }

  it("the host launcher (cuTensorMapEncodeTiled through the runtime's driver entry point) compiles", async () => {
    const out = emitCuda(lower(gemmBf16(), { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8 }, TMA));
    const res = await compileCuda(out.cu, { arch: "sm_90a", outputs: ["obj"] });
    expect(res.objPath && existsSync(res.objPath)).toBe(true);
  }, 180_000);
});
