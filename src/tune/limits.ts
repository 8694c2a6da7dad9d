// What one thread block may use on a GPU, and which candidates exceed it. Checked before
// timing, so that the GPU never sees a launch that cannot work (or, for spills, that is
// very unlikely to win).
import type { Arch } from "../driver/nvcc.ts";
import type { DeviceInfo } from "../runtime/plan.ts";

export interface DeviceLimits {
  /** Dynamic + static shared memory per block, bytes (the opt-in maximum). */
  smemPerBlock: number;
  /** Registers of one block: registers per thread x threads must not exceed it. */
  regsPerBlock: number;
  maxThreads: number;
  /** Where these numbers come from, for the report. */
  source: string;
}

// The opt-in maxima from the CUDA programming guide's compute capability table
// (8.0: 163 KiB, 9.0: 227 KiB); 64 K 32-bit registers per block on both.
export const ARCH_LIMITS: Record<Arch, DeviceLimits> = {
  sm_80: { smemPerBlock: 163 * 1024, regsPerBlock: 65536, maxThreads: 1024, source: "sm_80 table" },
  sm_90a: { smemPerBlock: 227 * 1024, regsPerBlock: 65536, maxThreads: 1024, source: "sm_90a table" },
};

/** The limits a device reports (the runner's device info) where we have one. */
export function limitsFromDevice(arch: Arch, d: DeviceInfo): DeviceLimits {
  return { ...ARCH_LIMITS[arch], smemPerBlock: d.smem_optin_bytes, source: `${d.name} (cc ${d.cc})` };
}

export interface BlockResources {
  threads: number;
  smemDynamic: number;
  /** From ptxas, once compiled. */
  smemStatic?: number;
  registers?: number;
  spillBytes?: number;
}

/** Why a block with these resources cannot launch on the device, or undefined. */
export function hardLimit(r: BlockResources, lim: DeviceLimits): string | undefined {
  if (r.threads < 1 || r.threads > lim.maxThreads) return `${r.threads} threads per block (limit ${lim.maxThreads})`;
  const smem = r.smemDynamic + (r.smemStatic ?? 0);
  if (smem > lim.smemPerBlock)
    return `shared memory ${kib(smem)} per block exceeds ${kib(lim.smemPerBlock)} (${lim.source})`;
  if (r.registers !== undefined && r.registers * r.threads > lim.regsPerBlock)
    return `${r.registers} registers x ${r.threads} threads = ${r.registers * r.threads} > ${lim.regsPerBlock} registers per block`;
  return undefined;
}

/** Why ptxas's report says this candidate is not worth timing (spills), or undefined. */
export function softLimit(r: BlockResources): string | undefined {
  if (r.spillBytes) return `ptxas spills ${r.spillBytes} bytes (loads + stores) to local memory`;
  return undefined;
}

export const kib = (b: number) => (b % 1024 === 0 ? `${b / 1024} KiB` : `${(b / 1024).toFixed(1)} KiB`);
