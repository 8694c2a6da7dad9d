// The host side of a kernel: the .h and the C launcher, as handlebars templates filled from the
// kernel's params, dims, grid and shared memory size. Checks are derived from the param shapes.
import { readFileSync } from "node:fs";
import Handlebars from "handlebars";
import type { Expr, Kernel } from "../../ir/ir.ts";
import { type ExprCtx, ExprEmitter, type VarInfo } from "./expr.ts";
import { type Env, evalInt } from "./fold.ts";
import { cName } from "./names.ts";
import { storageType } from "./types.ts";
import { zeroInitOutputs } from "../../ir/zero-init.ts";
import { byteSize } from "../../ir/ir.ts";

const tpl = (f: string) =>
  Handlebars.compile(readFileSync(new URL(`./templates/${f}`, import.meta.url), "utf8"), { noEscape: true, strict: true });
const headerTpl = tpl("header.h.hbs");
const launcherTpl = tpl("launcher.cu.hbs");

export interface HostInfo {
  name: string; kernelName: string; kernelSymbol: string; threads: number; smemBytes: number; env: Env;
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

export function emitHost(k: Kernel, h: HostInfo): { header: string; launcher: string } {
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
  const data = {
    name: h.name, kernelName: h.kernelName, kernelSymbol: h.kernelSymbol, upper,
    configText: Object.entries(k.config).map(([n, v]) => `${n}=${String(v)}`).join(", "),
    kernelArgs: [
      ...k.params.map((p) => (p.kind === "tensor" ? `${ptrType(p)} ${p.name}` : `${storageType(p.dtype)} ${p.name}`)),
      ...k.dims.map((d) => `int ${d}`),
    ],
    grid, gridNames: ["tm_grid0", "tm_grid1", "tm_grid2"],
    gridLimit: "tm_grid0 > 2147483647 || tm_grid1 > 65535 || tm_grid2 > 65535",
    threads: h.threads, smemBytes: h.smemBytes, bigSmem: h.smemBytes > 48 * 1024,
    dims, shapeChecks: checks, constraintsText: texts,
    tensorDocs: tensors.map((p) => `${p.name}: ${p.dtype} [${p.shapeText ?? (p.shape ?? []).map((s) => ex.emit(s).code).join(", ")}]${p.output ? " (output)" : " (input)"}`),
    launcherParams,
    // Outputs the kernel only adds into (split-K) start from zero on every launch.
    zeroInits: zeroInitOutputs(k).map((n) => {
      const p = tensors.find((t) => t.name === n)!;
      return { ptr: cName(n), bytes: `${numel(p.shape ?? [])} * ${byteSize(p.dtype)}` };
    }),
    pointerChecks: tensors.map((p) => ({ ptr: cName(p.name), numel: numel(p.shape ?? []), align: p.align ?? 16 })),
    argRefs: [
      // cudaLaunchKernel takes pointers to arguments of the kernel's exact parameter types.
      ...k.params.map((p) => `(void*)&${cName(p.name)}`),
      ...dims.map((d) => `(void*)&tm_dim_${d}`),
    ],
  };
  return { header: headerTpl(data), launcher: launcherTpl(data) };
}
