// reduce, scan, topk, atomic and dequant, built as IR objects.
import { describe, expect, it } from "vitest";
import { flt, int, v, type Stmt } from "../../src/ir/ir.ts";
import { runKernel } from "../../src/interp/index.ts";
import { dequantWord } from "../../src/quant/format.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { zeros, type TensorValue } from "../../src/numeric/tensor.ts";
import { alloc, kernel, region, tensor } from "./helpers.ts";

const T = (dtype: TensorValue["dtype"], shape: number[], xs: number[]): TensorValue => ({ dtype, shape, data: Float64Array.from(xs) });

describe("tile-level reduce / scan / topk", () => {
  it("reduce sum over the last axis, max over the first with accumulate", () => {
    const body: Stmt[] = [
      alloc("S", "fragment", "f32", [2, 3]), alloc("R", "fragment", "f32", [2]), alloc("M", "fragment", "f32", [3]),
      { k: "copy", src: region("X", [0, 0], [2, 3]), dst: region("S", [0, 0], [2, 3]) },
      { k: "reduce", op: "sum", src: region("S", [0, 0], [2, 3]), dst: region("R", [0], [2]), axis: 1, accumulate: false },
      { k: "fill", dst: region("M", [0], [3]), value: flt(2.5) },
      { k: "reduce", op: "max", src: region("S", [0, 0], [2, 3]), dst: region("M", [0], [3]), axis: 0, accumulate: true },
      { k: "copy", src: region("R", [0], [2]), dst: region("Y", [0], [2]) },
      { k: "copy", src: region("M", [0], [3]), dst: region("Y", [2], [3]) },
    ];
    const k = kernel("red", [tensor("X", "f32", [2, 3]), tensor("Y", "f32", [5], true)], [], { body });
    const Y = zeros("f32", [5]);
    runKernel(k, { tensors: { X: T("f32", [2, 3], [1, 2, 3, -4, 5, 1]), Y } });
    expect([...Y.data]).toEqual([6, 2, 2.5, 5, 3]);
  });

  it("scan inclusive and exclusive along the last axis", () => {
    const body: Stmt[] = [
      { k: "scan", op: "sum", src: region("X", [0, 0], [2, 3]), dst: region("Y", [0, 0], [2, 3]), exclusive: false },
      { k: "scan", op: "sum", src: region("X", [0, 0], [2, 3]), dst: region("Z", [0, 0], [2, 3]), exclusive: true },
    ];
    const k = kernel("scan", [tensor("X", "i32", [2, 3]), tensor("Y", "i32", [2, 3], true), tensor("Z", "i32", [2, 3], true)], [], { body });
    const Y = zeros("i32", [2, 3]), Z = zeros("i32", [2, 3]);
    runKernel(k, { tensors: { X: T("i32", [2, 3], [1, 2, 3, 4, 5, 6]), Y, Z } });
    expect([...Y.data]).toEqual([1, 3, 6, 4, 9, 15]);
    expect([...Z.data]).toEqual([0, 1, 3, 0, 4, 9]);
  });

  it("topk: larger first, ties by lower index, NaN never picked, missing picks are -inf / -1", () => {
    const body: Stmt[] = [
      { k: "topk", src: region("X", [0, 0], [2, 4]), values: region("V", [0, 0], [2, 4]), indices: region("I", [0, 0], [2, 4]), count: v("k") },
    ];
    const k = kernel("topk", [tensor("X", "f32", [2, 4]), tensor("V", "f32", [2, 4], true), tensor("I", "i32", [2, 4], true),
      { name: "k", kind: "scalar", dtype: "i32" }], [], { body });
    const V = T("f32", [2, 4], Array(8).fill(9)), I = T("i32", [2, 4], Array(8).fill(9));
    runKernel(k, { tensors: { X: T("f32", [2, 4], [1, 3, 3, 2, NaN, 0, NaN, NaN]), V, I }, scalars: { k: 3 } });
    expect([...V.data]).toEqual([3, 3, 2, 9, 0, -Infinity, -Infinity, 9]);
    expect([...I.data]).toEqual([1, 2, 3, 9, 1, -1, -1, 9]);
    expect(() => runKernel(k, { tensors: { X: T("f32", [2, 4], Array(8).fill(0)), V, I }, scalars: { k: 5 } })).toThrow(/count 5 exceeds/);
  });
});

describe("atomic and dequant", () => {
  it("atomic add with result at tile level; atomics from all threads of a block do not race", () => {
    const tile = kernel("hist", [tensor("B", "i32", [4]), tensor("H", "i32", [4], true), tensor("O", "i32", [4], true)], [], {
      body: [{ k: "for", vars: ["i"], starts: [int(0)], extents: [int(4)], kind: "serial", body: [
        { k: "atomic", op: "add", buf: "H", idx: [{ k: "load", buf: "B", idx: [v("i")] }], value: int(1), result: "old" },
        { k: "store", buf: "O", idx: [v("i")], value: v("old") },
      ] }],
    });
    const H = zeros("i32", [4]), O = zeros("i32", [4]);
    runKernel(tile, { tensors: { B: T("i32", [4], [2, 0, 2, 2]), H, O } });
    expect([...H.data]).toEqual([1, 0, 3, 0]);
    expect([...O.data]).toEqual([0, 0, 1, 2]);
    const thread = kernel("amax", [tensor("Y", "f32", [1], true)], [], {
      level: "thread", threadVar: "tx", threads: int(64),
      body: [
        alloc("S", "shared", "f32", [1]),
        { k: "if", cond: { k: "bin", op: "==", a: v("tx"), b: int(0) }, then: [{ k: "store", buf: "S", idx: [int(0)], value: flt(-1) }], else: [] },
        { k: "barrier" },
        { k: "atomic", op: "max", buf: "S", idx: [int(0)], value: { k: "cast", dtype: "f32", a: v("tx") } },
        { k: "barrier" },
        { k: "if", cond: { k: "bin", op: "==", a: v("tx"), b: int(5) }, then: [{ k: "store", buf: "Y", idx: [int(0)], value: { k: "load", buf: "S", idx: [int(0)] } }], else: [] },
      ],
    });
    const Y = zeros("f32", [1]);
    runKernel(thread, { tensors: { Y } });
    expect(Y.data[0]).toBe(63);
  });

  it("dequant writes the values src/quant/format.ts defines", () => {
    const k = kernel("dq", [tensor("W", "u32", [1]), tensor("Y", "bf16", [8], true)], [], {
      body: [
        alloc("r", "local", "bf16", [8]),
        { k: "dequant", format: "u4", order: "linear", dst: { buf: "r", idx: [int(0)] }, word: { k: "load", buf: "W", idx: [int(0)] }, scale: flt(0.37), zero: flt(8) },
        { k: "for", vars: ["i"], starts: [int(0)], extents: [int(8)], kind: "serial", body: [{ k: "store", buf: "Y", idx: [v("i")], value: { k: "load", buf: "r", idx: [v("i")] } }] },
      ],
    });
    const Y = zeros("bf16", [8]);
    const word = 0x9f3a51c7;
    runKernel(k, { tensors: { W: T("u32", [1], [word]), Y } });
    expect([...Y.data]).toEqual(dequantWord("u4", "linear", word, 8, Math.fround(0.37), "bf16"));
    expect(new Set(Y.data).size).toBeGreaterThan(4);
    expect(roundTo("bf16", Y.data[0]!)).toBe(Y.data[0]);
  });

  it("a statement the interpreter does not know is an error, not a silent skip", () => {
    const k = kernel("unk", [tensor("Y", "f32", [1], true)], [], { body: [{ k: "bogus" } as unknown as Stmt] });
    expect(() => runKernel(k, { tensors: { Y: zeros("f32", [1]) } })).toThrow(/statement 'bogus' is not supported/);
  });
});
