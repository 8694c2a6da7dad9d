// `tilemoe check --backend cuda`: every config is compiled once (nvcc, cached, in
// parallel), then all cases of a check run as ONE runner plan (one process, one CUDA
// context): inputs go to the runner as files and outputs come back as files. The kernel is
// launched exactly as its generated launcher would launch it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { Kernel } from "../ir/ir.ts";
import { evalConst } from "../ir/expr.ts";
import { emitCuda } from "../codegen/cuda/index.ts";
import { compileCuda, runnerModule } from "../driver/nvcc.ts";
import { buildRunner, gpuAvailable, readTensor, runPlan, writePlan, writeTensor, type Arg, type KernelCase } from "../runtime/cuda.ts";
import type { TensorValue } from "../numeric/tensor.ts";
import { configKey, numericConfig, type Config } from "../tune/space.ts";
import type { Backend, BatchItem } from "./run.ts";
import { tensorMapArgs } from "../runtime/plan.ts";
import { clearAccumulated } from "./backends.ts";
import { zeroInitOutputs } from "../ir/zero-init.ts";

interface Module {
  file: string; symbol: string; low: Kernel; /** the emitter's shared-memory carve (authoritative) */ smem: number;
  /** The launcher's zero kernel (sm_90a split-K): the runner clears with it and launches the kernel with PDL. */
  zeroKernel?: string;
}

export async function cudaBackend(lowerFor: (k: Kernel, c: Config) => Kernel, arch: "sm_80" | "sm_90a"): Promise<Backend> {
  const gpu = gpuAvailable();
  if (!gpu.ok) throw Object.assign(new Error(`--backend cuda needs a GPU: ${gpu.reason}; run it on a GPU machine (scripts/gpu-run.sh), or check here with --backend interp (the default) or --backend webgpu`), { userFacing: true });
  const runner = await buildRunner();
  const root = mkdtempSync(join(tmpdir(), "tilemoe-check-"));
  process.on("exit", () => rmSync(root, { recursive: true, force: true }));
  const modules = new Map<string, Promise<Module>>();
  let runs = 0;

  const moduleFor = (k: Kernel, c: Config): Promise<Module> => {
    const key = `${k.name}|${configKey(c)}`;
    let m = modules.get(key);
    if (!m) {
      // Named now, not after the await: by then other compiles have grown the map, and two
      // configs writing one file would launch each other's code.
      const file = join(root, `m${modules.size}.cubin`);
      m = (async () => {
        const low = lowerFor(k, c);
        const out = emitCuda(low);
        const kind = runnerModule(arch);
        const res = await compileCuda(out.cu, { arch, outputs: [kind] });
        writeFileSync(file, res[kind]!);
        return { file, symbol: out.kernelSymbol, low, smem: out.smemBytes, zeroKernel: out.zeroKernel };
      })();
      modules.set(key, m);
    }
    return m;
  };

  const batch = async (k: Kernel, items: BatchItem[]): Promise<(Record<string, TensorValue> | Error)[]> => {
    // Compile every config the batch needs, a few at a time (nvcc is single-threaded).
    const distinct = [...new Map(items.map((it) => [configKey(it.c.config), it.c.config])).values()];
    await pool(distinct, Math.max(1, cpus().length), (c) => moduleFor(k, c));
    const dir = join(root, `run${runs++}`);
    mkdirSync(dir);
    const planned: (KernelCase | undefined)[] = [];
    for (const [i, it] of items.entries()) planned.push(planCase(await moduleFor(k, it.c.config), k, it, dir, `case${i}`));
    const cases = planned.filter((c): c is KernelCase => !!c);
    if (cases.length) writePlan(dir, cases);
    const results = cases.length ? await runPlan(dir, { runner }) : { cases: [] };
    if ("error" in results && results.error) throw new Error(`GPU runner: ${results.error}`);
    const byName = new Map(results.cases.map((r) => [r.name, r]));
    return items.map((it, i) => {
      if (!planned[i]) return outputsOf(k, it.tensors); // empty grid: nothing launched
      const r = byName.get(`case${i}`);
      if (!r || r.status !== "ok") return new Error(`GPU run failed: ${r?.error ?? r?.status ?? "no result"}`);
      const outs: Record<string, TensorValue> = {};
      for (const p of k.params) {
        if (p.kind !== "tensor" || !p.output) continue;
        const t = it.tensors[p.name]!;
        outs[p.name] = { dtype: t.dtype, shape: t.shape, data: readTensor(join(dir, `case${i}.${p.name}.out.bin`), t.dtype) };
      }
      return outs;
    });
  };

  const single: Backend = async (k, c, tensors, scalars) => {
    const [r] = await batch(k, [{ c, tensors, scalars }]);
    if (r instanceof Error) throw r;
    return r!;
  };
  return Object.assign(single, { batch });
}

/** The runner case for one check case, or undefined when the grid is empty (the launcher
 *  returns without launching, so outputs stay as they were). */
function planCase(m: Module, k: Kernel, it: BatchItem, dir: string, name: string): KernelCase | undefined {
  const { low } = m;
  // As the generated launcher clears: its zero kernel on the GPU (the output goes up as the caller
  // left it), or here, as its memset would.
  const byKernel = new Set(m.zeroKernel ? zeroInitOutputs(low) : []);
  if (!m.zeroKernel) clearAccumulated(low, it.tensors);
  const env = { ...numericConfig(low.config), ...it.c.dims };
  const grid = low.launch.grid.map((e) => evalConst(e, env)!);
  if (grid.some((g) => g === 0)) return undefined;
  while (grid.length < 3) grid.push(1);
  const args: Arg[] = [];
  for (const p of low.params) {
    if (p.kind === "scalar") {
      const x = it.scalars[p.name]!;
      args.push(p.dtype === "f32" ? { f32: x } : p.dtype === "f64" ? { f64: x } : { i32: x });
      continue;
    }
    const t = it.tensors[p.name]!;
    writeTensor(join(dir, `${name}.${p.name}.in.bin`), t.dtype, t.data);
    args.push({ tensor: p.name, dtype: t.dtype, shape: t.shape, init: { file: `${name}.${p.name}.in.bin` },
      ...(p.output ? { output: true, save: `${name}.${p.name}.out.bin` } : {}), ...(byKernel.has(p.name) ? { clearKernel: m.zeroKernel! } : {}) });
  }
  for (const d of low.dims) args.push({ i32: it.c.dims[d]! });
  args.push(...tensorMapArgs(low.tensorMaps));
  const kc: KernelCase = { name, module: m.file, kernel: m.symbol, grid, block: [evalConst(low.launch.threads, env)!, 1, 1], smem: m.smem, args };
  return kc;
}

function outputsOf(k: Kernel, tensors: Record<string, TensorValue>): Record<string, TensorValue> {
  const out: Record<string, TensorValue> = {};
  for (const p of k.params) if (p.kind === "tensor" && p.output) out[p.name] = tensors[p.name]!;
  return out;
}

async function pool<T>(items: T[], width: number, f: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await f(items[next++]!);
  }));
}
