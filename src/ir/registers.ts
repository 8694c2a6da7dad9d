// The register budget that setmaxnreg (sm_90a) works within, shared by the lowering that
// picks the counts (warp-specialize.ts) and the interpreter that checks them.

/** 32-bit registers per SM (sm_80, sm_90). */
export const SM_REGISTERS = 65536;

/** The per-thread register limit a block of `threads` starts with when one block must fit on
 *  an SM: the largest multiple of 8 (allocation granularity) below 65536 / threads, and at most
 *  248 (a thread addresses 255). ptxas takes its count from __launch_bounds__(threads, 1), which
 *  the CUDA emitter writes for kernels that use setmaxnreg (checked with nvcc 12 for sm_90a:
 *  168 at 384 threads; 255 at 256 threads, which this model rounds down to 248, so the pool it
 *  assumes, threads * launchRegs(threads), is never larger than the GPU's). */
export function launchRegs(threads: number): number {
  return Math.min(248, Math.floor(SM_REGISTERS / threads / 8) * 8);
}

/** setmaxnreg counts are multiples of 8 in [24, 256] (PTX ISA). */
export const validMaxnreg = (n: number): boolean => Number.isInteger(n) && n >= 24 && n <= 256 && n % 8 === 0;
