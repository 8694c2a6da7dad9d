// reduce / scan / top-k / atomics lowered to threads, against the tile-level kernel in the
// interpreter (ragged run-time row lengths, fragments and shared tiles on either side).
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { SM80, WGSL } from "../../src/passes/pipeline.ts";
import { warpWidth } from "../../src/passes/lower-moe.ts";
import { lowerChecked, maxRelErr, runBoth } from "./harness.ts";

// Softmax-style gating on a [4, E] tile of logits: row max (fragment -> shared), exp,
// row sum (accumulated onto a fill), top-2 of each row, and a cumulative count (scan).
const gate = (fragment: boolean, W = fragment ? "16" : "E") => `kernel gate(X: global f32[T, E], V: global f32[T, 2] out, I: global i32[T, 2] out, S: global f32[T, 16] out, C: global f32[T] out)
  dims T, E
launch tile grid [cdiv(T, 4)] threads 32 blocks [bx] {
  alloc s: ${fragment ? "fragment" : "shared"} f32[4, 16]
  alloc m: shared f32[4]
  alloc z: shared f32[4, 1]
  alloc v: shared f32[4, 2]
  alloc ix: shared i32[4, 2]
  alloc cs: shared f32[4, 16]
  copy X[bx * 4 : +4, 0 : +16] -> s[0 : +4, 0 : +16]
  reduce.max s[0 : +4, 0 : +${W}] -> m[0 : +4] axis 1
  fill z[0 : +4, 0 : +1] = 1.0
  reduce.sum s[0 : +4, 0 : +${W}] -> z[0 : +4, 0 : +1] axis 1 accumulate
  fill v[0 : +4, 0 : +2] = 7.0
  fill ix[0 : +4, 0 : +2] = 7
  topk s[0 : +4, 0 : +${W}] -> v[0 : +4, 0 : +2], ix[0 : +4, 0 : +2] count min(E, 2)
  scan.sum s[0 : +4, 0 : +${W}] -> cs[0 : +4, 0 : +${W}] exclusive
  copy v[0 : +4, 0 : +2] -> V[bx * 4 : +4, 0 : +2]
  copy ix[0 : +4, 0 : +2] -> I[bx * 4 : +4, 0 : +2]
  copy cs[0 : +4, 0 : +16] -> S[bx * 4 : +4, 0 : +16]
  for i in parallel(0, 4) {
    if (bx * 4 + i < T) {
      store C[bx * 4 + i] = m[i] + z[i, 0]
    }
  }
}
`;

// A row reduce on its own: R rows of a [R, 16] tile, along a run-time length E.
const rowReduce = (op: string, R: number, threads: number, dtype = "f32", accumulate = false) => `kernel r(X: global ${dtype}[T, E], M: global ${dtype}[T] out)
  dims T, E
launch tile grid [cdiv(T, ${R})] threads ${threads} blocks [bx] {
  alloc s: shared ${dtype}[${R}, 16]
  alloc m: shared ${dtype}[${R}]
  copy X[bx * ${R} : +${R}, 0 : +16] -> s[0 : +${R}, 0 : +16]${accumulate ? `
  fill m[0 : +${R}] = 3` : ""}
  reduce.${op} s[0 : +${R}, 0 : +min(E, 16)] -> m[0 : +${R}] axis 1${accumulate ? " accumulate" : ""}
  copy m[0 : +${R}] -> M[bx * ${R} : +${R}]
}
`;

describe("reduce spread over the lanes of a warp", () => {
  it("warpWidth: as many lanes as keep every row in one pass, at most 32, no more than the row needs", () => {
    expect(warpWidth(128, 4, 128, "f32")).toBe(32);
    expect(warpWidth(128, 16, 256, "f32")).toBe(8);
    expect(warpWidth(128, 16, 8, "f32")).toBe(8);
    expect(warpWidth(128, 4, 8, "f32")).toBe(8);
    expect(warpWidth(128, 4, 5, "f32")).toBe(8);
    expect(warpWidth(128, 4, undefined, "i32")).toBe(32);
    expect(warpWidth(32, 32, 100, "f32")).toBeUndefined(); // rows fill the block
    expect(warpWidth(128, 4, 1, "f32")).toBeUndefined();   // one element a row
    expect(warpWidth(96, 4, 64, "f32")).toBe(16);
    expect(warpWidth(48, 4, 64, "f32")).toBeUndefined();  // partial warp
    expect(warpWidth(128, 4, 64, "f64")).toBeUndefined(); // no f64 warp_reduce
  });

  it("IR text: strided part per lane, warp_reduce, lane 0 stores (rows leave no thread idle)", () => {
    const text = printKernel(lowerChecked(parseKernel(rowReduce("sum", 4, 32)), {}, SM80));
    expect(text).toContain(`  barrier
  let lane: i32 = tx % 8
  let row: i32 = tx / 8
  var part: f32 = 0.0
  for jj in serial(0, cdiv(min(E, 16), 8)) {
    let j: i32 = jj * 8 + lane
    if (j < min(E, 16)) {
      part = part + s[row * 16 + j]
    }
  }
  warp_reduce.sum width 8 red: f32 = part
  if (lane == 0) {
    store m[row] = red
  }
  barrier
`);
  });

  it("IR text: idle rows combine the identity and do not store; accumulate combines onto dst", () => {
    const text = printKernel(lowerChecked(parseKernel(rowReduce("max", 3, 128, "f32", true)), {}, SM80));
    expect(text).toContain(`  let lane: i32 = tx % 16
  let row: i32 = tx / 16
  var part: f32 = -inf
  if (row < 3) {
    for jj in serial(0, cdiv(min(E, 16), 16)) {
      let j: i32 = jj * 16 + lane
      if (j < min(E, 16)) {
        part = max(part, s[row * 16 + j])
      }
    }
  }
  warp_reduce.max width 16 red: f32 = part
  if (lane == 0 && row < 3) {
    store m[row] = max(m[row], red)
  }
`);
  });

  it("rows that fill the block keep one thread per row", () => {
    const text = printKernel(lowerChecked(parseKernel(rowReduce("sum", 32, 32)), {}, SM80));
    expect(text).not.toContain("warp_reduce");
    expect(text).toMatch(/for \w+ in serial\(0, min\(E, 16\)\)/);
  });

  for (const [op, R, threads, dtype, acc] of [
    ["sum", 4, 32, "f32", false], ["sum", 3, 128, "f32", true], ["max", 16, 128, "f32", false], ["min", 2, 64, "f32", true],
    ["sum", 5, 64, "i32", false], ["max", 4, 32, "i32", true], ["sum", 4, 128, "bf16", false], ["min", 7, 256, "u32", false],
  ] as const)
    it(`${op} ${dtype}, ${R} rows, ${threads} threads${acc ? ", accumulate" : ""}: lowered = tile level in the interpreter`, () => {
      const src = rowReduce(op, R, threads, dtype, acc);
      expect(printKernel(lowerChecked(parseKernel(src), {}, WGSL))).toContain("warp_reduce");
      for (const [T, E] of [[R, 16], [R + 1, 7], [1, 1], [2 * R + 3, 13], [R, 20]] as const) {
        const r = runBoth(src, {}, WGSL, { dims: { T, E }, seed: T * 10 + E });
        expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      }
    });
});

describe("row-wise tile ops", () => {
  for (const fragment of [false, true])
    it(`reduce, top-k and scan on ${fragment ? "fragments" : "shared tiles"}`, () => {
      for (const [T, E] of [[4, 16], [5, 7], [1, 1], [9, 3]] as const) {
        const r = runBoth(gate(fragment), {}, WGSL, { dims: { T, E }, seed: T * 10 + E });
        expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      }
    });

  it("lowers scan to one thread per row, reduce and topk to 8 lanes per row (4 rows, 32 threads)", () => {
    const text = printKernel(lowerChecked(parseKernel(gate(false)), {}, SM80));
    expect(text).not.toMatch(/(?<!warp_)reduce|topk|scan/);
    expect(text).toMatch(/if \(tx < 4\) \{[\s\S]*?for \w+ in serial\(0, E\)/);
    expect(text.match(/warp_reduce\.(max|min|sum) width 8 /g)).toEqual(
      ["warp_reduce.max width 8 ", "warp_reduce.sum width 8 ", "warp_reduce.max width 8 ", "warp_reduce.min width 8 "]);
  });

  it("atomics on shared memory get flat addresses and barriers", () => {
    const src = `kernel hist(X: global i32[N], H: global i32[8] out)
  dims N
launch tile grid [cdiv(N, 64)] threads 64 blocks [bx] {
  alloc h: shared i32[8]
  fill h[0 : +8] = 0
  for i in parallel(0, 64) {
    let n: i32 = bx * 64 + i
    if (n < N) {
      atomic.add h[X[n] % 8], 1
    }
  }
  for j in parallel(0, 8) {
    atomic.add H[j], h[j]
  }
}
`;
    for (const N of [1, 64, 100]) {
      const r = runBoth(src, {}, SM80, { dims: { N }, seed: N });
      expect(maxRelErr(r.outs, r.want, r.got)).toBe(0);
    }
  });
});
