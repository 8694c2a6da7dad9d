// The split flow's second half: the plan's metadata plus the runs' results -> one row per
// candidate and shape, the winner of each shape (the fastest candidate whose correctness
// case passed), and the cache entries that record them.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { CaseResult, DeviceInfo, Results } from "../runtime/plan.ts";
import type { CacheEntry } from "./cache.ts";
import { shapeBucket } from "./key.ts";
import { configKey, type Config } from "./space.ts";
import { PLAN_SCHEMA, PLAN_VERSION, type CandidateMeta, type PlanMeta, type TuneShape } from "./plan.ts";
import { userError } from "../util/user-error.ts";

export const RESULTS_SCHEMA = "tilemoe.tune-results";

export interface RunRecord {
  candidate: string;
  gpu?: number;
  exit?: number;
  seconds?: number;
  results?: Results | null;
  skipped?: string;
}

export interface ResultsFile { schema: string; version: number; /** The plan's id (PlanMeta.planId). */ plan?: string; runs: RunRecord[] }

export type RowStatus = "ok" | "wrong" | "crash" | "timeout" | "error" | "skipped" | "not run"
  | "empty grid" | "pruned" | "duplicate" | "compile_error";

export interface Row {
  candidate: string;
  config: Config;
  shape: string;
  status: RowStatus;
  reason?: string;
  median_ms?: number;
  min_ms?: number;
  tflops?: number;
  gbps?: number;
  registers?: number;
  smem?: number;
  threads?: number;
  spills?: number;
  gpu?: number;
  isDefault?: boolean;
}

export interface ShapeOutcome { shape: TuneShape; rows: Row[]; winner?: Row; defaultRow?: Row }

export interface TuneOutcome {
  meta: PlanMeta;
  gpu: string;
  device?: DeviceInfo;
  shapes: ShapeOutcome[];
  /** Candidates by their outcome (worst over the shapes). */
  counts: Partial<Record<RowStatus, number>>;
}

/** Reads results.json (or a plan folder) and the tune-meta.json beside it. A results.json
 *  that does not parse (a run cut short) falls back to the per-candidate runs/ files. */
export function readPlanResults(path: string, planDir?: string): { meta: PlanMeta; results: ResultsFile; dir: string } {
  const dir = planDir ?? (existsSync(path) && statSync(path).isDirectory() ? path : dirname(path));
  const resultsPath = existsSync(path) && statSync(path).isDirectory() ? join(path, "results.json") : path;
  const metaPath = join(dir, "tune-meta.json");
  if (!existsSync(metaPath)) throw userError(`${metaPath} not found: put results.json back into the plan folder that 'tilemoe tune --plan' wrote, or name that folder with --plan DIR`);
  let meta: PlanMeta;
  try {
    meta = JSON.parse(readFileSync(metaPath, "utf8")) as PlanMeta;
  } catch (e) {
    throw userError(`${metaPath} is not valid JSON (${(e as Error).message})`);
  }
  if (meta?.schema !== PLAN_SCHEMA || meta.version !== PLAN_VERSION)
    throw userError(`${metaPath} is not a tilemoe tune plan of version ${PLAN_VERSION} (schema ${JSON.stringify(meta?.schema)}, version ${JSON.stringify(meta?.version)})`);
  if (!Array.isArray(meta.candidates) || !Array.isArray(meta.shapes))
    throw userError(`${metaPath} is damaged (no candidates or shapes list); build the plan again with tilemoe tune --plan`);
  let results: ResultsFile | undefined;
  if (existsSync(resultsPath)) {
    try {
      results = JSON.parse(readFileSync(resultsPath, "utf8")) as ResultsFile;
      if (results?.schema !== RESULTS_SCHEMA || !Array.isArray(results.runs)) throw new Error(`not a ${RESULTS_SCHEMA} file`);
    } catch (e) {
      console.warn(`tilemoe: ${resultsPath} is unreadable (${(e as Error).message}); reading the runs/ files instead`);
      results = undefined;
    }
  }
  else if (resultsPath !== join(dir, "results.json")) throw userError(`${resultsPath} not found`);
  if (results?.plan !== undefined && results.plan !== meta.planId)
    throw userError(`${resultsPath} comes from another plan (${results.plan}) than ${metaPath} (${meta.planId}); ingest it with its own plan folder`);
  results ??= readRuns(join(dir, "runs"));
  if (!results) throw userError(`no results in ${dir}: run 'bash run.sh' there first (it writes results.json)`);
  // A hand-edited or damaged record is that candidate's loss ("not run"), not a crash of ingest.
  const runs = results.runs.filter(validRun);
  if (runs.length < results.runs.length)
    console.warn(`tilemoe: ${resultsPath}: ${results.runs.length - runs.length} malformed run record${results.runs.length - runs.length === 1 ? "" : "s"} ignored (their candidates count as not run)`);
  return { meta, results: { ...results, runs }, dir };
}

/** The shape ingest reads: a candidate id, and results (when present) with a list of named cases. */
function validRun(r: unknown): r is RunRecord {
  if (!r || typeof r !== "object" || typeof (r as RunRecord).candidate !== "string") return false;
  const res = (r as RunRecord).results;
  if (res === undefined || res === null) return true;
  return typeof res === "object" && (typeof res.error === "string" ||
    (Array.isArray(res.cases) && res.cases.every((c) => !!c && typeof c === "object" && typeof c.name === "string" && typeof c.status === "string")));
}

function readRuns(runsDir: string): ResultsFile | undefined {
  if (!existsSync(runsDir)) return undefined;
  const runs: RunRecord[] = [];
  for (const f of readdirSync(runsDir).filter((f) => f.endsWith(".run.json")).sort()) {
    const candidate = f.replace(/\.run\.json$/, "");
    try {
      runs.push(JSON.parse(readFileSync(join(runsDir, f), "utf8")) as RunRecord);
    } catch {
      runs.push({ candidate, results: null, exit: -1, skipped: undefined });
    }
  }
  return { schema: RESULTS_SCHEMA, version: 1, runs };
}

const SEVERITY: RowStatus[] = ["ok", "empty grid", "skipped", "not run", "duplicate", "pruned", "compile_error", "wrong", "timeout", "crash", "error"];

export function ingest(meta: PlanMeta, results: ResultsFile): TuneOutcome {
  const byId = new Map(results.runs.map((r) => [r.candidate, r]));
  let device: DeviceInfo | undefined;
  for (const r of results.runs) if (r.results?.device) { device = r.results.device; break; }
  const shapes: ShapeOutcome[] = meta.shapes.map((shape) => ({ shape, rows: [] }));
  const counts: Partial<Record<RowStatus, number>> = {};
  for (const c of meta.candidates) {
    const rows = meta.shapes.map((s) => rowFor(c, s, byId.get(c.id)));
    rows.forEach((row, i) => shapes[i]!.rows.push(row));
    const worst = rows.reduce((w, r) => (SEVERITY.indexOf(r.status) > SEVERITY.indexOf(w) ? r.status : w), "ok" as RowStatus);
    counts[worst] = (counts[worst] ?? 0) + 1;
  }
  for (const s of shapes) {
    const ok = s.rows.filter((r) => r.status === "ok").sort((a, b) => a.median_ms! - b.median_ms!);
    s.winner = ok[0];
    s.defaultRow = s.rows.find((r) => r.isDefault);
  }
  return { meta, gpu: device?.name ?? "unknown GPU", device, shapes, counts };
}

function rowFor(c: CandidateMeta, s: TuneShape, run: RunRecord | undefined): Row {
  const row: Row = {
    candidate: c.id, config: c.config, shape: s.label, status: "ok",
    registers: c.registers, smem: (c.smem ?? 0) + (c.smemStatic ?? 0), threads: c.threads, spills: c.spills,
    gpu: c.gpu, ...(c.isDefault ? { isDefault: true } : {}),
  };
  const fail = (status: RowStatus, reason?: string): Row => ({ ...row, status, ...(reason ? { reason } : {}) });
  if (c.status !== "ready") return fail(c.status, c.reason);
  if (!run) return fail("not run", "no record in the results (the run was cut short?)");
  if (run.skipped) return fail("skipped", run.skipped);
  const res = run.results;
  if (!res) {
    const code = run.exit ?? -1;
    if (code === 124 || code === 137) return fail("timeout", `killed after the per-candidate time limit`);
    if (code > 128) return fail("crash", `runner killed by signal ${code - 128}`);
    return fail("crash", `runner exited ${code} without results`);
  }
  if (res.error) return fail("error", res.error);
  const checks = res.cases.filter((k) => k.name.startsWith("check "));
  if (!checks.length) return fail("error", "no correctness case ran");
  for (const k of checks) {
    if (k.status === "mismatch") return fail("wrong", `${k.name.slice(6)}: ${k.error ?? "mismatch"}`);
    if (k.status !== "ok") return fail(k.context_lost ? "crash" : "error", `correctness case: ${caseError(k)}`);
  }
  const t = res.cases.find((k) => k.name === `time ${s.label}`);
  if (!t) return fail("empty grid", "nothing to launch at this shape");
  if (t.status !== "ok" || t.median_ms === undefined) return fail(t.context_lost ? "crash" : "error", caseError(t));
  return { ...row, median_ms: t.median_ms, min_ms: t.min_ms, tflops: t.tflops, gbps: t.gbps, registers: t.regs ?? row.registers };
}

function caseError(k: CaseResult): string {
  return `${k.status}${k.error ? `: ${k.error}` : ""}${k.context_lost ? " (CUDA context lost)" : ""}`;
}

/** One cache entry per shape that has a winner. */
export function cacheEntries(o: TuneOutcome, bucketed?: readonly string[]): CacheEntry[] {
  const m = o.meta;
  const timed = (s: ShapeOutcome) => s.rows.filter((r) => r.status === "ok").length;
  return o.shapes.filter((s) => s.winner).map((s) => ({
    kernelHash: m.kernelHash, spaceHash: m.spaceHash, dtypes: m.dtypes, arch: m.arch, gpu: o.gpu, nvcc: m.nvcc,
    bucket: shapeBucket(s.shape.dims, bucketed), kernel: m.kernel, file: m.file, shape: s.shape.dims,
    config: s.winner!.config, median_ms: s.winner!.median_ms!,
    ...(s.winner!.tflops !== undefined ? { tflops: s.winner!.tflops } : {}),
    ...(s.winner!.gbps !== undefined ? { gbps: s.winner!.gbps } : {}),
    ...(s.defaultRow?.status === "ok" ? { default_ms: s.defaultRow.median_ms } : {}),
    timed: timed(s), space: m.candidates.length, tunedAt: new Date().toISOString(),
  }));
}

export { configKey };
