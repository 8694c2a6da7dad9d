// The WGSL backend's public face: thread-level IR in, a WGSL module and its binding plan out.
export { emitWgsl, type Feats, type WgslKernel, type WgslTensorBinding, type WgslUniformField } from "./emit.ts";
export { wgslBundle, type WgslBundle } from "./bundle.ts";
