// emitCuda: a specialized thread-level Kernel -> one .cu (kernel + C launcher) and its .h.
// The kernel body comes from walking the IR (body.ts); only the host side uses templates.
import { CompileError, type Kernel, type Launch, type Stmt } from "../../ir/ir.ts";
import { evalConst, walkStmts } from "../../ir/expr.ts";
import { BodyEmitter } from "./body.ts";
import { type Env, evalInt } from "./fold.ts";
import { emitHost } from "./host.ts";
import { cName } from "./names.ts";
import { WGMMA_SMEM_ALIGN, carveSmem } from "./smem.ts";
import { wgmmaAccumulators, wgmmaOperandBuffers } from "./wgmma.ts";
import { storageType } from "./types.ts";
import { zeroKernel } from "./zero-kernel.ts";

export interface CudaOutput {
  /** Self-contained translation unit: the header's declarations, the kernel, the launcher. */
  cu: string;
  h: string;
  /** Name of the __global__ function in the compiled module (extern "C", unmangled). */
  kernelSymbol: string;
  /** Name of the host launcher function (`<launcher>_error_string` is its companion). */
  launcher: string;
  /** Dynamic shared memory the kernel is launched with, bytes. */
  smemBytes: number;
  threads: number;
  /** The zero kernel (`NAME_zero(unsigned* P, int n)`, zero-kernel.ts) the launcher clears the zero-init
   *  outputs with before launching the kernel with PDL (sm_90a; overlap-clears.ts); absent
   *  where the launcher clears with cudaMemsetAsync or clears nothing. */
  zeroKernel?: string;
}

export interface EmitOptions {
  /** Launcher name; defaults to kernel.name. Use to tell specializations apart in one library. */
  name?: string;
  /** Alignment declared for the dynamic shared memory (default: what this kernel needs). Kernels
   *  emitted into one translation unit share the `smem` symbol, so they must declare the same. */
  smemAlign?: number;
  /** Outputs the kernel only adds into (src/ir/zero-init.ts) that the caller clears before the
   *  kernel runs, so the launcher does not (the layer launcher clears them up front). */
  callerClears?: string[];
}

/** The dynamic shared-memory alignment a kernel needs: wgmma operand tiles want 1024 bytes. */
export function smemAlignment(k: Kernel): number {
  return wgmmaOperandBuffers(k.launch.body).size > 0 ? WGMMA_SMEM_ALIGN : 128;
}

/** tm_fmax / tm_fmin: TypeScript's Math.max / Math.min, a NaN operand giving NaN (fmaxf / fminf
 *  return the other one). f32 on the GPU is one instruction (max.NaN, sm_80+); the plain C form
 *  serves f64 and host builds of the text. */
function nanMinMax(op: "max" | "min", t: "f32" | "f64"): string {
  const [ty, fn] = t === "f32" ? ["float", `f${op}f`] : ["double", `f${op}`];
  const c = `return a != a || b != b ? a + b : ${fn}(a, b);`;
  const head = `static __device__ __forceinline__ ${ty} tm_f${op}(${ty} a, ${ty} b) {`;
  if (t === "f64") return `${head} ${c} }`;
  return [head, "#ifdef __CUDA_ARCH__", `  float d; asm("${op}.NaN.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b)); return d;`,
    "#else", `  ${c}`, "#endif", "}"].join("\n");
}

const HELPERS: Record<string, string> = {
  // TypeScript's Math.round: halves toward +Infinity (C's roundf takes them away from zero); x - floor(x) is exact.
  "tm_round:f32": "static __device__ __forceinline__ float tm_round(float x) { const float f = floorf(x); return x - f >= 0.5f ? f + 1.0f : f; }",
  "tm_round:f64": "static __device__ __forceinline__ double tm_round(double x) { const double f = floor(x); return x - f >= 0.5 ? f + 1.0 : f; }",
  "tm_fmax:f32": nanMinMax("max", "f32"), "tm_fmin:f32": nanMinMax("min", "f32"),
  "tm_fmax:f64": nanMinMax("max", "f64"), "tm_fmin:f64": nanMinMax("min", "f64"),
  "tm_sigmoid:f32": "static __device__ __forceinline__ float tm_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }",
  "tm_sigmoid:f64": "static __device__ __forceinline__ double tm_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }",
};

function prelude(used: Set<string>): string[] {
  const out = Object.keys(HELPERS).filter((h) => used.has(h)).map((h) => HELPERS[h]);
  return out.length > 0 ? ["", ...out] : [];
}

export function emitCuda(k: Kernel, opts: EmitOptions = {}): CudaOutput {
  const name = cName(opts.name ?? k.name);
  const kernelSymbol = `${name}_kernel`;
  const fn = kernelFunction(k, kernelSymbol, opts.smemAlign);
  const host = emitHost(k, { name, kernelName: k.name, kernelSymbol, threads: fn.threads, smemBytes: fn.smemBytes, env: fn.env, callerClears: opts.callerClears });
  // The clears' zero kernel (zero-kernel.ts), when the launcher uses one, beside the kernel.
  const zero = host.zeroKernel ? kernelFunction(zeroKernel(), host.zeroKernel) : undefined;
  const cu = [
    host.header.replace("#pragma once\n", ""),
    "#include <cuda_runtime.h>",
    ...((k.tensorMaps ?? []).length > 0 ? ["#include <cuda.h>", "#include <cudaTypedefs.h>", "#include <cstring>"] : []),
    ...prelude(new Set([...fn.helpers, ...(zero?.helpers ?? [])])),
    "",
    fn.text,
    ...(zero ? ["", zero.text] : []),
    "",
    host.launcher,
  ].join("\n");
  return { cu, h: host.header, kernelSymbol, launcher: name, smemBytes: fn.smemBytes, threads: fn.threads, ...(host.zeroKernel ? { zeroKernel: host.zeroKernel } : {}) };
}

/** The `extern "C" __global__` function `symbol` of a thread-level kernel, with the helpers it
 *  uses, its block size and its dynamic shared memory. */
function kernelFunction(k: Kernel, symbol: string, smemAlignOpt?: number): { text: string; helpers: Set<string>; threads: number; smemBytes: number; env: Env } {
  const L = k.launch;
  const loc = k.loc;
  if (L.level !== "thread")
    throw new CompileError([{ loc, severity: "error", message: `kernel ${k.name} is not lowered to thread level; the CUDA emitter needs launch.level "thread"` }]);
  const env: Env = { ...k.config };
  const threads = evalInt(L.threads, env);
  if (threads === undefined || threads <= 0 || threads > 1024)
    throw new CompileError([{ loc, severity: "error", message: `kernel ${k.name}: threads per block must be a constant in [1, 1024] after specialization` }]);
  if (L.grid.length < 1 || L.grid.length > 3 || L.blockVars.length > L.grid.length)
    throw new Error(`kernel ${k.name}: grid has ${L.grid.length} dims and ${L.blockVars.length} block vars`);

  const { slots, total } = carveSmem(L.body, env);
  const smemBytes = Math.max(total, k.smemBytes ?? 0);

  const b = new BodyEmitter(env);
  const sig: string[] = [];
  for (const p of k.params) {
    const c = cName(p.name);
    if (p.kind === "tensor") {
      sig.push(`${p.output ? "" : "const "}${storageType(p.dtype)}* __restrict__ ${c}`);
      b.defineBuf(p.name, { c, dtype: p.dtype, scope: "global", shape: p.shape ?? [] });
    } else {
      sig.push(`${storageType(p.dtype)} ${c}`);
      b.defineVar(p.name, { c, dtype: p.dtype });
    }
  }
  for (const d of k.dims) {
    sig.push(`int ${cName(d)}`);
    b.defineVar(d, { c: cName(d), dtype: "i32" });
  }
  // TMA descriptors travel by value in the parameter space, where the TMA unit reads them.
  for (const m of k.tensorMaps ?? []) {
    sig.push(`const __grid_constant__ CUtensorMap ${cName(m.name)}`);
    b.tensorMaps.set(m.name, cName(m.name));
  }

  b.wgmmaAccs = wgmmaAccumulators(L.body);
  const smemAlign = smemAlignOpt ?? smemAlignment(k);
  if (slots.length > 0) b.line(`extern __shared__ __align__(${smemAlign}) unsigned char smem[];`);
  for (const s of slots)
    b.line(`${storageType(s.buf.dtype)}* const ${cName(s.buf.name)} = reinterpret_cast<${storageType(s.buf.dtype)}*>(smem + ${s.offset});`);
  const axes = ["x", "y", "z"];
  L.blockVars.forEach((v, i) => {
    b.line(`const int ${cName(v)} = blockIdx.${axes[i]};`);
    b.defineVar(v, { c: cName(v), dtype: "i32" });
  });
  if (L.threadVar) {
    b.line(`const int ${cName(L.threadVar)} = threadIdx.x;`);
    b.defineVar(L.threadVar, { c: cName(L.threadVar), dtype: "i32" });
  }
  b.block(L.body);
  const text = [
    `extern "C" __global__ void __launch_bounds__(${threads}${launchBoundsBlocks(L)}) ${symbol}(${sig.join(", ")}) {`,
    b.text(),
    "}",
  ].join("\n");
  return { text, helpers: b.helpers(), threads, smemBytes, env };
}

/** __launch_bounds__'s second argument (", B") or nothing. setmaxnreg needs the launch's
 *  register count known to ptxas: the blocks per SM that the counts were planned for
 *  (Launch.perSM; src/ir/registers.ts, launchRegs) fix it from the thread count, and win over
 *  the author's minBlocks (the counts were planned for perSM). Otherwise the author's minBlocks
 *  above 1 (Launch.minBlocks). */
function launchBoundsBlocks(L: Launch): string {
  if (usesSetmaxnreg(L.body)) return `, ${L.perSM ?? 1}`;
  const mb = L.minBlocks ? evalConst(L.minBlocks) : undefined;
  if (mb !== undefined && (!Number.isInteger(mb) || mb < 1)) throw new Error(`emitCuda: minBlocks ${mb} is not a positive integer (inferTypes checks it)`);
  return mb !== undefined && mb > 1 ? `, ${mb}` : "";
}

function usesSetmaxnreg(body: Stmt[]): boolean {
  let found = false;
  walkStmts(body, (s) => { if (s.k === "setmaxnreg") found = true; });
  return found;
}
