// Every DSL example whose sm_90a lowering uses wgmma computes, in the interpreter (race and
// missing-wait checks on), what its tile-level form computes, on inputs drawn from the
// example's own check spec and over configs of its own space.
import { join } from "node:path";
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseKernels } from "../../src/frontend/index.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { makeInputs } from "../../src/check/run.ts";
import type { DimDomain } from "../../src/check/spec.ts";
import type { Kernel, TunableValue } from "../../src/ir/ir.ts";
import { walkStmts } from "../../src/ir/expr.ts";
import { runKernel } from "../../src/interp/index.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";
import { resolveConfig } from "../../src/passes/specialize.ts";
import { SM90A } from "../../src/passes/pipeline.ts";
import { lowerChecked, maxRelErr, tileLevel } from "../passes/harness.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");

function configs(k: Kernel): Record<string, TunableValue>[] {
  let out: Record<string, TunableValue>[] = [{}];
  for (const [n, vals] of Object.entries(k.tunables)) out = out.flatMap((c) => vals.map((x) => ({ ...c, [n]: x })));
  return out.filter((c) => { try { resolveConfig(k, c); return true; } catch { return false; } });
}
const usesWgmma = (k: Kernel) => { let w = false; walkStmts(k.launch.body, (s) => { if (s.k === "wgmma") w = true; }); return w; };
const dimArb = (d: DimDomain) => (Array.isArray(d) ? fc.integer({ min: d[0], max: Math.min(d[1], 80) }) : fc.constantFrom(...(d as { values: readonly number[] }).values));
/** Drawn dims, then the computed ones (function domains), as the checker does. */
const dimsArb = (dims: Record<string, DimDomain>) => {
  const drawn = Object.entries(dims).filter(([, d]) => typeof d !== "function");
  const computed = Object.entries(dims).filter(([, d]) => typeof d === "function") as [string, (x: Record<string, number>) => number][];
  return fc.record(Object.fromEntries(drawn.map(([n, d]) => [n, dimArb(d)]))).map((x) => {
    const all: Record<string, number> = { ...x };
    for (const [n, f] of computed) all[n] = f(all);
    return all;
  });
};
const clone = (t: Record<string, TensorValue>) => Object.fromEntries(Object.entries(t).map(([n, x]) => [n, { ...x, data: x.data.slice() }]));

describe("DSL examples lowered for sm_90a (wgmma) in the interpreter", () => {
  let seen = 0;
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".ts")).sort()) {
    it(f, async () => {
      const specs = await loadSpecs(join(dir, f));
      for (const k of parseKernels(join(dir, f))) {
        const spec = specs.get(k.name);
        if (!spec) continue;
        // Up to 16 wgmma configs spread over the space (lowering each of a few hundred configs
        // only to ask whether it takes wgmma cost most of this test's time).
        const all = configs(k), step = Math.max(1, Math.floor(all.length / 64));
        const space: Record<string, TunableValue>[] = [];
        for (let i = 0; i < all.length && space.length < 16; i += step) if (usesWgmma(lowerChecked(k, all[i]!, SM90A))) space.push(all[i]!);
        if (space.length === 0) continue;
        seen++;
        fc.assert(fc.property(
          fc.constantFrom(...space),
          dimsArb(spec.dims), fc.nat(1000),
          (config, dims, seed) => {
            fc.pre(!spec.dimsWhere || spec.dimsWhere(dims as Record<string, number>));
            const tile = tileLevel(k, config, SM90A);
            const thread = lowerChecked(k, config, SM90A);
            const { tensors, scalars } = makeInputs(tile, spec, { dims: dims as Record<string, number>, config, dataSeed: seed });
            const a = clone(tensors), b = clone(tensors);
            runKernel(tile, { tensors: a, scalars });
            runKernel(thread, { tensors: b, scalars }, { raceCheck: true });
            const outs = tile.params.filter((p) => p.output).map((p) => p.name);
            expect(maxRelErr(outs, a, b), `${k.name} ${JSON.stringify({ config, dims, seed })}`).toBeLessThan(1e-5);
          }), { numRuns: 3 });
      }
    }, 300_000);
  }
  it("covers the gemm examples", () => expect(seen).toBeGreaterThanOrEqual(3));
});
