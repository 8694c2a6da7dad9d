// w4a16 bench: dsl-examples/gemm_w4a16.ts (u4, group 128, symmetric) against bf16 cuBLAS on
// the same shapes and the copy ceiling, in one runner plan on one card. Reports the
// effective weight bandwidth (int4 bytes + scales / time) as a fraction of the copy's.
// Decode shapes (M <= 16) also time gemm_w4a16_mma (rows "w4a16-mma", the mma slot order) and
// the group-scale-on-partial-sums kernels gemm_w4a16_gs / gemm_w4a16_mma_gs (rows "w4a16-gs",
// "w4a16-mma-gs"; docs/QUANT.md) at the same configs (those with BK dividing 128), both orders
// packed from one integer matrix here (plan files w-NxK-ORDER.u32).
//   tsx bench/w4a16.ts [--arch sm_90a|sm_80] [--m 1,16,64,256,1024,4096] [--reps N] [--out DIR] [--tune-cache PATH] [--tuned PATH] [--no-tuned] [--keep-inputs]
// Each shape also times the tuned winner (nearest tuned shape, per GPU tuned on) from the tune
// cache and bench/tuned.json, as rows "tuned (GPU)".
// Split-K rows clear C as the generated launcher does: on sm_90a by its zero kernel, with the
// kernel launched by PDL behind it (the runner's clearKernel; docs/QUANT.md "Clearing by a zero
// kernel"), on sm_80 by a memset. On sm_90a each decode split-K config of gemm_w4a16 also has a
// row with the memset instead (rows "w4a16-memset"), and a table compares the two clears.
// Without a GPU it builds the plan and says how to run it (scripts/gpu-run.sh).
import { rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import "./errors.ts";
import { parseArgs } from "node:util";
import { intFlag, UsageError } from "../src/cli/args.ts";
import { ensureOutDir } from "../src/util/out-dir.ts";
import type { Arch } from "../src/driver/nvcc.ts";
import { buildRunner, gpuAvailable, runPlan, writePlan } from "../src/runtime/cuda.ts";
import { type PlanCase, tensorMapArgs } from "../src/runtime/plan.ts";
import { defaultCachePath, loadCache } from "../src/tune/cache.ts";
import { mergeCaches, tunedWinners } from "../src/tune/winners.ts";
import { shapeLabel } from "../src/tune/key.ts";
import { compileGemm, loadGemm } from "./compile.ts";
import { type CompiledConfig, type GemmConfig, configText } from "./plan.ts";
import { rsConfigsFor } from "./w4a16-configs.ts";
import { packWeights } from "../src/quant/pack.ts";
import { wordsPerRow } from "../src/quant/format.ts";

const REPO = resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: {
  arch: { type: "string", default: "sm_90a" }, m: { type: "string", default: "1,16,64,256,1024,4096" }, reps: { type: "string", default: "30" },
  out: { type: "string", default: join(REPO, "bench/out-w4a16") },
  "tune-cache": { type: "string" }, tuned: { type: "string", default: join(REPO, "bench/tuned.json") }, "no-tuned": { type: "boolean", default: false },
  "keep-inputs": { type: "boolean", default: false },
} });
const arch = values.arch as Arch;
if (arch !== "sm_90a" && arch !== "sm_80") throw new UsageError(`--arch must be sm_90a or sm_80, got '${arch}'`);
const reps = intFlag(values.reps, "reps", 30, 1);
const planDir = join(resolve(values.out!), "plan");
ensureOutDir(planDir, "--out");

// M >= 1024: issue 7's target (within 1.15x of the compute floor, bf16 cuBLAS on the same shape).
const MS = values.m!.split(",").map(Number);
if (MS.some((m) => !Number.isInteger(m) || m < 1)) throw new UsageError(`--m takes a comma-separated list of positive integers, got '${values.m}'`);
const SHAPES = [[14336, 4096], [4096, 14336]].flatMap(([N, K]) => MS.map((M) => ({ M, N: N!, K: K! })));
// Decode (M <= 16): one 16-row mma tile, wide K tiles, deep pipeline, and split-K so that
// N / BN * splitK reaches 2 blocks per SM of an H100 (132 SMs): N=14336 needs BN=64 x 2 or
// BN=128 x 4, N=4096 needs BN=64 x 8. Every splitK is swept; the table keeps the best.
// Larger M: square-ish tiles, little or no split.
// Plus the H200 sweep's winners (bench/tuned.json, tuned on the shared-tile lowering): the tune
// cache keys winners by the kernel's code, which the register-fused dequant changed, so they
// no longer come back as tuned rows until re-tuned; their configs are timed here as fixed ones.
// Plus the register-A wgmma rows (bench/w4a16-configs.ts).
// One row per config: a register-A row may repeat a fixed one (the runner refuses duplicate names).
const configsFor = (M: number): GemmConfig[] => [...new Map([...fixedConfigsFor(M), ...(arch === "sm_90a" ? rsConfigsFor(M) : [])]
  .map((c) => [configText(c), c] as const)).values()];
const fixedConfigsFor = (M: number): GemmConfig[] =>
  M <= 16 ? [...[64, 128].flatMap((BN) => [1, 2, 4, 8].map((splitK) => ({ BM: 16, BN, BK: 128, stages: 4, warps: 4, splitK }))),
    { BM: 16, BN: 64, BK: 128, stages: 2, warps: 4, splitK: 1 },
    // BK 64: the scale is still once per tile (group 128), half the shared memory per stage.
    ...[4, 8].flatMap((splitK) => [2, 4].map((stages) => ({ BM: 16, BN: 64, BK: 64, stages, warps: 4, splitK })))]
  : M <= 64 ? [...[1, 2, 4].map((splitK) => ({ BM: 64, BN: 128, BK: 64, stages: 3, warps: 4, splitK })),
    { BM: 64, BN: 128, BK: 128, stages: 3, warps: 8, splitK: 1 }]
  : [1, 2].map((splitK) => ({ BM: 128, BN: 128, BK: 64, stages: 3, warps: 8, splitK }));

const kernel = loadGemm(join(REPO, "dsl-examples/gemm_w4a16.ts"), "gemm_w4a16");
// The mma slot order (docs/QUANT.md) at decode: gemm_w4a16_mma at the same configs as the
// interleaved rows (fixed and tuned), on the same integer matrix packed each way here.
// The other decode variants, each at the decode configs its kernel allows; tag: the rows' name;
// groupPerTile: the partial-sum kernels need one scale group per K tile (their `where`: BK divides 128).
const DECODE_VARIANTS = [
  { tag: "w4a16-mma", what: "mma order", name: "gemm_w4a16_mma", order: "mma" as const, groupPerTile: false },
  { tag: "w4a16-gs", what: "partial sums", name: "gemm_w4a16_gs", order: "interleaved" as const, groupPerTile: true },
  { tag: "w4a16-mma-gs", what: "mma order, partial sums", name: "gemm_w4a16_mma_gs", order: "mma" as const, groupPerTile: true },
].map((x) => ({ ...x, kernel: loadGemm(join(REPO, "dsl-examples/gemm_w4a16.ts"), x.name), compiled: new Map<string, CompiledConfig>() }));
const DECODE_M = 16;
// The memset rows: gemm_w4a16's decode split-K configs cleared by a memset (as on sm_80), beside
// the same configs cleared by the launcher's zero kernel under PDL (the sm_90a launcher's way).
const MEMSET_TAG = "w4a16-memset";
const memsetConfigsFor = (M: number): GemmConfig[] => (M <= DECODE_M && arch === "sm_90a" ? fixedConfigsFor(M).filter((c) => (c.splitK ?? 1) > 1) : []);
const compiled = new Map<string, CompiledConfig>();
const tunedPaths = values["no-tuned"] ? [] : [resolve(values.tuned!), values["tune-cache"] ? resolve(values["tune-cache"]) : defaultCachePath()];
const winners = tunedWinners(kernel, arch, mergeCaches(tunedPaths.map((p) => loadCache(p, (m) => console.warn(`bench: warning: ${m}`)))), SHAPES);
const tunedOf = (i: number) => winners[i]!.map((w) => ({ config: w.entry.config as unknown as GemmConfig, gpu: w.entry.gpu,
  label: `tuned (${w.entry.gpu}${w.exact ? "" : `, for ${shapeLabel(w.entry.shape)}`}${w.staleSpace ? ", space changed" : ""})` }));
console.log(`tuned winners: ${winners.flat().length} (shape x GPU) from ${tunedPaths.join(", ") || "(--no-tuned)"}`);
const distinct = [...new Map([...SHAPES.flatMap((s) => configsFor(s.M)), ...SHAPES.flatMap((_, i) => tunedOf(i).map((t) => t.config))].map((c) => [configText(c), c])).values()];
// A few nvcc processes at a time: 2 on the dev machine (2 cores), up to 8 on the GPU host.
const jobs = Math.max(2, Math.min(8, Math.floor(cpus().length / 2)));
/** Compiles `configs` of kernel `k` into `into`, `jobs` at a time, and says which failed. */
async function compileAll(k: typeof kernel, configs: GemmConfig[], into: Map<string, CompiledConfig>, what: string): Promise<void> {
  for (let i = 0; i < configs.length; i += jobs)
    await Promise.all(configs.slice(i, i + jobs).map(async (c) => { into.set(configText(c), await compileGemm(k, c, arch, planDir)); }));
  for (const c of into.values()) if (c.error) console.log(`${what}${configText(c.config)}: ${c.error}`);
}
await compileAll(kernel, distinct, compiled, "");
type Variant = (typeof DECODE_VARIANTS)[number];
// With minBlocks 7 and 8 too (nvcc's register cap for 7 or 8 blocks an SM) where 4 warps and at most
// 256 K of stages (BK x stages, ~4 KB a stage) let that many blocks share an SM: the partial-sum
// kernel's 78 registers hold 6 blocks of 128 threads an SM, so its 896-block grid at N = 14336,
// split-K 4, needs 1.13 waves (ncu, eighth session); capped at 72 it fits one.
const withMinBlocks = (cs: GemmConfig[]): GemmConfig[] =>
  cs.flatMap((c) => (c.warps === 4 && c.BK * c.stages <= 256 && !c.minBlocks ? [c, { ...c, minBlocks: 7 }, { ...c, minBlocks: 8 }] : [c]));
const variantConfigsFor = (v: Variant, si: number): GemmConfig[] => (SHAPES[si]!.M <= DECODE_M
  ? withMinBlocks([...fixedConfigsFor(SHAPES[si]!.M), ...tunedOf(si).map((t) => t.config)].filter((c) => !v.groupPerTile || 128 % c.BK === 0)) : []);
// Prefill (M >= 256): gemm_w4a16_bf16out, the same weights with a bf16 C (the output precision of
// the bf16 cuBLAS GEMM it is measured against; gemm_w4a16's C is f32 for split-K's atomics), at the
// register-A configs without a K split, and persistent (132 blocks) builds of the two big tiles.
const PREFILL_M = 256;
const prefill = { tag: "w4a16-bf16out", what: "bf16 C", kernel: loadGemm(join(REPO, "dsl-examples/gemm_w4a16.ts"), "gemm_w4a16_bf16out"), compiled: new Map<string, CompiledConfig>() };
const prefillConfigsFor = (M: number): GemmConfig[] => (M < PREFILL_M || arch !== "sm_90a" ? [] : [
  ...rsConfigsFor(M).filter((c) => (c.splitK ?? 1) === 1 && !c.copy).map(({ splitK: _, ...c }) => c),
  { BM: 256, BN: 128, BK: 64, stages: 3, warps: 8, persistent: 132 },
  { BM: 128, BN: 256, BK: 64, stages: 4, warps: 8, persistent: 132 },
]);
await compileAll(prefill.kernel, [...new Map(SHAPES.flatMap((s) => prefillConfigsFor(s.M)).map((c) => [configText(c), c])).values()], prefill.compiled, `${prefill.what} `);
for (const v of DECODE_VARIANTS) {
  const distinctV = [...new Map(SHAPES.flatMap((_, si) => variantConfigsFor(v, si)).map((c) => [configText(c), c])).values()];
  await compileAll(v.kernel, distinctV, v.compiled, `${v.what} `);
}

// One integer matrix per decode shape, packed in both orders (files the runner loads): the
// interleaved and mma rows then read the same weights.
function packedFiles(N: number, K: number): Record<"interleaved" | "mma", string> {
  const out = {} as Record<"interleaved" | "mma", string>;
  let x = 12345 + N + K;
  const row = new Array<number>(K);
  const packs = { interleaved: new Uint32Array(N * wordsPerRow("u4", "interleaved", K)), mma: new Uint32Array(N * wordsPerRow("u4", "mma", K)) };
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; row[k] = x >>> 28; }
    for (const order of ["interleaved", "mma"] as const) {
      const p = packWeights(row, 1, K, "u4", order);
      packs[order].set(p.words, n * p.wordsPerRow);
    }
  }
  for (const order of ["interleaved", "mma"] as const) {
    out[order] = `w-${N}x${K}-${order}.u32`;
    writeFileSync(join(planDir, out[order]), new Uint8Array(packs[order].buffer));
  }
  return out;
}

const time = { warmup: 5, reps, rotate: "auto" as const };
const cases: PlanCase[] = [{ name: "copy", copy: { bytes: 1 << 30 }, time }];
const rnd = (seed: number, lo: number, hi: number) => ({ random: { seed, lo, hi } });
const files = new Map<string, Record<"interleaved" | "mma", string>>();
for (const [si, s] of SHAPES.entries()) {
  const label = `M=${s.M} N=${s.N} K=${s.K}`;
  const decode = s.M <= DECODE_M;
  if (decode && !files.has(`${s.N}x${s.K}`)) files.set(`${s.N}x${s.K}`, packedFiles(s.N, s.K));
  const wInit = (order: "interleaved" | "mma") => (decode ? { file: files.get(`${s.N}x${s.K}`)![order] } : rnd(3, 0, 0xffffffff));
  cases.push({ name: `cublas bf16 ${label}`, cublas: { m: s.M, n: s.N, k: s.K, dtype: "bf16", transB: true, a: rnd(1, -1, 1), b: rnd(2, -1, 1) }, time,
    flops: 2 * s.M * s.N * s.K, bytes: 2 * (s.M * s.K + s.N * s.K + s.M * s.N) });
  for (const { cfg, tag, from, mma, memset } of [...configsFor(s.M).map((cfg) => ({ cfg, tag: "w4a16", from: compiled, mma: false, memset: false })),
    ...memsetConfigsFor(s.M).map((cfg) => ({ cfg, tag: MEMSET_TAG, from: compiled, mma: false, memset: true })),
    ...tunedOf(si).map((t) => ({ cfg: t.config, tag: t.label, from: compiled, mma: false, memset: false })),
    ...DECODE_VARIANTS.flatMap((v) => variantConfigsFor(v, si).map((cfg) => ({ cfg, tag: v.tag, from: v.compiled, mma: v.order === "mma", memset: false })))]) {
    const c = from.get(configText(cfg))!;
    if (c.error || !c.module || !c.grid || !c.dims || !c.zeroInit) { console.log(`skipped ${label} ${configText(cfg)}: ${c.error}`); continue; }
    // C as the launcher clears it: its zero kernel, then the kernel with PDL (sm_90a), or a
    // memset (sm_80, and the memset rows); splitK 1 clears nothing.
    const clearC = !c.zeroInit.includes("C") ? {} : c.zeroKernel && !memset ? { clearKernel: c.zeroKernel } : { clearBeforeLaunch: true };
    const dims: Record<string, number> = { M: s.M, N: s.N, K: s.K };
    cases.push({
      name: `${tag} ${label} ${configText(c.config)}`, module: c.module, kernel: c.kernel!, grid: c.grid(dims), block: [c.threads!], smem: c.smem ?? 0,
      args: [
        { tensor: "A", dtype: "bf16", shape: [s.M, s.K], init: rnd(1, -1, 1) },
        { tensor: "W", dtype: "u32", shape: [s.N, wordsPerRow("u4", mma ? "mma" : "interleaved", s.K)], init: wInit(mma ? "mma" : "interleaved") },
        { tensor: "S", dtype: "bf16", shape: [s.N, s.K / 128], init: rnd(4, -0.01, 0.01) },
        // f32 C; with splitK > 1 the generated launcher clears it before each launch; the
        // runner does the same on the stream, inside the timed region, so split-K rows pay for
        // it as a real call would.
        { tensor: "C", dtype: "f32", shape: [s.M, s.N], init: { zeros: true }, ...clearC },
        ...c.dims.map((d) => ({ i32: dims[d]! })),
        // TMA builds (the sm_90a default where the pipeline takes it: the register-A dequant gemm
        // does) take their tensor maps after the dims.
        ...tensorMapArgs(c.tensorMaps),
      ],
      time,
      flops: 2 * s.M * s.N * s.K,
      // Effective weight bandwidth: the int4 words and the scales (activations are tiny at decode).
      bytes: s.N * s.K / 2 + s.N * (s.K / 128) * 2,
    });
  }
}
for (const s of SHAPES) {
  const label = `M=${s.M} N=${s.N} K=${s.K}`;
  for (const cfg of prefillConfigsFor(s.M)) {
    const c = prefill.compiled.get(configText(cfg))!;
    if (c.error || !c.module || !c.grid || !c.dims) { console.log(`skipped ${prefill.what} ${label} ${configText(cfg)}: ${c.error}`); continue; }
    const dims: Record<string, number> = { M: s.M, N: s.N, K: s.K };
    cases.push({
      name: `${prefill.tag} ${label} ${configText(c.config)}`, module: c.module, kernel: c.kernel!, grid: c.grid(dims), block: [c.threads!], smem: c.smem ?? 0,
      args: [
        { tensor: "A", dtype: "bf16", shape: [s.M, s.K], init: rnd(1, -1, 1) },
        { tensor: "W", dtype: "u32", shape: [s.N, wordsPerRow("u4", "interleaved", s.K)], init: rnd(3, 0, 0xffffffff) },
        { tensor: "S", dtype: "bf16", shape: [s.N, s.K / 128], init: rnd(4, -0.01, 0.01) },
        { tensor: "C", dtype: "bf16", shape: [s.M, s.N], init: { zeros: true } },
        ...c.dims.map((d) => ({ i32: dims[d]! })),
        ...tensorMapArgs(c.tensorMaps),
      ],
      time, flops: 2 * s.M * s.N * s.K, bytes: s.N * s.K / 2 + s.N * (s.K / 128) * 2,
    });
  }
}
writePlan(planDir, cases);
console.log(`plan: ${cases.length} cases in ${planDir}/plan.json`);
const runner = await buildRunner();
if (!gpuAvailable().ok) {
  console.log(`no GPU here: run \`bash scripts/gpu-run.sh npx tsx bench/w4a16.ts\` on a GPU machine (runner: ${runner})`);
  process.exit(0);
}
const res = await runPlan(planDir, { runner, verbose: true });
// The packed weights (29 MB a shape and order) are rebuilt by every run: none stays in --out,
// unless --keep-inputs (bench/profile.ts then runs the plan's cases again under ncu).
if (!values["keep-inputs"]) for (const f of files.values()) for (const x of Object.values(f)) rmSync(join(planDir, x), { force: true });
if (res.error) { console.error(`bench: ${res.error}`); process.exit(1); }
const by = new Map(res.cases.map((r) => [r.name, r]));
const copy = by.get("copy")?.gbps;
const rows = [`## w4a16 (u4, group 128) vs bf16 cuBLAS, ${res.device?.name ?? "?"}, copy ${copy?.toFixed(0) ?? "?"} GB/s`, "",
  "| shape | best config | w4a16 ms | weight GB/s | % of copy | cuBLAS bf16 ms | speedup |", "| --- | --- | --- | --- | --- | --- | --- |"];
const clears = ["", "Split-K's clear of C: the launcher's zero kernel with the kernel launched by PDL behind it, against a memset (same config):", "",
  "| shape | config | zero kernel + PDL ms | memset ms | memset - zero kernel us |", "| --- | --- | --- | --- | --- |"];
const all = ["", "All configs:", "", "| shape | config | status | ms | weight GB/s | % of copy |", "| --- | --- | --- | --- | --- | --- |"];
for (const [si, s] of SHAPES.entries()) {
  const label = `M=${s.M} N=${s.N} K=${s.K}`;
  const mine = res.cases.filter((r) => r.name.startsWith(`w4a16 ${label} `));
  const pctOf = (g?: number) => (g && copy ? `${(100 * g / copy).toFixed(0)}%` : "-");
  const variantRows = DECODE_VARIANTS.map((v) => ({ v, rows: res.cases.filter((r) => r.name.startsWith(`${v.tag} ${label} `)) }));
  // Each row's config after its own tag (w4a16 / a variant's) and the shape.
  const configOf = (r: { name: string }) => r.name.slice(r.name.indexOf(` ${label} `) + label.length + 2);
  for (const r of mine) all.push(`| ${label} | ${configOf(r)} | ${r.status} | ${r.median_ms?.toFixed(4) ?? "-"} | ${r.gbps?.toFixed(0) ?? "-"} | ${pctOf(r.gbps)} |`);
  for (const { v, rows: vr } of variantRows)
    for (const r of vr) all.push(`| ${label} | ${v.what}: ${configOf(r)} | ${r.status} | ${r.median_ms?.toFixed(4) ?? "-"} | ${r.gbps?.toFixed(0) ?? "-"} | ${pctOf(r.gbps)} |`);
  const ours = mine.filter((r) => r.median_ms).sort((a, b) => a.median_ms! - b.median_ms!)[0];
  const cb = by.get(`cublas bf16 ${label}`);
  const sp = ours?.median_ms && cb?.median_ms ? `${(cb.median_ms / ours.median_ms).toFixed(2)}x` : "-";
  rows.push(`| ${label} | ${ours ? ours.name.slice(`w4a16 ${label} `.length) : "-"} | ${ours?.median_ms?.toFixed(4) ?? mine[0]?.status ?? "-"} | ${ours?.gbps?.toFixed(0) ?? "-"} | ${pctOf(ours?.gbps)} | ${cb?.median_ms?.toFixed(4) ?? "-"} | ${sp} |`);
  // Each decode variant's best config beside it, with its ratio to the interleaved best.
  for (const { v, rows: vr } of variantRows) {
    const best = vr.filter((r) => r.median_ms).sort((a, b) => a.median_ms! - b.median_ms!)[0];
    if (best) {
      const vs = ours?.median_ms ? `, ${(ours.median_ms / best.median_ms!).toFixed(2)}x vs interleaved` : "";
      rows.push(`| ${label} | ${v.what}: ${configOf(best)}${vs} | ${best.median_ms!.toFixed(4)} | ${best.gbps?.toFixed(0) ?? "-"} | ${pctOf(best.gbps)} | ${cb?.median_ms?.toFixed(4) ?? "-"} | ${cb?.median_ms ? `${(cb.median_ms / best.median_ms!).toFixed(2)}x` : "-"} |`);
    } else if (vr.length) rows.push(`| ${label} | ${v.what}: no row ran (${vr[0]!.status}) | - | - | - | - | - |`);
  }
  // The two clears of C side by side: each memset row against the same config's zero-kernel row.
  for (const r of res.cases.filter((x) => x.name.startsWith(`${MEMSET_TAG} ${label} `))) {
    const k = by.get(`w4a16 ${label} ${configOf(r)}`);
    const d = r.median_ms && k?.median_ms ? ((r.median_ms - k.median_ms) * 1000).toFixed(1) : "-";
    clears.push(`| ${label} | ${configOf(r)} | ${k?.median_ms?.toFixed(4) ?? k?.status ?? "-"} | ${r.median_ms?.toFixed(4) ?? r.status} | ${d} |`);
  }
  // The bf16-C prefill kernel's best row, as issue 7 reads it: time over bf16 cuBLAS's (the floor).
  const pre = res.cases.filter((r) => r.name.startsWith(`${prefill.tag} ${label} `));
  for (const r of pre) all.push(`| ${label} | ${prefill.what}: ${configOf(r)} | ${r.status} | ${r.median_ms?.toFixed(4) ?? "-"} | ${r.gbps?.toFixed(0) ?? "-"} | ${pctOf(r.gbps)} |`);
  const bestPre = pre.filter((r) => r.median_ms).sort((a, b) => a.median_ms! - b.median_ms!)[0];
  if (bestPre) rows.push(`| ${label} | ${prefill.what}: ${configOf(bestPre)}${cb?.median_ms ? `, ${(bestPre.median_ms! / cb.median_ms).toFixed(2)}x of the floor (cuBLAS)` : ""} | ${bestPre.median_ms!.toFixed(4)} | ${bestPre.gbps?.toFixed(0) ?? "-"} | ${pctOf(bestPre.gbps)} | ${cb?.median_ms?.toFixed(4) ?? "-"} | ${cb?.median_ms ? `${(cb.median_ms / bestPre.median_ms!).toFixed(2)}x` : "-"} |`);
  // Tuned winners: their own rows, labelled with the GPU they were tuned on (and for which
  // shape, when it is the nearest tuned one), with the ratio to the best fixed config.
  for (const t of tunedOf(si)) {
    const r = by.get(`${t.label} ${label} ${configText(t.config)}`);
    const ms = r?.status === "ok" ? r.median_ms : undefined;
    const vs = ms && ours?.median_ms ? `, ${(ours.median_ms / ms).toFixed(2)}x vs best fixed` : "";
    const elsewhere = res.device?.name && res.device.name !== t.gpu ? ", tuned on another GPU" : "";
    rows.push(`| ${label} | ${t.label}: ${configText(t.config)}${vs}${elsewhere} | ${ms?.toFixed(4) ?? r?.status ?? "-"} | ${ms ? r!.gbps?.toFixed(0) ?? "-" : "-"} | ${ms ? pctOf(r!.gbps) : "-"} | ${cb?.median_ms?.toFixed(4) ?? "-"} | ${ms && cb?.median_ms ? `${(cb.median_ms / ms).toFixed(2)}x` : "-"} |`);
  }
}
const tables = [...rows, ...(clears.length > 5 ? clears : []), ...all];
console.log(tables.join("\n"));
writeFileSync(join(resolve(values.out!), "latest.md"), tables.join("\n") + "\n");
