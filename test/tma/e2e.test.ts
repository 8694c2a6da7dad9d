// The TMA + mbarrier pipeline (lower-pipeline-tma.ts) run by the interpreter's own model of
// mbarriers and cp.async.bulk.tensor (src/interp/tma.ts) against the tile-level kernel:
// every swizzle width, one and two warpgroups, ragged edges (zero fill), and shapes whose row
// pitch TMA cannot take (the cp.async fallback).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { maxRelErr, runBoth } from "../passes/harness.ts";
import { cudaTarget } from "../../src/passes/pipeline.ts";
import { walkStmts } from "../../src/ir/expr.ts";
import type { Kernel } from "../../src/ir/ir.ts";
import { gemmText } from "../wgmma/gemm-text.ts";
import { printKernel } from "../../src/ir/print.ts";

// The plain TMA pipeline (warp specialization, the sm_90a default, has its own tests: ws.test.ts).
const TMA = cudaTarget("sm_90a", "wgmma", "tma", undefined, false);
const kinds = (k: Kernel) => { const s = new Set<string>(); walkStmts(k.launch.body, (x) => { s.add(x.k); }); return s; };

describe("gemm with TMA operand loads, in the interpreter", () => {
  const fixed: [string, Record<string, number>, number, Record<string, number>][] = [
    ["1 warpgroup, sw128, 3 stages", { BM: 64, BN: 64, BK: 64, warps: 4 }, 3, { M: 70, N: 61, K: 152 }],
    ["2 warpgroups stacked, sw64, 4 stages", { BM: 128, BN: 32, BK: 32, warps: 8 }, 4, { M: 130, N: 40, K: 200 }],
    ["2 warpgroups side by side, sw32, 3 stages", { BM: 64, BN: 32, BK: 16, warps: 8 }, 3, { M: 50, N: 64, K: 40 }],
    ["decode-sized M (transposed accumulator), 3 stages", { BM: 16, BN: 64, BK: 64, warps: 4 }, 3, { M: 13, N: 70, K: 136 }],
    ["fewer tiles than stages", { BM: 64, BN: 64, BK: 32, warps: 4 }, 4, { M: 64, N: 64, K: 24 }],
  ];
  for (const [name, cfg, stages, dims] of fixed) it(`${name}: matches the tile-level kernel`, () => {
    const r = runBoth(gemmText(stages), cfg, TMA, { dims, seed: 5 });
    const ks = kinds(r.thread);
    expect(ks.has("tma_load")).toBe(true);
    expect(ks.has("mbar_wait")).toBe(true);
    expect(r.thread.tensorMaps?.map((m) => m.tensor)).toEqual(["A", "B"]);
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
  });

  it("K not a multiple of 8 (row pitch not 16-byte aligned): the cp.async fallback runs", () => {
    const r = runBoth(gemmText(3), { BM: 64, BN: 64, BK: 32, warps: 4 }, TMA, { dims: { M: 40, N: 33, K: 45 }, seed: 2 });
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
  });

  it("constant shapes (the TMA test folds away): the barrier after the mbarrier inits is kept", () => {
    const src = gemmText(3).replace("A: global bf16[M, K], B: global bf16[N, K], C: global f32[M, N]", "A: global bf16[96, 64], B: global bf16[64, 64], C: global f32[96, 64]")
      .replace("  dims M, N, K\n", "").replace(/cdiv\(N, BN\)/g, "cdiv(64, BN)").replace(/cdiv\(M, BM\)/g, "cdiv(96, BM)").replace(/cdiv\(K, BK\)/g, "cdiv(64, BK)");
    expect(src).not.toContain("[M, K]");
    const r = runBoth(src, { BM: 64, BN: 64, BK: 32, warps: 4 }, TMA, { dims: {}, seed: 9 });
    const text = printKernel(r.thread);
    expect(text).not.toContain("cp.async");
    expect(text).toMatch(/mbar\.fence_init\n\s*\}\n\s*barrier/);
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
  });

  it("matches over random shapes and configs", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 140 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 40 }),
      fc.constantFrom(16, 64, 128), fc.constantFrom(16, 32, 64), fc.constantFrom(16, 32, 64), fc.constantFrom(4, 8),
      fc.constantFrom(3, 4), fc.nat(1000),
      (M, N, K8, BM, BN, BK, warps, stages, seed) => {
        const r = runBoth(gemmText(stages), { BM, BN, BK, warps }, TMA, { dims: { M, N, K: K8 * 8 }, seed });
        expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      }), { numRuns: 10 });
  }, 120_000);
});
