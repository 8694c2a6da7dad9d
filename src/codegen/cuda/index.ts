export { emitCuda, smemAlignment, type CudaOutput, type EmitOptions } from "./emit.ts";
