import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { inferLayouts, chooseWarps } from "../../src/passes/infer-layouts.ts";
import { SM80, WGSL } from "../../src/passes/pipeline.ts";

const kernel = (dt: string, allocs: string, extra = "") => `kernel k(C: global f32[M, N] out)
  dims M, N
launch tile grid [1] threads 256 blocks [bx] {
${allocs}
  gemm As[0 : +64, 0 : +32], Bs[0 : +128, 0 : +32] -> acc[0 : +64, 0 : +128] transB
${extra}}
`;
const plain = (dt: string) => `  alloc As: shared ${dt}[64, 32]
  alloc Bs: shared ${dt}[128, 32]
  alloc acc: fragment f32[64, 128]
  alloc t: fragment f32[64, 128]`;
const epilogue = `  for i, j in parallel(0, 64; 0, 128) {
    store t[i, j] = acc[i, j] * 2.0
  }
`;

describe("inferLayouts", () => {
  it("gives a tensor-core accumulator the squarest warp tiles and swizzles its operands", () => {
    const out = printKernel(inferLayouts(parseKernel(kernel("bf16", plain("bf16"), epilogue)), { config: {}, target: SM80 }));
    expect(out).toBe(kernel("bf16", `  alloc As: shared bf16[64, 32] layout xor_swizzle(3, 1)
  alloc Bs: shared bf16[128, 32] layout xor_swizzle(3, 1)
  alloc acc: fragment f32[64, 128] layout mma_acc(2, 4)
  alloc t: fragment f32[64, 128] layout mma_acc(2, 4)`, epilogue));
  });
  it("falls back to cyclic without tensor cores or for 32-bit operands", () => {
    const cyc = (dt: string) => `  alloc As: shared ${dt}[64, 32]
  alloc Bs: shared ${dt}[128, 32]
  alloc acc: fragment f32[64, 128] layout cyclic
  alloc t: fragment f32[64, 128] layout cyclic`;
    expect(printKernel(inferLayouts(parseKernel(kernel("bf16", plain("bf16"))), { config: {}, target: WGSL }))).toBe(kernel("bf16", cyc("bf16")));
    expect(printKernel(inferLayouts(parseKernel(kernel("f32", plain("f32"))), { config: {}, target: SM80 }))).toBe(kernel("f32", cyc("f32")));
  });
  it("chooses warps by squareness among arrangements that tile", () => {
    expect(chooseWarps(64, 128, 256)).toEqual({ warpsM: 2, warpsN: 4 });
    expect(chooseWarps(128, 128, 128)).toEqual({ warpsM: 2, warpsN: 2 });
    expect(chooseWarps(16, 64, 128)).toEqual({ warpsM: 1, warpsN: 4 });
    expect(chooseWarps(16, 8, 128)).toBeUndefined();
  });
});
