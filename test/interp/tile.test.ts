import { describe, expect, it } from "vitest";
import { flt, int, v, type Stmt } from "../../src/ir/ir.ts";
import { gemmRef } from "../../src/check/reference.ts";
import { runKernel } from "../../src/interp/index.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import { firstMismatch, tolerance } from "../../src/numeric/tolerance.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { alloc, e, kernel, loop, op, region, store, tensor } from "./helpers.ts";

// C[M, N] (f32 or bf16) = A[M, K] * B[N, K]^T, 32x32 tiles, K in steps of 16, ragged edges masked by copy.
function tileGemm(outDtype: "f32" | "bf16") {
  const body: Stmt[] = [
    alloc("As", "shared", "bf16", [32, 16]),
    alloc("Bs", "shared", "bf16", [32, 16]),
    alloc("acc", "fragment", "f32", [32, 32]),
    { k: "fill", dst: region("acc", [0, 0], [32, 32]), value: flt(0) },
    loop("k", 0, op("cdiv", "K", 16), [
      { k: "copy", src: region("A", [op("*", "by", 32), op("*", "k", 16)], [32, 16]), dst: region("As", [0, 0], [32, 16]) },
      { k: "copy", src: region("B", [op("*", "bx", 32), op("*", "k", 16)], [32, 16]), dst: region("Bs", [0, 0], [32, 16]) },
      { k: "gemm", a: region("As", [0, 0], [32, 16]), b: region("Bs", [0, 0], [32, 16]), c: region("acc", [0, 0], [32, 32]), transA: false, transB: true },
    ]),
    { k: "copy", src: region("acc", [0, 0], [32, 32]), dst: region("C", [op("*", "by", 32), op("*", "bx", 32)], [32, 32]) },
  ];
  return kernel("tile_gemm", [tensor("A", "bf16", ["M", "K"]), tensor("B", "bf16", ["N", "K"]), tensor("C", outDtype, ["M", "N"], true)],
    ["M", "K", "N"], { grid: [op("cdiv", "N", 32), op("cdiv", "M", 32)], threads: int(128), body });
}

describe("tile level", () => {
  it("GEMM with ragged edges matches gemmRef (f32 and bf16 outputs)", () => {
    for (const out of ["f32", "bf16"] as const) {
      for (const [M, N, K, seed] of [[50, 40, 37, 1], [32, 32, 16, 2], [1, 70, 5, 3]] as const) {
        const A = randomTensor("bf16", [M, K], seed), B = randomTensor("bf16", [N, K], seed + 100);
        const C = zeros(out, [M, N]);
        C.data.fill(NaN); // every element must be written
        runKernel(tileGemm(out), { tensors: { A, B, C } });
        const ref = gemmRef(A, B, { transB: true });
        expect(firstMismatch(C.data, ref.data, tolerance(out, K))).toBeUndefined();
        for (const x of C.data) expect(roundTo(out, x)).toBe(x);
      }
    }
  });

  it("a wrong gemm orientation is caught by the comparison (the test can fail)", () => {
    const k = tileGemm("f32");
    const wrong = JSON.parse(JSON.stringify(k));
    wrong.launch.body[4].body[2].transB = false;
    wrong.launch.body[4].body[2].b = region("Bs", [0, 0], [16, 32]);
    const A = randomTensor("bf16", [32, 16], 7), B = randomTensor("bf16", [32, 16], 8), C = zeros("f32", [32, 32]);
    runKernel(wrong, { tensors: { A, B, C } });
    expect(firstMismatch(C.data, gemmRef(A, B, { transB: true }).data, tolerance("f32", 16))).toBeDefined();
  });

  it("parallel loops, typed lets and stores: relu(x) * 2 with bf16 rounding on store", () => {
    const body: Stmt[] = [
      loop("i", 0, "N", [
        { k: "let", name: "x", dtype: "f32", value: { k: "load", buf: "X", idx: [v("i")] }, mutable: false },
        store("Y", ["i"], op("*", { k: "bin", op: "max", a: v("x"), b: flt(0) }, flt(2.5))),
      ], "parallel"),
    ];
    const k = kernel("relu2", [tensor("X", "bf16", ["N"]), tensor("Y", "bf16", ["N"], true)], ["N"], { body });
    const X = randomTensor("bf16", [100], 3, -4, 4), Y = zeros("bf16", [100]);
    runKernel(k, { tensors: { X, Y } });
    for (let i = 0; i < 100; i++) expect(Y.data[i]).toBe(roundTo("bf16", Math.fround(Math.max(X.data[i]!, 0) * 2.5)));
  });

  it("i32 arithmetic wraps and int division truncates; f32 math is rounded", () => {
    const body: Stmt[] = [
      { k: "let", name: "a", dtype: "i32", value: op("*", { k: "load", buf: "X", idx: [int(0)] }, 65536), mutable: false },
      store("Y", [0], op("*", "a", 65536)),
      store("Y", [1], op("/", int(-7), int(2))),
      store("Y", [2], op("%", int(-7), int(2))),
      { k: "let", name: "f", dtype: "f32", value: flt(1), mutable: true },
      { k: "assign", name: "f", value: op("/", "f", flt(3)) },
      store("F", [0], v("f")),
      store("F", [1], { k: "call", fn: "exp", args: [flt(1)] }),
    ];
    const k = kernel("ints", [tensor("X", "i32", [1]), tensor("Y", "i32", [3], true), tensor("F", "f64", [2], true)], [], { body });
    const X = { dtype: "i32" as const, shape: [1], data: new Float64Array([3]) };
    const Y = zeros("i32", [3]), F = zeros("f64", [2]);
    runKernel(k, { tensors: { X, Y, F } });
    expect([...Y.data]).toEqual([Math.imul(3 * 65536, 65536), -3, -1]);
    expect(F.data[0]).toBe(Math.fround(1 / 3));
    expect(F.data[1]).toBe(Math.fround(Math.E));
  });

  it("bindDims reports shape mismatches naming the param and dim", () => {
    const k = tileGemm("f32");
    const A = randomTensor("bf16", [32, 16], 1), B = randomTensor("bf16", [32, 8], 2), C = zeros("f32", [32, 32]);
    expect(() => runKernel(k, { tensors: { A, B, C } })).toThrow(/dim K is 16 from A \(dim 1\) but 8 from B \(dim 1\)/);
    const k2 = kernel("packed", [tensor("W", "u8", ["N", op("/", "K", 2)]), tensor("X", "bf16", ["K"])], ["N", "K"], { body: [] });
    expect(() => runKernel(k2, { tensors: { W: zeros("u8", [4, 3]), X: zeros("bf16", [8]) } })).toThrow(/'W' dim 1 is 3, expected K \/ 2 = 4/);
    expect(() => runKernel(k2, { tensors: { W: zeros("u8", [4, 3]), X: zeros("bf16", [7]) } })).toThrow(/K = 7 is not a multiple of 2/);
  });

  it("out-of-bounds scalar loads are reported with kernel, block and statement", () => {
    const body: Stmt[] = [store("Y", [e(0)], { k: "load", buf: "X", idx: [op("+", "N", 0)] })];
    const k = kernel("oob", [tensor("X", "f32", ["N"]), tensor("Y", "f32", ["N"], true)], ["N"], { body });
    expect(() => runKernel(k, { tensors: { X: zeros("f32", [4]), Y: zeros("f32", [4]) } }))
      .toThrow(/kernel oob, block \(0\): index \[4\] is out of bounds of global X\[4\]\n  at: store Y\[0\] = X\[N \+ 0\]/);
  });
});
