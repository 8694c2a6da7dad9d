// Row-gathering copies (`copy X[0 : +R, c : +W] rows idx -> dst`, T.copy(X.rows(idx, c, W), dst)):
// IR text round trip, the verifier's rules, the lowering to cp.async inside a pipelined loop
// (text in -> text out), and the lowered kernel against the tile level and an independent
// reference in the interpreter, for CUDA (cp.async) and WGSL (synchronous) targets.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { SM80, WGSL, lower } from "../../src/passes/pipeline.ts";
import { runBoth } from "./harness.ts";

// Row i of block `by` gathers A row I[r] * 3 + i % 3 - 1 (r = by * 16 + i), so with the
// harness's small index values rows -1 and rows past M both occur, and must read 0.
const src = (stages: number, copy = "copy A[0 : +16, k * 16 : +16] rows idx -> As[0 : +16, 0 : +16]", threads = 32) =>
  `kernel gather(A: global bf16[M, K], I: global i32[R], O: global bf16[R, K] out)
  dims M, K, R
launch tile grid [cdiv(R, 16)] threads ${threads} blocks [by] {
  alloc idx: shared i32[16]
  alloc As: shared bf16[16, 16]
  for i in parallel(0, 16) {
    if (by * 16 + i < R) {
      store idx[i] = I[by * 16 + i] * 3 + i % 3 - 1
    } else {
      store idx[i] = -1
    }
  }
  for k in pipelined(0, cdiv(K, 16)) stages ${stages} {
    ${copy}
    for i, j in parallel(0, 16; 0, 16) {
      if (by * 16 + i < R && k * 16 + j < K) {
        store O[by * 16 + i, k * 16 + j] = As[i, j]
      }
    }
  }
}
`;

/** O as the gather defines it, from the inputs the harness drew. */
function reference(A: Float64Array, I: Float64Array, M: number, K: number, R: number): Float64Array {
  const O = new Float64Array(R * K);
  for (let r = 0; r < R; r++) {
    const row = I[r]! * 3 + (r % 16) % 3 - 1;
    if (row < 0 || row >= M) continue;
    for (let c = 0; c < K; c++) O[r * K + c] = A[row * K + c]!;
  }
  return O;
}

describe("row-gathering copies", () => {
  it("print and parse back", () => {
    const k = parseKernel(src(2));
    expect(printKernel(parseKernel(printKernel(k)))).toBe(printKernel(k));
    expect(printKernel(k)).toContain("copy A[0 : +16, k * 16 : +16] rows idx -> As[0 : +16, 0 : +16]");
    expect(verifyErrors(k)).toEqual([]);
  });

  it("are rejected with a reason when malformed", () => {
    const bad = (copy: string) => verifyErrors(parseKernel(src(2, copy))).join("\n");
    expect(bad("copy A[1 : +16, k * 16 : +16] rows idx -> As[0 : +16, 0 : +16]")).toMatch(/starts its source region at row 0/);
    expect(bad("copy A[0 : +16, k * 16 : +16] rows As -> As[0 : +16, 0 : +16]")).toMatch(/must be i32, it is bf16/);
    expect(bad("copy A[0 : +16, k * 16 : +16] rows I -> As[0 : +16, 0 : +16]")).toMatch(/must be a shared or local buffer, it is global/);
    expect(bad("copy A[0 : +16, k * 16 : +16] rows nope -> As[0 : +16, 0 : +16]")).toMatch(/undefined buffer 'nope'/);
  });

  it("lower to cp.async of 16-byte row chunks inside a pipelined loop, rows read once into a per-thread table", () => {
    const text = printKernel(lower(parseKernel(src(2)), {}, SM80));
    expect(text).toContain("alloc idx_rows: local i32[1]");
    expect(text).toContain(`  store idx_rows[0] = idx[tx / 2]
  if (K % 8 == 0) {
    for it in unroll(0, 1) {
      let u: i32 = it * 32 + tx
      let g_1: i32 = idx_rows[it]
      cp.async As[u / 2 * 16 + u % 2 * 8] <- A[g_1, u % 2 * 8] bytes 16 if (0 < cdiv(K, 16) && (g_1 >= 0 && g_1 < M && u % 2 * 8 + 8 <= K))
    }
  } else {
    for it_1 in serial(0, 8) {
      let u_1: i32 = it_1 * 32 + tx
      let g_2: i32 = idx[u_1 / 16]
      vcopy As[u_1] <- A[g_2, u_1 % 16] lanes 1 if (0 < cdiv(K, 16) && (g_2 >= 0 && (g_2 < M && u_1 % 16 < K)))
    }
  }
  cp.commit
  for k in serial(0, cdiv(K, 16)) {
    cp.wait 0
    barrier
    if (K % 8 == 0) {
      for it_2 in unroll(0, 1) {
        let u_2: i32 = it_2 * 32 + tx
        let g_4: i32 = idx_rows[it_2]
        cp.async As[(k + 1) % 2 * 256 + (u_2 / 2 * 16 + u_2 % 2 * 8)] <- A[g_4, (k + 1) * 16 + u_2 % 2 * 8] bytes 16 if (k + 1 < cdiv(K, 16) && (g_4 >= 0 && g_4 < M && (k + 1) * 16 + u_2 % 2 * 8 + 8 <= K))
      }`);
    // The WGSL target has no cp.async: the same gather, synchronous, between barriers.
    const wgsl = printKernel(lower(parseKernel(src(2)), {}, WGSL));
    expect(wgsl).not.toMatch(/cp\./);
    expect(wgsl).toMatch(/vcopy As\[[^\n]*\] <- A\[g[_0-9]*, /);
  });

  it("refuse a pipelined loop that rewrites its gather's rows (the copies are issued ahead)", () => {
    const k = parseKernel(src(2).replace("        store O[by * 16 + i, k * 16 + j] = As[i, j]\n",
      "        store O[by * 16 + i, k * 16 + j] = As[i, j]\n        store idx[i] = 0\n"));
    expect(() => lower(k, {}, SM80)).toThrow(/'idx' holds the rows of a gather in this pipelined loop/);
  });

  it("read the gathered rows, and 0 for rows outside A, on every path", () => {
    for (const [target, stagesList] of [[SM80, [1, 2, 3]], [WGSL, [2]]] as const)
      for (const stages of stagesList)
        for (const [M, K, R] of [[1, 16, 3], [5, 40, 20], [7, 13, 17], [4, 8, 33]] as const) {
          const r = runBoth(src(stages), {}, target, { dims: { M, K, R }, seed: M * K + R + stages });
          const want = reference(r.want.A!.data, r.want.I!.data, M, K, R);
          expect([...r.want.O!.data]).toEqual([...want]);
          expect([...r.got.O!.data]).toEqual([...want]);
        }
  });

  it("property: any dims, stages and block size (64 threads leave half the block without a chunk)", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }),
      fc.constantFrom(1, 2, 3), fc.constantFrom(16, 32, 64), fc.nat(1000),
      (M, K, R, stages, threads, seed) => {
        const r = runBoth(src(stages, undefined, threads), {}, SM80, { dims: { M, K, R }, seed });
        const want = reference(r.want.A!.data, r.want.I!.data, M, K, R);
        expect([...r.got.O!.data]).toEqual([...want]);
      }), { numRuns: 25, seed: 20261128 });
  });
});
