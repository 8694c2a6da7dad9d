// When a gemm can take the tensor-core path, and why not when it cannot.
import { describe, expect, it } from "vitest";
import { int, v } from "../../src/ir/ir.ts";
import { lowerGemmMma, mmaProblem, mmaWarpArrangements } from "../../src/passes/lower-gemm-mma.ts";

const ok = { m: 128, n: 128, k: 32, atype: "bf16", btype: "bf16", threads: 256 } as const;

describe("mmaProblem", () => {
  it("accepts the usual configs", () => {
    expect(mmaProblem(ok)).toBeUndefined();
    expect(mmaProblem({ ...ok, atype: "f16", btype: "f16", m: 16, n: 8, k: 16, threads: 32 })).toBeUndefined();
    expect(mmaProblem({ ...ok, m: 48, n: 40, threads: 96 })).toBeUndefined(); // 3 warps as 3x1
  });
  it.each([
    [{ btype: "f16" }, /one type/],
    [{ atype: "f32", btype: "f32" }, /bf16 or f16/],
    [{ atype: "i8", btype: "i8" }, /bf16 or f16/],
    [{ threads: 48 }, /whole warps/],
    [{ k: 24 }, /k = 24 .* 16/],
    [{ m: 40 }, /m = 40/],
    [{ n: 12 }, /n = 12/],
    [{ m: 16, n: 8, threads: 64 }, /no arrangement of 2 warps/],
  ] as const)("rejects %o", (patch, why) => {
    expect(mmaProblem({ ...ok, ...patch } as Parameters<typeof mmaProblem>[0])).toMatch(why);
  });
});

describe("mmaWarpArrangements", () => {
  it("lists exactly the arrangements whose warp tiles are whole 16x8 tiles", () => {
    expect(mmaWarpArrangements(128, 128, 256)).toEqual([
      { warpsM: 1, warpsN: 8 }, { warpsM: 2, warpsN: 4 }, { warpsM: 4, warpsN: 2 }, { warpsM: 8, warpsN: 1 },
    ]);
    expect(mmaWarpArrangements(32, 8, 128)).toEqual([]);
    expect(mmaWarpArrangements(64, 24, 192)).toEqual([{ warpsM: 2, warpsN: 3 }]); // 1x6, 3x2, 6x1 do not divide
  });
});

describe("lowerGemmMma preconditions", () => {
  const g = {
    a: { buf: "As", base: int(0), rows: 32, cols: 32 }, b: { buf: "Bs", base: int(0), rows: 32, cols: 16 },
    transA: false, transB: false, c: { buf: "acc", rows: 32, cols: 16, warpsM: 2, warpsN: 1 },
    atype: "bf16" as const, threads: 64, tx: v("tx"), fresh: (h: string) => h,
  };
  it("refuses mismatched shapes and warp counts (internal errors: callers check mmaProblem first)", () => {
    expect(() => lowerGemmMma({ ...g, b: { ...g.b, rows: 16 } })).toThrow(/k = 32.*k = 16/);
    expect(() => lowerGemmMma({ ...g, c: { ...g.c, cols: 8 } })).toThrow(/c is 32x8/);
    expect(() => lowerGemmMma({ ...g, threads: 128 })).toThrow(/2x1 warps for 128 threads/);
    expect(() => lowerGemmMma({ ...g, a: { ...g.a, layout: { kind: "xor_swizzle", mask: 7, shift: 0 } } })).toThrow(/does not permute/);
  });
});
