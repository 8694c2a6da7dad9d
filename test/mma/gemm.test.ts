// The lowered gemm, executed, equals a float64 matrix product: every transpose combination,
// swizzled or not, bf16 and f16, 1..8 warps in every arrangement, tiles 16..128.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { roundTo } from "../../src/numeric/dtype.ts";
import { mmaWarpArrangements } from "../../src/passes/lower-gemm-mma.ts";
import { type Case, buildKernel, caseName, exactData, reference, storedShapes } from "./harness.ts";
import { runKernel } from "./run.ts";

function check(c: Case): void {
  const { a, b } = storedShapes(c);
  const A = exactData(a.rows * a.cols, c.m * 7 + c.k);
  const B = exactData(b.rows * b.cols, c.n * 13 + c.k + 1);
  const got = runKernel(buildKernel(c), { A, B });
  const want = reference(c, A, B);
  // Inputs are exact, so any layout mistake shows as a wrong element, not rounding.
  for (let i = 0; i < want.length; i++)
    if (got[i] !== want[i]) throw new Error(`${caseName(c)}: C[${Math.floor(i / c.n)}, ${i % c.n}] = ${got[i]}, want ${want[i]}`);
}

const combos = [false, true].flatMap((transA) => [false, true].flatMap((transB) =>
  [false, true].flatMap((swizzle) => (["bf16", "f16"] as const).map((atype) => ({ transA, transB, swizzle, atype })))));

describe("lowerGemmMma: one warp, every transpose / swizzle / type", () => {
  for (const o of combos) {
    it(`${o.atype}${o.transA ? " transA" : ""}${o.transB ? " transB" : ""}${o.swizzle ? " swizzled" : ""}`, () => {
      check({ m: 16, n: 8, k: 16, warpsM: 1, warpsN: 1, ...o });
      check({ m: 32, n: 24, k: 48, warpsM: 1, warpsN: 1, ...o }); // odd n-tile count: x4 pairs + one x2
      check({ m: 64, n: 64, k: 64, warpsM: 1, warpsN: 1, ...o }); // 128-byte rows: the full swizzle
    });
  }
});

describe("lowerGemmMma: every warp arrangement of 1..8 warps", () => {
  let rot = 0;
  for (let warps = 1; warps <= 8; warps++) {
    for (let warpsM = 1; warpsM <= warps; warpsM++) {
      if (warps % warpsM !== 0) continue;
      const warpsN = warps / warpsM;
      // Smallest and largest (<= 128) tiles this arrangement can cover, odd n-tiles where possible.
      const shapes = [
        { m: 16 * warpsM, n: 8 * warpsN },
        { m: 16 * warpsM * Math.max(1, Math.floor(128 / (16 * warpsM))), n: 8 * warpsN * Math.max(1, Math.floor(128 / (8 * warpsN))) },
        { m: 16 * warpsM * 2, n: 8 * warpsN * 3 },
      ];
      for (const s of shapes) {
        const o = combos[rot++ % combos.length]!;
        const c: Case = { ...s, k: 32, warpsM, warpsN, ...o };
        it(caseName(c), () => check(c));
      }
    }
  }
});

describe("lowerGemmMma: stage offsets", () => {
  it("reads tiles at a nonzero, 16-byte aligned base with ldmatrix", () => {
    check({ m: 32, n: 32, k: 32, warpsM: 2, warpsN: 1, transA: false, transB: true, swizzle: true, atype: "bf16", baseA: 1024, baseB: 2048 });
    check({ m: 32, n: 16, k: 32, warpsM: 1, warpsN: 2, transA: true, transB: false, swizzle: false, atype: "f16", baseA: 8, baseB: 40 });
  });
  it("falls back to plain loads for a misaligned constant base, still correct", () => {
    for (const o of combos.filter((x) => !x.swizzle))
      check({ m: 32, n: 24, k: 32, warpsM: 1, warpsN: 1, ...o, baseA: 4, baseB: 3 });
  });
});

describe("lowerGemmMma: other xor swizzles", () => {
  it("is correct when the XOR reads row bits above the low three (no per-lane folding)", () => {
    for (const o of combos.filter((x) => x.swizzle))
      check({ m: 32, n: 32, k: 32, warpsM: 2, warpsN: 1, ...o, layout: { kind: "xor_swizzle", mask: 3, shift: 2 } });
  });
});

describe("lowerGemmMma: random cases", () => {
  it("matches the float64 product", () => {
    const arb = fc.record({
      warps: fc.integer({ min: 1, max: 8 }), mt: fc.integer({ min: 1, max: 8 }), nt: fc.integer({ min: 1, max: 16 }),
      kt: fc.integer({ min: 1, max: 4 }), pick: fc.nat(), transA: fc.boolean(), transB: fc.boolean(), swizzle: fc.boolean(),
      atype: fc.constantFrom("bf16" as const, "f16" as const), stage: fc.integer({ min: 0, max: 2 }),
    }).chain((r) => {
      return fc.constant({ r, arr: mmaWarpArrangements(16 * r.mt, 8 * r.nt, r.warps * 32) });
    });
    fc.assert(fc.property(arb, ({ r, arr }) => {
      if (arr.length === 0) return;
      const w = arr[r.pick % arr.length]!;
      const c: Case = { m: 16 * r.mt, n: 8 * r.nt, k: 16 * r.kt, warpsM: w.warpsM, warpsN: w.warpsN, transA: r.transA,
        transB: r.transB, swizzle: r.swizzle, atype: r.atype, baseA: r.stage * 16 * r.mt * 16 * r.kt, baseB: r.stage * 8 * r.nt * 16 * r.kt };
      check(c);
    }), { numRuns: 40, seed: 20261127 });
  });
});

describe("lowerGemmMma: inexact inputs", () => {
  it("stays within f32 accumulation error of the float64 product", () => {
    for (const atype of ["bf16", "f16"] as const) {
      const c: Case = { m: 64, n: 32, k: 128, warpsM: 2, warpsN: 2, transA: false, transB: true, swizzle: true, atype };
      const { a, b } = storedShapes(c);
      let s = 12345;
      const rnd = (n: number) => Float64Array.from({ length: n }, () => {
        s = (s * 1103515245 + 12345) >>> 0;
        return roundTo(atype, (s / 2 ** 32) * 2 - 1);
      });
      const A = rnd(a.rows * a.cols), B = rnd(b.rows * b.cols);
      const got = runKernel(buildKernel(c), { A, B }), want = reference(c, A, B);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      expect(worst).toBeGreaterThan(0); // rounding happened: the data are not secretly exact
      expect(worst).toBeLessThan(c.k * 2 ** -23 * 8);
    }
  });
});
