// The MoE layer bench (bench/layer-plan.ts says what is measured and how): builds each
// layer as a shared library, writes one runner plan (copy and cuBLAS ceilings, then every
// layer x M), and on a GPU runs it, checks the outputs (bench/layer-check.ts) and prints the
// table. Without a GPU it stops after the plan and says how to run it. Called by bench/run.ts.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative, resolve } from "node:path";
import { execa } from "execa";
import type { Arch } from "../src/driver/nvcc.ts";
import type { LayerSpec, Weights } from "../src/moe/layer.ts";
import { buildLayerLibrary } from "../src/moe/library.ts";
import { buildRunner, gpuAvailable, readTensor, runPlan, writePlan } from "../src/runtime/cuda.ts";
import { checkLayerOutputs, type SavedCase, type TokenReference, tokenZeroValues } from "./layer-check.ts";
import { benchSpecs, combineTable, entryLibs, pdlTable, plainLib, twinOf, LAYER_TOKENS, type LayerLib, layerMarkdownTable, layerPlan, layerReport, layerTextTable } from "./layer-plan.ts";

const REPO = resolve(import.meta.dirname, "..");

export interface LayerBenchOptions {
  arch: Arch;
  outDir: string;
  tokens?: number[];
  models?: string[];
  reps?: number;
  /** Largest number of weights generated on the CPU for one layer's token-0 reference. */
  maxRefValues?: number;
  weights?: Weights[];
  /** Also time each entry of every layer's choice table alone (same library; not the forced-combine twins). */
  entries?: boolean;
  /** Candidate entries (bench/layer-plan.ts candidateSpecs), each built and timed as a layer of its own. */
  candidates?: LayerSpec[];
  /** Header facts for the markdown (commit, date). */
  commit: string;
  /** Programmatic dependent launch (sm_90a; docs/LAYER.md): "on" (the layers' default) builds the
   *  libraries with it (the default on sm_90a), "off" without (sm_80's), "both" with it and also times every table with plain launches
   *  of the same kernels (the libraries' _nopdl entry points), checked against the PDL run. */
  pdl?: "on" | "off" | "both";
  /** The bf16 tables forced to each combine too (default true). */
  forced?: boolean;
}

/** Returns false when something failed (a layer that did not build, a case that failed, an output check). */
export async function runLayerBench(o: LayerBenchOptions): Promise<boolean> {
  const t0 = Date.now();
  const planDir = join(o.outDir, "plan");
  mkdirSync(planDir, { recursive: true });
  const specs = [...benchSpecs(o.models, o.weights, o.forced ?? true), ...(o.candidates ?? [])];
  const pdl = o.pdl ?? (o.arch === "sm_90a" ? "on" : "off");
  if (pdl !== "off" && o.arch !== "sm_90a") throw new Error(`--layer-pdl ${pdl} needs --arch sm_90a (griddepcontrol is sm_90); use --layer-pdl off`);
  const libs: LayerLib[] = [];
  let ok = true;
  // nvcc processes at once: 2 on the 2-core dev machine, all six layers at once on a 16-core GPU host.
  const jobs = Math.max(2, Math.min(6, Math.floor(availableParallelism() / 2)));
  const [runner] = await Promise.all([buildRunner(), (async () => {
    for (let i = 0; i < specs.length; i += jobs)
      await Promise.all(specs.slice(i, i + jobs).map(async (spec) => {
        try {
          const lib = await buildLayerLibrary(spec, o.arch, planDir, "tma", pdl !== "off");
          libs.push({ spec, library: relative(planDir, lib.path), symbol: lib.symbol });
          console.log(`layer ${spec.name}: ${lib.stages.map((s) => `${s.stage}${s.configs.length < spec.configs.length ? ` ${s.configs.join("+")}` : ""} ${s.registers ?? "?"} regs${s.spills ? ` ${s.spills} spill ops` : ""}`).join(", ")}`);
        } catch (e) {
          ok = false;
          console.log(`layer ${spec.name}: FAILED to build: ${(e as Error).message.split("\n").slice(0, 3).join(" ")}`);
        }
      }));
  })()]);
  libs.sort((a, b) => specs.indexOf(a.spec) - specs.indexOf(b.spec));
  const tables = libs.filter(({ spec }) => !spec.forcedCombine && !spec.entry);
  if (o.entries) libs.push(...libs.flatMap(entryLibs));
  // Last, so every other case (and its check) sees the PDL run first.
  if (pdl === "both") libs.push(...tables.map(plainLib));
  const { cases, meta } = layerPlan(libs, o.tokens ?? LAYER_TOKENS, { reps: o.reps });
  writePlan(planDir, cases);
  console.log(`layer plan: ${cases.length} cases (${meta.length} layer calls) in ${planDir}/plan.json, built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  const gpu = gpuAvailable();
  if (!gpu.ok) {
    console.log(`no GPU here: layer plan written to ${planDir}; run \`bash scripts/gpu-run.sh npx tsx bench/run.ts --layer\` on a GPU machine`);
    return ok;
  }
  // Token 0's references depend on the seeds only: computed in child processes while the GPU runs.
  const maxRef = o.maxRefValues ?? 40e6;
  const refJobs = libs.filter(({ spec }) => {
    if (twinOf(spec)) return false; // checked against its twin: the table as it is
    if (tokenZeroValues(spec) <= maxRef) return true;
    console.log(`layer ${spec.name}: no float64 reference (${(tokenZeroValues(spec) / 1e6).toFixed(0)}M weights to generate > ${maxRef / 1e6}M); token 0 vs the first M instead`);
    return false;
  }).map(({ spec }) => {
    const file = join(planDir, `ref-${spec.name}.json`);
    const model = spec.name.slice(0, spec.name.lastIndexOf("_"));
    const t = Date.now();
    return execa(join(REPO, "node_modules/.bin/tsx"), [join(REPO, "bench/layer-check.ts"), model, spec.weights, file], { reject: false, all: true })
      .then((r) => {
        if (r.exitCode !== 0) { console.log(`layer ${spec.name}: the float64 reference failed:\n${r.all}`); return undefined; }
        console.log(`layer ${spec.name}: token 0's float64 reference in ${((Date.now() - t) / 1000).toFixed(1)} s`);
        return [spec.name, JSON.parse(readFileSync(file, "utf8")) as TokenReference] as const;
      });
  });
  const results = await runPlan(planDir, { runner, verbose: true });
  const refs = new Map((await Promise.all(refJobs)).filter((r) => r !== undefined));
  if (results.error) {
    console.error(`bench: the runner could not start: ${results.error}`);
    return false;
  }
  const read = (file: string, dtype: "f32" | "i32") => (existsSync(join(planDir, file)) ? readTensor(join(planDir, file), dtype) : undefined);
  const saved = (m: (typeof meta)[number]): SavedCase => {
    const r = results.cases.find((c) => c.name === m.name);
    if (r?.status !== "ok") return {};
    return { out: read(m.outFile, "f32"), ids: read(m.idsFile, "i32"), weights: read(m.weightsFile, "f32") };
  };
  const checks = checkLayerOutputs(meta, saved, refs);
  // The outputs (up to 64 MB a case) were only for the checks; the routing files stay.
  for (const m of meta) rmSync(join(planDir, m.outFile), { force: true });
  const rep = layerReport(meta, results, (m) => saved(m).ids, checks);
  const head = `## MoE layer, ${rep.device ?? "unknown card"}, ${new Date().toISOString().slice(0, 10)}, commit ${o.commit}, ${o.arch}\n\n`;
  console.log(`\n${head}${layerTextTable(rep)}copy ${rep.copyGBs?.toFixed(0) ?? "-"} GB/s, cuBLAS bf16 ${rep.cublasTflops?.toFixed(0) ?? "-"} TFLOP/s\n\n${combineTable(rep)}\n${pdlTable(rep, meta)}`);
  const md = head + layerMarkdownTable(rep, meta);
  writeFileSync(join(o.outDir, "latest.md"), md);
  console.log(`\nwritten: ${join(o.outDir, "latest.md")} (paste into bench/RESULTS.md)`);
  const failed = rep.rows.filter((r) => r.status !== "ok" || (r.check && !r.check.pass));
  if (failed.length) console.log(`layer bench: ${failed.length} case(s) failed or failed their output check`);
  return ok && failed.length === 0 && results.cases.every((c) => c.status === "ok");
}
