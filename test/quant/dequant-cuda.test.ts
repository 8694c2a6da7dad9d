// The dequant statement in CUDA: every format x order x 16-bit type emits the bit-trick
// sequence (not one conversion per value) and compiles for sm_80 and sm_90a.
// Bit-exactness on a GPU: `tilemoe check test/quant/dequant_kernels.ts --backend cuda`.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { lower, SM80, SM90A } from "../../src/passes/pipeline.ts";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";

const kernels = parseKernels("test/quant/dequant_kernels.ts");
const cuda = (name: string, target = SM80) => emitCuda(lower(kernels.find((k) => k.name === name)!, { warps: 2 }, target)).cu;
const nvcc = await nvccAvailable();
if (!nvcc) console.warn("SKIPPED nvcc part of test/quant/dequant-cuda.test.ts: nvcc not found on PATH");

describe("CUDA expansion of dequant", () => {
  it("has one kernel per format, order and type", () => {
    expect(kernels.length).toBe(20);
  });

  it("4-bit: one lop3 per pair when interleaved, packed sub/mul, no per-value conversion", () => {
    const cu = cuda("dq_u4_interleaved_bf16");
    expect(cu).toContain("lop3.b32");
    expect(cu).toContain("0x000f000fu");
    expect(cu).toContain("0x43004300u"); // 128.0 in both bf16 halves
    expect(cu).toMatch(/__hmul2\(tm_q, tm_s\)/);
    expect(cu).not.toMatch(/__float2bfloat16_rn\(\(float\)\(\(tm_w/);
    expect(cuda("dq_u4_interleaved_f16")).toContain("0x64006400u"); // 1024.0 in both f16 halves
    expect(cuda("dq_s4_linear_bf16")).toContain("^ 0x88888888u"); // two's complement -> offset binary
    expect(cuda("dq_u4_linear_bf16")).not.toContain("lop3.b32");
  });

  it("8-bit and e4m3: byte_perm placement; e4m3 patches its NaN pattern", () => {
    expect(cuda("dq_u8_interleaved_f16")).toContain("__byte_perm(tm_w, 0x64646464u");
    expect(cuda("dq_s8_linear_bf16")).toContain("__byte_perm(tm_w, 0x4b000000u");
    const e = cuda("dq_e4m3_interleaved_bf16");
    expect(e).toContain("0x7b807b80u"); // 2^120 in both bf16 halves
    expect(e).toContain("__vcmpeq4(tm_w & 0x7f7f7f7fu, 0x7f7f7f7fu)");
    expect(cuda("dq_e4m3_linear_f16")).toContain("0x3f803f80u");
  });

  it("literal constants are bit patterns (no run-time cvt of a literal); a zero point in a register of the destination type is packed as is", () => {
    const cu = cuda("dq_u4_interleaved_bf16");
    expect(cu).not.toMatch(/tm_[me] = .*__float2bfloat16_rn/);
    expect(cu).toMatch(/const unsigned tm_mu = 0x[0-9a-f]{8}u;/);
    // The fused decode loop: its scale is a bf16 register, packed by one integer multiply.
    const [g] = parseKernels("dsl-examples/gemm_w4a16.ts").filter((x) => x.name === "gemm_w4a16");
    const fused = emitCuda(lower(g!, { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, splitK: 8 }, SM90A)).cu;
    expect(fused).toMatch(/const unsigned tm_su = \(unsigned\)__bfloat16_as_ushort\(dqs\[nj_\d+\]\) \* 0x10001u;/);
    expect(fused).not.toContain("__bfloat162float(dqs");
  });

  it.skipIf(!nvcc)("compiles for sm_80 and sm_90a", async () => {
    for (const name of ["dq_u4_interleaved_bf16", "dq_s8_linear_f16", "dq_e4m3_interleaved_bf16"]) {
      await compileCuda(cuda(name), { arch: "sm_80", outputs: ["cubin"] });
      await compileCuda(cuda(name, SM90A), { arch: "sm_90a", outputs: ["cubin"] });
    }
  }, 300_000);
});
