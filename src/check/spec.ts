// How a kernel file says what its kernels must compute: a plain float64 reference and the
// input domain the checker draws from. Imported by kernel files as `from "tilemoe/check"`;
// unlike kernel bodies this code does run (in `tilemoe check`), so it stays ordinary
// TypeScript over Float64Arrays, independent of the compiler.
import type { DType } from "../ir/ir.ts";
import type { TensorValue } from "../numeric/tensor.ts";

export type { TensorValue } from "../numeric/tensor.ts";
export * as ref from "./reference.ts";

/** An inclusive integer range [lo, hi] for a symbolic dim, or an explicit list of values,
 *  or a function of the other dims (drawn first): a dim that is a product of others, like
 *  the rows E * 2N of stacked expert weights declared flat. */
export type DimDomain = readonly [number, number] | { values: readonly number[] } | ((dims: Record<string, number>) => number);

export interface InputDomain {
  /** Values drawn uniformly in [lo, hi) (floats, rounded to the dtype) or [lo, hi] (ints). */
  lo: number;
  hi: number;
}

export interface CheckSpec {
  readonly kind: "tilemoe.check";
  /** The exported kernel this spec checks (its function name). */
  kernel: string;
  /** Domain of each symbolic dim for random cases (interpreter-sized; GPU runs may scale).
   *  Names that are not dims of the kernel are drawn too (for the reference, `derive` and
   *  computed dims: e.g. the expert count behind a flattened weight). */
  dims: Record<string, DimDomain>;
  /** Optional constraint between dims (e.g. K % 8 == 0 for packed weights). */
  dimsWhere?: (dims: Record<string, number>) => boolean;
  /** Input value domains by param name; unspecified tensors draw from [-1, 1). */
  inputs?: Record<string, InputDomain>;
  /** Scalar params: domain to draw from. */
  scalars?: Record<string, InputDomain>;
  /** Inputs that must be consistent with one another or with the dims (routing tables:
   *  sorted pair ids and the expert of each block): computed from the dims and a generator
   *  seeded by the case's data seed, replacing the drawn values of the tensors and scalars
   *  it names (tensor values are rounded to the param's dtype). */
  derive?: (dims: Record<string, number>, rand: () => number) => {
    tensors?: Record<string, ArrayLike<number>>;
    scalars?: Record<string, number>;
  };
  /** Initial contents of outputs the kernel accumulates into (atomics), instead of the
   *  sentinel pattern; the reference computes the result from this start. */
  outputs?: Record<string, { fill: number }>;
  /** Expected outputs, in float64, from the (already dtype-rounded) inputs. */
  reference: (args: Record<string, TensorValue>, scalars: Record<string, number>, dims: Record<string, number>) =>
    Record<string, Float64Array>;
  /** Length of the longest f32-accumulated sum behind one output element (sets the
   *  tolerance); 1 for elementwise kernels. */
  reduction?: (dims: Record<string, number>) => number;
  /** Bound on |a_i * b_i| in that sum (default: product of input magnitudes). */
  magnitude?: number;
}

export function defineCheck(spec: Omit<CheckSpec, "kind">): CheckSpec {
  return { kind: "tilemoe.check", ...spec };
}

export function isCheckSpec(x: unknown): x is CheckSpec {
  return typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "tilemoe.check";
}

/** dtype of an output as declared by the kernel, for the tolerance model. */
export type OutputTypes = Record<string, DType>;
