// The kernel that clears a split-K launcher's zero-init outputs on sm_90a (docs/QUANT.md,
// "Clearing by a zero kernel"), written as thread-level IR and emitted like every other kernel:
// each thread zeroes one 4-byte word; the trigger comes first, so the GEMM launched behind it with
// PDL starts its main loop while these stores run. Its C signature is NAME_zero(unsigned* P,
// int n) over n words, grid cdiv(n, 256) (at least 1), block 256: the launcher and the GPU runner
// launch it so.
import type { Kernel } from "../../ir/ir.ts";
import { parseKernel } from "../../ir/parse.ts";

export const ZERO_KERNEL_THREADS = 256;

export const zeroKernel = (): Kernel => parseKernel(`kernel zero(P: global u32[n] out)
  dims n
launch thread grid [cdiv(n, ${ZERO_KERNEL_THREADS})] threads ${ZERO_KERNEL_THREADS} blocks [bx] thread tx {
  griddepcontrol.launch_dependents
  let i: i32 = bx * ${ZERO_KERNEL_THREADS} + tx
  if (i < n) {
    store P[i] = cast<u32>(0)
  }
}
`, "<zero kernel>");
