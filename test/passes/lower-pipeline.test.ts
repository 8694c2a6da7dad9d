// The cp.async pipeline of `pipelined` loops: IR text in -> lower -> IR text out, and the
// lowered kernel against the tile-level one in the interpreter (which faults on a read of
// shared memory whose cp.async has not been waited for, and on unordered shared accesses).
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { SM80, WGSL, lower } from "../../src/passes/pipeline.ts";
import { maxRelErr, runBoth } from "./harness.ts";

const src = (stages: number) => `kernel rowsum(A: global f16[M, K], O: global f32[M, 8])
  dims M, K
launch tile grid [cdiv(M, 2)] threads 2 blocks [by] {
  alloc As: shared f16[2, 8]
  alloc acc: fragment f32[2, 8]
  fill acc[0 : +2, 0 : +8] = 0.0
  for k in pipelined(0, cdiv(K, 8)) stages ${stages} {
    copy A[by * 2 : +2, k * 8 : +8] -> As[0 : +2, 0 : +8]
    for i, j in parallel(0, 2; 0, 8) {
      store acc[i, j] = acc[i, j] + As[i, j]
    }
  }
  copy acc[0 : +2, 0 : +8] -> O[by * 2 : +2, 0 : +8]
}
`;

describe("pipelined loops", () => {
  it("become a two-stage cp.async pipeline", () => {
    expect(printKernel(lower(parseKernel(src(2)), {}, SM80))).toBe(`kernel rowsum(A: global f16[M, K], O: global f32[M, 8] out)
  dims M, K
  smem 128
launch thread grid [cdiv(M, 2)] threads 2 blocks [by] thread tx {
  alloc As: shared f16[32]
  alloc acc: local f32[8] layout cyclic
  for s in unroll(0, 8) {
    store acc[s] = 0.0
  }
  if (K % 8 == 0) {
    cp.async As[tx * 8] <- A[by * 2 + tx, 0] bytes 16 if (0 < cdiv(K, 8) && (by * 2 + tx < M && 8 <= K))
  } else {
    for it in serial(0, 8) {
      let u: i32 = it * 2 + tx
      vcopy As[u] <- A[by * 2 + u / 8, u % 8] lanes 1 if (0 < cdiv(K, 8) && (by * 2 + u / 8 < M && u % 8 < K))
    }
  }
  cp.commit
  for k in serial(0, cdiv(K, 8)) {
    cp.wait 0
    barrier
    if (K % 8 == 0) {
      cp.async As[(k + 1) % 2 * 16 + tx * 8] <- A[by * 2 + tx, (k + 1) * 8] bytes 16 if (k + 1 < cdiv(K, 8) && (by * 2 + tx < M && (k + 1) * 8 + 8 <= K))
    } else {
      for it_1 in serial(0, 8) {
        let u_1: i32 = it_1 * 2 + tx
        vcopy As[(k + 1) % 2 * 16 + u_1] <- A[by * 2 + u_1 / 8, (k + 1) * 8 + u_1 % 8] lanes 1 if (k + 1 < cdiv(K, 8) && (by * 2 + u_1 / 8 < M && (k + 1) * 8 + u_1 % 8 < K))
      }
    }
    cp.commit
    for s_1 in unroll(0, 8) {
      let i: i32 = s_1 / 4
      let j: i32 = s_1 % 4 * 2 + tx
      store acc[s_1] = acc[s_1] + cast<f32>(As[k % 2 * 16 + (i * 8 + j)])
    }
  }
  cp.wait 0
  barrier
  for s_2 in unroll(0, 8) {
    let r_1: i32 = s_2 / 4
    let c_1: i32 = s_2 % 4 * 2 + tx
    if (by * 2 + r_1 < M && c_1 < 8) {
      store O[by * 2 + r_1, c_1] = acc[s_2]
    }
  }
}
`);
  });
  it("keep S-1 tiles in flight for S stages", () => {
    const text = printKernel(lower(parseKernel(src(4)), {}, SM80));
    expect(text).toContain("alloc As: shared f16[64]");
    expect(text).toMatch(/for p in unroll\(0, 3\) \{[\s\S]*?cp\.async As\[p \* 16 \+ tx \* 8\][\s\S]*?cp\.commit\n  \}/);
    expect(text).toMatch(/for k in serial\(0, cdiv\(K, 8\)\) \{\n    cp\.wait 2\n    barrier\n/);
    expect(text).toContain("As[(k + 3) % 4 * 16 + tx * 8] <- A[by * 2 + tx, (k + 3) * 8] bytes 16 if (k + 3 < cdiv(K, 8)");
  });
  it("stay plain loops without cp.async", () => {
    const text = printKernel(lower(parseKernel(src(3)), {}, WGSL));
    expect(text).not.toMatch(/cp\.|stages/);
    expect(text).toContain("alloc As: shared f16[16]");
  });
  it("compute the same sums as the tile-level loop", () => {
    for (const stages of [1, 2, 3, 4])
      for (const [M, K] of [[1, 1], [3, 8], [4, 24], [5, 41], [2, 7]] as const) {
        const r = runBoth(src(stages), {}, SM80, { dims: { M, K }, seed: M * K + stages });
        expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-6);
      }
  });
});

describe("multi-buffered tiles", () => {
  it("cannot be used after their pipelined loop", () => {
    const text = src(3).replace("  copy acc[0 : +2, 0 : +8] -> O[by * 2 : +2, 0 : +8]",
      "  copy As[0 : +2, 0 : +8] -> O[by * 2 : +2, 0 : +8]");
    expect(() => lower(parseKernel(text), {}, SM80)).toThrow(/shared tile 'As' is filled by a pipelined loop and used outside it/);
    expect(() => lower(parseKernel(text), {}, WGSL)).not.toThrow(); // single-buffered there
  });
});
