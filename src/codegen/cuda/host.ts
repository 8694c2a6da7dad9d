// The host side of a kernel: the .h and the C launcher, as handlebars templates filled from the
// kernel's params, dims, grid and shared memory size. Checks are derived from the param shapes.
import { readFileSync } from "node:fs";
import Handlebars from "handlebars";
import type { DType, Expr, Kernel, TensorMap } from "../../ir/ir.ts";
import { type ExprCtx, ExprEmitter, type VarInfo } from "./expr.ts";
import { type Env, evalInt } from "./fold.ts";
import { cName } from "./names.ts";
import { storageType } from "./types.ts";
import { zeroInitOutputs } from "../../ir/zero-init.ts";
import { ZERO_KERNEL_THREADS } from "./zero-kernel.ts";
import { byteSize } from "../../ir/ir.ts";
import { waitsForPredecessor } from "../../passes/programmatic-launch.ts";
import { clearsByKernel } from "../../passes/overlap-clears.ts";

const tpl = (f: string) =>
  Handlebars.compile(readFileSync(new URL(`./templates/${f}`, import.meta.url), "utf8"), { noEscape: true, strict: true });
const headerTpl = tpl("header.h.hbs");
const launcherTpl = tpl("launcher.cu.hbs");

export interface HostInfo {
  name: string; kernelName: string; kernelSymbol: string; threads: number; smemBytes: number; env: Env;
  /** Outputs the kernel only adds into that the caller clears instead of the launcher (the
   *  layer launcher clears them before its first kernel: no memset between PDL kernels). */
  callerClears?: string[];
}

/** Emits host expressions: dims are the launcher's int64_t arguments. */
function hostEmitter(k: Kernel, env: Env): ExprEmitter {
  const vars = new Map<string, VarInfo>(k.dims.map((d) => [d, { c: cName(d), dtype: "i64" }]));
  const ctx: ExprCtx = { lookupVar: (n) => vars.get(n), lookupBuf: () => undefined, config: env, indexType: "int64_t" };
  return new ExprEmitter(ctx);
}

/** Conditions that make the call invalid: divisions in shape strings must be exact, extents
 *  must lie in [0, INT32_MAX] (the kernel computes strides in int). */
function shapeChecks(k: Kernel, ex: ExprEmitter, env: Env): { checks: string[]; texts: string[] } {
  const checks: string[] = [], texts: string[] = [];
  const seen = new Set<string>();
  const add = (check: string, text: string) => {
    if (seen.has(check)) return;
    seen.add(check);
    checks.push(check);
    texts.push(text);
  };
  const walk = (e: Expr) => {
    if (e.k === "bin") {
      walk(e.a);
      walk(e.b);
      if (e.op === "/" || e.op === "%" || e.op === "cdiv") {
        const a = ex.emit(e.a), b = ex.emit(e.b);
        const bc = evalInt(e.b, env);
        const wa = a.prec < 13 ? `(${a.code})` : a.code, wb = b.prec < 14 ? `(${b.code})` : b.code;
        if (bc === undefined || bc <= 0) add(`${wb} <= 0`, `${b.code} > 0`);
        if (e.op === "/") add(`${wa} % ${wb} != 0`, `${a.code} % ${b.code} == 0`);
      }
    }
  };
  for (const p of k.params) {
    for (const s of p.shape ?? []) {
      walk(s);
      if (s.k === "var" || s.k === "int") continue; // dims are range-checked already
      const c = ex.emit(s).code;
      add(`${c} < 0 || ${c} > INT32_MAX`, `0 <= ${c} <= INT32_MAX`);
    }
  }
  return { checks, texts };
}

const TMA_DTYPE: Partial<Record<DType, string>> = {
  bf16: "CU_TENSOR_MAP_DATA_TYPE_BFLOAT16", f16: "CU_TENSOR_MAP_DATA_TYPE_FLOAT16", f32: "CU_TENSOR_MAP_DATA_TYPE_FLOAT32",
  u8: "CU_TENSOR_MAP_DATA_TYPE_UINT8", i8: "CU_TENSOR_MAP_DATA_TYPE_UINT8", fp8e4m3: "CU_TENSOR_MAP_DATA_TYPE_UINT8",
  fp8e5m2: "CU_TENSOR_MAP_DATA_TYPE_UINT8", i32: "CU_TENSOR_MAP_DATA_TYPE_INT32", u32: "CU_TENSOR_MAP_DATA_TYPE_UINT32",
};

/** cuTensorMapEncodeTiled's arguments for one map: dims and box innermost first, byte strides
 *  of the outer dims, the swizzle, and the condition (the kernel's own) under which TMA is used. */
function tensorMapData(k: Kernel, m: TensorMap, ex: ExprEmitter) {
  const p = k.params.find((q) => q.name === m.tensor && q.kind === "tensor");
  if (!p || !p.shape) throw new Error(`tensor map ${m.name} over unknown tensor ${m.tensor}`);
  const dtype = TMA_DTYPE[p.dtype];
  if (!dtype) throw new Error(`tensor map ${m.name}: no TMA data type for ${p.dtype}`);
  const size = byteSize(p.dtype);
  const dims = p.shape.map((s) => `(int64_t)(${ex.emit(s).code})`);
  const inner = [...dims].reverse();
  const strides: string[] = [];
  let acc = String(size);
  for (let i = 0; i < inner.length - 1; i++) { acc = `${acc} * ${inner[i]}`; strides.push(`(cuuint64_t)(${acc})`); }
  const usable = [...dims.map((d) => `${d} > 0`), `${dims[dims.length - 1]} % ${16 / size} == 0`].join(" && ");
  return {
    name: cName(m.name), tensor: m.tensor, ptr: cName(m.tensor), rank: dims.length, dataType: dtype,
    dims: inner.map((d) => `(cuuint64_t)${d}`).join(", "), strideCount: Math.max(1, strides.length),
    strides: strides.length ? strides.join(", ") : "0", box: [...m.box].reverse().join(", "),
    estr: m.box.map(() => "1").join(", "), boxText: m.box.join(", "),
    swizzle: m.swizzle === 0 ? "CU_TENSOR_MAP_SWIZZLE_NONE" : `CU_TENSOR_MAP_SWIZZLE_${m.swizzle}B`,
    swizzleText: m.swizzle === 0 ? "no swizzle" : `${m.swizzle}-byte swizzle`, usable,
  };
}

export function emitHost(k: Kernel, h: HostInfo): { header: string; launcher: string; zeroKernel?: string } {
  const ex = hostEmitter(k, h.env);
  const upper = h.name.toUpperCase();
  const tensors = k.params.filter((p) => p.kind === "tensor");
  const scalars = k.params.filter((p) => p.kind === "scalar");
  const ptrType = (p: (typeof k.params)[number]) => `${p.output ? "" : "const "}${storageType(p.dtype)}*`;
  const dims = k.dims.map(cName);
  const launcherParams = [
    ...tensors.map((p) => `${ptrType(p)} ${cName(p.name)}`),
    ...scalars.map((p) => `${storageType(p.dtype)} ${cName(p.name)}`),
    ...dims.map((d) => `int64_t ${d}`),
  ];
  const grid = [...k.launch.grid, { k: "int", v: 1 } as Expr, { k: "int", v: 1 } as Expr].slice(0, 3).map((g) => ex.emit(g).code);
  const { checks, texts } = shapeChecks(k, ex, h.env);
  const numel = (shape: Expr[]) =>
    shape.length === 0 ? "1" : shape.map((s) => `(int64_t)(${ex.emit(s).code})`).join(" * ");
  const zeroInits = zeroInitOutputs(k).filter((n) => !h.callerClears?.includes(n)).map((n) => tensors.find((t) => t.name === n)!);
  // The zero kernel stores 4-byte words: every output it clears must be whole words (f32 / i32
  // atomics). clearsByKernel is false for a chain-mode (--pdl) kernel: its launcher keeps the memset.
  const clearKernel = zeroInits.length > 0 && clearsByKernel(k) && zeroInits.every((p) => byteSize(p.dtype) % 4 === 0);
  const pdl = waitsForPredecessor(k);
  const data = {
    name: h.name, kernelName: h.kernelName, kernelSymbol: h.kernelSymbol, upper,
    configText: Object.entries(k.config).map(([n, v]) => `${n}=${String(v)}`).join(", "),
    kernelArgs: [
      ...k.params.map((p) => (p.kind === "tensor" ? `${ptrType(p)} ${p.name}` : `${storageType(p.dtype)} ${p.name}`)),
      ...k.dims.map((d) => `int ${d}`),
      ...(k.tensorMaps ?? []).map((m) => `CUtensorMap ${m.name} (by value: TMA map of ${m.tensor}, box [${m.box.join(", ")}], swizzle ${m.swizzle})`),
    ],
    grid, gridNames: ["tm_grid0", "tm_grid1", "tm_grid2"],
    gridLimit: "tm_grid0 > 2147483647 || tm_grid1 > 65535 || tm_grid2 > 65535",
    threads: h.threads, smemBytes: h.smemBytes, bigSmem: h.smemBytes > 48 * 1024,
    dims, shapeChecks: checks, constraintsText: texts,
    tensorDocs: tensors.map((p) => `${p.name}: ${p.dtype} [${p.shapeText ?? (p.shape ?? []).map((s) => ex.emit(s).code).join(", ")}]${p.output ? " (output)" : " (input)"}`),
    launcherParams,
    // Outputs the kernel only adds into (split-K) start from zero on every launch.
    zeroInits: zeroInits.map((p) => ({ ptr: cName(p.name), bytes: `${numel(p.shape ?? [])} * ${byteSize(p.dtype)}` })),
    callerClears: zeroInitOutputs(k).filter((n) => h.callerClears?.includes(n)),
    // Chain mode (--pdl): the wait at the top, the _ex launcher, the clears by memset. Otherwise,
    // on sm_90a, clears by the zero kernel with the kernel launched by PDL behind it.
    pdl, clearKernel, exLaunch: pdl || clearKernel, zeroThreads: ZERO_KERNEL_THREADS,
    launcherArgs: [...tensors, ...scalars].map((p) => cName(p.name)).concat(dims),
    pointerChecks: tensors.map((p) => ({ ptr: cName(p.name), numel: numel(p.shape ?? []), align: p.align ?? 16 })),
    argRefs: [
      // cudaLaunchKernel takes pointers to arguments of the kernel's exact parameter types.
      ...k.params.map((p) => `(void*)&${cName(p.name)}`),
      ...dims.map((d) => `(void*)&tm_dim_${d}`),
      ...(k.tensorMaps ?? []).map((m) => `(void*)&${cName(m.name)}`),
    ],
    tensorMaps: (k.tensorMaps ?? []).map((m) => tensorMapData(k, m, ex)),
  };
  return { header: headerTpl(data), launcher: launcherTpl(data), ...(data.clearKernel ? { zeroKernel: `${h.name}_zero` } : {}) };
}
