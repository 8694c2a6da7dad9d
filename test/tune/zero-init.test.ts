// An output that a kernel only accumulates into (split-K) must start at zero in the tuner's
// correctness case too, as the generated launcher guarantees; else every such candidate is
// "wrong" (seen on an H200: all split-K w4a16 candidates of a sweep were discarded).
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { preparePlan } from "../../src/tune/tune.ts";
import type { KernelCase, Plan } from "../../src/runtime/plan.ts";
import { planOptions, tmp } from "./helpers.ts";

describe("tune plan for a kernel that accumulates into its output", () => {
  it("starts the correctness case's output at zero", async () => {
    const dir = tmp("accum");
    const meta = await preparePlan(dir, planOptions({ file: resolve(import.meta.dirname, "fixtures/accum.ts"), shapes: [{ N: 4096 }] }));
    const c = meta.candidates.find((x) => x.plan)!;
    const plan = JSON.parse(readFileSync(join(dir, c.plan!), "utf8")) as Plan;
    const check = plan.cases[0] as KernelCase;
    expect(check.name).toBe("check Y");
    expect(check.args.find((a) => "tensor" in a && a.tensor === "Y")).toMatchObject({ init: { zeros: true }, output: true });
    expect(check.args.find((a) => "tensor" in a && a.tensor === "X")).toMatchObject({ init: { file: "../check/X.bin" } });
  }, 120_000);
});
