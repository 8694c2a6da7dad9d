// What every pass receives besides the kernel.
import type { Kernel, TunableValue } from "../ir/ir.ts";

export interface Target {
  arch: "sm_80" | "sm_90a" | "wgsl";
  /** Tensor-core mma.sync available (never on WGSL). */
  mma: boolean;
  /** cp.async available (never on WGSL). */
  cpAsync: boolean;
  /** wgmma.mma_async available (sm_90a): gemms take it when they fit (lower-gemm-wgmma.ts). */
  wgmma?: boolean;
  /** Pipelined wgmma operand tiles arrive by TMA with mbarriers (lower-pipeline-tma.ts) instead
   *  of cp.async. On by default in cudaTarget (measured faster on an H200); `--copy cp.async` off. */
  tma?: boolean;
  /** Persistent blocks: a 1-d grid becomes this many blocks looping over the tiles
   *  (persistent-grid.ts; `--persistent P`, P usually the GPU's SM count). */
  persistentBlocks?: number;
  /** Warp specialization of TMA pipelines (warp-specialize.ts; on by default in cudaTarget,
   *  `--no-ws` off): a producer warpgroup added to the block issues the TMA loads, the kernel's
   *  own warps only compute. Needs tma. */
  warpSpecialize?: boolean;
  /** Ping-pong consumers (ping-pong.ts; `--pingpong`, only with warpSpecialize and
   *  persistentBlocks): two consumer warpgroups take alternate tiles of a persistent block, one's
   *  epilogue overlapping the other's main loop. The tile code is lowered for one warpgroup. */
  pingpong?: boolean;
  /** Dequant-gemm pairs of fewer than 64 rows take the register-A wgmma too (dequant-wgmma.ts;
   *  `--dequant wgmma`), instead of the mma.sync fusion that auto gives them. */
  dequantWgmma?: boolean;
  /** Programmatic dependent launch (sm_90a only; `--pdl`, the layer's default on sm_90a):
   *  the kernel waits for its predecessor at the top and lets its successor launch
   *  (programmatic-launch.ts), and its launcher launches it with the PDL attribute. */
  pdl?: boolean;
  /** Outputs written only by atomic adds (split-K) are cleared by a zero kernel that this kernel
   *  overlaps through PDL, not by a memset (sm_90a; overlap-clears.ts, docs/QUANT.md): the kernel
   *  waits for the zero kernel right before its first access to them. cudaTarget's default on
   *  sm_90a; ignored with pdl (chain mode keeps the memset). */
  clearKernel?: boolean;
}

export const SM80: Target = { arch: "sm_80", mma: true, cpAsync: true };
export const SM90A: Target = { arch: "sm_90a", mma: true, cpAsync: true, wgmma: true };
export const WGSL: Target = { arch: "wgsl", mma: false, cpAsync: false };

export interface PassOptions {
  /** Tunable values requested by the caller; missing ones take their defaults. */
  config: Record<string, TunableValue>;
  target: Target;
}

export type Pass = (k: Kernel, opts: PassOptions) => Kernel;

export type TensorCoreChoice = "wgmma" | "mma";

/** The CUDA target for `arch`. On sm_90a gemms take wgmma where they fit unless `cores`
 *  is "mma", which keeps the portable mma.sync path (to measure or check it on Hopper). */
/**
 * The CUDA target for an arch. On sm_90a the defaults are the Hopper instructions: wgmma, and
 * TMA for pipelined operand tiles where the TMA lowering applies (it falls back to cp.async
 * per loop, and at run time when a tensor's pitch does not allow a tensor map). Measured on an
 * H200 (bench/RESULTS.md): TMA beat cp.async at every bench config of 4096^3 and 8192^3, and
 * the warp-specialized TMA pipeline beat the plain one at every config, so both are on unless
 * turned off (warp specialization applies only where TMA does).
 */
export function cudaTarget(arch: "sm_80" | "sm_90a", cores: TensorCoreChoice = "wgmma", copy: CopyChoice = "tma", persistentBlocks?: number, warpSpecialize = true,
  { pdl = false, pingpong = false, clearKernel = arch === "sm_90a" }: { pdl?: boolean; pingpong?: boolean; clearKernel?: boolean } = {}): Target {
  const arched = arch === "sm_80" ? SM80 : cores === "mma" ? { ...SM90A, wgmma: false } : copy === "tma" ? { ...SM90A, tma: true } : SM90A;
  const base = clearKernel && arch === "sm_90a" ? { ...arched, clearKernel: true } : arched;
  const ws = warpSpecialize && base.tma ? { ...base, warpSpecialize: true } : base;
  const withPdl = pdl ? { ...ws, pdl: true } : ws;
  const p = persistentBlocks ? { ...withPdl, persistentBlocks } : withPdl;
  return pingpong ? { ...p, pingpong: true } : p;
}

/** How pipelined wgmma operand tiles reach shared memory on sm_90a. */
export type CopyChoice = "cp.async" | "tma";
