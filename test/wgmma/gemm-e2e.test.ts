// The tile gemm lowered to wgmma (sm_90a) and executed by the interpreter's own PTX model of
// wgmma, against the tile-level kernel: ragged shapes, every swizzle width, one and two
// warpgroups in both arrangements, cp.async pipelines and the plain copy path.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { maxRelErr, runBoth } from "../passes/harness.ts";
import { SM90A, type Target } from "../../src/passes/pipeline.ts";
import { walkStmts } from "../../src/ir/expr.ts";
import type { Kernel } from "../../src/ir/ir.ts";
import { printKernel } from "../../src/ir/print.ts";
import { gemmText } from "./gemm-text.ts";


const kinds = (k: Kernel) => { const s = new Set<string>(); walkStmts(k.launch.body, (x) => { s.add(x.k); }); return s; };
const noAsync: Target = { ...SM90A, cpAsync: false };

describe("gemm lowered to wgmma, in the interpreter", () => {
  const fixed: [string, Record<string, number>, Target, number, Record<string, number>][] = [
    ["1 warpgroup, sw128, 3 stages", { BM: 64, BN: 64, BK: 64, warps: 4 }, SM90A, 3, { M: 70, N: 61, K: 150 }],
    ["2 warpgroups stacked (2, 1), sw64", { BM: 128, BN: 32, BK: 32, warps: 8 }, SM90A, 2, { M: 130, N: 40, K: 72 }],
    ["2 warpgroups side by side (1, 2), sw32, no cp.async", { BM: 64, BN: 32, BK: 16, warps: 8 }, noAsync, 1, { M: 50, N: 64, K: 40 }],
    ["2 m-tiles per warpgroup, n = 8", { BM: 128, BN: 8, BK: 16, warps: 4 }, SM90A, 2, { M: 129, N: 9, K: 33 }],
    ["decode-sized M = 16: transposed accumulator (C^T = B A^T, m64n16)", { BM: 16, BN: 64, BK: 64, warps: 4 }, SM90A, 3, { M: 13, N: 70, K: 130 }],
    ["M = 32 over two warpgroups side by side, transposed", { BM: 32, BN: 128, BK: 32, warps: 8 }, SM90A, 2, { M: 33, N: 100, K: 64 }],
  ];
  for (const [name, cfg, target, stages, dims] of fixed) it(`${name}: matches the tile-level kernel`, () => {
    const r = runBoth(gemmText(stages), cfg, target, { dims, seed: 7 });
    const ks = kinds(r.thread);
    expect(ks.has("wgmma")).toBe(true);
    expect(ks.has("mma")).toBe(false);
    expect(printKernel(r.thread).includes("wgmma_acc_t(")).toBe(cfg.BM! < 64);
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
  });

  it("f16 operands and a bf16 result (paired stores)", () => {
    const r = runBoth(gemmText(2, "bf16", "f16"), { BM: 64, BN: 16, BK: 32, warps: 4 }, SM90A, { dims: { M: 65, N: 18, K: 64 }, seed: 3 });
    expect(kinds(r.thread).has("wgmma")).toBe(true);
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-2);
  });

  it("matches over random shapes and configs", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 140 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 140 }),
      fc.constantFrom(16, 32, 64, 128), fc.constantFrom(8, 16, 32, 64), fc.constantFrom(16, 32, 64), fc.constantFrom(4, 8),
      fc.constantFrom(1, 2, 3), fc.nat(1000),
      (M, N, K, BM, BN, BK, warps, stages, seed) => {
        const r = runBoth(gemmText(stages), { BM, BN, BK, warps }, SM90A, { dims: { M, N, K }, seed });
        expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      }), { numRuns: 12 });
  }, 120_000);
});
