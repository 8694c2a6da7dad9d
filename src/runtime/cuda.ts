// Driving the native GPU runner (runtime/cuda/runner.cpp): build it once per source
// hash, write plans, run them, read results and tensor files.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, execaSync } from "execa";
import type { DType } from "../ir/ir.ts";
import { decode, encode } from "../numeric/dtype.ts";
import type { CaseResult, Plan, PlanCase, Results } from "./plan.ts";

export * from "./plan.ts";

export const RUNNER_SOURCE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../runtime/cuda");
export const DEFAULT_CACHE_DIR = resolve(RUNNER_SOURCE_DIR, "../../.cache/runner");

function onPath(cmd: string): string | undefined {
  const r = execaSync("sh", ["-c", `command -v ${cmd}`], { reject: false });
  return r.exitCode === 0 ? String(r.stdout).trim() : undefined;
}

function cudaInclude(): string | undefined {
  const homes = [process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"].filter(Boolean) as string[];
  const nvcc = onPath("nvcc");
  if (nvcc) homes.push(resolve(dirname(nvcc), ".."));
  return homes.map((h) => join(h, "include")).find((d) => existsSync(join(d, "cuda.h")));
}

/** The command that builds the runner here: nvcc if present, else g++ against cuda.h. */
export function runnerBuildCommand(out: string): { cmd: string; args: string[] } {
  const src = join(RUNNER_SOURCE_DIR, "runner.cpp");
  const forced = process.env.TILEMOE_RUNNER_CXX;
  const nvcc = forced === undefined || forced === "nvcc" ? onPath("nvcc") : undefined;
  if (nvcc) return { cmd: nvcc, args: ["-O2", "-std=c++17", src, "-o", out, "-ldl"] };
  const inc = cudaInclude();
  const cxx = forced && forced !== "nvcc" ? forced : onPath("g++") ?? onPath("c++");
  if (!cxx || !inc) {
    throw new Error(`cannot build the GPU runner: need nvcc, or g++ and cuda.h (looked for ${cxx ? "cuda.h in $CUDA_HOME/include, /usr/local/cuda/include" : "g++/c++"})`);
  }
  return { cmd: cxx, args: ["-O2", "-std=c++17", `-I${inc}`, src, "-o", out, "-ldl"] };
}

function sourceHash(): string {
  const h = createHash("sha256");
  for (const f of readdirSync(RUNNER_SOURCE_DIR).filter((f) => /\.(cpp|h)$/.test(f)).sort()) {
    h.update(f + "\0");
    h.update(readFileSync(join(RUNNER_SOURCE_DIR, f)));
  }
  return h.digest("hex").slice(0, 16);
}

/** Builds the runner once per source hash; returns the binary's path. */
export async function buildRunner(cacheDir: string = DEFAULT_CACHE_DIR): Promise<string> {
  mkdirSync(cacheDir, { recursive: true });
  const bin = join(cacheDir, `runner-${sourceHash()}`);
  if (existsSync(bin)) return bin;
  // Another process may build the same binary at once; each writes its own file, then renames.
  const tmp = `${bin}.tmp-${process.pid}`;
  const { cmd, args } = runnerBuildCommand(tmp);
  const r = await execa(cmd, args, { reject: false, all: true });
  if (r.exitCode !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`building the GPU runner failed:\n$ ${cmd} ${args.join(" ")}\n${r.all}`);
  }
  renameSync(tmp, bin);
  return bin;
}

/** Writes `dir/plan.json`; returns its path. */
export function writePlan(dir: string, cases: PlanCase[] | Plan): string {
  mkdirSync(dir, { recursive: true });
  const plan: Plan = Array.isArray(cases) ? { cases } : cases;
  const path = join(dir, "plan.json");
  writeFileSync(path, JSON.stringify(plan, null, 2) + "\n");
  return path;
}

export function writeTensor(path: string, dtype: DType, values: ArrayLike<number>): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encode(dtype, values));
}

export function readTensor(path: string, dtype: DType): Float64Array {
  return decode(dtype, new Uint8Array(readFileSync(path)));
}

export interface RunOptions {
  /** The runner binary (default: buildRunner()). */
  runner?: string;
  env?: Record<string, string>;
  /** Cases not to run. */
  skip?: string[];
  /** After a case loses the CUDA context, run the rest in a new process (default true). */
  retryAfterContextLoss?: boolean;
  /** Echo the runner's progress lines and table (default false). */
  verbose?: boolean;
}

export class RunnerError extends Error {}

interface RawResults extends Omit<Results, "context_lost"> { context_lost?: string }

async function runOnce(runner: string, dir: string, skip: string[], opts: RunOptions): Promise<{ res: RawResults; code: number; stdout: string }> {
  const out = join(dir, "results.json");
  rmSync(out, { force: true });
  const args = [join(dir, "plan.json"), "--out", out, ...skip.flatMap((s) => ["--skip", s])];
  const r = await execa(runner, args, {
    reject: false,
    env: opts.env,
    stdout: opts.verbose ? ["pipe", "inherit"] : "pipe",
    stderr: opts.verbose ? ["pipe", "inherit"] : "pipe",
  });
  const code = r.exitCode ?? -1;
  if (code === 3) throw new RunnerError(`the runner rejected ${join(dir, "plan.json")}: ${String(r.stderr).trim()}`);
  if (!existsSync(out)) {
    throw new RunnerError(`the runner wrote no results (exit ${code}${r.signal ? `, ${r.signal}` : ""}):\n$ ${runner} ${args.join(" ")}\n${String(r.stderr).trim()}`);
  }
  return { res: JSON.parse(readFileSync(out, "utf8")) as RawResults, code, stdout: String(r.stdout) };
}

/**
 * Runs `dir/plan.json` and returns its results (also written to `dir/results.json`).
 * A case that loses the CUDA context (an illegal address, say) stops a runner process;
 * the cases after it then run in a fresh process, with the compare targets they need rerun.
 */
export async function runPlan(dir: string, opts: RunOptions = {}): Promise<Results> {
  const runner = opts.runner ?? (await buildRunner());
  const plan = JSON.parse(readFileSync(join(dir, "plan.json"), "utf8")) as Plan;
  const userSkip = new Set(opts.skip ?? []);
  const done = new Map<string, CaseResult>();
  const lost: string[] = [];
  let device: Results["device"];
  for (;;) {
    const pending = plan.cases.filter((c) => !done.has(c.name) && !userSkip.has(c.name));
    // A pending case's compare target must run in the same process to be compared against.
    const needed = new Set(pending.map((c) => c.compare?.with).filter((w): w is string => !!w));
    const skip = plan.cases.filter((c) => userSkip.has(c.name) || (done.has(c.name) && !needed.has(c.name))).map((c) => c.name);
    const { res } = await runOnce(runner, dir, skip, opts);
    if (res.error) return { error: res.error, cases: res.cases };
    device ??= res.device;
    const before = done.size;
    for (const c of res.cases) {
      const first = !done.has(c.name) || done.get(c.name)!.status === "skipped";
      if (first && !(c.status === "skipped" && c.error?.startsWith("not run"))) done.set(c.name, c);
    }
    if (!res.context_lost) break;
    lost.push(res.context_lost);
    if (opts.retryAfterContextLoss === false) break;
    if (done.size === before || !plan.cases.some((c) => !done.has(c.name) && !userSkip.has(c.name))) break;
  }
  const cases = plan.cases.map(
    (c) => done.get(c.name) ?? { name: c.name, status: "skipped" as const, error: userSkip.has(c.name) ? "skipped" : "not run" },
  );
  const results: Results = { device, cases, ...(lost.length ? { context_lost: lost } : {}) };
  writeFileSync(join(dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
  return results;
}

/** Whether a CUDA GPU can be used here, and if not, why (for skipping tests). */
export function gpuAvailable(): { ok: boolean; reason: string } {
  const smi = execaSync("nvidia-smi", ["-L"], { reject: false });
  if (smi.exitCode === 0 && /GPU \d/.test(String(smi.stdout))) return { ok: true, reason: String(smi.stdout).split("\n")[0]! };
  const libDirs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/lib/wsl/lib", ...(process.env.LD_LIBRARY_PATH ?? "").split(":")];
  const lib = libDirs.filter(Boolean).find((d) => existsSync(join(d, "libcuda.so.1")));
  if (lib) return { ok: true, reason: `${join(lib, "libcuda.so.1")} present (nvidia-smi ${smi.failed ? "not found" : "lists no GPU"})` };
  return { ok: false, reason: "no GPU here: nvidia-smi lists none and libcuda.so.1 is not installed" };
}
