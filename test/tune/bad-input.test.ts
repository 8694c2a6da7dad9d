// Damaged tune files and paths: a user error or a warning naming the file, never an internal error.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { ingestResults, preparePlan } from "../../src/tune/tune.ts";
import { saveEntries } from "../../src/tune/cache.ts";
import { exportWinners } from "../../src/tune/export.ts";
import { tuneCommand } from "../../src/cli/tune.ts";
import type { PlanMeta } from "../../src/tune/plan.ts";
import { planOptions, tmp } from "./helpers.ts";

let dir: string;
let meta: PlanMeta;
beforeAll(async () => {
  dir = tmp("bad-plan");
  meta = await preparePlan(dir, planOptions());
}, 120_000);

const quiet = () => ({ log: () => {}, warn: vi.fn() });

describe("damaged tune files", () => {
  it("results.json with malformed run records: those candidates are 'not run', with a warning (was: internal error reading null.candidate)", () => {
    const ready = meta.candidates.filter((c) => c.status === "ready");
    const good = { candidate: ready[0]!.id, exit: 0, results: { cases: [{ name: "check y", status: "ok" }, { name: `time ${meta.shapes[0]!.label}`, status: "ok", median_ms: 0.5 }] } };
    writeFileSync(join(dir, "results.json"), JSON.stringify({ schema: "tilemoe.tune-results", version: 1, plan: meta.planId,
      runs: [null, 7, { candidate: ready[1]!.id, results: { bogus: 1 } }, { candidate: ready[2]!.id, results: { cases: [null] } }, good] }));
    const o = quiet();
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const out = ingestResults(join(dir, "results.json"), { cachePath: join(tmp("bad-cache"), "tune.json"), ...o });
    expect(warn.mock.calls.flat().join("\n")).toMatch(/results\.json: 4 malformed run records ignored \(their candidates count as not run\)/);
    warn.mockRestore();
    const rows = out.shapes[0]!.rows;
    expect(rows.find((r) => r.candidate === ready[1]!.id)!.status).toBe("not run");
    expect(out.shapes[0]!.winner?.candidate).toBe(ready[0]!.id);
  });

  it("a tune-meta.json of the right schema without its lists is 'damaged', not an internal error", () => {
    const d = tmp("bad-meta");
    writeFileSync(join(d, "tune-meta.json"), JSON.stringify({ schema: "tilemoe.tune-plan", version: 1, planId: "x" }));
    writeFileSync(join(d, "results.json"), JSON.stringify({ schema: "tilemoe.tune-results", version: 1, runs: [] }));
    expect(() => ingestResults(join(d, "results.json"), { cachePath: join(d, "c.json"), ...quiet() })).toThrow(/tune-meta\.json is damaged \(no candidates or shapes list\)/);
  });

  it("a folder as the cache or the export file is a user error (was: internal error EISDIR on the rename)", async () => {
    const d = tmp("cache-dir");
    mkdirSync(join(d, "tune.json"));
    expect(() => saveEntries(join(d, "tune.json"), [], () => {})).toThrow(/tune cache .*tune\.json is a folder; give the path of a JSON file/);
    const cache = join(d, "real.json");
    writeFileSync(cache, readFileSync("bench/tuned.json"));
    expect(() => exportWinners(cache, join(d, "tune.json"), { warn: () => {} })).toThrow(/is a folder/);
    await expect(tuneCommand(["--ingest", join(dir, "results.json"), "--cache", join(d, "tune.json")])).rejects.toThrow(/^--cache .*tune\.json is a folder/);
    const blocked = join(d, "a-file");
    writeFileSync(blocked, "mine");
    expect(() => exportWinners(cache, join(blocked, "x.json"), { warn: () => {} })).toThrow(/cannot write the tune cache .*a-file\/x\.json: a file stands where a folder is needed/);
    expect(readFileSync(blocked, "utf8")).toBe("mine");
  });
});
