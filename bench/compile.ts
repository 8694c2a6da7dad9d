// Compiles dsl-examples/gemm.ts for one config through the whole pipeline (front end,
// passes, CUDA emitter, nvcc) into a cubin the runner loads.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Kernel } from "../src/ir/ir.ts";
import { parseKernels } from "../src/frontend/index.ts";
import { cudaTarget, lower } from "../src/passes/pipeline.ts";
import { emitCuda } from "../src/codegen/cuda/index.ts";
import { evalInt } from "../src/codegen/cuda/fold.ts";
import { compileCuda, runnerModule, type Arch } from "../src/driver/nvcc.ts";
import { zeroInitOutputs } from "../src/ir/zero-init.ts";
import { type CompiledConfig, type GemmConfig } from "./plan.ts";

export async function compileGemm(kernel: Kernel, config: GemmConfig, arch: Arch, planDir: string): Promise<CompiledConfig> {
  try {
    const { cores, copy, persistent, ws, pingpong, dequant, ...tunables } = config;
    // A config that names no copy path (tuned winners) builds as `tilemoe build` and `tune` do:
    // sm_90a defaults, warp-specialized TMA where it applies. Fixed TMA rows say `ws` or not.
    const target = cudaTarget(arch, cores, copy, persistent, ws ?? copy === undefined, { pingpong });
    const low = lower(kernel, tunables, dequant === "wgmma" ? { ...target, dequantWgmma: true } : target);
    const out = emitCuda(low, { name: `${kernel.name}_${cores ?? ""}${copy === "tma" ? "tma_" : ""}${persistent ? `p${persistent}_` : ""}${ws ? "ws_" : ""}${pingpong ? "pp_" : ""}${dequant ? "dqw_" : ""}${config.BM}x${config.BN}x${config.BK}_s${config.stages}_w${config.warps}_g${config.GROUP_M ?? 0}${config.splitK ? `_k${config.splitK}` : ""}${config.minBlocks ? `_mb${config.minBlocks}` : ""}` });
    const kind = runnerModule(arch);
    const res = await compileCuda(out.cu, { arch, outputs: [kind] });
    const module = `${out.kernelSymbol}.${arch}.${kind}`;
    writeFileSync(join(planDir, module), res[kind]!);
    const r = res.resources[out.kernelSymbol];
    const grid = (dims: Record<string, number>) =>
      low.launch.grid.map((g, i) => {
        const v = evalInt(g, { ...low.config, ...dims });
        if (v === undefined) throw new Error(`bench: grid[${i}] of ${kernel.name} does not fold to a number`);
        return v;
      });
    return { config, module, kernel: out.kernelSymbol, threads: out.threads, smem: out.smemBytes, dims: low.dims, grid, zeroInit: zeroInitOutputs(low), zeroKernel: out.zeroKernel,
      registers: r?.registers, spills: r ? r.spillLoads + r.spillStores : undefined, tensorMaps: low.tensorMaps };
  } catch (e) {
    return { config, error: (e as Error).message.split("\n")[0]! };
  }
}

export function loadGemm(file: string, name: string): Kernel {
  const k = parseKernels(file).find((k) => k.name === name);
  if (!k) throw new Error(`bench: ${file} has no kernel '${name}'`);
  return k;
}
