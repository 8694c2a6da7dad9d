// A hand-built thread-level tiled GEMM, C[M, N] = A[M, K] * B[K, N] (f32 accumulation),
// written as the lowering passes would write it: shared tiles loaded with masked vcopy,
// barriers around the inner product, per-thread accumulators in a local array,
// masked stores of the ragged edge. Stands in for the pass pipeline's output.
import { type DType, type Expr, type Kernel, type Stmt, add, bin, int, load, mul, v } from "../../src/ir/ir.ts";

const lt = (a: Expr, b: Expr) => bin("<", a, b);
const and = (a: Expr, b: Expr) => bin("&&", a, b);
const letI = (name: string, value: Expr): Stmt => ({ k: "let", name, dtype: "i32", value, mutable: false });
const forS = (name: string, extent: Expr, body: Stmt[], kind: "serial" | "unroll" = "serial"): Stmt =>
  ({ k: "for", vars: [name], starts: [int(0)], extents: [extent], kind, body });

export interface GemmOpts { ab: DType; c: DType; BM: number; BN: number; BK: number; threads: number }

export function gemmKernel(o: GemmOpts): Kernel {
  const { BM, BN, BK, threads } = o;
  const slots = (BM * BN) / threads;
  const tx = v("tx"), bx = v("bx"), by = v("by");
  const M = v("M"), N = v("N"), K = v("K");
  const row0 = mul(by, int(BM)), col0 = mul(bx, int(BN));

  // Each thread copies ceil(tile / threads) elements of each tile.
  const tileLoad = (dst: string, rows: number, cols: number, gr: (r: Expr) => Expr, gc: (c: Expr) => Expr,
    src: string, rLim: Expr, cLim: Expr): Stmt =>
    forS(`${dst}_i`, int(Math.ceil((rows * cols) / threads)), [
      letI(`${dst}_e`, add(mul(v(`${dst}_i`), int(threads)), tx)),
      { k: "if", cond: lt(v(`${dst}_e`), int(rows * cols)), else: [], then: [
        letI(`${dst}_r`, bin("/", v(`${dst}_e`), int(cols))),
        letI(`${dst}_c`, bin("%", v(`${dst}_e`), int(cols))),
        { k: "vcopy", lanes: 1,
          dst: { buf: dst, idx: [v(`${dst}_e`)] },
          src: { buf: src, idx: [gr(v(`${dst}_r`)), gc(v(`${dst}_c`))] },
          pred: and(lt(gr(v(`${dst}_r`)), rLim), lt(gc(v(`${dst}_c`)), cLim)) },
      ] },
    ], "unroll");

  const kk = v("kk"), s = v("s");
  const e = add(mul(s, int(threads)), tx);
  const r = bin("/", e, int(BN)), c = bin("%", e, int(BN));
  const body: Stmt[] = [
    { k: "alloc", buf: { name: "As", scope: "shared", dtype: o.ab, shape: [int(BM * BK)] } },
    { k: "alloc", buf: { name: "Bs", scope: "shared", dtype: o.ab, shape: [int(BK * BN)] } },
    { k: "alloc", buf: { name: "acc", scope: "local", dtype: "f32", shape: [int(slots)] } },
    forS("s", int(slots), [{ k: "store", buf: "acc", idx: [s], value: { k: "float", v: 0 } }], "unroll"),
    forS("k", bin("cdiv", K, int(BK)), [
      tileLoad("As", BM, BK, (x) => add(row0, x), (x) => add(mul(v("k"), int(BK)), x), "A", M, K),
      tileLoad("Bs", BK, BN, (x) => add(mul(v("k"), int(BK)), x), (x) => add(col0, x), "B", K, N),
      { k: "barrier" },
      forS("s", int(slots), [
        forS("kk", int(BK), [{
          k: "store", buf: "acc", idx: [s],
          value: add(load("acc", s), mul(
            { k: "cast", dtype: "f32", a: load("As", add(mul(r, int(BK)), kk)) },
            { k: "cast", dtype: "f32", a: load("Bs", add(mul(kk, int(BN)), c)) })),
        }], "unroll"),
      ], "unroll"),
      { k: "barrier" },
    ]),
    forS("s", int(slots), [{
      k: "if", cond: and(lt(add(row0, r), M), lt(add(col0, c), N)), else: [],
      then: [{ k: "store", buf: "C", idx: [add(row0, r), add(col0, c)], value: { k: "cast", dtype: o.c, a: load("acc", s) } }],
    }], "unroll"),
  ];
  return {
    name: "gemm",
    params: [
      { name: "A", kind: "tensor", dtype: o.ab, shape: [M, K] },
      { name: "B", kind: "tensor", dtype: o.ab, shape: [K, N] },
      { name: "C", kind: "tensor", dtype: o.c, shape: [M, N], output: true },
    ],
    dims: ["M", "N", "K"],
    tunables: {},
    config: {},
    launch: {
      grid: [bin("cdiv", N, int(BN)), bin("cdiv", M, int(BM))],
      threads: int(threads), blockVars: ["bx", "by"], level: "thread", threadVar: "tx", body,
    },
  };
}
