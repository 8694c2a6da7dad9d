// `tilemoe tune`: sweep a kernel's config space on the GPU and cache the winners. Here, with
// a GPU; or split: --plan DIR builds a folder to carry to the GPU machine (bash run.sh there),
// --ingest DIR/results.json brings its results back into the cache.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { NvccNotFoundError, type Arch } from "../driver/nvcc.ts";
import { defaultCachePath } from "../tune/cache.ts";
import { ingestResults, preparePlan, tuneHere, type PlanOptions } from "../tune/tune.ts";
import { exportWinners } from "../tune/export.ts";
import { intFlag, parse, parseAssignments, parseShape, requireFile, UsageError } from "./args.ts";
import { ensureOutDir } from "../util/out-dir.ts";

const USAGE = `tilemoe tune FILE [--kernel K] --shape M=16,N=14336,K=4096 [--shape ...] [--arch sm_80|sm_90a]
                    [--gpus N] [--budget SECONDS] [--timeout SECONDS] [--cache PATH] [--report DIR]
                    [--plan DIR] [--check-shape M=..] [--reps N] [--warmup N] [--jobs N] [--max-candidates N]
                    [--include BM=..,BN=.. ...]
       tilemoe tune --ingest DIR/results.json [--plan DIR] [--cache PATH] [--report DIR]
       tilemoe tune --export FILE.json [--kernel K] [--cache PATH]`;

export async function tuneCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    kernel: { type: "string" }, shape: { type: "string", multiple: true }, arch: { type: "string" },
    gpus: { type: "string" }, budget: { type: "string" }, timeout: { type: "string" }, cache: { type: "string" },
    report: { type: "string" }, plan: { type: "string" }, ingest: { type: "string" }, "check-shape": { type: "string" },
    reps: { type: "string" }, warmup: { type: "string" }, jobs: { type: "string" },
    export: { type: "string" }, "max-candidates": { type: "string" },
    include: { type: "string", multiple: true },
  }, USAGE);
  const log = (s: string) => console.log(s);
  const warn = (s: string) => console.warn(`tilemoe: warning: ${s}`);
  const cachePath = (values.cache as string | undefined) ?? defaultCachePath();
  const reportDir = values.report as string | undefined;
  // A report folder or a cache path that cannot be written is said now, not after the sweep.
  if (reportDir !== undefined) ensureOutDir(reportDir, "--report");
  if (existsSync(cachePath) && statSync(cachePath).isDirectory()) throw new UsageError(`--cache ${cachePath} is a folder; give the path of a JSON file (e.g. ${join(cachePath, "tune.json")})`);
  if (values.ingest) {
    if (positionals.length) throw new UsageError(`--ingest takes no FILE (the plan folder knows it)\nusage: ${USAGE}`);
    const o = ingestResults(values.ingest as string, { cachePath, reportDir, log, warn, planDir: values.plan as string | undefined });
    return o.shapes.some((s) => s.winner) ? 0 : 1;
  }
  if (values.export) {
    if (positionals.length) throw new UsageError(`--export takes no FILE (it copies cache entries)\nusage: ${USAGE}`);
    const kernels = values.kernel ? String(values.kernel).split(",") : undefined;
    const n = exportWinners(cachePath, values.export as string, { kernels, warn });
    log(`exported ${n} winner${n === 1 ? "" : "s"}${kernels ? ` of ${kernels.join(", ")}` : ""} from ${cachePath} to ${values.export}`);
    return n ? 0 : 1;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one FILE\nusage: ${USAGE}`);
  const arch = (values.arch as string | undefined) ?? "sm_90a";
  if (arch !== "sm_80" && arch !== "sm_90a") throw new UsageError(`--arch must be sm_80 or sm_90a, got '${arch}'`);
  const shapes = ((values.shape as string[] | undefined) ?? []).map(parseShape);
  if (!shapes.length) throw new UsageError(`give at least one --shape, e.g. --shape M=16,N=14336,K=4096\nusage: ${USAGE}`);
  const opts: PlanOptions = {
    file: requireFile(positionals[0]!), kernel: values.kernel as string | undefined, shapes, arch: arch as Arch,
    gpus: intFlag(values.gpus, "gpus", 1, 1), budgetS: intFlag(values.budget, "budget", 0),
    timeoutS: intFlag(values.timeout, "timeout", 60, 1),
    timing: { warmup: intFlag(values.warmup, "warmup", 5), reps: intFlag(values.reps, "reps", 30, 1), rotate: "auto" },
    checkShape: values["check-shape"] ? parseShape(values["check-shape"] as string) : undefined,
    jobs: values.jobs !== undefined ? intFlag(values.jobs, "jobs", 1, 1) : undefined,
    maxCandidates: values["max-candidates"] !== undefined ? intFlag(values["max-candidates"], "max-candidates", 1, 1) : undefined,
    include: ((values.include as string[] | undefined) ?? []).map((t) => parseAssignments(t, "--include")),
    log,
  };
  if (values.plan) {
    const dir = values.plan as string;
    const meta = await preparePlan(dir, opts).catch(nvccHint);
    const n = meta.candidates.filter((c) => c.plan).length;
    log(`plan: ${dir} (${n} candidates x ${meta.shapes.length} shape${meta.shapes.length === 1 ? "" : "s"}, ${meta.gpus} GPU${meta.gpus === 1 ? "" : "s"})`);
    log(`on the GPU machine: bash ${dir}/run.sh    then here: tilemoe tune --ingest ${dir}/results.json`);
    return n ? 0 : 1;
  }
  const o = await tuneHere({ ...opts, cachePath, reportDir, warn }).catch(nvccHint);
  return o.shapes.some((s) => s.winner) ? 0 : 1;
}

/** nvcc's own missing-tool message suggests `--emit cu`, a build flag; tune has no way around nvcc. */
function nvccHint(e: unknown): never {
  if (e instanceof NvccNotFoundError)
    throw new UsageError("tilemoe: nvcc not found on PATH: tune compiles every candidate with nvcc; install the CUDA toolkit or put its bin folder on PATH (e.g. export PATH=/usr/local/cuda/bin:$PATH)");
  throw e;
}
