// Which names may a tile op's bounds test take as non-negative (src/passes/non-neg.ts)? Before,
// every name but a scalar param was: a tile whose offset is a let that goes negative
// (`const r0 = bx * 16 - 8`) lost its `>= 0` test, and the block read the rows before A's start
// instead of zeros (CUDA: an out-of-bounds read). Now a let, an assignment or a loop variable
// counts only when every value it takes is built from non-negative parts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { SM80, WGSL, lower } from "../../src/passes/pipeline.ts";
import { signFacts } from "../../src/passes/non-neg.ts";
import { runBoth } from "./harness.ts";

const shifted = (offset: string) => parseKernels("shift.ts", `import { T, type Tensor } from "tilemoe";
export const shift = T.kernel({}, function shift(A: Tensor<"M, K", "f32">, O: Tensor<"M, K", "f32">) {
  const [M, K] = A.shape;
  T.launch([T.cdiv(M, 16)], { threads: 64 }, (bx) => {
    const s = T.shared([16, 16], "f32");
    const r0 = ${offset};
    T.copy(A.tile([r0, 0], [16, 16]), s);
    T.copy(s, O.tile([bx * 16, 0], [16, 16]));
  });
});
`)[0]!;

describe("non-negative names in tile bounds", () => {
  it("a tile at a let offset that goes negative reads zeros there (sm_80, WGSL)", () => {
    for (const target of [SM80, WGSL])
      for (const [M, K] of [[20, 16], [40, 12], [3, 5]] as const) {
        const r = runBoth(shifted("bx * 16 - 8"), {}, target, { dims: { M, K }, seed: M + K });
        const A = r.want.A!.data, want = new Float64Array(M * K);
        for (let i = 0; i < M; i++) for (let j = 0; j < K; j++) {
          const src = Math.floor(i / 16) * 16 - 8 + (i % 16);
          if (src >= 0 && src < M && j < 16) want[i * K + j] = A[src * K + j]!;
        }
        expect([...r.want.O!.data]).toEqual([...want]);
        expect([...r.got.O!.data]).toEqual([...want]);
      }
  });

  it("the bounds test keeps `>= 0` for such a let and drops it where every value is non-negative", () => {
    const text = (off: string) => printKernel(lower(shifted(off), {}, SM80));
    expect(text("bx * 16 - 8")).toMatch(/r0 \+ tx \/ 4 >= 0/);
    expect(text("bx * 16 + 8")).not.toMatch(/>= 0/);
  });

  it("a name is proven when all its values are: lets, assignments and loop variables", () => {
    const k = parseKernel(`kernel n(A: global f32[M] out, s: i32)
  dims M
launch tile grid [1] threads 32 blocks [bx] {
  let a: i32 = bx * 2 + 1
  let b: i32 = a - 1
  var c: i32 = 0
  c = c + a
  var d: i32 = 0
  d = d - 1
  let e: i32 = max(b, 0)
  let f: i32 = b % 4
  let g: i32 = a % b
  let h: i32 = s & 7
  let q: i32 = A[0] * 0
  for i in serial(0, M) {
    store A[i] = 0.0
  }
  for j in serial(a - 2, M) {
    store A[j] = 0.0
  }
}
`);
    expect([...signFacts(k).unproven].sort()).toEqual(["b", "d", "f", "j", "q", "s"]);
  });

  it("property: a let offset of either sign, on sm_80: thread level equals tile level", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: -20, max: 20 }), (M, K, shift) => {
      const r = runBoth(shifted(`bx * 16 + (${shift})`), {}, SM80, { dims: { M, K }, seed: M * K });
      expect([...r.got.O!.data]).toEqual([...r.want.O!.data]);
    }), { numRuns: 40, seed: 3 });
  });
});

describe("a test that shows a name non-negative", () => {
  const routed = (guard: string, decl = "const") => parseKernels("routed.ts", `import { T, type Tensor } from "tilemoe";
export const routed = T.kernel({}, function routed(A: Tensor<"M, K", "f32">, I: Tensor<"G", "i32">, O: Tensor<"M, K", "f32">) {
  const [M, K] = A.shape;
  T.launch([T.cdiv(M, 16)], { threads: 64 }, (bx) => {
    const s = T.shared([16, 16], "f32");
    ${decl} e = I[bx];
    T.clear(s);
    if (${guard}) {
      T.copy(A.tile([e * 16, 0], [16, 16]), s);
    }
    T.copy(s, O.tile([bx * 16, 0], [16, 16]));
  });
});
`)[0]!;
  const lowered = (guard: string, decl?: string) => printKernel(lower(routed(guard, decl), {}, SM80));

  it("inside if (e >= 0) a const e needs no >= 0 in the bounds test; a let that may be reassigned does", () => {
    expect(lowered("e >= 0")).not.toMatch(/e \* 16 \+ [^\n]*>= 0/);
    expect(lowered("e >= 0 && e < 4")).not.toMatch(/e \* 16 \+ [^\n]*>= 0/);
    expect(lowered("0 <= e")).not.toMatch(/e \* 16 \+ [^\n]*>= 0/);
    expect(lowered("e > -1")).not.toMatch(/e \* 16 \+ [^\n]*>= 0/);
    expect(lowered("e >= -1")).toMatch(/e \* 16 \+ [^\n]*>= 0/);
    expect(lowered("e < 4")).toMatch(/e \* 16 \+ [^\n]*>= 0/);
    expect(lowered("e >= 0 || e < 4")).toMatch(/e \* 16 \+ [^\n]*>= 0/);
    expect(lowered("e >= 0", "let")).toMatch(/e \* 16 \+ [^\n]*>= 0/);
  });

  it("and the guarded copy reads what the tile level reads for any routing", () => {
    for (const [M, K, G] of [[20, 16, 2], [40, 12, 3], [3, 5, 1]] as const) {
      const r = runBoth(routed("e >= 0"), {}, SM80, { dims: { M, K, G }, seed: M + K });
      expect([...r.got.O!.data]).toEqual([...r.want.O!.data]);
    }
  });
});
