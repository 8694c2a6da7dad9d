// The launch option minBlocks (blocks an SM to keep resident; docs/DSL.md): the front end keeps
// it as an expression over the tunables, specialization folds it (1 asks for nothing and is
// dropped, so the kernel is the one it is without the option), inferTypes refuses a value that
// is not 1 .. 32, the CUDA emitter writes it as __launch_bounds__'s second argument, and nvcc
// then holds the registers to 64K / (threads * minBlocks).
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { cudaTarget, lower } from "../../src/passes/pipeline.ts";
import { specialize } from "../../src/passes/specialize.ts";

const [gs] = parseKernels("dsl-examples/gemm_w4a16.ts").filter((k) => k.name === "gemm_w4a16_mma_gs");
const config = { BM: 16, BN: 64, BK: 128, stages: 2, warps: 4, splitK: 4 };
const target = cudaTarget("sm_90a", "mma");
const nvcc = await nvccAvailable();

describe("minBlocks", () => {
  it("is a launch expression over the tunables, printed and parsed as `min_blocks`", () => {
    const text = printKernel(gs!);
    expect(text).toMatch(/threads warps \* 32 min_blocks minBlocks blocks \[bx, by, bz\]/);
    expect(printKernel(parseKernel(text))).toBe(text);
  });
  it("folds under specialization; 1 is dropped", () => {
    const at = (minBlocks: number) => specialize(gs!, { config: { ...config, minBlocks }, target }).launch.minBlocks;
    expect(at(7)).toEqual({ k: "int", v: 7 });
    expect(at(1)).toBeUndefined();
  });
  it("is __launch_bounds__'s second argument of the emitted kernel, absent at 1", () => {
    expect(emitCuda(lower(gs!, { ...config, minBlocks: 7 }, target)).cu).toContain("__launch_bounds__(128, 7) gemm_w4a16_mma_gs_kernel(");
    expect(emitCuda(lower(gs!, { ...config, minBlocks: 1 }, target)).cu).toContain("__launch_bounds__(128) gemm_w4a16_mma_gs_kernel(");
  });
  it("out of 1 .. 32 after specialization is a located error", () => {
    const src = printKernel(gs!).replace("min_blocks minBlocks", "min_blocks minBlocks * 8");
    expect(() => lower(parseKernel(src), { ...config, minBlocks: 7 }, target)).toThrow(/launch option minBlocks must be an integer from 1 to 32 \(blocks per SM\) after specialization, got 56/);
  });
  it.skipIf(!nvcc)("caps nvcc's registers: 7 blocks of 128 threads fit 72 a thread (the kernel takes more without)", async () => {
    const regs = async (minBlocks: number) => {
      const out = emitCuda(lower(gs!, { ...config, minBlocks }, target));
      const res = await compileCuda(out.cu, { arch: "sm_90a", outputs: ["cubin"] });
      return res.resources[out.kernelSymbol]!.registers;
    };
    const [free, capped] = [await regs(1), await regs(7)];
    expect(capped).toBeLessThanOrEqual(72);
    expect(free).toBeGreaterThan(72);
  }, 120_000);
});
