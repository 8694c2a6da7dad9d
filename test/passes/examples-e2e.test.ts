// Every DSL example, lowered for each target kind (sm_80 with and without cp.async, WGSL:
// mma and scalar gemm paths), computes what its tile-level form computes in the
// interpreter, on inputs drawn from the example's own check spec. (test/check/examples.test.ts
// compares the sm_80 lowering against float64 references; this one isolates the passes.)
import { join } from "node:path";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseKernels } from "../../src/frontend/index.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { caseArbitrary, makeInputs } from "../../src/check/run.ts";
import { runKernel } from "../../src/interp/index.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";
import { SM80, WGSL, type Target } from "../../src/passes/pipeline.ts";
import { lowerChecked, maxRelErr, tileLevel } from "./harness.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");
const targets: Target[] = [SM80, WGSL, { arch: "sm_80", mma: true, cpAsync: false }];

const clone = (t: Record<string, TensorValue>) => Object.fromEntries(Object.entries(t).map(([n, x]) => [n, { ...x, data: x.data.slice() }]));

describe("DSL examples lowered end to end", () => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".ts")).sort()) {
    it(f, async () => {
      const specs = await loadSpecs(join(dir, f));
      for (const k of parseKernels(join(dir, f))) {
        const spec = specs.get(k.name);
        if (!spec) continue; // test/check/examples.test.ts insists on specs
        // The checker's own case drawing (dims, configs, seeds), dims capped for speed.
        fc.assert(fc.property(
          caseArbitrary(k, spec, { cap: 80 }), fc.constantFrom(...targets),
          ({ config, dims, dataSeed: seed }, target) => {
            const tile = tileLevel(k, config, target);
            const thread = lowerChecked(k, config, target);
            const { tensors, scalars } = makeInputs(tile, spec, { dims, config, dataSeed: seed });
            const a = clone(tensors), b = clone(tensors);
            runKernel(tile, { tensors: a, scalars });
            runKernel(thread, { tensors: b, scalars }, { raceCheck: true });
            const outs = tile.params.filter((p) => p.output).map((p) => p.name);
            expect(maxRelErr(outs, a, b), `${k.name} ${JSON.stringify({ config, target, dims, seed })}`).toBeLessThan(1e-5);
          }), { numRuns: 8 });
      }
    });
  }
});
