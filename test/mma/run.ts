// Runs a harness kernel through the project's interpreter (src/interp/, which reads the PTX
// fragment layouts independently of the lowering) and returns C.
import type { Kernel } from "../../src/ir/ir.ts";
import { runKernel as interp } from "../../src/interp/index.ts";

export function runKernel(k: Kernel, inputs: Record<string, Float64Array>): Float64Array {
  const tensors = Object.fromEntries(k.params.filter((p) => p.kind === "tensor").map((p) => {
    const shape = (p.shape ?? []).map((e) => { if (e.k !== "int") throw new Error("harness shapes are constant"); return e.v; });
    const data = inputs[p.name] ? Float64Array.from(inputs[p.name]!) : new Float64Array(shape.reduce((a, b) => a * b, 1));
    return [p.name, { dtype: p.dtype, shape, data }];
  }));
  interp(k, { tensors });
  return tensors["C"]!.data;
}
