// Writes the lowered dsl-examples/gemm.ts kernels (sm_90a, three configs) as .cu files for
// check_gemm.py on the GPU machine:
//   npx tsx test/cuda/gpu/emit_gemm.ts .cache/gpu   # then, there: python3 test/cuda/gpu/check_gemm.py .cache/gpu
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseKernels } from "../../../src/frontend/index.ts";
import { lower, SM90A } from "../../../src/passes/pipeline.ts";
import { emitCuda } from "../../../src/codegen/cuda/emit.ts";
const dir = process.argv[2] ?? ".cache/gpu";
mkdirSync(dir, { recursive: true });
const ks = parseKernels(new URL("../../../dsl-examples/gemm.ts", import.meta.url).pathname);
const cfgs: [string, Record<string, number>][] = [["d", {}], ["big", { BM: 128, BN: 128, BK: 32, stages: 3, warps: 8 }], ["wide", { BM: 64, BN: 256, BK: 64, stages: 4, warps: 8 }]];
for (const k of ks) for (const [tag, c] of cfgs) {
  const name = `${k.name}_${tag}`;
  const out = emitCuda(lower(k, c, SM90A), { name });
  writeFileSync(join(dir, `${name}.cu`), out.cu);
}
