// Builds a one-block thread-level kernel around lowerGemmMma: A and B copied from global
// into (optionally swizzled) shared tiles, the lowered gemm, the accumulator written back
// to global C through fragmentCoord. Plus the float64 reference and exact test data.
import { type Expr, type Kernel, type Layout, type Stmt, bin, int, load, v } from "../../src/ir/ir.ts";
import { fragmentCoord, fragmentSlots } from "../../src/layout/fragment.ts";
import { sharedIndex, swizzleFor } from "../../src/layout/swizzle.ts";
import { lowerGemmMma } from "../../src/passes/lower-gemm-mma.ts";

export interface Case {
  m: number; n: number; k: number; warpsM: number; warpsN: number;
  transA: boolean; transB: boolean; swizzle: boolean; atype: "bf16" | "f16";
  /** Element offset of each tile in its shared buffer (the "stage offset"). */
  baseA?: number; baseB?: number;
  /** A shared layout for both tiles instead of swizzleFor's choice. */
  layout?: Layout;
  /** Run the gemm this many times in a serial loop (a main loop's register pressure: the
   *  accumulator stays live across iterations). C is then repeat * A * B. */
  repeat?: number;
}

export const caseName = (c: Case) =>
  `${c.atype} ${c.m}x${c.n}x${c.k} warps ${c.warpsM}x${c.warpsN}${c.transA ? " transA" : ""}${c.transB ? " transB" : ""}` +
  `${c.swizzle ? " swizzled" : ""}${c.baseA ? ` baseA ${c.baseA}` : ""}${c.baseB ? ` baseB ${c.baseB}` : ""}`;

export function storedShapes(c: Case) {
  return {
    a: c.transA ? { rows: c.k, cols: c.m } : { rows: c.m, cols: c.k },
    b: c.transB ? { rows: c.n, cols: c.k } : { rows: c.k, cols: c.n },
  };
}

export function buildKernel(c: Case): Kernel {
  const threads = c.warpsM * c.warpsN * 32;
  const { a, b } = storedShapes(c);
  const la = c.layout ?? (c.swizzle ? swizzleFor(a.cols) : undefined);
  const lb = c.layout ?? (c.swizzle ? swizzleFor(b.cols) : undefined);
  const baseA = c.baseA ?? 0, baseB = c.baseB ?? 0;
  const tx = v("tx");
  let counter = 0;
  const fresh = (hint: string) => `${hint}${counter++}`;
  const acc: Layout = { kind: "mma_acc", warpsM: c.warpsM, warpsN: c.warpsN };
  const fshape = { rows: c.m, cols: c.n, threads };
  const slots = fragmentSlots(acc, fshape);

  const lowered = lowerGemmMma({
    a: { buf: "As", base: int(baseA), rows: a.rows, cols: a.cols, layout: la },
    b: { buf: "Bs", base: int(baseB), rows: b.rows, cols: b.cols, layout: lb },
    transA: c.transA, transB: c.transB,
    c: { buf: "acc", rows: c.m, cols: c.n, warpsM: c.warpsM, warpsN: c.warpsN },
    atype: c.atype, threads, tx, fresh,
  });

  const fill = (sh: string, base: number, g: string, s: { rows: number; cols: number }, layout?: Layout): Stmt => {
    const e = fresh("e"), idx = fresh("idx");
    const r = bin("/", v(idx), int(s.cols)), col = bin("%", v(idx), int(s.cols));
    return {
      k: "for", vars: [e], starts: [int(0)], extents: [int(Math.ceil((s.rows * s.cols) / threads))], kind: "serial",
      body: [
        { k: "let", name: idx, dtype: "i32", value: bin("+", bin("*", v(e), int(threads)), tx), mutable: false },
        { k: "if", cond: bin("<", v(idx), int(s.rows * s.cols)), else: [], then: [
          { k: "store", buf: sh, idx: [bin("+", int(base), sharedIndex(layout, s.cols, r, col))], value: load(g, r, col) },
        ] },
      ],
    };
  };
  const writeBack: Stmt[] = Array.from({ length: slots }, (_, s) => {
    const { row, col } = fragmentCoord(acc, fshape, tx, s);
    return { k: "store", buf: "C", idx: [row, col], value: load("acc", int(s)) };
  });
  const zero: Stmt = { k: "for", vars: ["z"], starts: [int(0)], extents: [int(slots)], kind: "unroll",
    body: [{ k: "store", buf: "acc", idx: [v("z")], value: { k: "float", v: 0 } }] };

  const shape = (s: { rows: number; cols: number }): Expr[] => [int(s.rows), int(s.cols)];
  return {
    name: "mma_case",
    params: [
      { name: "A", kind: "tensor", dtype: c.atype, shape: shape(a) },
      { name: "B", kind: "tensor", dtype: c.atype, shape: shape(b) },
      { name: "C", kind: "tensor", dtype: "f32", shape: [int(c.m), int(c.n)], output: true },
    ],
    dims: [], tunables: {}, config: {},
    launch: {
      grid: [int(1)], threads: int(threads), blockVars: ["bx"], level: "thread", threadVar: "tx",
      body: [
        { k: "alloc", buf: { name: "As", scope: "shared", dtype: c.atype, shape: [int(baseA + a.rows * a.cols)], layout: la } },
        { k: "alloc", buf: { name: "Bs", scope: "shared", dtype: c.atype, shape: [int(baseB + b.rows * b.cols)], layout: lb } },
        { k: "alloc", buf: { name: "acc", scope: "local", dtype: "f32", shape: [int(slots)] } },
        ...lowered.allocs,
        zero,
        fill("As", baseA, "A", a, la),
        fill("Bs", baseB, "B", b, lb),
        { k: "barrier" },
        ...(c.repeat ? [{ k: "for", vars: ["rep"], starts: [int(0)], extents: [int(c.repeat)], kind: "serial", body: lowered.body } as Stmt] : lowered.body),
        ...writeBack,
      ],
    },
  };
}

/** Small multiples of 1/8 in [-2, 2]: exact in bf16 and f16, products and sums exact in f32. */
export function exactData(n: number, seed: number): Float64Array {
  let s = seed >>> 0 || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = ((s % 33) - 16) / 8;
  }
  return out;
}

/** C = op(A) * op(B) in float64, from the stored (possibly transposed) operands. */
export function reference(c: Case, A: Float64Array, B: Float64Array): Float64Array {
  const C = new Float64Array(c.m * c.n);
  for (let i = 0; i < c.m; i++)
    for (let j = 0; j < c.n; j++) {
      let s = 0;
      for (let kk = 0; kk < c.k; kk++) {
        const x = c.transA ? A[kk * c.m + i]! : A[i * c.k + kk]!;
        const y = c.transB ? B[j * c.k + kk]! : B[kk * c.n + j]!;
        s += x * y;
      }
      C[i * c.n + j] = s * (c.repeat ?? 1);
    }
  return C;
}
