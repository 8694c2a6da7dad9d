// Copies between every pair of memory scopes, over random tile shapes (unit dims included),
// offsets, dtypes (converting or not), thread counts and run-time dims: the lowered kernel
// must move exactly what the tile-level one moves (masking, vectors, zero fill, barriers).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SM80, WGSL } from "../../src/passes/pipeline.ts";
import { maxRelErr, runBoth } from "./harness.ts";

const kernel = (o: { R: number; C: number; threads: number; a: string; b: string; mid: string; coff: number; unitRow: boolean }) => {
  const { R, C, threads, a, b, mid, coff } = o;
  const rows = o.unitRow ? 1 : R;
  // X[M, N] -> tile (by*R.., coff + bx*C..) -> mid (shared or fragment) -> ... -> Y
  return `kernel k(X: global ${a}[M, N], Y: global ${b}[M, N])
  dims M, N
launch tile grid [cdiv(N, ${C}), cdiv(M, ${rows})] threads ${threads} blocks [bx, by] {
  alloc S: ${mid} ${a}[${rows}, ${C}]
  alloc T2: shared ${b}[${rows}, ${C}]
  alloc F: fragment f32[${rows}, ${C}]
  copy X[by * ${rows} : +${rows}, bx * ${C} + ${coff} : +${C}] -> S[0 : +${rows}, 0 : +${C}]
  copy S[0 : +${rows}, 0 : +${C}] -> F[0 : +${rows}, 0 : +${C}]
  for i, j in parallel(0, ${rows}; 0, ${C}) {
    store F[i, j] = F[i, j] * 2.0 + 1.0
  }
  copy F[0 : +${rows}, 0 : +${C}] -> T2[0 : +${rows}, 0 : +${C}]
  copy T2[0 : +${rows}, 0 : +${C}] -> Y[by * ${rows} : +${rows}, bx * ${C} : +${C}]
}
`;
};

describe("copies between scopes", () => {
  it("move what the tile-level copies move", () => {
    fc.assert(fc.property(
      fc.record({
        R: fc.integer({ min: 1, max: 9 }), C: fc.constantFrom(1, 3, 8, 16, 24, 32), threads: fc.constantFrom(32, 64, 96),
        a: fc.constantFrom("f32", "bf16", "f16"), b: fc.constantFrom("f32", "bf16", "f16"),
        mid: fc.constantFrom("shared", "fragment"), coff: fc.constantFrom(0, 1, 8), unitRow: fc.boolean(),
      }),
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 70 }), fc.boolean(), fc.nat(1000),
      (o, M, N, wgsl, seed) => {
        const r = runBoth(kernel(o), {}, wgsl ? WGSL : SM80, { dims: { M, N }, seed });
        expect(maxRelErr(r.outs, r.want, r.got)).toBe(0);
      }), { numRuns: 150 });
  });
});
