// The vocabulary kernel files import as `from "tilemoe"`. It exists for the type checker
// and the editor: tilemoe reads kernel source with ts-morph and never runs it, so every
// function here is a stub that throws if someone calls it at run time.
// (T.kernel alone returns an inert handle, so that importing a kernel file is harmless.)
import type { DType } from "../ir/ir.ts";

export type DTypeName = DType;
export type TunableValue = number | string | boolean;

// ---------------------------------------------------------------- shapes as types

/** `"M, K/8"` -> `[number, number]`: one entry per top-level comma-separated dim
 *  (commas inside `cdiv(K, 128)` do not count). */
export type ShapeOf<S extends string, Depth extends unknown[] = [], Acc extends number[] = [number]> =
  S extends `${infer C}${infer Rest}`
    ? C extends "("
      ? ShapeOf<Rest, [...Depth, 0], Acc>
      : C extends ")"
        ? ShapeOf<Rest, Depth extends [unknown, ...infer D] ? D : [], Acc>
        : C extends ","
          ? Depth extends [] ? ShapeOf<Rest, Depth, [...Acc, number]> : ShapeOf<Rest, Depth, Acc>
          : ShapeOf<Rest, Depth, Acc>
    : Acc;

/** `acc[i][j]` indexing: one `[]` per dim, a number at the bottom. */
export type NdIndex<Sh extends readonly unknown[]> =
  Sh extends readonly [unknown]
    ? { [i: number]: number }
    : Sh extends readonly [unknown, ...infer Rest]
      ? { [i: number]: NdIndex<Rest> }
      : { [i: number]: number };

type Numbers<Sh extends readonly unknown[]> = { -readonly [K in keyof Sh]: number };

/** A rectangular window of a tensor or buffer, made by `.tile(offsets, extents)`. */
export interface TileView<D extends DType, Sh extends readonly unknown[]> {
  readonly dtype: D;
  readonly extents: Numbers<Sh>;
  readonly __tile: true;
}

interface Tileable<D extends DType, Sh extends readonly unknown[]> {
  readonly dtype: D;
  readonly shape: Numbers<Sh>;
  /** A window `[offsets[i], offsets[i] + extents[i])` per dim; out-of-range elements read
   *  as 0 and are not written (ragged edges are masked). */
  tile(offsets: Numbers<Sh>, extents: Numbers<Sh>): TileView<D, Sh>;
}

/** The row gather of a 2-d tensor (a T.copy source): `X.rows(idx, col, width)` is the
 *  [idx length, width] tile whose row i is X[idx[i]][col .. col + width); rows idx[i]
 *  outside X read as 0. idx is a 1-d i32 T.shared or T.local buffer. */
interface RowGather<D extends DType, Sh extends readonly unknown[]> {
  rows(idx: Buf<"i32", readonly [unknown]>, col: number, width: number): Sh extends readonly [unknown, unknown] ? TileView<D, Sh> : never;
}

/** A global tensor param: `Tensor<"M, K", "bf16">`. `A.shape` destructures into the
 *  symbolic dims; `A[i][j]` reads or writes one element. */
export type Tensor<S extends string, D extends DType> = Tileable<D, ShapeOf<S>> & NdIndex<ShapeOf<S>> & RowGather<D, ShapeOf<S>>;

/** A shared, fragment or local buffer made by T.shared / T.fragment / T.local. */
export type Buf<D extends DType, Sh extends readonly unknown[]> = Tileable<D, Sh> & NdIndex<Sh>;

/** Anything a tile op accepts as a region: a whole tensor or buffer, or a tile view. */
export type Region = { readonly dtype: DType };

/** Options of T.dequant (docs/QUANT.md). */
export interface DequantOptions {
  format: "u4" | "s4" | "u8" | "s8" | "e4m3";
  /** Slot order of the values in a word (default "linear"); "interleaved" is the fast one, "mma"
   *  (4-bit) the lane-owned words of the mma.sync decode loop (docs/QUANT.md). */
  order?: "linear" | "interleaved" | "mma";
  /** [N, groups] tensor of scales (bf16, f16 or f32). Without it dst = round(q - zero): the
   *  unscaled weights, exact for integer formats with a literal integer zero point; the kernel
   *  then applies the group scale to f32 partial sums itself ("Group scales on partial sums"). */
  scales?: Region;
  /** A number (8: symmetric u4), a [N, groups] float tensor, or a [N, cdiv(groups, 8)] u32
   *  tensor of packed u4 zero points (8 groups per word, linear order). Default 0. */
  zeros?: Region | number;
  /** Values per scale along K (a multiple of the values per word), or "channel". Needed with
   *  scales or a zero-point tensor only. */
  group?: number | "channel";
  /** Global [row, k] coordinates of dst[0][0]; k must be a multiple of the values per word. */
  at: [number, number];
  /** Columns at or past K read as 0 (ragged K). */
  K: number;
}

export interface KernelOptions {
  /** Tunable space: name -> allowed values; the first value is the default. */
  tune?: Record<string, readonly TunableValue[]>;
  /** Constraint over the tunables; configs for which it is false are never built. */
  where?: (config: T.Config) => boolean;
}

/** What `T.kernel` returns: an inert marker. The compiler reads the source instead. */
export interface KernelHandle { readonly kind: "tilemoe.kernel"; readonly name: string }

function notRun(): never {
  throw new Error("tilemoe kernels are compiled, not run: build them with `tilemoe build`");
}

// ---------------------------------------------------------------- the vocabulary

export namespace T {
  // Scalar param types: all plain numbers to TypeScript, distinct dtypes to tilemoe.
  export type f32 = number;
  export type f64 = number;
  export type f16 = number;
  export type bf16 = number;
  export type i8 = number;
  export type u8 = number;
  export type i16 = number;
  export type u16 = number;
  export type i32 = number;
  export type u32 = number;
  export type i64 = number;
  export type bool = boolean;
  /** The tunables param of a kernel; destructure the names declared in `tune`. */
  export type Config = Record<string, number>;

  export function kernel(opts: KernelOptions, fn: (...args: never[]) => void): KernelHandle {
    void opts;
    return { kind: "tilemoe.kernel", name: fn.name };
  }

  /** The kernel body: a grid of blocks of `threads` threads; the callback gets the block
   *  indices (x, y, z). Exactly one launch per kernel. `minBlocks`: blocks an SM to keep resident
   *  (the CUDA build's __launch_bounds__ second argument, nvcc's register cap; 1 asks for nothing). */
  export function launch(
    grid: [number] | [number, number] | [number, number, number],
    opts: { threads: number; minBlocks?: number },
    body: (bx: number, by: number, bz: number) => void,
  ): void {
    void grid; void opts; void body;
    notRun();
  }

  export function shared<const S extends readonly number[], D extends DType>(shape: S, dtype: D): Buf<D, S> {
    void shape; void dtype;
    return notRun();
  }
  export function fragment<const S extends readonly number[], D extends DType>(shape: S, dtype: D): Buf<D, S> {
    void shape; void dtype;
    return notRun();
  }
  export function local<const S extends readonly number[], D extends DType>(shape: S, dtype: D): Buf<D, S> {
    void shape; void dtype;
    return notRun();
  }

  export function copy(src: Region, dst: Region): void { void src; void dst; notRun(); }
  /** c += op(a) * op(b), products accumulated in f32. */
  export function gemm(a: Region, b: Region, c: Region, opts?: { transA?: boolean; transB?: boolean }): void {
    void a; void b; void c; void opts;
    notRun();
  }
  /** Dequantizes packed weights: src is a [rows, words] u32 tile, dst a [rows, words * per]
   *  bf16/f16 shared (or local) tile; per = 8 for u4/s4, 4 for u8/s8/e4m3. Element (r, c)
   *  of dst = (q - zero) * scale for the value q at (r, c), with scale = scales[at[0] + r][g]
   *  and zero likewise (g = floor((at[1] + c) / group), or 0 for group "channel"); columns
   *  with at[1] + c >= K are 0. See docs/QUANT.md. */
  export function dequant(src: Region, dst: Region, opts: DequantOptions): void { void src; void dst; void opts; notRun(); }
  export function clear(dst: Region): void { void dst; notRun(); }

  // MoE vocabulary (gating, routing). src/dst are shared or fragment tiles (or tile views).
  /** dst = op over `axis` of src (default: the last axis); with accumulate, dst = op(dst, that).
   *  The reduced extent may be a run-time value; the others are compile-time. */
  export function reduce(src: Region, dst: Region, opts: { op: "sum" | "max" | "min"; axis?: number; accumulate?: boolean }): void {
    void src; void dst; void opts; notRun();
  }
  /** For each row of a [R, N] tile: the `k` largest elements in order, values and indices.
   *  Ties: the lower index comes first. NaNs are never picked; picks past the row's end give
   *  -Infinity and index -1. */
  export function topk(src: Region, values: Region, indices: Region, k: number): void {
    void src; void values; void indices; void k; notRun();
  }
  /** Prefix sums along the last axis (in place allowed); exclusive: dst[0] = 0. */
  export function cumsum(src: Region, dst: Region, opts?: { exclusive?: boolean }): void { void src; void dst; void opts; notRun(); }
  /** Atomically element += value on a global tensor or shared tile; returns the old value. */
  export function atomicAdd(element: number, value: number): number { void element; void value; return notRun(); }
  export function atomicMax(element: number, value: number): number { void element; void value; return notRun(); }
  export function atomicMin(element: number, value: number): number { void element; void value; return notRun(); }
  export function fill(dst: Region, value: number): void { void dst; void value; notRun(); }

  export function serial(n: number): Iterable<number>;
  export function serial(start: number, end: number): Iterable<number>;
  export function serial(a: number, b?: number): Iterable<number> { void a; void b; return notRun(); }
  export function unroll(n: number): Iterable<number>;
  export function unroll(start: number, end: number): Iterable<number>;
  export function unroll(a: number, b?: number): Iterable<number> { void a; void b; return notRun(); }
  /** A serial loop whose copies are software-pipelined `stages` deep. */
  export function pipelined(n: number, stages: number): Iterable<number> { void n; void stages; return notRun(); }
  /** Elementwise work over a tile: iterations are independent. */
  export function parallel(n0: number): Iterable<number>;
  export function parallel(n0: number, n1: number): Iterable<[number, number]>;
  export function parallel(n0: number, n1: number, n2: number): Iterable<[number, number, number]>;
  export function parallel(...n: number[]): Iterable<unknown> { void n; return notRun(); }

  /** Integer ceil(a / b). */
  export function cdiv(a: number, b: number): number { void a; void b; return notRun(); }
  export function min(a: number, b: number): number { void a; void b; return notRun(); }
  export function max(a: number, b: number): number { void a; void b; return notRun(); }
  export function cast(x: number, dtype: DType): number { void x; void dtype; return notRun(); }
  // Math functions that JavaScript's Math lacks.
  export function exp2(x: number): number { void x; return notRun(); }
  export function rsqrt(x: number): number { void x; return notRun(); }
  export function erf(x: number): number { void x; return notRun(); }
  export function sigmoid(x: number): number { void x; return notRun(); }
  export function fma(a: number, b: number, c: number): number { void a; void b; void c; return notRun(); }
}
