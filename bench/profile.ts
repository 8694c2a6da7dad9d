// Nsight Compute on cases of a runner plan, one case at a time: where the time of a MoE layer
// call goes (router, gating, routing, gate/up, down: one row per kernel, from
// gpu__time_duration), or a full report of one kernel (--set full). Run on the GPU machine
// after a bench wrote its plan:
//   bash scripts/gpu-run.sh npx tsx bench/profile.ts [--plan bench/out/layer/plan] [--cases REGEX]
//        [--set full] [--kernels REGEX] [--out FILE]
// Each case of the plan whose name matches REGEX runs alone (its checked launch or layer call,
// no timing loop, no saved outputs) under `ncu --clock-control none --cache-control all` (the
// clocks are left alone; caches are flushed before every kernel, as the benches flush L2
// before every launch). Kernels profiled: a layer case's stage kernels (moe_layer_*), a kernel
// case's kernel. The sum of a layer's kernel times misses what lies between its kernels
// (launch gaps, the output memset), which the bench's whole-call time includes: the report
// prints both where the plan's results.json exists.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { execa } from "execa";
import { buildRunner, type KernelCase, type LayerCase, type Plan, type Results } from "../src/runtime/cuda.ts";

const REPO = resolve(import.meta.dirname, "..");

export interface KernelTime { kernel: string; us: number; grid: string; block: string }

/** One CSV line of ncu's --csv output into fields (quoted, commas inside quotes). */
export function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = "", quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { cur += '"'; i++; }
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") { out.push(cur); cur = ""; }
    else cur += ch;
  }
  out.push(cur);
  return out;
}

/** Microseconds per unit, in the spellings ncu uses (base units print "nsecond", the default
 *  human-readable ones "ns", "us", "ms"). */
const TIME_UNITS: Record<string, number> = { nsecond: 1e-3, ns: 1e-3, usecond: 1, us: 1, msecond: 1e3, ms: 1e3, second: 1e6, s: 1e6 };

/** The gpu__time_duration rows of ncu's CSV (any lines before the header are ncu's own). */
export function parseNcuDurations(csv: string): KernelTime[] {
  const lines = csv.split("\n").filter((l) => l.startsWith('"'));
  const head = lines.findIndex((l) => l.startsWith('"ID"'));
  if (head < 0) return [];
  const cols = csvFields(lines[head]!);
  const at = (name: string) => cols.indexOf(name);
  const [iName, iMetric, iUnit, iValue, iGrid, iBlock] = ["Kernel Name", "Metric Name", "Metric Unit", "Metric Value", "Grid Size", "Block Size"].map(at);
  return lines.slice(head + 1).map(csvFields).filter((f) => f[iMetric!] === "gpu__time_duration.sum").map((f) => {
    const unit = f[iUnit!]!, scale = TIME_UNITS[unit];
    if (scale === undefined) throw new Error(`ncu: gpu__time_duration in unknown unit '${unit}' (known: ${Object.keys(TIME_UNITS).join(", ")})`);
    return { kernel: f[iName!]!.replace(/\(.*$/, ""), us: Number(f[iValue!]!.replace(/,/g, "")) * scale, grid: f[iGrid!] ?? "", block: f[iBlock!] ?? "" };
  });
}

/** A stage kernel's name without the common parts: moe_layer_<layer>_<stage...>_kernel -> <layer>_<stage...>. */
const stageName = (kernel: string) => kernel.replace(/^moe_layer_/, "").replace(/_kernel$/, "");

/** The case as one call: no timing loop, nothing saved, paths made absolute (the one-case plan
 *  lives in a folder of its own: a tensor read from a file of the plan's folder, e.g. packed
 *  weights, would not be found from there). */
export function oneCall<C extends LayerCase | KernelCase>(c: C, planDir: string): C {
  const args = c.args.map((a) => {
    if (!("tensor" in a)) return a;
    const { save: _s, ...rest } = a;
    return rest.init && "file" in rest.init ? { ...rest, init: { file: resolve(planDir, rest.init.file) } } : rest;
  });
  if ("layer" in c) return { ...c, time: undefined, compare: undefined, args, layer: { ...c.layer, library: resolve(planDir, c.layer.library), workspace: undefined } };
  return { ...c, time: undefined, compare: undefined, args, module: resolve(planDir, c.module) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    plan: { type: "string", default: join(REPO, "bench/out/layer/plan") },
    cases: { type: "string", default: "." },
    out: { type: "string" },
    set: { type: "string" },
    kernels: { type: "string" },
    ncu: { type: "string", default: existsSync("/usr/local/cuda/bin/ncu") ? "/usr/local/cuda/bin/ncu" : "ncu" },
  } });
  const planDir = resolve(values.plan!);
  const plan = JSON.parse(readFileSync(join(planDir, "plan.json"), "utf8")) as Plan;
  const results = existsSync(join(planDir, "results.json")) ? JSON.parse(readFileSync(join(planDir, "results.json"), "utf8")) as Results : undefined;
  const pick = new RegExp(values.cases!);
  const picked = plan.cases.filter((c): c is LayerCase | KernelCase => ("layer" in c || "kernel" in c) && pick.test(c.name));
  if (!picked.length) throw new Error(`no layer or kernel case of ${planDir}/plan.json matches /${values.cases}/`);
  const runner = await buildRunner();
  // Cases that gave no profile: the run fails (exit 1) with them named, so a script does not
  // report a profile it does not have.
  let missing = 0;
  const report: string[] = [];
  const all: { case: string; kernels: KernelTime[]; benchMs?: number }[] = [];
  for (const [n, c] of picked.entries()) {
    const dir = join(planDir, "profile", String(n));
    mkdirSync(dir, { recursive: true });
    const one = oneCall(c, planDir);
    const lost = one.args.flatMap((a) => ("tensor" in a && a.init && "file" in a.init && !existsSync(a.init.file) ? [a.init.file] : []));
    if (lost.length) throw new Error(`case '${c.name}' reads ${lost.join(", ")}, which the plan's folder no longer holds (bench/w4a16.ts deletes its packed weights after its run: run it again with --keep-inputs)`);
    writeFileSync(join(dir, "plan.json"), JSON.stringify({ cases: [one] }, null, 2));
    // --kernels narrows a layer case to the stage kernels whose names match (e.g. `_up` for a
    // --set full report of the gate/up GEMM alone).
    const filter = "layer" in c ? `regex:^moe_layer_${values.kernels ? `.*(${values.kernels})` : ""}` : `regex:^${c.kernel}$`;
    const what = values.set ? ["--set", values.set] : ["--metrics", "gpu__time_duration.sum", "--csv"];
    const r = await execa(values.ncu!, ["--clock-control", "none", "--cache-control", "all", ...what, "-k", filter,
      runner, join(dir, "plan.json"), "--out", join(dir, "results.json")], { reject: false, all: true });
    if (r.exitCode === undefined) throw new Error(`could not run Nsight Compute '${values.ncu}' (${r.shortMessage ?? r.message}); give its path with --ncu`);
    if (values.set) {
      report.push(`== ${c.name} (ncu --set ${values.set}, exit ${r.exitCode})`, r.all ?? "");
      console.log(report.slice(-2).join("\n"));
      if (r.exitCode !== 0) missing++;
      continue;
    }
    writeFileSync(join(dir, "ncu.txt"), r.all ?? "");
    let kernels: KernelTime[];
    try { kernels = parseNcuDurations(r.stdout ?? ""); } catch (e) { report.push(`${c.name}: ${(e as Error).message}`); console.log(report.at(-1)); missing++; continue; }
    const benchMs = results?.cases.find((x) => x.name === c.name)?.median_ms;
    all.push({ case: c.name, kernels, benchMs });
    if (!kernels.length) { report.push(`${c.name}: ncu listed no kernel (exit ${r.exitCode}):\n${(r.all ?? "").split("\n").slice(-15).join("\n")}`); missing++; continue; }
    const sum = kernels.reduce((a, k) => a + k.us, 0);
    report.push(`${c.name}: kernels ${sum.toFixed(1)} us${benchMs !== undefined ? `, bench call ${(benchMs * 1e3).toFixed(1)} us` : ""}`);
    for (const k of kernels) report.push(`  ${stageName(k.kernel).padEnd(36)} ${k.us.toFixed(1).padStart(9)} us ${(100 * k.us / sum).toFixed(0).padStart(3)}%  grid ${k.grid} block ${k.block}`);
    console.log(report.slice(-kernels.length - 1).join("\n"));
  }
  const out = values.out ?? join(planDir, "profile.txt");
  writeFileSync(out, report.join("\n") + "\n");
  writeFileSync(out.replace(/\.txt$/, "") + ".json", JSON.stringify(all, null, 2));
  console.log(`written: ${out}`);
  if (missing) {
    console.error(`profile: ${missing} of ${picked.length} case(s) gave no profile (see ${out})`);
    process.exitCode = 1;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url))
  await main().catch((e: Error) => { console.error(`profile: ${e.message}`); process.exit(2); });
