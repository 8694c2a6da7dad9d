// The hand-written thread-level kernels the CUDA tests emit and compile (IR text in kernels/).
import { readFileSync } from "node:fs";
import type { Kernel } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";

export const KERNELS = ["copy2d", "rowsum", "mma16x8", "epilogue", "warp_reduce", "dequant_gemm", "dequant_gemm_mma", "dequant_gemm_partial", "gather_rows", "topk"] as const;

export function loadKernel(name: string): Kernel {
  const url = new URL(`./kernels/${name}.ir`, import.meta.url);
  return parseKernel(readFileSync(url, "utf8"), `test/cuda/kernels/${name}.ir`);
}

export const nvccWarning = (have: boolean, what: string) => {
  if (!have) console.warn(`SKIPPED ${what}: nvcc not found on PATH (install the CUDA toolkit to run these tests)`);
};
