// Row-scattering copies (`copy acc -> Y[0 : +R, c : +W] rows idx`, T.copy(acc, Y.rows(idx, c, W))):
// the front end, IR text round trip, the verifier's rules, the lowering (an accumulator's
// neighbouring columns leave as one 2-element vector where the rows keep pairs aligned), and the
// lowered kernel against the tile level and a float64 reference in the interpreter, on the
// mma.sync (sm_80), wgmma (sm_90a) and WGSL paths, with rows dropped below 0 and past Y.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { SM80, SM90A, WGSL, lower } from "../../src/passes/pipeline.ts";
import type { Target } from "../../src/passes/types.ts";
import { runBoth } from "./harness.ts";

// Block (bx, by) multiplies its [BM, 16k] rows of A by its [BN, 16k] rows of B and scatters
// the tile's row i (r = by * BM + i) to Y row P + 1 - 2r: past Y for r = 0, below 0 once 2r > P + 1,
// dropped (-1) for r % 3 == 1 and past A. Distinct rows, so no two writes meet.
const dsl = (threads: number) => `import { T, type Tensor } from "tilemoe";
export const scatter = T.kernel({ tune: { BM: [16, 64], BN: [16, 32, 64] } },
  function scatter(A: Tensor<"R, K", "bf16">, B: Tensor<"N, K", "bf16">, Y: Tensor<"P, N", "f32">, { BM, BN }: T.Config) {
    const [R, K] = A.shape;
    const [N] = B.shape;
    const [P] = Y.shape;
    T.launch([T.cdiv(N, BN), T.cdiv(R, BM)], { threads: ${threads} }, (bx, by) => {
      const As = T.shared([BM, 16], "bf16");
      const Bs = T.shared([BN, 16], "bf16");
      const acc = T.fragment([BM, BN], "f32");
      const rows = T.shared([BM], "i32");
      T.clear(acc);
      for (const k of T.serial(T.cdiv(K, 16))) {
        T.copy(A.tile([by * BM, k * 16], [BM, 16]), As);
        T.copy(B.tile([bx * BN, k * 16], [BN, 16]), Bs);
        T.gemm(As, Bs, acc, { transB: true });
      }
      for (const i of T.parallel(BM)) {
        const r = by * BM + i;
        let row = -1;
        if (r < R && r % 3 != 1) row = P + 1 - 2 * r;
        rows[i] = row;
      }
      T.copy(acc, Y.rows(rows, bx * BN, BN));
    });
  });
`;
const kernel = (threads = 128) => parseKernels("scatter.ts", dsl(threads))[0]!;

/** Y as the scatter defines it (float64 sums of the rounded bf16 inputs). */
function reference(A: Float64Array, B: Float64Array, R: number, K: number, N: number, P: number): Float64Array {
  const Y = new Float64Array(P * N);
  for (let r = 0; r < R; r++) {
    const row = r % 3 === 1 ? -1 : P + 1 - 2 * r;
    if (row < 0 || row >= P) continue;
    for (let c = 0; c < N; c++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[r * K + k]! * B[c * K + k]!;
      Y[row * N + c] = s;
    }
  }
  return Y;
}

function expectClose(got: Float64Array, want: Float64Array, K: number) {
  expect(got.length).toBe(want.length);
  const tol = 1e-5 * Math.max(1, K);
  for (let i = 0; i < want.length; i++) if (Math.abs(got[i]! - want[i]!) > tol) expect([i, got[i]]).toEqual([i, want[i]]);
}

const run = (target: Target, config: { BM: number; BN: number }, dims: Record<string, number>, seed: number, threads = 128) => {
  const r = runBoth(kernel(threads), config, target, { dims, seed });
  const want = reference(r.want.A!.data, r.want.B!.data, dims.R!, dims.K!, dims.N!, dims.P!);
  expectClose(r.want.Y!.data, want, dims.K!);
  expectClose(r.got.Y!.data, want, dims.K!);
};

describe("row-scattering copies", () => {
  it("come from T.copy(acc, Y.rows(idx, col, W)), print and parse back", () => {
    const k = kernel();
    const text = printKernel(k);
    expect(text).toContain("copy acc[0 : +BM, 0 : +BN] -> Y[0 : +BM, bx * BN : +BN] rows rows");
    expect(printKernel(parseKernel(text))).toBe(text);
    expect(verifyErrors(k)).toEqual([]);
  });

  it("are rejected with a reason when malformed", () => {
    const text = printKernel(kernel());
    const bad = (copy: string) => verifyErrors(parseKernel(text.replace("copy acc[0 : +BM, 0 : +BN] -> Y[0 : +BM, bx * BN : +BN] rows rows", copy))).join("\n");
    expect(bad("copy acc[0 : +BM, 0 : +BN] -> Y[1 : +BM, bx * BN : +BN] rows rows")).toMatch(/starts its destination region at row 0/);
    expect(bad("copy acc[0 : +BM, 0 : +BN] -> Y[0 : +BM, bx * BN : +BN] rows As")).toMatch(/must be i32, it is bf16/);
    expect(bad("copy acc[0 : +BM, 0 : +BN] -> As[0 : +BM, 0 : +16] rows rows")).toMatch(/scatters into a global tensor; 'As' is shared/);
    expect(bad("copy A[0 : +BM, 0 : +16] rows rows -> Y[0 : +BM, 0 : +16] rows rows")).toMatch(/gathers rows \('rows'\) or scatters them \('rows'\), not both/);
    expect(() => parseKernels("s.ts", dsl(128).replace("T.copy(acc, Y.rows(rows, bx * BN, BN));", "T.copy(A.rows(rows, 0, 16), Y.rows(rows, 0, 16));")))
      .toThrow(/a copy gathers rows \(source \.rows\) or scatters them \(destination \.rows\), not both/);
    expect(() => lower(parseKernels("s.ts", dsl(128).replace("T.copy(acc, Y.rows(rows, bx * BN, BN));", "T.copy(As, Y.rows(rows, 0, 16));"))[0]!, { BM: 16, BN: 16 }, SM80))
      .toThrow(/a row scatter \(Y\.rows as the destination\) stores a whole fragment into a global tensor; 'As' is a shared buffer/);
  });

  it("lower to 8-byte vector stores of column pairs where Y's rows keep pairs aligned, per element otherwise", () => {
    const text = printKernel(lower(kernel(), { BM: 16, BN: 32 }, SM80));
    expect(text).toMatch(/if \(N % 2 == 0\) \{\n\s+for [^\n]*\n(\s+let [^\n]*\n)+\s+vcopy Y\[g[_0-9]*, bx \* 32 \+ c[_0-9]*\] <- acc\[[^\]]*\] lanes 2 if \(g[_0-9]* >= 0 && \(g[_0-9]* < P && bx \* 32 \+ c[_0-9]* \+ 2 <= N\)\)/);
    expect(text).toMatch(/\} else \{\n\s+for [^\n]*\n(\s+let [^\n]*\n)+\s+if \(g[_0-9]* >= 0 && \(g[_0-9]* < P && bx \* 32 \+ c[_0-9]* < N\)\) \{\n\s+store Y\[g[_0-9]*, bx \* 32 \+ c[_0-9]*\] = acc\[/);
    // wgmma accumulators pair columns too; WGSL stores per element.
    expect(printKernel(lower(kernel(), { BM: 64, BN: 32 }, SM90A))).toMatch(/vcopy Y\[g[_0-9]*, bx \* 32 \+ c[_0-9]*\] <- acc\[[^\]]*\] lanes 2/);
    expect(printKernel(lower(kernel(), { BM: 16, BN: 32 }, WGSL))).toMatch(/store Y\[g[_0-9]*, bx \* 32 \+ c[_0-9]*\] = acc\[/);
  });

  it("write the scattered rows and nothing else, on every path (odd N takes the element stores)", () => {
    for (const [target, config] of [[SM80, { BM: 16, BN: 32 }], [SM90A, { BM: 64, BN: 32 }], [WGSL, { BM: 16, BN: 16 }]] as const)
      for (const [R, K, N, P] of [[1, 16, 2, 3], [20, 40, 34, 45], [17, 13, 33, 20], [70, 16, 64, 150]] as const)
        run(target, config, { R, K, N, P }, R * K + N + P);
  });

  it("property: any dims and tiles", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 150 }),
      fc.constantFrom(16, 64), fc.constantFrom(16, 32, 64), fc.constantFrom("sm_80", "sm_90a"), fc.nat(1000),
      (R, K, N, P, BM, BN, arch, seed) => run(arch === "sm_80" || BM < 64 ? SM80 : SM90A, { BM, BN }, { R, K, N, P }, seed)),
    { numRuns: 25, seed: 5 });
  });
});
