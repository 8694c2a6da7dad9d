export { emitCuda, type CudaOutput, type EmitOptions } from "./emit.ts";
