// `tilemoe tune`, as functions: build a plan folder for one kernel (front end, candidates,
// correctness case, runner plans), run it here when there is a GPU, and ingest results
// into the cache and the report. The CLI (src/cli/tune.ts) only parses flags.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { tmpdir } from "node:os";
import { execa } from "execa";
import type { Kernel, TunableValue } from "../ir/ir.ts";
import { parseKernels } from "../frontend/index.ts";
import { loadSpecs } from "../cli/check.ts";
import { specOnlyDims, withComputedDims } from "../check/run.ts";
import type { CheckSpec } from "../check/spec.ts";
import { NvccNotFoundError, type Arch } from "../driver/nvcc.ts";
import { buildRunner, gpuAvailable, runPlan, writePlan } from "../runtime/cuda.ts";
import { buildCandidates, type Candidate, type CompileFn } from "./candidates.ts";
import { saveEntries, type Warn } from "./cache.ts";
import { dtypesOf, kernelHash, shapeLabel, spaceHash } from "./key.ts";
import { ARCH_LIMITS, limitsFromDevice, type DeviceLimits } from "./limits.ts";
import { checkPlanDir } from "./plan-dir.ts";
import { chooseCheckDims, writeTunePlan, type PlanMeta, type TimingSpec } from "./plan.ts";
import { userError } from "../util/user-error.ts";
import { cacheEntries, ingest, readPlanResults, type TuneOutcome } from "./ingest.ts";
import { formatOutcome, writeReport } from "./report.ts";
import { Progress } from "./progress.ts";

export interface PlanOptions {
  file: string;
  kernel?: string;
  shapes: Record<string, number>[];
  arch: Arch;
  gpus: number;
  budgetS: number;
  timeoutS: number;
  timing: TimingSpec;
  checkShape?: Record<string, number>;
  limits?: DeviceLimits;
  jobs?: number;
  /** Compile and time at most this many candidates (a deterministic sample, default included). */
  maxCandidates?: number;
  /** Configs every sample holds (`--include`, see CandidateOptions.include). */
  include?: Record<string, TunableValue>[];
  /** For tests: a stand-in for nvcc, and its version string. */
  compile?: CompileFn;
  nvccVersion?: string;
  log: (s: string) => void;
  tty?: boolean;
}

export function pickKernel(file: string, name: string | undefined): Kernel {
  const all = parseKernels(file);
  if (!all.length) throw userError(`${file}: no exported T.kernel(...) found`);
  if (!name) {
    if (all.length > 1) throw userError(`${file} has several kernels (${all.map((k) => k.name).join(", ")}); pick one with --kernel`);
    return all[0]!;
  }
  const k = all.find((x) => x.name === name);
  if (!k) throw userError(`${file}: no kernel named '${name}' (kernels: ${all.map((x) => x.name).join(", ")})`);
  return k;
}

export async function nvccVersionString(nvcc = "nvcc"): Promise<string> {
  try {
    const r = await execa(nvcc, ["--version"]);
    return /release [\d.]+, V[\d.]+/.exec(r.stdout)?.[0] ?? r.stdout.trim().split("\n").pop()!;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") throw new NvccNotFoundError();
    throw e;
  }
}

/**
 * A --shape checked and completed: every dim of the kernel, computed ones (the spec's functions,
 * e.g. EH = E * H) filled in. A kernel whose check spec derives inputs from dims of its own
 * (the MoE kernels' routing: sorted ids and block experts from T, E, TOPK, skew) is timed on
 * those derived inputs, so the shape must give them too; random integers there would time
 * another kernel (blocks skipped, two experts read from L2).
 */
export function timingShape(k: Kernel, spec: CheckSpec, s: Record<string, number>): Record<string, number> {
  const text = shapeLabel(s);
  const own = spec.derive ? specOnlyDims(k, spec) : [];
  const extra = Object.keys(s).filter((d) => !k.dims.includes(d) && !own.includes(d));
  if (extra.length) throw userError(`--shape ${text} names ${extra.join(", ")}, not a dim of ${k.name} (dims: ${[...k.dims, ...own].join(", ")})`);
  const lacking = own.filter((d) => s[d] === undefined);
  if (lacking.length)
    throw userError(`--shape ${text} lacks ${lacking.join(", ")}: ${k.name}'s check spec derives its index inputs (routing) from them, and the timing runs on those; give them too (dims: ${[...k.dims, ...own].join(", ")})`);
  const full = withComputedDims(spec, s);
  const missing = k.dims.filter((d) => full[d] === undefined || !Number.isFinite(full[d]));
  if (missing.length) throw userError(`--shape ${text} lacks ${missing.join(", ")} (dims of ${k.name}: ${k.dims.join(", ")})`);
  // Not held to the spec's dimsWhere: it also caps the check's sizes (NB * BS <= 1024).
  return full;
}

/** Builds every candidate and writes the plan folder `dir`. */
export async function preparePlan(dir: string, o: PlanOptions): Promise<PlanMeta> {
  // Said before minutes of nvcc, not after.
  checkPlanDir(dir);
  const k = pickKernel(o.file, o.kernel);
  const spec = (await loadSpecs(o.file)).get(k.name);
  if (!spec) throw userError(`${o.file}: kernel ${k.name} has no check spec; tuning checks every candidate before timing it (export defineCheck({ kernel: "${k.name}", ... }))`);
  if (!o.shapes.length) throw userError(`give at least one --shape (dims of ${k.name}: ${k.dims.join(", ")})`);
  const shapes = o.shapes.map((s) => timingShape(k, spec, s));
  const nvcc = o.nvccVersion ?? (await nvccVersionString());
  const limits = o.limits ?? ARCH_LIMITS[o.arch];
  const checkDims = chooseCheckDims(k, spec, o.checkShape);
  const size = Object.values(k.tunables).reduce((n, v) => n * v.length, 1);
  const progress = new Progress({ label: "compile", total: size, tty: o.tty, write: (s) => o.log(s.replace(/\n$/, "")), every: Math.max(1, Math.ceil(size / 20)) });
  let ready = 0;
  const candidates: Candidate[] = await buildCandidates(k, {
    arch: o.arch, limits, compile: o.compile, concurrency: o.jobs, maxCandidates: o.maxCandidates, include: o.include,
    onProgress: (_d, _t, c) => { if (c.status === "ready") ready++; progress.step(`${c.id} ${c.status} (${ready} ready)`); },
  });
  progress.end();
  const meta = writeTunePlan(dir, {
    file: o.file, k, spec, candidates, shapes, checkDims,
    identity: { kernelHash: kernelHash(k), spaceHash: spaceHash(k), dtypes: dtypesOf(k), nvcc, arch: o.arch },
    timing: o.timing, gpus: o.gpus, budgetS: o.budgetS, timeoutS: o.timeoutS,
    limits: `${limits.source}: ${limits.smemPerBlock} B shared memory, ${limits.regsPerBlock} registers per block`,
  });
  const by = (s: string) => candidates.filter((c) => c.status === s).length;
  o.log(`${k.name}: ${candidates.length} configs -> ${by("ready")} to time, ${by("pruned")} pruned, ${by("duplicate")} duplicates, ${by("compile_error")} failed to compile; correctness case at ${Object.entries(checkDims).map(([n, x]) => `${n}=${x}`).join(",")}`);
  return meta;
}

export interface IngestOptions { cachePath: string; reportDir?: string; log: (s: string) => void; warn: Warn; planDir?: string }

/** Results -> table, cache entries (one per shape with a winner), report files. */
export function ingestResults(path: string, o: IngestOptions): TuneOutcome {
  const { meta, results } = readPlanResults(path, o.planDir);
  const outcome = ingest(meta, results);
  o.log(formatOutcome(outcome));
  const entries = cacheEntries(outcome);
  if (entries.length) {
    saveEntries(o.cachePath, entries, o.warn);
    o.log(`\ncache: ${entries.length} winner${entries.length === 1 ? "" : "s"} written to ${o.cachePath}`);
  } else o.warn("no candidate passed its correctness case and timed: nothing written to the cache");
  if (o.reportDir) o.log(`report: ${writeReport(o.reportDir, outcome).join(", ")}`);
  return outcome;
}

/** The whole sweep on this machine's GPU(s): plan in a scratch folder, run.sh, ingest. */
export async function tuneHere(o: PlanOptions & IngestOptions): Promise<TuneOutcome> {
  const gpu = gpuAvailable();
  if (!gpu.ok) throw userError(`no GPU here (${gpu.reason}); build a plan to carry to a GPU machine with --plan DIR, then --ingest DIR/results.json`);
  const runner = await buildRunner();
  const limits = o.limits ?? (await deviceLimits(runner, o.arch, o.warn));
  mkdirSync(resolve(".cache"), { recursive: true });
  const dir = mkdtempSync(join(resolve(".cache"), "tune-run-"));
  await preparePlan(dir, { ...o, limits });
  o.log(`running ${relative(process.cwd(), dir)}/run.sh`);
  const r = await execa("bash", [join(dir, "run.sh")], { env: { TILEMOE_RUNNER: runner }, stdout: "inherit", stderr: "inherit", reject: false });
  if (r.exitCode !== 0) throw userError(`run.sh failed (exit ${r.exitCode}); the plan is kept in ${dir}`);
  return ingestResults(join(dir, "results.json"), o);
}

/** The device's own shared memory limit, from a runner plan with no cases. */
async function deviceLimits(runner: string, arch: Arch, warn: Warn): Promise<DeviceLimits> {
  const dir = mkdtempSync(join(tmpdir(), "tilemoe-probe-"));
  try {
    writePlan(dir, { cases: [] });
    const res = await runPlan(dir, { runner });
    if (res.device) return limitsFromDevice(arch, res.device);
  } catch (e) {
    warn(`could not read the device's limits (${(e as Error).message.split("\n")[0]}); using the ${arch} table`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return ARCH_LIMITS[arch];
}
