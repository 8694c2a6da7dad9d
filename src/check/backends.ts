// Where `tilemoe check` runs a kernel: the CPU interpreter (tile-level IR, or the lowered
// thread-level IR with its mma fragments and barriers), WebGPU, or the CUDA GPU runner.
// Lowering is cached per config: one compile serves every shape of a run.
import type { Kernel } from "../ir/ir.ts";
import { cudaTarget, lower, PASSES, SM80, WGSL, type Target, type TensorCoreChoice, type CopyChoice } from "../passes/pipeline.ts";
import { runKernel } from "../interp/index.ts";
import type { TensorValue } from "../numeric/tensor.ts";
import { configKey, type Config } from "../tune/space.ts";
import { zeroInitOutputs } from "../ir/zero-init.ts";
import type { Backend } from "./run.ts";

export const BACKENDS = ["interp", "cuda", "webgpu"] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendOptions {
  level: "tile" | "thread"; arch: "sm_80" | "sm_90a"; cores?: TensorCoreChoice; copy?: CopyChoice; persistent?: number; ws?: boolean; pingpong?: boolean;
  /** --dequant wgmma: dequant-gemms under 64 rows take the register-A wgmma (cuda, sm_90a). */
  dequantWgmma?: boolean;
  /** --pdl: lowered with programmatic dependent launch (sm_90a; the wait and trigger are no-ops
   *  for one kernel, so this checks that the kernels built so still compute the same). */
  pdl?: boolean;
  /** webgpu: false expands warp_reduce through workgroup memory even where subgroups exist. */
  subgroups?: boolean;
}

/** Lowered kernels by config, so that a check run lowers each config once. */
export function loweringCache(target: Target, stopAfter?: string) {
  const cache = new Map<string, Kernel>();
  return (k: Kernel, config: Config): Kernel => {
    const key = `${k.name}|${configKey(config)}`;
    let low = cache.get(key);
    if (!low) {
      low = stopAfter ? lowerUntil(k, config, target, stopAfter) : lower(k, config, target);
      cache.set(key, low);
    }
    return low;
  };
}

/** The kernel after the pass named `last` (tile-level checks stop before lowering). */
function lowerUntil(k: Kernel, config: Config, target: Target, last: string): Kernel {
  if (!PASSES.some((p) => p.name === last)) throw new Error(`no pass named ${last}`);
  for (const p of PASSES) {
    k = p.run(k, { config, target });
    if (p.name === last) break;
  }
  return k;
}

export async function backendFor(name: BackendName, opts: BackendOptions): Promise<Backend> {
  switch (name) {
    case "interp": {
      // The interpreter runs the portable lowering, or the sm_90a TMA one when that is asked for.
      // --pdl alone: the sm_90a lowering without TMA (its griddepcontrol statements are no-ops here).
      const base = opts.copy === "tma" || opts.ws ? cudaTarget("sm_90a", "wgmma", "tma", undefined, opts.ws, { pdl: opts.pdl })
        : opts.pdl ? cudaTarget("sm_90a", "wgmma", "cp.async", undefined, false, { pdl: true }) : SM80;
      const persistent = opts.persistent ? { ...base, persistentBlocks: opts.persistent } : base;
      const target = opts.pingpong ? { ...persistent, pingpong: true } : persistent;
      const low = loweringCache(target, opts.level === "tile" ? "inferTypes" : undefined);
      return async (k, c, tensors, scalars) => {
        const lk = low(k, c.config);
        clearAccumulated(lk, tensors);
        runKernel(lk, { tensors, scalars }, { raceCheck: true });
        return outputsOf(k, tensors);
      };
    }
    case "webgpu": {
      const { runWgsl, requireGpu } = await import("../../runtime/webgpu/host.ts");
      await requireGpu(); // fail once, clearly, before drawing cases
      const low = loweringCache(WGSL);
      return async (k, c, tensors, scalars) => {
        const lk = low(k, c.config);
        clearAccumulated(lk, tensors);
        const r = await runWgsl(lk, tensors, scalars, { dims: c.dims, subgroups: opts.subgroups });
        return r.outputs;
      };
    }
    case "cuda": {
      const { cudaBackend } = await import("./backend-cuda.ts");
      const t = cudaTarget(opts.arch, opts.cores, opts.copy, opts.persistent, opts.ws, { pdl: opts.pdl, pingpong: opts.pingpong });
      return cudaBackend(loweringCache(opts.dequantWgmma ? { ...t, dequantWgmma: true } : t), opts.arch);
    }
  }
}

function outputsOf(k: Kernel, tensors: Record<string, TensorValue>): Record<string, TensorValue> {
  const out: Record<string, TensorValue> = {};
  for (const p of k.params) if (p.kind === "tensor" && p.output) out[p.name] = tensors[p.name]!;
  return out;
}

/** What every launcher does first: outputs written only by atomic adds start at zero. */
export function clearAccumulated(k: Kernel, tensors: Record<string, TensorValue>): void {
  for (const n of zeroInitOutputs(k)) tensors[n]?.data.fill(0);
}
