// What nvcc makes of the lowered gemm for the typical config (BM = BN = 128, BK = 32,
// 8 warps, bf16, B stored [N, K], swizzled) inside a main loop: only ldmatrix.x4, six per
// sixteen mma.sync, and a register budget that leaves two 256-thread blocks per SM.
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { buildKernel } from "./harness.ts";

const nvcc = await nvccAvailable();
if (!nvcc) console.warn("SKIPPED test/mma/nvcc.test.ts: nvcc not found on PATH");

describe.skipIf(!nvcc)("mma lowering through nvcc (sm_80)", () => {
  for (const [warpsM, warpsN] of [[2, 4], [4, 2]] as const) {
    it(`128x128x32, warps ${warpsM}x${warpsN}`, async () => {
      const k = buildKernel({ m: 128, n: 128, k: 32, warpsM, warpsN, transA: false, transB: true, swizzle: true, atype: "bf16", repeat: 4 });
      const out = emitCuda(k);
      const r = await compileCuda(out.cu, { arch: "sm_80", outputs: ["ptx", "cubin"] });
      const ptx = r.ptx!;
      const ld = ptx.match(/ldmatrix\.sync\.aligned\.m8n8\.[a-z0-9.]+/g) ?? [];
      const mma = ptx.match(/mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32/g) ?? [];
      expect(new Set(ld)).toEqual(new Set(["ldmatrix.sync.aligned.m8n8.x4.shared.b16"]));
      expect(mma.length).toBeGreaterThan(0);
      expect(ld.length * 16).toBe(mma.length * 6);
      const res = r.resources[out.kernelSymbol]!;
      expect(res.spillStores + res.spillLoads).toBe(0);
      // Two fragment sets (prefetch of the next k-step) cost ~40 registers over the ~110 of
      // one set; whether that beats two blocks per SM is the tuner's question, not a rule.
      expect(res.registers).toBeLessThanOrEqual(168);
    }, 60_000);
  }
});
