// `npm run bench`: our bf16 GEMM (dsl-examples/gemm.ts) against cuBLAS and the copy ceiling,
// in one runner plan on one card, then the whole MoE layer of both models, bf16 and w4a16,
// against its floor (bench/layer.ts, its own plan under OUT/layer). Without a GPU it builds
// everything, writes the plans and says how to run them on a GPU machine.
//   tsx bench/run.ts [--arch sm_90a|sm_80] [--mma both|sync|wgmma] [--copy cp.async|tma|both] [--ws on|off] [--shapes 4096^3,..] [--quick]
//                    [--reps N] [--out DIR] [--tune-cache PATH] [--tuned PATH] [--no-tuned] [--layer | --no-layer]
//                    [--layer-entries] [--layer-tokens 1,16,..] [--layer-models M,..] [--layer-weights W,..]
//                    [--layer-candidates FILE] [--layer-pdl on|off|both] [--layer-no-forced]
// --layer: the layer bench only; --no-layer: the GEMM bench only. --layer-entries: also each
// entry of the layers' choice tables alone at every M (rows "decode only", "prefill only").
// --layer-tokens: the layer's token counts (default 1, 16, 64, 256, 1024, 4096).
// --layer-models mixtral,qwen3 / --layer-weights bf16,w4a16: a part of the layer bench.
// --layer-candidates FILE: candidate choice-table entries, JSON { "<model>_<weights>": [{ name,
// blockSize, up, down, router?, permute?, combine? }] }, each built and timed as a layer of its own
// and checked against the table. bf16 layers are timed three ways: the table (each entry its own
// combine) and the table forced to all atomic / all reduce / all reduce_bf16 (rows "bf16 all atomic", ...).
// --layer-pdl: the layers with programmatic dependent launch (on, sm_90a's default), without
// (off: built without it), or both (built with it, every table also timed with plain launches of
// the same kernels, rows "no PDL", and a table of the two). --layer-no-forced: leave out the bf16
// tables forced to one combine (fewer libraries to build).
// Next to the fixed configs it times the tuned winner of each shape (nearest tuned shape, one
// per GPU tuned on) from the tune cache (default .cache/tune.json) and from bench/tuned.json
// (winners exported with `tilemoe tune --export`, committed because .cache is not).
import { execaSync } from "execa";
import { writeFileSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import "./errors.ts";
import { parseArgs } from "node:util";
import { intFlag, UsageError } from "../src/cli/args.ts";
import { ensureOutDir } from "../src/util/out-dir.ts";
import type { Arch } from "../src/driver/nvcc.ts";
import { buildRunner, gpuAvailable, runPlan, writePlan } from "../src/runtime/cuda.ts";
import { defaultCachePath, loadCache } from "../src/tune/cache.ts";
import { mergeCaches, tunedWinners } from "../src/tune/winners.ts";
import { shapeLabel } from "../src/tune/key.ts";
import { compileGemm, loadGemm } from "./compile.ts";
import { type CompiledConfig, type GemmConfig, type TunedFrom, SHAPES, SKINNY_CONFIGS, SQUARE_CONFIGS, TMA_CONFIGS, benchPlan, configText } from "./plan.ts";
import { benchReport, markdownTable, textTable } from "./report.ts";
import { runLayerBench } from "./layer.ts";
import { candidateSpecs } from "./layer-plan.ts";
import type { Weights } from "../src/moe/layer.ts";

const REPO = resolve(import.meta.dirname, "..");
const { values } = parseArgs({
  options: {
    arch: { type: "string", default: "sm_90a" },
    quick: { type: "boolean", default: false },
    reps: { type: "string" },
    // sm_90a: measure the portable mma.sync path, the wgmma path, or both (one run, one card).
    mma: { type: "string", default: "both" },
    // sm_90a: also (or only) time the TMA operand path's configs (bench/plan.ts TMA_CONFIGS).
    copy: { type: "string", default: "both" },
    // The warp-specialized TMA rows (TMA_CONFIGS with ws): "off" leaves them out (the GPU
    // script does when its --ws checks failed, so that a hanging kernel cannot stall the run),
    // "only" times just them (ws, ws persistent, ping-pong: fewer builds in a GPU script).
    ws: { type: "string", default: "on" },
    // Only these shapes, by label (e.g. "4096^3,8192^3").
    shapes: { type: "string" },
    out: { type: "string", default: join(REPO, "bench/out") },
    "tune-cache": { type: "string" },
    tuned: { type: "string", default: join(REPO, "bench/tuned.json") },
    "no-tuned": { type: "boolean", default: false },
    layer: { type: "boolean", default: false },
    "no-layer": { type: "boolean", default: false },
    "layer-entries": { type: "boolean", default: false },
    "layer-tokens": { type: "string" },
    "layer-models": { type: "string" },
    "layer-weights": { type: "string" },
    "layer-pdl": { type: "string" },
    "layer-no-forced": { type: "boolean", default: false },
    "layer-candidates": { type: "string" },
  },
});
const arch = values.arch as Arch;
if (arch !== "sm_90a" && arch !== "sm_80") throw new UsageError(`--arch must be sm_90a or sm_80, got '${arch}'`);
const outDir = resolve(values.out!);
const planDir = join(outDir, "plan");
ensureOutDir(planDir, "--out");
const reps = values.reps === undefined ? undefined : intFlag(values.reps, "reps", 0, 1);

// --quick: one square and one skinny shape, first config each (a smoke run).
const only = values.shapes?.split(",").map((x) => x.trim());
for (const l of only ?? []) if (!SHAPES.some((s) => s.label === l)) throw new UsageError(`--shapes: no shape '${l}' (${SHAPES.map((s) => s.label).join(", ")})`);
const shapes = only ? SHAPES.filter((s) => only.includes(s.label)) : values.quick ? [SHAPES[0]!, SHAPES[3]!] : SHAPES;
const coreChoices: ("mma" | "wgmma")[] = arch === "sm_80" ? ["mma"] : values.mma === "both" ? ["mma", "wgmma"] : values.mma === "sync" ? ["mma"] : ["wgmma"];
const withCores = (cs: GemmConfig[]) => cs.flatMap((c) => coreChoices.map((cores) => ({ ...c, cores })));
if (!["cp.async", "tma", "both"].includes(values.copy!)) throw new UsageError(`--copy must be cp.async, tma or both, got '${values.copy}'`);
// These rows are the cp.async pipeline on purpose: without `copy`, sm_90a builds take TMA
// where it applies (the default), and the TMA rows come from TMA_CONFIGS.
const cpAsync = (cs: GemmConfig[]) => withCores(cs).map((c) => (c.cores === "wgmma" ? { ...c, copy: "cp.async" as const } : c));
const cpAsyncConfigs = (skinny: boolean) => values.copy === "tma" ? [] : cpAsync(values.quick ? (skinny ? SKINNY_CONFIGS : SQUARE_CONFIGS).slice(0, 1) : skinny ? SKINNY_CONFIGS : SQUARE_CONFIGS);
if (!["on", "off", "only"].includes(values.ws!)) throw new UsageError(`--ws must be on, off or only, got '${values.ws}'`);
const tmaSet = values.ws === "off" ? TMA_CONFIGS.filter((c) => !c.ws) : values.ws === "only" ? TMA_CONFIGS.filter((c) => c.ws) : TMA_CONFIGS;
const tmaConfigs = (skinny: boolean) => arch !== "sm_90a" || values.copy === "cp.async" || skinny ? [] : values.quick ? tmaSet.slice(0, 1) : tmaSet;
const configsFor = (skinny: boolean) => [...cpAsyncConfigs(skinny), ...tmaConfigs(skinny)];

// `-dirty` when the files differ from that commit: a copy of a working tree carried to a GPU
// machine ran under a stale commit's name (bench/RESULTS.md, tenth session).
const commit = (() => {
  const r = execaSync("git", ["describe", "--always", "--dirty", "--abbrev=7", "--exclude", "*"], { reject: false, cwd: REPO });
  return r.exitCode === 0 ? String(r.stdout).trim() : "unknown";
})();

/** The GEMM bench; false when the runner could not start. */
async function gemmBench(): Promise<boolean> {
  const t0 = Date.now();
  const kernel = loadGemm(join(REPO, "dsl-examples/gemm.ts"), "gemm_bf16");
  const wanted = new Map<string, GemmConfig>();
  for (const s of shapes) for (const c of configsFor(s.skinny)) wanted.set(configText(c), c);
  // Tuned winners compile as `tilemoe build` does: the arch's defaults (wgmma, and TMA where
  // it applies on sm_90a).
  const warn = (m: string) => console.warn(`bench: warning: ${m}`);
  const tunedPaths = values["no-tuned"] ? [] : [resolve(values.tuned!), values["tune-cache"] ? resolve(values["tune-cache"]) : defaultCachePath()];
  const winners = tunedWinners(kernel, arch, mergeCaches(tunedPaths.map((p) => loadCache(p, warn))), shapes.map((s) => ({ M: s.M, N: s.N, K: s.K })));
  const tunedFor = new Map(shapes.map((s, i) => [s.label, winners[i]!.map((w) => ({
    config: w.entry.config as unknown as GemmConfig,
    from: { gpu: w.entry.gpu, at: shapeLabel(w.entry.shape), exact: w.exact, staleSpace: w.staleSpace } satisfies TunedFrom,
  }))]));
  for (const ts of tunedFor.values()) for (const t of ts) wanted.set(configText(t.config), t.config);
  const nTuned = [...tunedFor.values()].reduce((n, ts) => n + ts.length, 0);
  console.log(nTuned ? `tuned winners: ${nTuned} (shape x GPU) from ${tunedPaths.join(", ")}` : `no tuned winners for ${kernel.name} ${arch} in ${tunedPaths.join(", ") || "(--no-tuned)"}`);
  // The kernel takes its dims at run time, so one cubin per config serves every shape.
  const compiled = new Map<string, CompiledConfig>();
  const [runnerPath] = await Promise.all([
    buildRunner(),
    ...[...wanted].map(async ([key, c]) => {
      const r = await compileGemm(kernel, c, arch, planDir);
      compiled.set(key, r);
      console.log(`compiled ${key}: ${r.error ? `FAILED: ${r.error}` : `${r.registers ?? "?"} regs, ${r.spills ?? "?"} spill ops, ${r.smem} B smem`}`);
    }),
  ]);
  const { cases, meta, skipped } = benchPlan(shapes, (s) => configsFor(s.skinny).map((c) => compiled.get(configText(c))!), {
    reps,
    tuned: (s) => (tunedFor.get(s.label) ?? []).map((t) => ({ compiled: compiled.get(configText(t.config))!, from: t.from })),
  });
  writePlan(planDir, cases);
  writeFileSync(join(planDir, "meta.json"), JSON.stringify({ meta, skipped }, null, 2));
  console.log(`plan: ${cases.length} cases (${meta.filter((m) => m.kind === "ours").length} of ours) in ${relative(process.cwd(), planDir)}/plan.json, built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  const gpu = gpuAvailable();
  if (!gpu.ok) {
    console.log(`no GPU here: plan written to ${planDir}; run \`bash scripts/gpu-run.sh npx tsx bench/run.ts\` on a GPU machine (runner: ${runnerPath})`);
    return true;
  }

  const results = await runPlan(planDir, { runner: runnerPath, verbose: true });
  if (results.error) {
    console.error(`bench: the runner could not start: ${results.error}`);
    return false;
  }
  const rep = benchReport(meta, results, skipped);
  const date = new Date().toISOString().slice(0, 10);
  const head = `## bf16 GEMM, ${rep.device ?? "unknown card"}, ${date}, commit ${commit}, ${arch}\n\n`;
  console.log(`\n${head}${textTable(rep)}copy: ${rep.copyGBs?.toFixed(0) ?? "-"} GB/s`);
  const md = head + markdownTable(rep);
  writeFileSync(join(outDir, `bench-${date}-${commit}.md`), md);
  writeFileSync(join(outDir, "latest.md"), md);
  console.log(`\nwritten: ${join(outDir, "latest.md")} (paste into bench/RESULTS.md)`);
  return true;
}

if (values.layer && values["no-layer"]) throw new UsageError("--layer and --no-layer exclude each other");
const layerPdl = values["layer-pdl"];
if (layerPdl !== undefined && layerPdl !== "on" && layerPdl !== "off" && layerPdl !== "both") throw new UsageError(`--layer-pdl takes on, off or both, got '${layerPdl}'`);
let ok = true;
if (!values.layer) ok = (await gemmBench()) && ok;
if (!values["no-layer"]) {
  ok = (await runLayerBench({ arch, outDir: join(outDir, "layer"), commit, reps,
    tokens: values["layer-tokens"] ? values["layer-tokens"].split(",").map(Number) : values.quick ? [1, 1024] : undefined,
    models: values["layer-models"]?.split(",") ?? (values.quick ? ["qwen3"] : undefined),
    weights: values["layer-weights"]?.split(",") as Weights[] | undefined, entries: values["layer-entries"],
    pdl: layerPdl, forced: !values["layer-no-forced"],
    candidates: values["layer-candidates"] ? candidateSpecs(JSON.parse(readFileSync(values["layer-candidates"], "utf8"))) : undefined })) && ok;
}
process.exit(ok ? 0 : 1);
