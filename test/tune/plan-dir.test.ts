// `tilemoe tune --plan DIR` on a folder that already exists: a replan clears only what a plan
// holds, and a folder of anything else is refused before any compiling (it used to be deleted
// whole: `--plan .` would have removed the user's working tree).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { preparePlan } from "../../src/tune/tune.ts";
import { planOptions, tmp } from "./helpers.ts";

describe("the plan folder", () => {
  it("refuses a non-empty folder that is not a plan, before compiling, and leaves it as it was", async () => {
    const dir = tmp("plan-user");
    writeFileSync(join(dir, "notes.md"), "mine");
    mkdirSync(join(dir, "src"));
    const compiled: string[] = [];
    const o = planOptions({ compile: async () => { compiled.push("x"); throw new Error("compiled"); } });
    await expect(preparePlan(dir, o)).rejects.toThrow(/--plan .*: the folder is not empty and is not a tune plan \(it holds notes\.md, src\).*give a new or empty folder/);
    expect(compiled).toEqual([]);
    expect(readFileSync(join(dir, "notes.md"), "utf8")).toBe("mine");
    expect(existsSync(join(dir, "src"))).toBe(true);
  });

  it("refuses a file", async () => {
    const f = join(tmp("plan-file"), "plan");
    writeFileSync(f, "mine");
    await expect(preparePlan(f, planOptions())).rejects.toThrow(/--plan .*plan: a file of that name exists/);
    expect(readFileSync(f, "utf8")).toBe("mine");
  });

  it("replans into an earlier plan's folder, keeping a file the user put there", async () => {
    const dir = tmp("plan-again");
    await preparePlan(dir, planOptions());
    writeFileSync(join(dir, "results.json"), "{}");
    writeFileSync(join(dir, "README.txt"), "mine");
    writeFileSync(join(dir, "modules", "stale.cubin"), "old");
    const meta = await preparePlan(dir, planOptions());
    expect(JSON.parse(readFileSync(join(dir, "tune-meta.json"), "utf8")).planId).toBe(meta.planId);
    expect(existsSync(join(dir, "results.json"))).toBe(false);
    expect(existsSync(join(dir, "modules", "stale.cubin"))).toBe(false);
    expect(readFileSync(join(dir, "README.txt"), "utf8")).toBe("mine");
  });
});
