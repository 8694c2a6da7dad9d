// Compile-only checks of the register-A dequant wgmma (src/passes/dequant-wgmma.ts) with nvcc
// here: the quantized examples built for sm_90a at configs that take it carry wgmma with a
// register A operand ({%r..} in the PTX) and no mma.sync, ptxas accepts them without spills
// and without serializing the wgmma (warning C7515), and the registers stay within bounds.
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import type { TunableValue } from "../../src/ir/ir.ts";
import { cudaTarget, lower, type Target } from "../../src/passes/pipeline.ts";
import { nvccWarning } from "../cuda/kernels.ts";
import { example } from "./dequant-e2e.ts";
import { W4A16_RS_CONFIGS } from "../../bench/w4a16-configs.ts";

const nvcc = await nvccAvailable();
nvccWarning(nvcc, "register-A wgmma compile tests (test/wgmma/dequant-nvcc.test.ts)");

const TMA = cudaTarget("sm_90a");
const CP = cudaTarget("sm_90a", "wgmma", "cp.async");

// file, kernel, config, target, wgmma instructions expected in the PTX (k-steps x m-tiles,
// unrolled, once per copy path: TMA builds keep the cp.async pipeline as their fallback).
const CASES: [string, string, Record<string, TunableValue>, Target, number][] = [
  ["gemm_w4a16.ts", "gemm_w4a16", { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, splitK: 1 }, TMA, 8],
  ["gemm_w4a16.ts", "gemm_w4a16_zp", { BM: 64, BN: 128, BK: 64, stages: 3, warps: 4 }, CP, 8],
  ["gemm_w8a16.ts", "gemm_w8a16", { BM: 128, BN: 128, BK: 64, stages: 3, warps: 8 }, CP, 4],
  ["gemm_fp8w.ts", "gemm_fp8w", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4 }, CP, 4],
  ["moe_gemm_up_w4a16.ts", "moe_gemm_up_w4a16", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4 }, CP, 8],
];

async function build(file: string, name: string, config: Record<string, TunableValue>, target: Target) {
  const out = emitCuda(lower(example(file, name), config, target));
  const res = await compileCuda(out.cu, { arch: "sm_90a", outputs: ["cubin", "ptx"] });
  return { ptx: res.ptx ?? "", log: res.log, r: res.resources[out.kernelSymbol]! };
}

describe.skipIf(!nvcc)("sm_90a register-A wgmma: PTX and ptxas", () => {
  for (const [file, name, config, target, count] of CASES) {
    it(`${name} ${JSON.stringify(config)}${target.tma ? " tma" : ""}`, async () => {
      const { ptx, log, r } = await build(file, name, config, target);
      const t = name.includes("f16_") ? "f16" : "bf16";
      const rs = new RegExp(`wgmma\\.mma_async\\.sync\\.aligned\\.m64n\\d+k16\\.f32\\.${t}\\.${t} \\{[^}]*\\}, \\{%r\\d+, %r\\d+, %r\\d+, %r\\d+\\}, %rd\\d+, p, 1, 1, 0;`, "g");
      expect(ptx.match(rs)?.length).toBe(count);
      expect(ptx.match(/wgmma\.mma_async/g)?.length).toBe(count);
      expect(ptx).toContain("wgmma.fence.sync.aligned");
      expect(ptx).not.toContain("mma.sync");
      expect(log).not.toMatch(/serializ|C75\d\d/i); // C7519: warpgroup.arrive injected, C7520: serialized
      expect(r.spillStores + r.spillLoads).toBe(0);
    }, 300_000);
  }

  // Bench rows of the register-A path (bench/w4a16-configs.ts; the GPU script compiles them
  // all): two m-tiles per warpgroup (BN 128 on 4 warps, BN 256 on 8) and n = 256, where the
  // register pressure is highest, and n = 256 on one warpgroup. nvcc takes 10-20 s per build on
  // two cores, hence a few only.
  const picked = W4A16_RS_CONFIGS.filter((c) => (c.BN === 128 && c.warps === 4 && (c.splitK ?? 1) === 1 && c.BM !== 128) || c.BN === 256 || (c.BM === 256 && c.stages === 3));
  it("picks the bench configs", () => expect(picked.length).toBe(5));
  for (const config of picked) {
    it(`bench config ${JSON.stringify(config)}`, async () => {
      const { dequant, cores, copy, ...tunables } = config;
      const base = cudaTarget("sm_90a", cores ?? "wgmma", copy ?? "tma");
      const target = dequant === "wgmma" ? { ...base, dequantWgmma: true } : base;
      const { ptx, log, r } = await build("gemm_w4a16.ts", "gemm_w4a16", tunables as Record<string, TunableValue>, target);
      expect(ptx).toMatch(/\{%r\d+, %r\d+, %r\d+, %r\d+\}, %rd\d+, p, 1, 1, 0;/);
      expect(log).not.toMatch(/serializ|C75\d\d/i); // C7519: warpgroup.arrive injected, C7520: serialized
      expect(r.spillStores + r.spillLoads).toBe(0);
    }, 300_000);
  }
});
