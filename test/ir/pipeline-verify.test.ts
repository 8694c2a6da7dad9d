// The verifier between passes: every dsl-example, lowered for each target with its default
// config, must verify clean after every pass, and its IR text must be a parse/print fixed point.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { formatDiagnostic, type Kernel } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { verifyKernel } from "../../src/ir/verify.ts";
import { lower, SM80, WGSL } from "../../src/passes/pipeline.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");
const kernels = readdirSync(dir).filter((f) => f.endsWith(".ts")).flatMap((f) => parseKernels(join(dir, f)));

function problems(stage: string, k: Kernel): string[] {
  const out = verifyKernel(k).filter((d) => d.severity === "error").map((d) => `${stage}: ${formatDiagnostic(d)}`);
  const text = printKernel(k);
  if (printKernel(parseKernel(text)) !== text) out.push(`${stage}: IR text is not a parse/print fixed point`);
  return out;
}

describe("verifier between passes", () => {
  it("finds the examples", () => expect(kernels.length).toBeGreaterThan(0));

  it.each(kernels.flatMap((k) => [SM80, WGSL].map((t) => [k.name, t.arch, k, t] as const)))("%s for %s", (_n, _a, k, target) => {
    const found = problems("frontend", k);
    const config = Object.fromEntries(Object.entries(k.tunables).map(([n, vals]) => [n, vals[0]!]));
    lower(k, config, target, (stage, out) => found.push(...problems(stage, out)));
    expect(found).toEqual([]);
  });
});
