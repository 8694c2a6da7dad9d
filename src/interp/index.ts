// The CPU interpreter: the independent check of every pass and backend.
//
// runKernel(k, { tensors, scalars }, { raceCheck }) executes a specialized kernel on
// TensorValues (row-major float64 arrays holding values representable in their dtype);
// output tensors are mutated in place. Dims come from tensor shapes (bindDims).
//
// Semantics in brief (details at the top of each file):
//  - values are float64 numbers rounded to their IR type after every operation
//    (numeric/dtype.ts roundTo; f32 via Math.fround, ints wrap, int division truncates);
//  - tile level (tileops.ts): copy/fill/gemm on regions, out-of-range reads give 0 and
//    writes are dropped; gemm sums exact products in float64 and rounds to the
//    accumulator dtype once per gemm statement; scalar loads/stores out of bounds are errors;
//  - thread level (threads.ts): one generator per thread, barriers and warp collectives
//    (ldmatrix, mma from the PTX ISA layouts in warp.ts) as synchronisation points,
//    cp.async groups (cpasync.ts), shared-memory race and missing-wait detection
//    (memory.ts); uninitialised float memory reads as NaN.
//  - every problem is an InterpError naming kernel, block, thread and the statement text.
export { runKernel, bindDims, type RunArgs, type RunOptions, type TensorValue } from "./run.ts";
export { InterpError } from "./fault.ts";
