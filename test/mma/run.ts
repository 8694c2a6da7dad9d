// Runs a harness kernel and returns C. One place to switch executors.
import type { Kernel } from "../../src/ir/ir.ts";
import { simulate } from "./sim.ts";

export function runKernel(k: Kernel, inputs: Record<string, Float64Array>): Float64Array {
  return simulate(k, inputs).globals.get("C")!;
}
