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
import { makeInputs } from "../../src/check/run.ts";
import type { DimDomain } from "../../src/check/spec.ts";
import type { Kernel, TunableValue } from "../../src/ir/ir.ts";
import { runKernel } from "../../src/interp/index.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";
import { resolveConfig } from "../../src/passes/specialize.ts";
import { SM80, WGSL, type Target } from "../../src/passes/pipeline.ts";
import { lowerChecked, maxRelErr, tileLevel } from "./harness.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");
const targets: Target[] = [SM80, WGSL, { arch: "sm_80", mma: true, cpAsync: false }];

/** Every config of the space that satisfies `where`. */
function configs(k: Kernel): Record<string, TunableValue>[] {
  let out: Record<string, TunableValue>[] = [{}];
  for (const [n, vals] of Object.entries(k.tunables)) out = out.flatMap((c) => vals.map((x) => ({ ...c, [n]: x })));
  return out.filter((c) => { try { resolveConfig(k, c); return true; } catch { return false; } });
}

const dimArb = (d: DimDomain) => (Array.isArray(d) ? fc.integer({ min: d[0], max: Math.min(d[1], 80) }) : fc.constantFrom(...(d as { values: readonly number[] }).values));
const clone = (t: Record<string, TensorValue>) => Object.fromEntries(Object.entries(t).map(([n, x]) => [n, { ...x, data: x.data.slice() }]));

describe("DSL examples lowered end to end", () => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".ts")).sort()) {
    it(f, async () => {
      const specs = await loadSpecs(join(dir, f));
      for (const k of parseKernels(join(dir, f))) {
        const spec = specs.get(k.name);
        if (!spec) continue; // test/check/examples.test.ts insists on specs
        const space = configs(k);
        expect(space.length).toBeGreaterThan(0);
        fc.assert(fc.property(
          fc.constantFrom(...space), fc.constantFrom(...targets),
          fc.record(Object.fromEntries(Object.entries(spec.dims).map(([n, d]) => [n, dimArb(d)]))), fc.nat(1000),
          (config, target, dims, seed) => {
            fc.pre(!spec.dimsWhere || spec.dimsWhere(dims as Record<string, number>));
            const tile = tileLevel(k, config, target);
            const thread = lowerChecked(k, config, target);
            const { tensors, scalars } = makeInputs(tile, spec, { dims: dims as Record<string, number>, config, dataSeed: seed });
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
