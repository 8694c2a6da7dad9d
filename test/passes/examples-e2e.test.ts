// Every DSL example, lowered for every target kind, computes what its tile-level form
// computes (interpreter, random ragged shapes, configs drawn from the kernel's space).
import { join } from "node:path";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseKernels } from "../../src/frontend/index.ts";
import type { Kernel, TunableValue } from "../../src/ir/ir.ts";
import { resolveConfig } from "../../src/passes/specialize.ts";
import { SM80, WGSL, type Target } from "../../src/passes/pipeline.ts";
import { maxRelErr, runBoth } from "./harness.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");
const targets: Target[] = [SM80, WGSL, { arch: "sm_80", mma: true, cpAsync: false }];

/** Every config of the space that satisfies `where`. */
function configs(k: Kernel): Record<string, TunableValue>[] {
  let out: Record<string, TunableValue>[] = [{}];
  for (const [n, vals] of Object.entries(k.tunables)) out = out.flatMap((c) => vals.map((x) => ({ ...c, [n]: x })));
  return out.filter((c) => { try { resolveConfig(k, c); return true; } catch { return false; } });
}

const kernels = readdirSync(dir).filter((f) => f.endsWith(".ts")).flatMap((f) => parseKernels(join(dir, f)));

describe("DSL examples lowered end to end", () => {
  for (const k of kernels) {
    it(k.name, () => {
      const space = configs(k);
      expect(space.length).toBeGreaterThan(0);
      fc.assert(fc.property(
        fc.constantFrom(...space), fc.constantFrom(...targets),
        fc.record(Object.fromEntries(k.dims.map((d) => [d, fc.integer({ min: 1, max: 80 })]))), fc.nat(1000),
        (config, target, dims, seed) => {
          const r = runBoth(k, config, target, { dims: dims as Record<string, number>, seed });
          expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
        }), { numRuns: 10 });
    });
  }
});
