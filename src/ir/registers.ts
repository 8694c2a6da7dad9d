// The register budget that setmaxnreg (sm_90a) works within, shared by the lowering that
// picks the counts (warp-specialize.ts) and the interpreter that checks them.

/** 32-bit registers per SM (sm_80, sm_90). */
export const SM_REGISTERS = 65536;

/** Shared memory one SM holds for its blocks (sm_90: 228 KB, of which each block also takes
 *  1 KB reserved by the driver). */
export const SM_SHARED_BYTES = 228 * 1024;
export const BLOCK_RESERVED_SHARED = 1024;
/** wgmma operand tiles: the 128-byte swizzle repeats every 1024 bytes of absolute address, so
 *  the CUDA emitter starts each such tile on a 1024-byte boundary (codegen/cuda/smem.ts). */
export const WGMMA_SMEM_ALIGN = 1024;

/** The per-thread register limit a block of `threads` starts with when `perSM` blocks must fit
 *  on an SM together: the largest multiple of 8 (allocation granularity) below
 *  65536 / (threads * perSM), and at most 248 (a thread addresses 255). ptxas takes its count
 *  from __launch_bounds__(threads, perSM), which the CUDA emitter writes for kernels that use
 *  setmaxnreg (checked with nvcc 12 for sm_90a, one block: 168 at 384 threads; 255 at 256
 *  threads, which this model rounds down to 248, so the pool it assumes,
 *  threads * launchRegs(threads), is never larger than the GPU's). */
export function launchRegs(threads: number, perSM = 1): number {
  return Math.min(248, Math.floor(SM_REGISTERS / (threads * perSM) / 8) * 8);
}

/** setmaxnreg counts are multiples of 8 in [24, 256] (PTX ISA). */
export const validMaxnreg = (n: number): boolean => Number.isInteger(n) && n >= 24 && n <= 256 && n % 8 === 0;
