import { describe, expect, it } from "vitest";
import { add, bin, flt, int, load, mul, v, type Expr, type Kernel } from "../../src/ir/ir.ts";
import { printExpr, printKernel, printStmt } from "../../src/ir/print.ts";

const sub = (a: Expr, b: Expr) => bin("-", a, b);

describe("printExpr", () => {
  it.each([
    [sub(v("a"), sub(v("b"), v("c"))), "a - (b - c)"],
    [sub(sub(v("a"), v("b")), v("c")), "a - b - c"],
    [mul(add(v("a"), v("b")), v("c")), "(a + b) * c"],
    [add(v("a"), mul(v("b"), v("c"))), "a + b * c"],
    [bin("<<", v("a"), add(v("b"), v("c"))), "a << b + c"],
    [add(bin("<<", v("a"), v("b")), v("c")), "(a << b) + c"],
    [bin("&&", bin("||", v("a"), v("b")), v("c")), "(a || b) && c"],
    [bin("min", add(v("a"), int(1)), v("b")), "min(a + 1, b)"],
    [{ k: "un", op: "neg", a: add(v("a"), int(1)) }, "-(a + 1)"],
    [{ k: "un", op: "not", a: v("p") }, "!(p)"],
    [{ k: "cast", dtype: "bf16", a: load("A", v("i"), int(0)) }, "cast<bf16>(A[i, 0])"],
    [{ k: "select", cond: bin("<", v("i"), v("M")), a: flt(1), b: flt(-0.5) }, "select(i < M, 1.0, -0.5)"],
    [{ k: "call", fn: "fma", args: [v("a"), v("b"), v("c")] }, "fma(a, b, c)"],
  ] as [Expr, string][])("%s", (e, text) => expect(printExpr(e)).toBe(text));

  it("prints literals with dtype suffixes and special floats", () => {
    expect(printExpr(int(-3))).toBe("-3");
    expect(printExpr(int(12, "u32"))).toBe("12_u32");
    expect(printExpr(int(1, "bool"))).toBe("true");
    expect(printExpr(int(0, "bool"))).toBe("false");
    expect(printExpr(flt(1e-7))).toBe("1e-7");
    expect(printExpr(flt(-0))).toBe("-0.0");
    expect(printExpr(flt(2, "f16"))).toBe("2.0_f16");
    expect(printExpr(flt(-Infinity, "bf16"))).toBe("-inf_bf16");
    expect(printExpr(flt(NaN))).toBe("nan");
  });
});

describe("printKernel", () => {
  it("prints header, launch and nested blocks", () => {
    const k: Kernel = {
      name: "gemm",
      params: [
        { name: "A", kind: "tensor", dtype: "bf16", shape: [v("M"), v("K")], align: 16 },
        { name: "C", kind: "tensor", dtype: "f32", shape: [v("M")], output: true },
        { name: "alpha", kind: "scalar", dtype: "f32" },
      ],
      dims: ["M", "K"],
      tunables: { BM: [64, 128], act: ["silu"], swz: [true, false] },
      where: bin("<=", mul(v("BM"), int(2)), int(256)),
      config: { BM: 64 },
      smemBytes: 1024,
      launch: {
        grid: [bin("cdiv", v("M"), v("BM"))], threads: int(128), blockVars: ["bx"], level: "tile",
        body: [
          { k: "alloc", buf: { name: "acc", scope: "fragment", dtype: "f32", shape: [int(64), int(64)], layout: { kind: "mma_acc", warpsM: 2, warpsN: 2 } } },
          { k: "for", vars: ["k"], starts: [int(0)], extents: [v("K")], kind: "pipelined", stages: 3, body: [
            { k: "if", cond: bin("<", v("k"), int(4)), then: [{ k: "let", name: "x", dtype: "f32", value: flt(1), mutable: true }], else: [] },
          ] },
          { k: "gemm", a: { buf: "A", offsets: [int(0), int(0)], extents: [int(64), int(16)] }, b: { buf: "A", offsets: [int(0), int(0)], extents: [int(64), int(16)] },
            c: { buf: "acc", offsets: [int(0), int(0)], extents: [int(64), int(64)] }, transA: false, transB: true },
        ],
      },
    };
    expect(printKernel(k)).toBe(
      `kernel gemm(A: global bf16[M, K] align 16, C: global f32[M] out, alpha: f32)
  dims M, K
  tune BM = [64, 128], act = ["silu"], swz = [true, false]
  where BM * 2 <= 256
  config BM = 64
  smem 1024
launch tile grid [cdiv(M, BM)] threads 128 blocks [bx] {
  alloc acc: fragment f32[64, 64] layout mma_acc(2, 2)
  for k in pipelined(0, K) stages 3 {
    if (k < 4) {
      var x: f32 = 1.0
    }
  }
  gemm A[0 : +64, 0 : +16], A[0 : +64, 0 : +16] -> acc[0 : +64, 0 : +64] transB
}
`);
  });

  it("prints thread-level intrinsics", () => {
    expect(printStmt({ k: "cp_async", dst: { buf: "As", idx: [mul(v("tx"), int(8))] }, src: { buf: "A", idx: [v("r"), v("c")] }, bytes: 16, pred: int(1, "bool") }, 1))
      .toBe("  cp.async As[tx * 8] <- A[r, c] bytes 16 if (true)");
    expect(printStmt({ k: "ldmatrix", dst: { buf: "af", idx: [int(0)] }, addr: { buf: "As", idx: [v("a")] }, num: 2, trans: true }))
      .toBe("ldmatrix.x2.trans af[0] <- As[a]");
    expect(printStmt({ k: "mma", atype: "bf16", d: { buf: "acc", idx: [int(4)] }, a: { buf: "af", idx: [int(0)] }, b: { buf: "bf", idx: [int(0)] }, c: { buf: "acc", idx: [int(4)] } }))
      .toBe("mma.bf16 acc[4] = af[0] * bf[0] + acc[4]");
  });
});
