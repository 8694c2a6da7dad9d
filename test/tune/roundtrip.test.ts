// The split flow end to end without a GPU: plan -> run.sh with a fake runner (some
// candidates wrong, crashing, hanging, losing the context) -> results.json -> ingest ->
// cache and report. Also the plan's correctness data, checked independently.
import { execa } from "execa";
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { decode } from "../../src/numeric/dtype.ts";
import { preparePlan, ingestResults } from "../../src/tune/tune.ts";
import { loadCache, lookup } from "../../src/tune/cache.ts";
import { readPlanResults, ingest } from "../../src/tune/ingest.ts";
import { toCsv, toSvg } from "../../src/tune/report.ts";
import type { PlanMeta } from "../../src/tune/plan.ts";
import type { Plan, KernelCase } from "../../src/runtime/plan.ts";
import { FAKE_RUNNER, planOptions, tmp } from "./helpers.ts";
import { mockLibs, runner } from "../runtime/helpers.ts";

const runSh = (dir: string, fake: object, env: Record<string, string> = {}) =>
  execa("bash", [join(dir, "run.sh")], { env: { TILEMOE_RUNNER: FAKE_RUNNER, FAKE_TUNE: JSON.stringify(fake), ...env }, reject: false, all: true });

let dir: string;
let meta: PlanMeta;
beforeAll(async () => {
  dir = tmp("plan");
  meta = await preparePlan(dir, planOptions({ gpus: 2, checkShape: { N: 3001 } }));
}, 120_000);

describe("the plan folder", () => {
  it("holds one runner plan per ready candidate, spread over the GPUs, with modules, runner source and run.sh", () => {
    const ready = meta.candidates.filter((c) => c.status === "ready");
    expect(ready.length).toBe(11);
    expect(readFileSync(join(dir, "candidates.txt"), "utf8").trim().split("\n")).toEqual(ready.map((c, i) => `${c.id} ${i % 2}`));
    for (const f of ["run.sh", "runner/runner.cpp", "runner/plan.h", "tune-meta.json", `modules/${ready[0]!.id}.cubin`]) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(meta.candidates.filter((c) => c.plan)).toHaveLength(11);
    expect(meta.candidates.filter((c) => c.status === "duplicate")).toHaveLength(11);
  });

  it("checks on the given shape against a float64 reference, then times each shape", () => {
    const c = meta.candidates.find((x) => x.config.TB === 256 && x.config.warps === 2 && x.config.unroll === 1)!;
    const plan = JSON.parse(readFileSync(join(dir, c.plan!), "utf8")) as Plan;
    expect(plan.device).toBe(c.gpu);
    const [check, big, small] = plan.cases as KernelCase[];
    expect(plan.cases.map((x) => x.name)).toEqual(["check Y", "time N=1048576", "time N=1000"]);
    expect(check).toMatchObject({ kernel: `scale_${c.id}_kernel`, grid: [Math.ceil(3001 / 256), 1, 1], block: [64, 1, 1], smem: 1024 });
    expect(check!.time).toBeUndefined();
    expect(check!.compare).toMatchObject({ tensor: "Y", file: "../check/Y.ref.f64", dtype: "f64" });
    // Paths are relative to the plan file's folder, as the runner reads them.
    for (const f of [check!.module, (check!.args[0] as { init: { file: string } }).init.file, check!.compare!.file!]) expect(existsSync(join(dir, "plans", f)), f).toBe(true);
    expect(check!.args.at(-1)).toEqual({ i32: 3001 });
    // The reference file is 2x + 1 of the input file, element by element.
    const x = decode("f32", new Uint8Array(readFileSync(join(dir, "check/X.bin"))));
    const want = decode("f64", new Uint8Array(readFileSync(join(dir, "check/Y.ref.f64"))));
    expect(x.length).toBe(3001);
    expect(Array.from(want)).toEqual(Array.from(x, (v) => v * 2 + 1));
    expect(x.some((v) => v !== 0)).toBe(true);
    // Output sentinel: the kernel must overwrite it.
    const y0 = decode("f32", new Uint8Array(readFileSync(join(dir, "check/Y.bin"))));
    expect(Math.min(...y0)).toBeGreaterThanOrEqual(1000);
    expect(big).toMatchObject({ grid: [4096, 1, 1], time: { warmup: 2, reps: 5, rotate: "auto" }, flops: 1 << 20, bytes: 8 << 20 });
    expect(big!.args[0]).toMatchObject({ tensor: "X", shape: [1 << 20], init: { random: { seed: 1, lo: -1, hi: 1 } } });
    expect(big!.args[1]).toMatchObject({ tensor: "Y", init: { zeros: true } });
    expect(small!.grid).toEqual([4, 1, 1]);
  });
});

describe("run.sh with a fake runner, then ingest", () => {
  it("records wrong, crashed, hung and context-losing candidates with their reasons; the fastest correct one wins", async () => {
    const ids = meta.candidates.filter((c) => c.plan).map((c) => c.id);
    const [fastWrong, crash, hang, lost, winner, second] = ids.slice(1);
    const times = Object.fromEntries(ids.map((id, i) => [id, 2 + i]));
    Object.assign(times, { [fastWrong!]: 0.1, [crash!]: 0.2, [hang!]: 0.3, [lost!]: 0.4, [winner!]: 0.5, [second!]: 0.6 });
    const r = await runSh(dir, { times, wrong: [fastWrong], crash: [crash], hang: [hang], lost: [lost] }, { TUNE_TIMEOUT: "6" });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toMatch(/\[11\/11\]/);
    expect(r.all).toMatch(/best 0\.5 ms \(c\d+\)/);

    const { meta: m, results } = readPlanResults(join(dir, "results.json"));
    expect(results.runs).toHaveLength(11);
    expect(new Set(results.runs.map((x) => x.gpu))).toEqual(new Set([0, 1]));
    const o = ingest(m, results);
    for (const s of o.shapes) {
      expect(s.winner?.candidate).toBe(winner);
      const row = (id: string) => s.rows.find((x) => x.candidate === id)!;
      expect(row(fastWrong!)).toMatchObject({ status: "wrong", reason: expect.stringMatching(/Y: 17 of 3000 elements differ/) });
      expect(row(crash!)).toMatchObject({ status: "crash", reason: "runner killed by signal 11" });
      expect(row(hang!)).toMatchObject({ status: "timeout" });
      expect(row(lost!)).toMatchObject({ status: "crash", reason: expect.stringMatching(/ILLEGAL_ADDRESS.*context lost/) });
      expect(row(ids[0]!)).toMatchObject({ status: "ok", isDefault: true, median_ms: 2 });
    }
    expect(o.gpu).toBe("Fake GPU");
    expect(o.counts).toMatchObject({ ok: 7, wrong: 1, crash: 2, timeout: 1, pruned: 2, duplicate: 11 });
    expect(o.counts.error).toBeUndefined();

    const cachePath = join(tmp("cache"), "tune.json");
    const logs: string[] = [];
    ingestResults(join(dir, "results.json"), { cachePath, reportDir: join(dir, "report"), log: (s) => logs.push(s), warn: (w) => logs.push(`warn ${w}`) });
    const text = logs.join("\n");
    expect(text).toMatch(/N=1048576: winner c\d+ \[TB=\d+,warps=\d,unroll=1\] 0\.5000 ms, 4\.00x the default \(2\.0000 ms\)/);
    expect(text).toMatch(/timeout/);
    const cache = loadCache(cachePath, (w) => { throw new Error(w); });
    const entries = Object.values(cache.entries);
    expect(entries).toHaveLength(2);
    const winCfg = m.candidates.find((c) => c.id === winner)!.config;
    expect(entries.every((e) => JSON.stringify(e.config) === JSON.stringify(winCfg) && e.gpu === "Fake GPU" && e.default_ms === 2)).toBe(true);
    const hit = lookup(cache, { kernelHash: m.kernelHash, spaceHash: m.spaceHash, dtypes: m.dtypes, arch: "sm_90a", shape: { N: 900 } })!;
    expect(hit.entry.shape).toEqual({ N: 1000 });
    expect(readdirSync(join(dir, "report")).sort()).toEqual(["tune-scale.csv", "tune-scale.json", "tune-scale.svg"]);
  }, 60_000);

  it("stops starting candidates when the budget is spent and says so", async () => {
    const d2 = tmp("budget");
    await preparePlan(d2, planOptions({ budgetS: 1 }));
    const r = await runSh(d2, { sleep: 0.6 });
    expect(r.exitCode, r.all).toBe(0);
    const { meta: m, results } = readPlanResults(d2);
    const skipped = results.runs.filter((x) => x.skipped);
    expect(skipped.length).toBeGreaterThan(0);
    expect(results.runs.length - skipped.length).toBeGreaterThan(0);
    const o = ingest(m, results);
    expect(o.shapes[0]!.rows.filter((x) => x.status === "skipped")[0]!.reason).toMatch(/budget of 1s spent/);
    expect(o.shapes[0]!.winner).toBeDefined();
  }, 60_000);

  it("falls back to runs/ when results.json is cut short, and reports a run with no device", () => {
    // The first test's folder, its results.json cut short.
    const d3 = tmp("cut");
    cpSync(dir, d3, { recursive: true });
    writeFileSync(join(d3, "results.json"), '{"schema": "tilemoe.tune-results", "runs": [');
    const { meta: m, results } = readPlanResults(join(d3, "results.json"));
    expect(results.runs).toHaveLength(11);
    results.runs[0]!.results = { error: "no CUDA device", cases: [] };
    const o = ingest(m, results);
    expect(o.shapes[0]!.rows.find((x) => x.candidate === results.runs[0]!.candidate)).toMatchObject({ status: "error", reason: "no CUDA device" });
    const csv = toCsv(o).trim().split("\n");
    expect(csv[0]).toBe("shape,candidate,config,status,reason,median_ms,min_ms,tflops,gbps,registers,smem,threads,spills,gpu,default");
    expect(csv).toHaveLength(1 + 2 * m.candidates.length);
    const svg = toSvg(o);
    expect(svg.startsWith("<svg")).toBe(true);
    expect((svg.match(/<rect x=/g) ?? []).length).toBe(o.shapes.flatMap((s) => s.rows).filter((x) => x.status === "ok").length);
  });

  it("writes plans the real runner accepts (driven through a fake libcuda)", async () => {
    const [bin, libs] = await Promise.all([runner(), mockLibs()]);
    const id = meta.candidates.find((c) => c.plan)!.id;
    const out = join(tmp("real"), "r.json");
    const r = await execa(bin, [join(dir, "plans", `${id}.json`), "--out", out], { env: { LD_LIBRARY_PATH: libs }, reject: false, all: true });
    expect(r.exitCode, r.all).toBe(1); // not 3: the plan parsed and its module loaded
    const res = JSON.parse(readFileSync(out, "utf8")) as { cases: { name: string; error?: string }[] };
    expect(res.cases.map((c) => c.name)).toEqual(["check Y", "time N=1048576", "time N=1000"]);
    // The fake driver knows only its own kernels: the error comes after the module was read.
    expect(res.cases[0]!.error).toMatch(/cuModuleGetFunction\(scale_c\d+_kernel\)/);
  }, 120_000);

  it("refuses results of another plan", () => {
    const d4 = tmp("foreign");
    cpSync(dir, d4, { recursive: true });
    const r = JSON.parse(readFileSync(join(d4, "results.json"), "utf8"));
    expect(r.plan).toBe(meta.planId);
    writeFileSync(join(d4, "results.json"), JSON.stringify({ ...r, plan: "0123456789ab" }));
    expect(() => readPlanResults(join(d4, "results.json"))).toThrow(/comes from another plan \(0123456789ab\)/);
  });
});
