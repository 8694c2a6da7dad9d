// Kernel code means what its TypeScript means, on every backend: the fixtures under kernels/
// compute integer floor and ceiling division at every sign (int_division.ts) and Math.round /
// floor / ceil of halves, near-halves and specials (rounding.ts), checked against TypeScript's
// own results on the interpreter (tile level and lowered) and on WebGPU; on the GPU machine
// `tilemoe check FILE --backend cuda` runs the same specs. Before: Math.floor(a / b) truncated
// (-7 / 2 gave -3), T.cdiv was (a + b - 1) / b on the GPU, and Math.round took negative halves
// away from zero in the interpreter and on WebGPU (-2.5 gave -3; TypeScript says -2); also NaN
// through max / min (nan_minmax.ts), float -> int casts (float_to_int.ts: saturating, our rule, as
// TypeScript has no casts) and Math.pow's signs on WebGPU (pow_signs.ts).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { backendFor } from "../../src/check/backends.ts";
import { checkKernel } from "../../src/check/run.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { gpuIt } from "../wgsl/gpu.ts";

async function check(fixture: string, name: "interp" | "webgpu", level: "tile" | "thread" = "thread") {
  const file = join(import.meta.dirname, "kernels", `${fixture}.ts`);
  const [k] = parseKernels(file);
  const spec = (await loadSpecs(file)).get(fixture)!;
  const backend = await backendFor(name, { level, arch: "sm_80" });
  const r = await checkKernel(k!, spec, { backendName: name, backend, cases: 25, seed: 11, reproduce: "test" });
  expect(r.failures).toEqual([]);
  expect(r.passed).toBe(25);
}

describe("kernel code computes what TypeScript computes", () => {
  for (const fixture of ["int_division", "rounding", "nan_minmax", "float_to_int", "pow_signs"]) {
    it(`${fixture}: on the interpreter, tile level and lowered`, async () => {
      await check(fixture, "interp", "tile");
      await check(fixture, "interp", "thread");
    });
    gpuIt(`${fixture}: on WebGPU`, () => check(fixture, "webgpu"));
  }
});
