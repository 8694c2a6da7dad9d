// `tilemoe check --backend cuda`: compile each config once (nvcc, cached), then for every
// case write the inputs as files, run the kernel through the GPU runner and read the
// outputs back. The kernel is launched exactly as its generated launcher would launch it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import type { Kernel } from "../ir/ir.ts";
import { evalConst } from "../ir/expr.ts";
import { emitCuda } from "../codegen/cuda/index.ts";
import { compileCuda } from "../driver/nvcc.ts";
import { buildRunner, gpuAvailable, readTensor, runPlan, writePlan, writeTensor, type Arg } from "../runtime/cuda.ts";
import type { TensorValue } from "../numeric/tensor.ts";
import { configKey, numericConfig, type Config } from "../tune/space.ts";
import type { Backend } from "./run.ts";

export async function cudaBackend(lowerFor: (k: Kernel, c: Config) => Kernel, arch: "sm_80" | "sm_90a"): Promise<Backend> {
  const gpu = gpuAvailable();
  if (!gpu.ok) throw Object.assign(new Error(`--backend cuda needs a GPU: ${gpu.reason}`), { userFacing: true });
  const runner = await buildRunner();
  const modules = new Map<string, { cubin: Buffer; symbol: string; low: Kernel }>();
  const dir = mkdtempSync(join(tmpdir(), "tilemoe-check-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

  return async (k, c, tensors, scalars) => {
    const key = `${k.name}|${configKey(c.config)}`;
    let mod = modules.get(key);
    if (!mod) {
      const low = lowerFor(k, c.config);
      const out = emitCuda(low);
      const res = await compileCuda(out.cu, { arch, outputs: ["cubin"] });
      mod = { cubin: res.cubin!, symbol: out.kernelSymbol, low };
      modules.set(key, mod);
    }
    const { low } = mod;
    const env = { ...numericConfig(low.config), ...c.dims };
    const grid = low.launch.grid.map((e) => evalConst(e, env)!);
    while (grid.length < 3) grid.push(1);
    const threads = evalConst(low.launch.threads, env)!;
    const outs: Record<string, TensorValue> = {};
    if (grid.some((g) => g === 0)) {
      for (const p of k.params) if (p.kind === "tensor" && p.output) outs[p.name] = tensors[p.name]!;
      return outs; // the launcher does not launch an empty grid; outputs stay as they were
    }
    writeFileSync(join(dir, "kernel.cubin"), mod.cubin);
    const args: Arg[] = [];
    for (const p of low.params) {
      if (p.kind === "scalar") {
        args.push(p.dtype === "f32" ? { f32: scalars[p.name]! } : p.dtype === "f64" ? { f64: scalars[p.name]! } : { i32: scalars[p.name]! });
        continue;
      }
      const t = tensors[p.name]!;
      writeTensor(join(dir, `${p.name}.in.bin`), t.dtype, t.data);
      args.push({ tensor: p.name, dtype: t.dtype, shape: t.shape, init: { file: `${p.name}.in.bin` },
        ...(p.output ? { output: true, save: `${p.name}.out.bin` } : {}) });
    }
    for (const d of low.dims) args.push({ i32: c.dims[d]! });
    writePlan(dir, [{ name: "case", module: "kernel.cubin", kernel: mod.symbol, grid, block: [threads, 1, 1], smem: low.smemBytes ?? 0, args }]);
    const res = await runPlan(dir, { runner });
    const r = res.error ? { status: "failed", error: res.error } : res.cases[0]!;
    if (r.status !== "ok") throw new Error(`GPU run failed: ${r.error ?? r.status}`);
    for (const p of k.params) {
      if (p.kind !== "tensor" || !p.output) continue;
      const t = tensors[p.name]!;
      outs[p.name] = { dtype: t.dtype, shape: t.shape, data: readTensor(join(dir, `${p.name}.out.bin`), t.dtype) };
    }
    return outs;
  };
}
