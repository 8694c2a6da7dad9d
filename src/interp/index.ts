export { runKernel, bindDims, type RunArgs, type RunOptions, type TensorValue } from "./run.ts";
export { InterpError } from "./fault.ts";
