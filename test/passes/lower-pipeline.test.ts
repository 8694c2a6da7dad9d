// The cp.async pipeline of `pipelined` loops: IR text in -> lower -> IR text out, and the
// lowered kernel against the tile-level one in the interpreter (which faults on a read of
// shared memory whose cp.async has not been waited for, and on unordered shared accesses).
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printExpr, printKernel } from "../../src/ir/print.ts";
import { parseExpr } from "../../src/ir/parse.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { runKernel } from "../../src/interp/index.ts";
import { affineCoef } from "../../src/passes/lower-copy.ts";
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
  let A_off: i64 = cast<i64>(by * 2 + tx) * cast<i64>(K)
  let A_dst: i32 = tx * 8
  let A_on: bool = by * 2 + tx < M
  var A_cur: i64 = A_off + 8_i64
  if (0 < cdiv(K, 8) && (K % 8 == 0 && 8 <= K)) {
    cp.async As[A_dst] <- A[[A_off]] bytes 16 if (A_on)
  } else {
    if (K % 8 == 0) {
      cp.async As[tx * 8] <- A[by * 2 + tx, 0] bytes 16 if (0 < cdiv(K, 8) && (by * 2 + tx < M && 8 <= K))
    } else {
      for it in serial(0, 8) {
        let u: i32 = it * 2 + tx
        vcopy As[u] <- A[by * 2 + u / 8, u % 8] lanes 1 if (0 < cdiv(K, 8) && (by * 2 + u / 8 < M && u % 8 < K))
      }
    }
  }
  cp.commit
  for k in serial(0, cdiv(K, 8)) {
    cp.wait 0
    barrier
    if (k + 1 < cdiv(K, 8) && (K % 8 == 0 && (k + 1) * 8 + 8 <= K)) {
      cp.async As[(k + 1) % 2 * 16 + A_dst] <- A[[A_cur]] bytes 16 if (A_on)
    } else {
      if (K % 8 == 0) {
        cp.async As[(k + 1) % 2 * 16 + tx * 8] <- A[by * 2 + tx, (k + 1) * 8] bytes 16 if (k + 1 < cdiv(K, 8) && (by * 2 + tx < M && (k + 1) * 8 + 8 <= K))
      } else {
        for it_1 in serial(0, 8) {
          let u_1: i32 = it_1 * 2 + tx
          vcopy As[(k + 1) % 2 * 16 + u_1] <- A[by * 2 + u_1 / 8, (k + 1) * 8 + u_1 % 8] lanes 1 if (k + 1 < cdiv(K, 8) && (by * 2 + u_1 / 8 < M && (k + 1) * 8 + u_1 % 8 < K))
        }
      }
    }
    A_cur = A_cur + 8_i64
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

describe("the hoisted issue of a pipelined copy (lower-copy.ts hoistedIssue)", () => {
  // Two row tiles per k tile, 4 units of 8 halves over 2 threads: 2 units a thread.
  const wide = (stages: number, col = "k * 16") => src(stages)
    .replace("alloc As: shared f16[2, 8]", "alloc As: shared f16[2, 16]")
    .replace("copy A[by * 2 : +2, k * 8 : +8] -> As[0 : +2, 0 : +8]", `copy A[by * 2 : +2, ${col} : +16] -> As[0 : +2, 0 : +16]`)
    .replace("pipelined(0, cdiv(K, 8))", "pipelined(0, cdiv(K, 16))");
  it("computes each unit's source offset, shared index and row bound once, then advances a cursor per tile", () => {
    const text = printKernel(lower(parseKernel(wide(3)), {}, SM80));
    expect(text).toContain("let A_off: i64 = cast<i64>(by * 2 + tx / 2) * cast<i64>(K) + cast<i64>(tx % 2 * 8)");
    expect(text).toContain("let A_on_1: bool = by * 2 + (tx + 2) / 2 < M");
    // The loop body issues tile k + 2 first: the cursors start two tiles on.
    expect(text).toContain("var A_cur: i64 = A_off + 32_i64");
    expect(text).toContain("var A_cur_1: i64 = A_off_1 + 32_i64");
    // The prologue's tiles from the offsets, the loop's from the cursors (a whole tile: no
    // bound on K per unit), the general issue kept for the others, the cursors advanced after.
    expect(text).toMatch(/if \(p < cdiv\(K, 16\) && \(K % 8 == 0 && p \* 16 \+ 16 <= K\)\) \{\n\s*cp\.async As\[p \* 32 \+ A_dst\] <- A\[\[A_off \+ cast<i64>\(p\) \* 16_i64\]\] bytes 16 if \(A_on\)/);
    expect(text).toMatch(/if \(k \+ 2 < cdiv\(K, 16\) && \(K % 8 == 0 && \(k \+ 2\) \* 16 \+ 16 <= K\)\) \{\n\s*cp\.async As\[\(k \+ 2\) % 3 \* 32 \+ A_dst\] <- A\[\[A_cur\]\] bytes 16 if \(A_on\)\n\s*cp\.async As\[\(k \+ 2\) % 3 \* 32 \+ A_dst_1\] <- A\[\[A_cur_1\]\] bytes 16 if \(A_on_1\)\n\s*\} else \{\n\s*if \(K % 8 == 0\)/);
    expect(text).toMatch(/\n    A_cur = A_cur \+ 16_i64\n    A_cur_1 = A_cur_1 \+ 16_i64\n    cp\.commit\n/);
  });
  it("keeps the general issue where the offset is not affine in the loop variable", () => {
    const text = printKernel(lower(parseKernel(wide(2, "k / 2 * 32")), {}, SM80));
    expect(text).not.toMatch(/_cur|_off|\[\[/);
  });
  it("the same sums as the tile-level loop (whole and ragged tiles, rows past M, 1 to 4 stages)", () => {
    for (const stages of [1, 2, 3, 4])
      for (const [M, K] of [[1, 16], [3, 48], [4, 40], [5, 41], [2, 7], [1, 1]] as const) {
        const r = runBoth(wide(stages), {}, SM80, { dims: { M, K }, seed: M * K + stages });
        expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-6);
      }
  });
  it("affineCoef: the coefficient of sums and products by x-free factors, else undefined", () => {
    const e = (t: string) => parseExpr(t);
    expect(printExpr(affineCoef(e("(bz * KT + k + 1) * 128 + u % 16 * 8"), "k")!)).toBe("128");
    expect(printExpr(affineCoef(e("k * N - 3"), "k")!)).toBe("N");
    expect(printExpr(affineCoef(e("by * 16"), "k")!)).toBe("0");
    expect(affineCoef(e("k / 2 * 8"), "k")).toBeUndefined();
    expect(affineCoef(e("k * k"), "k")).toBeUndefined();
  });
});

describe("flat references (Ref.flat)", () => {
  const text = `kernel t(A: global f16[M, K], O: global f32[M, 8] out)
  dims M, K
launch thread grid [1] threads 2 blocks [bx] thread tx {
  alloc As: shared f16[16]
  cp.async As[tx * 8] <- A[[cast<i64>(tx) * cast<i64>(K)]] bytes 16 if (tx < M)
  cp.commit
  cp.wait 0
  barrier
  store O[0, tx] = cast<f32>(As[tx * 8])
}
`;
  it("print and parse back as A[[offset]]", () => {
    expect(printKernel(parseKernel(text))).toBe(text);
  });
  it("the verifier takes one offset into a global only", () => {
    expect(verifyErrors(parseKernel(text))).toEqual([]);
    const bad = text.replace("A[[cast<i64>(tx) * cast<i64>(K)]]", "A[[tx, 0]]");
    expect(verifyErrors(parseKernel(bad)).join("\n")).toMatch(/flat reference with 2 indices/);
  });
  it("the interpreter reads the row-major element and faults past the buffer", () => {
    const run = (src: string, M: number) => {
      const O = { dtype: "f32" as const, shape: [M, 8], data: new Float64Array(M * 8) };
      const A = { dtype: "f16" as const, shape: [M, 8], data: Float64Array.from({ length: M * 8 }, (_, i) => i) };
      runKernel(parseKernel(src), { tensors: { A, O } });
      return [...O.data.slice(0, 2)];
    };
    expect(run(text, 2)).toEqual([0, 8]);
    // Thread 1 reads offset 8 of a one-row A when its predicate does not stop it.
    expect(() => run(text.replace("if (tx < M)", "if (tx < 2)"), 1)).toThrow(/out of bounds|outside/i);
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
