// Every kernel in dsl-examples/ is a test: it must export a check spec, and its lowered
// (thread-level) form must match the float64 reference on random ragged cases in the
// interpreter. Longer campaigns: `npm run fuzz` (scripts/fuzz-examples.ts).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";

const dir = "dsl-examples";
const files = readdirSync(dir).filter((f) => f.endsWith(".ts")).sort();
// 3 cases a kernel in npm test (its ten-minute budget on two cores); `npm run fuzz` runs 30.
const CASES = Number(process.env.TILEMOE_EXAMPLE_CASES ?? 3);

describe.each(files)("dsl-examples/%s", (f) => {
  const file = join(dir, f);
  it("exports a check spec for every kernel, and each passes in the interpreter", async () => {
    const kernels = parseKernels(file);
    const specs = await loadSpecs(file);
    expect(kernels.length).toBeGreaterThan(0);
    expect(kernels.map((k) => k.name).filter((n) => !specs.has(n)), "kernels without defineCheck").toEqual([]);
    const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
    for (const k of kernels) {
      const r = await checkKernel(k, specs.get(k.name)!, { backendName: "interp", backend, cases: CASES, seed: 20261127, reproduce: `tilemoe check ${file} --kernel ${k.name}` });
      expect({ kernel: k.name, failed: r.failed, failures: r.failures, counterexample: r.counterexample }).toEqual({ kernel: k.name, failed: 0, failures: [], counterexample: undefined });
    }
  });
});
