// lowerToThreads (+ simplify, which cleans up what it leaves): IR text in -> IR text out
// for small kernels, each also run in the interpreter against its tile-level form.
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { CompileError } from "../../src/ir/ir.ts";
import { lowerToThreads } from "../../src/passes/lower-threads.ts";
import { simplify } from "../../src/passes/simplify.ts";
import { SM80, WGSL, lower, type Target } from "../../src/passes/pipeline.ts";
import { lowerChecked, maxRelErr, runBoth } from "./harness.ts";

const lowerText = (src: string, target: Target = WGSL) =>
  printKernel(simplify(lowerToThreads(parseKernel(src, "k.ir"), { config: {}, target })));

const elementwise = `kernel k(X: global f32[M, N], Y: global f16[M, N] out)
  dims M, N
launch tile grid [cdiv(N, 8), cdiv(M, 4)] threads 16 blocks [bx, by] {
  alloc S: shared f32[4, 8]
  alloc F: fragment f32[4, 8] layout cyclic
  copy X[by * 4 : +4, bx * 8 : +8] -> S[0 : +4, 0 : +8]
  for i, j in parallel(0, 4; 0, 8) {
    store F[i, j] = S[i, 7 - j] * 2.0
  }
  copy F[0 : +4, 0 : +8] -> Y[by * 4 : +4, bx * 8 : +8]
}
`;

describe("lowerToThreads", () => {
  it("lowers a copy to shared, a fragment parallel loop and a converting store", () => {
    expect(lowerText(elementwise)).toBe(`kernel k(X: global f32[M, N], Y: global f16[M, N] out)
  dims M, N
  smem 128
launch thread grid [cdiv(N, 8), cdiv(M, 4)] threads 16 blocks [bx, by] thread tx {
  alloc S: shared f32[32]
  alloc F: local f32[2] layout cyclic
  if (N % 4 == 0) {
    if (tx < 8) {
      vcopy S[tx / 2 * 8 + tx % 2 * 4] <- X[by * 4 + tx / 2, bx * 8 + tx % 2 * 4] lanes 4 if (by * 4 + tx / 2 < M && bx * 8 + tx % 2 * 4 + 4 <= N)
    }
  } else {
    for it in serial(0, 2) {
      let u: i32 = it * 16 + tx
      vcopy S[u] <- X[by * 4 + u / 8, bx * 8 + u % 8] lanes 1 if (by * 4 + u / 8 < M && bx * 8 + u % 8 < N)
    }
  }
  barrier
  for s in unroll(0, 2) {
    let i: i32 = s * 2 + tx / 8
    let j: i32 = tx % 8
    store F[s] = S[i * 8 + (7 - j)] * 2.0
  }
  for s_1 in unroll(0, 2) {
    let r: i32 = s_1 * 2 + tx / 8
    let c: i32 = tx % 8
    if (by * 4 + r < M && bx * 8 + c < N) {
      store Y[by * 4 + r, bx * 8 + c] = cast<f16>(F[s_1])
    }
  }
}
`);
    for (const [M, N] of [[5, 12], [4, 8], [1, 3], [9, 17]] as const) {
      const r = runBoth(elementwise, {}, WGSL, { dims: { M, N }, seed: M * 100 + N });
      expect(maxRelErr(r.outs, r.want, r.got)).toBe(0);
    }
  });

  it("strides parallel loops without fragments over the threads, with barriers around shared writes", () => {
    const src = `kernel k(X: global f32[M, N], Y: global f32[M, N] out)
  dims M, N
launch tile grid [1] threads 32 blocks [bx] {
  alloc S: shared f32[6, 10]
  fill S[0 : +6, 0 : +10] = 1.0
  for i, j in parallel(0, 6; 0, 10) {
    store S[i, j] = S[i, j] + X[i, j]
  }
  for i2, j2 in parallel(0, 6; 0, 10) {
    store Y[i2, j2] = S[5 - i2, j2]
  }
}
`;
    const text = lowerText(src);
    // fill, then barrier, then the first loop, then barrier, then the reads of other threads' elements
    expect(text).toContain("store S[u] = 1.0");
    expect(text.match(/barrier/g)?.length).toBe(2);
    expect(text).toContain("for it_1 in unroll(0, 2) {\n    let e: i32 = it_1 * 32 + tx\n    if (e < 60) {\n      let i: i32 = e / 10\n      let j: i32 = e % 10");
    for (const [M, N] of [[6, 10], [7, 11]] as const) {
      const r = runBoth(src, {}, WGSL, { dims: { M, N }, seed: 3 });
      expect(maxRelErr(r.outs, r.want, r.got)).toBe(0);
    }
  });

  it("stores mma accumulators two columns at a time when rows keep pairs aligned", () => {
    const src = `kernel k(A: global f16[M, K], B: global f16[K, N], C: global f32[M, N] out)
  dims M, N, K
launch tile grid [cdiv(N, 16), cdiv(M, 16)] threads 32 blocks [bx, by] {
  alloc As: shared f16[16, 16] layout xor_swizzle(1, 2)
  alloc Bs: shared f16[16, 16] layout xor_swizzle(1, 2)
  alloc acc: fragment f32[16, 16] layout mma_acc(1, 1)
  fill acc[0 : +16, 0 : +16] = 0.0
  for k in serial(0, cdiv(K, 16)) {
    copy A[by * 16 : +16, k * 16 : +16] -> As[0 : +16, 0 : +16]
    copy B[k * 16 : +16, bx * 16 : +16] -> Bs[0 : +16, 0 : +16]
    gemm As[0 : +16, 0 : +16], Bs[0 : +16, 0 : +16] -> acc[0 : +16, 0 : +16]
  }
  copy acc[0 : +16, 0 : +16] -> C[by * 16 : +16, bx * 16 : +16]
}
`;
    const text = lowerText(src, SM80);
    expect(text).not.toContain("alloc pair");
    expect(text).toMatch(/if \(N % 2 == 0\) \{\n    for s_\d+ in unroll\(0, 4\) \{/);
    expect(text).toMatch(/vcopy C\[by \* 16 \+ (r_\d+), bx \* 16 \+ (c_\d+)\] <- acc\[s_\d+ \* 2\] lanes 2 if \(by \* 16 \+ \1 < M && bx \* 16 \+ \2 \+ 2 <= N\)/);
    // a converting pair is one converting vector store (no register temporary, which nvcc
    // would keep on the stack), and it computes what the tile level does
    const bf = src.replace("C: global f32[M, N] out", "C: global bf16[M, N] out");
    expect(lowerText(bf, SM80)).toMatch(/vcopy C\[by \* 16 \+ r_\d+, bx \* 16 \+ c_\d+\] <- acc\[s_\d+ \* 2\] lanes 2 convert if/);
    for (const [M, N, K] of [[20, 30, 40], [3, 5, 7]] as const) {
      const r = runBoth(bf, {}, SM80, { dims: { M, N, K }, seed: M });
      expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
    }
    // the two operand copies share one barrier before and one after
    expect(text).toMatch(/for k in serial\(0, cdiv\(K, 16\)\) \{\n    barrier\n    if \(K % 8 == 0\)[\s\S]*?\n    \}\n    if \(N % 8 == 0\)/);
    for (const [M, N, K] of [[16, 16, 16], [20, 30, 40], [3, 5, 7]] as const) {
      const r = runBoth(src, {}, SM80, { dims: { M, N, K }, seed: M });
      expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
    }
  });

  it("rejects fragment accesses it cannot map to slots, at their location", () => {
    const src = `kernel k(Y: global f32[M] out)
  dims M
launch tile grid [1] threads 32 blocks [bx] {
  alloc F: fragment f32[4, 8] layout cyclic
  for i in parallel(0, 4) {
    store Y[i] = F[i, 0]
  }
}
`;
    expect(() => lowerText(src)).toThrow(CompileError);
    expect(() => lowerText(src)).toThrow(/k\.ir:5:\d+: error: fragments in a T\.parallel loop must be indexed by the loop's variables \(i\)/);
  });

  it("stages an mma accumulator through shared memory for a vectorized, converted store", () => {
    const src = `kernel k(A: global bf16[M, K], B: global bf16[N, K], bias: global f32[N], C: global f16[M, N] out)
  dims M, K, N
launch tile grid [cdiv(N, 32), cdiv(M, 32)] threads 64 blocks [bx, by] {
  alloc As: shared bf16[32, 32]
  alloc Bs: shared bf16[32, 32]
  alloc Cs: shared f16[32, 32]
  alloc acc: fragment f32[32, 32]
  alloc h: fragment f16[32, 32]
  fill acc[0 : +32, 0 : +32] = 0.0
  for k in pipelined(0, cdiv(K, 32)) stages 2 {
    copy A[by * 32 : +32, k * 32 : +32] -> As[0 : +32, 0 : +32]
    copy B[bx * 32 : +32, k * 32 : +32] -> Bs[0 : +32, 0 : +32]
    gemm As[0 : +32, 0 : +32], Bs[0 : +32, 0 : +32] -> acc[0 : +32, 0 : +32] transB
  }
  for i, j in parallel(0, 32; 0, 32) {
    let n: i32 = bx * 32 + j
    var b: f32 = 0.0
    if (n < N) {
      b = bias[n]
    }
    store acc[i, j] = max(acc[i, j] + b, 0.0)
  }
  copy acc[0 : +32, 0 : +32] -> h[0 : +32, 0 : +32]
  copy h[0 : +32, 0 : +32] -> Cs[0 : +32, 0 : +32]
  copy Cs[0 : +32, 0 : +32] -> C[by * 32 : +32, bx * 32 : +32]
}
`;
    const text = printKernel(lowerChecked(parseKernel(src), {}, SM80));
    expect(text).toMatch(/alloc acc: local f32\[16\] layout (mma_acc\(\d, \d\))\n  alloc h: local f16\[16\] layout \1/);
    expect(text).toMatch(/vcopy C\[by \* 32 \+ [^\]]+\] <- Cs\[[^\]]+\] lanes 8/);
    for (const [M, N, K] of [[32, 32, 32], [33, 40, 72], [7, 9, 5]] as const) {
      const r = runBoth(src, {}, SM80, { dims: { M, N, K }, seed: N });
      expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
    }
  });

  it("rejects tile operations inside parallel loops and copies between unlike fragments", () => {
    const inPar = `kernel k(X: global f32[M] out)
  dims M
launch tile grid [1] threads 32 blocks [bx] {
  alloc S: shared f32[8]
  for i in parallel(0, 8) {
    fill S[0 : +8] = 1.0
  }
}
`;
    expect(() => lowerText(inPar)).toThrow(/k\.ir:6:\d+: error: T\.fill inside a T\.parallel loop/);
    const unlike = `kernel k(X: global f32[M] out)
  dims M
launch tile grid [1] threads 32 blocks [bx] {
  alloc F: fragment f32[8, 8] layout cyclic
  alloc G: fragment f32[4, 16] layout cyclic
  copy F[0 : +8, 0 : +8] -> G[0 : +4, 0 : +16]
}
`;
    expect(() => lowerText(unlike)).toThrow(/k\.ir:6:\d+: error: copy between fragments 'F' and 'G' needs whole fragments of one shape and layout/);
  });

  it("unrolls short serial loops that index per-thread arrays", () => {
    const src = `kernel k(Y: global f32[M] out)
  dims M
launch tile grid [1] threads 32 blocks [bx] {
  alloc r: local f32[4]
  for q in serial(0, 4) {
    store r[q] = cast<f32>(q)
  }
  for q2 in serial(0, 4) {
    store Y[q2] = 1.0
  }
  store Y[0] = r[3]
}
`;
    const text = lowerText(src);
    expect(text).toContain("for q in unroll(0, 4) {\n    store r[q] = cast<f32>(q)");
    expect(text).toContain("for q2 in serial(0, 4) {");
  });

  it("is reached through lower() with the pass order fixed in one place", () => {
    const stages: string[] = [];
    lower(parseKernel(elementwise), {}, WGSL, (n) => stages.push(n));
    expect(stages).toEqual(["specialize", "checkDequantBlocks", "inferTypes", "lowerIntDivision", "inferLayouts", "padPackedTiles", "lowerToThreads", "persistentGrid", "warpSpecialize", "pingPong", "simplify", "overlapClears", "programmaticLaunch"]);
  });
});
