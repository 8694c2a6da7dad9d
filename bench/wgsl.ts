// `npm run bench:wgsl`: the WGSL kernels on whatever WebGPU adapter this process gets (the
// project's lavapipe CPU adapter after scripts/setup-webgpu.sh), each run checked against its
// float64 reference first, then timed (timestamp queries when offered, else wall clock).
// On a CPU adapter these numbers say that the kernels run, and roughly how long a test case
// takes; they say nothing about GPU speed, and the table says which adapter it was.
//   tsx bench/wgsl.ts [--reps N] [--out DIR]
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import "./errors.ts";
import { parseArgs } from "node:util";
import { intFlag } from "../src/cli/args.ts";
import { parseKernels } from "../src/frontend/index.ts";
import { lower, WGSL } from "../src/passes/pipeline.ts";
import { defaultConfig } from "../src/tune/space.ts";
import { runCase, type Backend } from "../src/check/run.ts";
import { clearAccumulated } from "../src/check/backends.ts";
import { loadSpecs } from "../src/cli/check.ts";
import { getGpu } from "../runtime/webgpu/adapter.ts";
import { runWgsl } from "../runtime/webgpu/host.ts";

const REPO = resolve(import.meta.dirname, "..");
const { values } = parseArgs({ options: { reps: { type: "string", default: "5" }, out: { type: "string", default: join(REPO, "bench/out-wgsl") } } });
const reps = intFlag(values.reps, "reps", 5, 1);

type Dims = Record<string, number>;
interface Item { file: string; kernel: string; f16?: boolean; shapes: Dims[]; flops: (d: Dims) => number }
const gemmFlops = (d: Dims) => 2 * d.M! * d.N! * d.K!;
const square = [64, 128, 256].map((s) => ({ M: s, N: s, K: s }));
const ITEMS: Item[] = [
  { file: "dsl-examples/gemm_f32.ts", kernel: "gemm_f32", shapes: square, flops: gemmFlops },
  { file: "dsl-examples/gemm.ts", kernel: "gemm_f16", f16: true, shapes: square, flops: gemmFlops },
  { file: "dsl-examples/gemm_w4a16.ts", kernel: "gemm_w4a16", shapes: [{ M: 1, N: 512, K: 1024 }, { M: 16, N: 512, K: 1024 }], flops: gemmFlops },
];

const gpu = await getGpu();
if (!gpu.ok) {
  console.log(`bench:wgsl: no WebGPU adapter: ${gpu.reason} (run scripts/setup-webgpu.sh for the CPU adapter)`);
  process.exit(0);
}
const adapter = `${gpu.gpu.description}${gpu.gpu.isCpu ? " (CPU adapter)" : ""}`;
console.log(`adapter: ${adapter}; shader-f16 ${gpu.gpu.hasF16 ? "yes" : "no"}, subgroups ${gpu.gpu.hasSubgroups ? "yes" : "no"}, timestamps ${gpu.gpu.hasTimestamps ? "yes" : "no"}`);

const rows: string[][] = [];
for (const it of ITEMS) {
  if (it.f16 && !gpu.gpu.hasF16) { rows.push([it.kernel, "-", "-", "skipped: the adapter has no shader-f16", "", "", ""]); continue; }
  const k = parseKernels(join(REPO, it.file)).find((x) => x.name === it.kernel);
  const spec = (await loadSpecs(join(REPO, it.file))).get(it.kernel);
  if (!k || !spec) throw new Error(`bench:wgsl: ${it.file} has no kernel ${it.kernel} with a check spec`);
  const config = defaultConfig(k);
  const low = lower(k, config, WGSL);
  for (const dims of it.shapes) {
    let ms: number | undefined, timing = "";
    const timed: Backend = async (_k, c, tensors, scalars) => {
      clearAccumulated(low, tensors);
      const r = await runWgsl(low, tensors, scalars, { dims: c.dims, reps });
      ms = r.ms; timing = r.timing ?? "";
      return r.outputs;
    };
    const t0 = Date.now();
    const why = await runCase(k, spec, { dims, config, dataSeed: 1 }, timed);
    const shape = Object.entries(dims).map(([n, v]) => `${n}=${v}`).join(" ");
    const cfg = Object.entries(config).map(([n, v]) => `${n}=${v}`).join(" ");
    rows.push([it.kernel, shape, cfg, why ? `WRONG: ${why}` : "matches reference", ms?.toFixed(3) ?? "-",
      ms ? (it.flops(dims) / ms / 1e6).toFixed(2) : "-", `${timing}; ${((Date.now() - t0) / 1000).toFixed(1)} s with the check`]);
    console.log(rows[rows.length - 1]!.join(" | "));
  }
}

const head = ["kernel", "shape", "config (default)", "result", "ms (median)", "GFLOP/s", "timing"];
const md = `## WGSL on ${adapter}, ${new Date().toISOString().slice(0, 10)}\n\n` +
  `Correctness first: every row ran once and was compared with the float64 reference. The times are\n` +
  `${gpu.gpu.isCpu ? "of a CPU adapter (lavapipe): not GPU performance." : "of this adapter."}\n\n` +
  [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n") + "\n";
mkdirSync(resolve(values.out!), { recursive: true });
writeFileSync(join(resolve(values.out!), "latest.md"), md);
console.log(`\n${md}\nwritten: ${join(resolve(values.out!), "latest.md")}`);
if (rows.some((r) => r[3]!.startsWith("WRONG"))) process.exit(1);
