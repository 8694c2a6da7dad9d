// reduce / scan / top-k / atomics lowered to threads, against the tile-level kernel in the
// interpreter (ragged run-time row lengths, fragments and shared tiles on either side).
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { SM80, WGSL } from "../../src/passes/pipeline.ts";
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

describe("row-wise tile ops", () => {
  for (const fragment of [false, true])
    it(`reduce, top-k and scan on ${fragment ? "fragments" : "shared tiles"}`, () => {
      for (const [T, E] of [[4, 16], [5, 7], [1, 1], [9, 3]] as const) {
        const r = runBoth(gate(fragment), {}, WGSL, { dims: { T, E }, seed: T * 10 + E });
        expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      }
    });

  it("lowers to one thread per row with a serial loop over the run-time axis", () => {
    const text = printKernel(lowerChecked(parseKernel(gate(false)), {}, SM80));
    expect(text).not.toMatch(/reduce|topk|scan/);
    expect(text).toMatch(/if \(tx < 4\) \{[\s\S]*?for \w+ in serial\(0, E\) \{\n\s+(\w+) = max\(\1, s\[\w+ \* 16 \+ \w+\]\)/);
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
