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
import { caseArbitrary } from "../../src/check/run.ts";
import { SM80, WGSL, type Target } from "../../src/passes/pipeline.ts";
import { specVsLowered } from "./harness.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");
const targets: Target[] = [SM80, WGSL, { arch: "sm_80", mma: true, cpAsync: false }];
// npm test draws a few configs a kernel (its ten-minute budget on two cores); `npm run fuzz`
// multiplies the draws (TILEMOE_FUZZ) for a long campaign.
const FUZZ = Math.max(1, Number.parseInt(process.env.TILEMOE_FUZZ ?? "1", 10) || 1);

describe("DSL examples lowered end to end", () => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".ts")).sort()) {
    it(f, async () => {
      const specs = await loadSpecs(join(dir, f));
      const kernels = parseKernels(join(dir, f));
      // Up to 4 drawn cases a kernel, about 8 a file, 2 a kernel at least (npm test's budget
      // on two cores; each run draws anew, and `npm run fuzz` multiplies them by 10).
      const numRuns = Math.max(2, Math.min(4, Math.floor(8 / kernels.length))) * FUZZ;
      for (const k of kernels) {
        const spec = specs.get(k.name);
        if (!spec) continue; // test/check/examples.test.ts insists on specs
        // f32 rounding differs between the forms only by order; kernels whose lowering folds a
        // bias into the sums (the partial-sum int4 kernels: 128 + q against q - 8) carry terms
        // up to their spec's magnitude (143 / 4 there), and their difference grows with it.
        const tol = 1e-5 * Math.max(1, (spec.magnitude ?? 1) / 4);
        // The checker's own case drawing (dims, configs, seeds), dims capped for speed.
        fc.assert(fc.property(
          caseArbitrary(k, spec, { cap: 80 }), fc.constantFrom(...targets),
          ({ config, dims, dataSeed: seed }, target) => {
            const { err } = specVsLowered(k, spec, config, target, dims, seed);
            expect(err, `${k.name} ${JSON.stringify({ config, target, dims, seed })}`).toBeLessThan(tol);
          }), { numRuns });
      }
    });
  }
});
