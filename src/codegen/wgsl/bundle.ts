// A self-contained JSON description of one emitted WGSL kernel, for hosts that are not
// this process (the browser page in runtime/webgpu/page/): the shader, its bindings and
// uniform layout, and the tensor shapes and grid as IR expression trees over the dims
// (plain JSON: {k:"int"|"var"|"bin"...}), which the host evaluates with C integer semantics.
import type { Expr, Kernel } from "../../ir/ir.ts";
import type { WgslKernel } from "./emit.ts";

export interface WgslBundle {
  format: "tilemoe.wgsl.bundle/1";
  name: string;
  wgsl: string;
  entryPoint: string;
  workgroupSize: number;
  features: string[];
  workgroupBytes: number;
  dims: string[];
  /** Specialized tunables (numbers only), usable in the expressions below. */
  config: Record<string, number>;
  tensors: { name: string; dtype: string; output: boolean; binding: number; access: string; elemBytes: number; shape: Expr[] }[];
  scalars: { name: string; dtype: string }[];
  uniform: WgslKernel["uniform"];
  grid: Expr[];
}

/** Drops source locations so that the expressions are small and stable. */
function plain(e: Expr): Expr {
  return JSON.parse(JSON.stringify(e, (key, v) => (key === "loc" ? undefined : v))) as Expr;
}

export function wgslBundle(k: Kernel, w: WgslKernel): WgslBundle {
  const config: Record<string, number> = {};
  for (const [n, x] of Object.entries(k.config)) if (typeof x === "number" || typeof x === "boolean") config[n] = +x;
  return {
    format: "tilemoe.wgsl.bundle/1",
    name: k.name, wgsl: w.wgsl, entryPoint: w.entryPoint, workgroupSize: w.workgroupSize,
    features: w.features, workgroupBytes: w.workgroupBytes, dims: [...k.dims], config,
    tensors: w.bindings.map((b) => {
      const p = k.params.find((q) => q.name === b.param)!;
      return { name: b.param, dtype: b.dtype, output: !!p.output, binding: b.binding, access: b.access, elemBytes: b.elemBytes, shape: p.shape!.map(plain) };
    }),
    scalars: k.params.filter((p) => p.kind === "scalar").map((p) => ({ name: p.name, dtype: p.dtype })),
    uniform: w.uniform,
    grid: k.launch.grid.map(plain),
  };
}
