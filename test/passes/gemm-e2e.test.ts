// The GEMM lowered end to end (scalar and mma paths, with and without cp.async) against
// the tile-level kernel in the interpreter, over ragged shapes and configs.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { maxRelErr, runBoth } from "./harness.ts";
import type { Target } from "../../src/passes/pipeline.ts";

const gemm = (stages: number, transB: boolean, cdt = "f32") => `
kernel gemm(A: global bf16[M, K], B: global bf16[${transB ? "N, K" : "K, N"}], C: global ${cdt}[M, N])
  dims M, N, K
  tune BM = [32, 16, 64], BN = [32, 16, 64], BK = [32, 16], warps = [4, 1, 2]
launch tile grid [cdiv(N, BN), cdiv(M, BM)] threads warps * 32 blocks [bx, by] {
  alloc As: shared bf16[BM, BK]
  alloc Bs: shared bf16[${transB ? "BN, BK" : "BK, BN"}]
  alloc acc: fragment f32[BM, BN]
  fill acc[0 : +BM, 0 : +BN] = 0.0
  for k in pipelined(0, cdiv(K, BK)) stages ${stages} {
    copy A[by * BM : +BM, k * BK : +BK] -> As[0 : +BM, 0 : +BK]
    copy B[${transB ? "bx * BN : +BN, k * BK : +BK" : "k * BK : +BK, bx * BN : +BN"}] -> Bs[${transB ? "0 : +BN, 0 : +BK" : "0 : +BK, 0 : +BN"}]
    gemm As[0 : +BM, 0 : +BK], Bs[${transB ? "0 : +BN, 0 : +BK" : "0 : +BK, 0 : +BN"}] -> acc[0 : +BM, 0 : +BN]${transB ? " transB" : ""}
  }
  copy acc[0 : +BM, 0 : +BN] -> C[by * BM : +BM, bx * BN : +BN]
}
`;

const targets: Record<string, Target> = {
  scalar: { arch: "wgsl", mma: false, cpAsync: false },
  scalarAsync: { arch: "sm_80", mma: false, cpAsync: true },
  mma: { arch: "sm_80", mma: true, cpAsync: false },
  mmaAsync: { arch: "sm_80", mma: true, cpAsync: true },
};

describe("gemm lowered end to end", () => {
  for (const [name, target] of Object.entries(targets)) {
    // K = 50: rows not 16-byte aligned (element path); K = 72: vector path, ragged last tile.
    // N = 46 with a bf16 C: paired (2-element) stores of the accumulator.
    for (const [K, N, cdt] of [[50, 45, "f32"], [72, 45, "f32"], [72, 46, "bf16"]] as const) it(`matches the tile-level kernel (${name}) on a fixed ragged case, K = ${K}, N = ${N}, C ${cdt}`, () => {
      const r = runBoth(gemm(3, true, cdt), { BM: 32, BN: 32, BK: 16, warps: 4 }, target, { dims: { M: 37, N, K }, seed: 1 });
      expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
    });
  }
  it("matches over random shapes, configs and targets", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 80 }),
      fc.constantFrom(16, 32), fc.constantFrom(16, 32), fc.constantFrom(16, 32), fc.constantFrom(1, 2, 4),
      fc.constantFrom(1, 2, 3), fc.boolean(), fc.constantFrom(...Object.keys(targets)), fc.nat(1000), fc.constantFrom("f32", "bf16"),
      (M, N, K, BM, BN, BK, warps, stages, transB, tname, seed, cdt) => {
        const r = runBoth(gemm(stages, transB, cdt), { BM, BN, BK, warps }, targets[tname]!, { dims: { M, N, K }, seed });
        expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      }), { numRuns: 25 });
  });
});
