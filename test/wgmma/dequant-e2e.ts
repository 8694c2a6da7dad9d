// Shared by the register-A dequant wgmma tests: one DSL example at one config and target, run
// lowered (race, wait and register checks on) and at tile level on the same inputs drawn from
// the example's check spec.
import { join } from "node:path";
import { loadSpecs } from "../../src/cli/check.ts";
import type { Kernel, TunableValue } from "../../src/ir/ir.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import type { Target } from "../../src/passes/pipeline.ts";
import { specVsLowered } from "../passes/harness.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");

export function example(file: string, name: string): Kernel {
  const k = parseKernels(join(dir, file)).find((x) => x.name === name);
  if (!k) throw new Error(`${file}: no kernel ${name}`);
  return k;
}

/** Max relative error of the lowered kernel against its tile-level form. */
export async function e2e(file: string, name: string, config: Record<string, TunableValue>, target: Target,
  dims: Record<string, number>, seed = 1): Promise<{ err: number; lowered: Kernel }> {
  const k = example(file, name);
  const spec = (await loadSpecs(join(dir, file))).get(name);
  if (!spec) throw new Error(`${file}: no check spec for ${name}`);
  return specVsLowered(k, spec, config, target, dims, seed);
}
