import type { DType } from "../ir/ir.ts";

/** A tensor on the CPU: row-major values, each already representable in dtype. */
export interface TensorValue { dtype: DType; shape: number[]; data: Float64Array }

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function zeros(dtype: DType, shape: number[]): TensorValue {
  return { dtype, shape: [...shape], data: new Float64Array(numel(shape)) };
}
