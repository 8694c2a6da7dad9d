// w4a16 bench: dsl-examples/gemm_w4a16.ts (u4, group 128, symmetric) against bf16 cuBLAS on
// the same shapes and the copy ceiling, in one runner plan on one card. Reports the
// effective weight bandwidth (int4 bytes + scales / time) as a fraction of the copy's.
//   tsx bench/w4a16.ts [--arch sm_90a|sm_80] [--reps N] [--out DIR]
// Without a GPU it builds the plan and says how to run it (scripts/gpu-run.sh).
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Arch } from "../src/driver/nvcc.ts";
import { buildRunner, gpuAvailable, runPlan, writePlan } from "../src/runtime/cuda.ts";
import type { PlanCase } from "../src/runtime/plan.ts";
import { compileGemm, loadGemm } from "./compile.ts";
import { type CompiledConfig, type GemmConfig, configText } from "./plan.ts";

const REPO = resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: {
  arch: { type: "string", default: "sm_90a" }, reps: { type: "string", default: "30" },
  out: { type: "string", default: join(REPO, "bench/out-w4a16") },
} });
const arch = values.arch as Arch;
const planDir = join(resolve(values.out!), "plan");
mkdirSync(planDir, { recursive: true });

const SHAPES = [[14336, 4096], [4096, 14336]].flatMap(([N, K]) => [1, 16, 64, 256].map((M) => ({ M, N: N!, K: K! })));
// Decode (M <= 16): one 16-row mma tile, wide K tiles, deep pipeline; larger M: square-ish tiles.
const configFor = (M: number): GemmConfig =>
  M <= 16 ? { BM: 16, BN: 64, BK: 128, stages: 4, warps: 4 }
  : M <= 64 ? { BM: 64, BN: 128, BK: 64, stages: 3, warps: 4 }
  : { BM: 128, BN: 128, BK: 64, stages: 3, warps: 8 };

const kernel = loadGemm(join(REPO, "dsl-examples/gemm_w4a16.ts"), "gemm_w4a16");
const compiled = new Map<string, CompiledConfig>();
await Promise.all([...new Set(SHAPES.map((s) => configFor(s.M)))].map(async (c) => {
  compiled.set(configText(c), await compileGemm(kernel, c, arch, planDir));
}));

const time = { warmup: 5, reps: Number(values.reps), rotate: "auto" as const };
const cases: PlanCase[] = [{ name: "copy", copy: { bytes: 1 << 30 }, time }];
const rnd = (seed: number, lo: number, hi: number) => ({ random: { seed, lo, hi } });
for (const s of SHAPES) {
  const label = `M=${s.M} N=${s.N} K=${s.K}`;
  cases.push({ name: `cublas bf16 ${label}`, cublas: { m: s.M, n: s.N, k: s.K, dtype: "bf16", transB: true, a: rnd(1, -1, 1), b: rnd(2, -1, 1) }, time,
    flops: 2 * s.M * s.N * s.K, bytes: 2 * (s.M * s.K + s.N * s.K + s.M * s.N) });
  const c = compiled.get(configText(configFor(s.M)))!;
  if (c.error || !c.module || !c.grid || !c.dims) { console.log(`skipped ${label}: ${c.error}`); continue; }
  const dims: Record<string, number> = { M: s.M, N: s.N, K: s.K };
  cases.push({
    name: `w4a16 ${label} ${configText(c.config)}`, module: c.module, kernel: c.kernel!, grid: c.grid(dims), block: [c.threads!], smem: c.smem ?? 0,
    args: [
      { tensor: "A", dtype: "bf16", shape: [s.M, s.K], init: rnd(1, -1, 1) },
      { tensor: "W", dtype: "u32", shape: [s.N, s.K / 8], init: rnd(3, 0, 0xffffffff) },
      { tensor: "S", dtype: "bf16", shape: [s.N, s.K / 128], init: rnd(4, -0.01, 0.01) },
      { tensor: "C", dtype: "bf16", shape: [s.M, s.N], init: { zeros: true } },
      ...c.dims.map((d) => ({ i32: dims[d]! })),
    ],
    time,
    flops: 2 * s.M * s.N * s.K,
    // Effective weight bandwidth: the int4 words and the scales (activations are tiny at decode).
    bytes: s.N * s.K / 2 + s.N * (s.K / 128) * 2,
  });
}
writePlan(planDir, cases);
console.log(`plan: ${cases.length} cases in ${planDir}/plan.json`);
const runner = await buildRunner();
if (!gpuAvailable().ok) {
  console.log(`no GPU here: run \`bash scripts/gpu-run.sh npx tsx bench/w4a16.ts\` on a GPU machine (runner: ${runner})`);
  process.exit(0);
}
const res = await runPlan(planDir, { runner, verbose: true });
if (res.error) { console.error(`bench: ${res.error}`); process.exit(1); }
const by = new Map(res.cases.map((r) => [r.name, r]));
const copy = by.get("copy")?.gbps;
const rows = [`## w4a16 (u4, group 128) vs bf16 cuBLAS, ${res.device?.name ?? "?"}, copy ${copy?.toFixed(0) ?? "?"} GB/s`, "",
  "| shape | w4a16 ms | weight GB/s | % of copy | cuBLAS bf16 ms | speedup |", "| --- | --- | --- | --- | --- | --- |"];
for (const s of SHAPES) {
  const label = `M=${s.M} N=${s.N} K=${s.K}`;
  const ours = res.cases.find((r) => r.name.startsWith(`w4a16 ${label} `));
  const cb = by.get(`cublas bf16 ${label}`);
  const pct = ours?.gbps && copy ? `${(100 * ours.gbps / copy).toFixed(0)}%` : "-";
  const sp = ours?.median_ms && cb?.median_ms ? `${(cb.median_ms / ours.median_ms).toFixed(2)}x` : "-";
  rows.push(`| ${label} | ${ours?.median_ms?.toFixed(4) ?? ours?.status ?? "-"} | ${ours?.gbps?.toFixed(0) ?? "-"} | ${pct} | ${cb?.median_ms?.toFixed(4) ?? "-"} | ${sp} |`);
}
console.log(rows.join("\n"));
writeFileSync(join(resolve(values.out!), "latest.md"), rows.join("\n") + "\n");
