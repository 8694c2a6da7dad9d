import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gemmRef } from "../../src/check/reference.ts";
import { runKernel } from "../../src/interp/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import { firstMismatch, tolerance } from "../../src/numeric/tolerance.ts";

// Hand-written thread-level GEMMs (4 warps, 64x64 block tile, BK = 32): cp.async into
// shared, ldmatrix (.trans for the K-major B of the NN variant) into fragments, mma.m16n8k16.
// Their addressing was written from the PTX ISA fragment figures, so agreeing with gemmRef
// pins the interpreter's ldmatrix and mma layouts.
const text = (name: string) => readFileSync(new URL(`./kernels/${name}.ir`, import.meta.url), "utf8");
const NT = text("mma_gemm_nt"), NN = text("mma_gemm_nn");

function runGemm(src: string, M: number, N: number, K: number, seed: number, nn = false) {
  const A = randomTensor("bf16", [M, K], seed), B = randomTensor("bf16", nn ? [K, N] : [N, K], seed + 1);
  const C = zeros("f32", [M, N]).data.fill(NaN);
  const Ct = { dtype: "f32" as const, shape: [M, N], data: C };
  runKernel(parseKernel(src), { tensors: { A, B, C: Ct } });
  return firstMismatch(C, gemmRef(A, B, { transB: !nn }).data, tolerance("f32", K));
}

function variant(src: string, from: string, to: string): string {
  expect(src).toContain(from);
  return src.replace(from, to);
}

describe("thread level: ldmatrix + mma GEMM", () => {
  it("NT (B is [N, K], ldmatrix without .trans) matches gemmRef, ragged M and N", () => {
    for (const [M, N, K, s] of [[64, 64, 64, 1], [70, 50, 40, 2], [16, 130, 32, 3]] as const) expect(runGemm(NT, M, N, K, s)).toBeUndefined();
  });

  it("NN (B is [K, N], ldmatrix.trans) matches gemmRef", () => {
    for (const [M, N, K, s] of [[64, 64, 64, 4], [33, 72, 96, 5]] as const) expect(runGemm(NN, M, N, K, s, true)).toBeUndefined();
  });

  it("fuzz: random ragged shapes and inputs (K a multiple of 8, as 16-byte cp.async needs)", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 1e6 }), fc.boolean(), (M, N, k8, seed, nn) => {
        // NN copies 8-element rows of B[K, N] along N, so there N must be a multiple of 8 too
        const n = nn ? 8 * Math.ceil(N / 8) : N;
        expect(runGemm(nn ? NN : NT, M, n, 8 * k8, seed, nn)).toBeUndefined();
      }), { numRuns: 8, seed: 42 });
  });

  it("a wrong fragment layout is caught: .trans dropped in NN, or b fragments of two n-tiles swapped", () => {
    expect(runGemm(variant(NN, "ldmatrix.x4.trans", "ldmatrix.x4"), 64, 64, 64, 6, true)).toBeDefined();
    expect(runGemm(variant(NT, "bf[ni * 4]", "bf[(3 - ni) * 4]"), 64, 64, 64, 7)).toBeDefined();
    expect(runGemm(variant(NT, "lane / 16 * 8) * 32", "lane / 8 % 2 * 8) * 32"), 64, 64, 64, 8)).toBeDefined();
  });
});

describe("thread level: checks", () => {
  it("a missing cp.wait is reported as a read of a pending cp.async", () => {
    const src = variant(NT, "    cp.wait 0\n", "");
    expect(() => runGemm(src, 64, 64, 64, 1)).toThrow(/kernel mma_gemm_nt, block \(0, 0, 0\), thread .*cp\.async.*still pending: missing cp\.wait/s);
  });

  it("a wait for all but one group is too weak when only one group was committed", () => {
    const src = variant(NT, "cp.wait 0", "cp.wait 1");
    expect(() => runGemm(src, 64, 64, 64, 1)).toThrow(/missing cp\.wait/);
  });

  it("a missing barrier between compute and the next refill is a reported race", () => {
    const src = variant(NT, "    }\n    barrier\n  }", "    }\n  }");
    expect(() => runGemm(src, 64, 64, 128, 1)).toThrow(/data race on shared (As|Bs)\[\d+\]: read by thread \d+ and written by thread \d+/);
  });

  it("a planted race: each thread reads its neighbour's slot without a barrier", () => {
    const k = parseKernel(`kernel race(Y: global f32[N] out)
  dims N
launch thread grid [1] threads 64 blocks [bx] thread tx {
  alloc S: shared f32[64]
  store S[tx] = cast<f32>(tx)
  store Y[tx] = S[(tx + 1) % 64]
}`);
    expect(() => runKernel(k, { tensors: { Y: zeros("f32", [64]) } })).toThrow(/thread 1: data race on shared S\[1\]: read by thread 0 and written by thread 1 with no barrier between\n  at: store S\[tx\] = cast<f32>\(tx\)/);
    const fixed = parseKernel(printFixed());
    const Y = zeros("f32", [64]);
    runKernel(fixed, { tensors: { Y } });
    expect([...Y.data]).toEqual(Array.from({ length: 64 }, (_, i) => (i + 1) % 64));
    // the same race is not reported with raceCheck off (the reads then see whatever ran first)
    expect(() => runKernel(k, { tensors: { Y: zeros("f32", [64]) } }, { raceCheck: false })).not.toThrow();
  });

  it("a barrier that some threads never reach is a reported deadlock", () => {
    const k = parseKernel(`kernel dead(Y: global f32[N] out)
  dims N
launch thread grid [1] threads 64 blocks [bx] thread tx {
  if (tx < 32) {
    barrier
  }
  store Y[tx] = 1.0
}`);
    expect(() => runKernel(k, { tensors: { Y: zeros("f32", [64]) } })).toThrow(/deadlock: thread 0 waits at 'barrier' but thread 32 has exited/);
  });

  it("lanes of one warp at different collectives are a reported divergence", () => {
    const src = variant(NT, "          mma.bf16", "          if (lane < 16) {\n          mma.bf16").replace(
      "+ acc[(mi * 4 + ni) * 4]\n", "+ acc[(mi * 4 + ni) * 4]\n          }\n");
    expect(() => runGemm(src, 64, 64, 64, 1)).toThrow(/warp divergence at a warp-collective (mma|ldmatrix)/);
  });

  it("misaligned cp.async and out-of-bounds accesses are reported", () => {
    const mis = variant(NT, "cp.async As[r * 32 + col]", "cp.async As[r * 32 + col + 1]");
    expect(() => runGemm(mis, 64, 64, 64, 1)).toThrow(/not aligned to the 8-element vector/);
    expect(() => runGemm(NT, 64, 64, 36, 1)).toThrow(/cp\.async source: global A\[36\] is not aligned/); // rows of 36 bf16
    const unguarded = variant(NT, "if (by * 64 + r < M && ko * 32 + col < K)", "if (by * 64 + r < M)");
    expect(() => runGemm(unguarded, 64, 64, 40, 1)).toThrow(/index \[0, 40\] is out of bounds of global A\[64, 40\]/);
  });

  it("vcopy moves vectors and zero-fills non-global destinations when the predicate is false", () => {
    const k = parseKernel(`kernel vc(X: global f32[N], Y: global f32[N] out)
  dims N
launch thread grid [1] threads 4 blocks [bx] thread tx {
  alloc r: local f32[4]
  vcopy r[0] <- X[tx * 4] lanes 4 if (tx != 2)
  vcopy Y[tx * 4] <- r[0] lanes 4 if (tx != 3)
}`);
    const X = randomTensor("f32", [16], 3), Y = zeros("f32", [16]).data.fill(7);
    runKernel(k, { tensors: { X, Y: { dtype: "f32", shape: [16], data: Y } } });
    const want = [...X.data.slice(0, 8), 0, 0, 0, 0, 7, 7, 7, 7];
    expect([...Y]).toEqual(want);
  });
});

function printFixed(): string {
  return `kernel race_fixed(Y: global f32[N] out)
  dims N
launch thread grid [1] threads 64 blocks [bx] thread tx {
  alloc S: shared f32[64]
  store S[tx] = cast<f32>(tx)
  barrier
  store Y[tx] = S[(tx + 1) % 64]
}`;
}
