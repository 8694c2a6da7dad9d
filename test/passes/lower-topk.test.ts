// topk lowered to threads: a parallel argmax per round over the lanes of a warp (when rows
// leave threads idle) or one thread per row, against the tile-level topk in the interpreter,
// on rows full of ties, -inf, +inf and NaN (NaN is never picked; ties go to the lower index).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { runKernel } from "../../src/interp/index.ts";
import { SM80, WGSL } from "../../src/passes/pipeline.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import { lowerChecked, tileLevel } from "./harness.ts";

// Top-min(K, KC) of each of R rows of a [R, W] shared tile, along a run-time row length min(E, W).
const topkKernel = (R: number, threads: number, W: number, KC: number, dtype = "f32") => `kernel tk(X: global ${dtype}[T, E], V: global ${dtype}[T, ${KC}] out, I: global i32[T, ${KC}] out, K: i32)
  dims T, E
launch tile grid [cdiv(T, ${R})] threads ${threads} blocks [bx] {
  alloc s: shared ${dtype}[${R}, ${W}]
  alloc v: shared ${dtype}[${R}, ${KC}]
  alloc ix: shared i32[${R}, ${KC}]
  copy X[bx * ${R} : +${R}, 0 : +${W}] -> s[0 : +${R}, 0 : +${W}]
  fill v[0 : +${R}, 0 : +${KC}] = 7
  fill ix[0 : +${R}, 0 : +${KC}] = 7
  topk s[0 : +${R}, 0 : +min(E, ${W})] -> v[0 : +${R}, 0 : +${KC}], ix[0 : +${R}, 0 : +${KC}] count min(K, ${KC})
  copy v[0 : +${R}, 0 : +${KC}] -> V[bx * ${R} : +${R}, 0 : +${KC}]
  copy ix[0 : +${R}, 0 : +${KC}] -> I[bx * ${R} : +${R}, 0 : +${KC}]
}
`;

/** Tile level and lowered kernel on the same X; the outputs of both. */
function both(src: string, target: typeof SM80, x: number[], T: number, E: number, K: number, KC: number, dtype: "f32" | "i32" = "f32") {
  const run = (k: ReturnType<typeof parseKernel>) => {
    const tensors = {
      X: { dtype, shape: [T, E], data: Float64Array.from(x) },
      V: zeros(dtype, [T, KC]), I: zeros("i32", [T, KC]),
    };
    runKernel(k, { tensors, scalars: { K } });
    return { V: [...tensors.V.data], I: [...tensors.I.data] };
  };
  return { want: run(tileLevel(parseKernel(src), {}, target)), got: run(lowerChecked(parseKernel(src), {}, target)) };
}

describe("topk over the lanes of a warp", () => {
  it("IR text: a strided best per lane after the previous pick, max then min-index warp_reduce, lane 0 stores", () => {
    const text = printKernel(lowerChecked(parseKernel(topkKernel(4, 128, 128, 8)), {}, SM80));
    expect(text).toContain(`  let lane: i32 = tx % 32
  let row: i32 = tx / 32
  var pv: f32 = inf
  var pi: i32 = -1
  for j in serial(0, min(K, 8)) {
    var bv: f32 = -inf
    var bi: i32 = -1
    for jj in serial(0, cdiv(min(E, 128), 32)) {
      let n: i32 = jj * 32 + lane
      if (n < min(E, 128)) {
        let x: f32 = s[row * 128 + n]
        if ((x < pv || x == pv && n > pi) && (bi < 0 || x > bv)) {
          bv = x
          bi = n
        }
      }
    }
    warp_reduce.max width 32 m: f32 = bv
    warp_reduce.min width 32 win: i32 = select(bi >= 0 && bv == m, bi, 2147483647)
    if (lane == 0) {
      store v[row * 8 + j] = m
      store ix[row * 8 + j] = select(win == 2147483647, -1, win)
    }
    pv = m
    pi = select(win == 2147483647, min(E, 128), win)
  }
`);
    expect(text).not.toContain("topk");
  });

  it("IR text: rows past the last one scan nothing and store nothing, but reach both warp_reduces", () => {
    const text = printKernel(lowerChecked(parseKernel(topkKernel(3, 128, 16, 4)), {}, SM80));
    expect(text).toMatch(/if \(row < 3\) \{\n\s+for jj in serial\(0, cdiv\(min\(E, 16\), 16\)\)/);
    expect(text).toContain("if (lane == 0 && row < 3) {");
    expect(text).toMatch(/\n {4}warp_reduce\.max width 16 m: f32 = bv\n {4}warp_reduce\.min width 16 /);
  });

  it("rows that fill the block keep one thread per row", () => {
    const text = printKernel(lowerChecked(parseKernel(topkKernel(32, 32, 16, 4)), {}, SM80));
    expect(text).not.toContain("warp_reduce");
    expect(text).toMatch(/for \w+ in serial\(0, min\(E, 16\)\)/);
  });

  // A row of an alphabet with many ties and every special value.
  const ALPHABET = [-Infinity, -1, 0, 0.5, 2, Infinity, NaN];
  const shapes = [
    { R: 4, threads: 128, W: 128, KC: 8 },  // the gate at BT 4: 32 lanes a row
    { R: 16, threads: 128, W: 128, KC: 8 }, // BT 16: 8 lanes
    { R: 3, threads: 64, W: 16, KC: 16 },   // idle rows, k up to the whole row
    { R: 32, threads: 32, W: 8, KC: 8 },    // one thread per row
  ];
  for (const { R, threads, W, KC } of shapes)
    it(`${R} rows of ${W}, ${threads} threads, k <= ${KC}: lowered = tile level on ties, +-inf and NaN`, () => {
      const src = topkKernel(R, threads, W, KC);
      const arb = fc.record({ T: fc.integer({ min: 1, max: 2 * R + 1 }), E: fc.integer({ min: 1, max: W + 3 }), K: fc.integer({ min: 0, max: KC }), seed: fc.nat() })
        .chain((d) => fc.record({ d: fc.constant(d), x: fc.array(fc.constantFrom(...ALPHABET), { minLength: d.T * d.E, maxLength: d.T * d.E }) }));
      fc.assert(fc.property(arb, ({ d, x }) => {
        const { want, got } = both(src, SM80, x, d.T, d.E, d.K, KC);
        expect(got).toEqual(want);
      }), { numRuns: 25, seed: R * 1000 + threads });
    });

  it("i32 rows (the lowest i32 is a value, not 'no pick'): lowered = tile level", () => {
    const src = topkKernel(4, 128, 32, 8, "i32");
    for (const [T, E, K] of [[4, 32, 8], [5, 7, 7], [1, 1, 1], [9, 30, 3]] as const) {
      const x = Array.from({ length: T * E }, (_, i) => [-2147483648, 3, -1, 3, 2147483647][(i * 7) % 5]!);
      const { want, got } = both(src, WGSL, x, T, E, K, 8, "i32");
      expect(got).toEqual(want);
    }
  });

  it("a row with fewer candidates than k: the rest are -inf / -1", () => {
    const { got } = both(topkKernel(4, 128, 16, 4), SM80, [NaN, 1, NaN, 1], 1, 4, 4, 4);
    expect(got.I.slice(0, 4)).toEqual([1, 3, -1, -1]);
    expect(got.V.slice(0, 4)).toEqual([1, 1, -Infinity, -Infinity]);
  });
});
