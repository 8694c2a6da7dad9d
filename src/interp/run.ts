// runKernel: executes a specialized kernel (tile or thread level) on CPU tensors.
// Output tensors are mutated in place. Blocks run one after another (x fastest).
//
// Speed, measured 2026-11-27 on the shared 2-core dev machine (load average 14-19 from
// other jobs): test/interp/kernels/mma_gemm_nt.ir, a 64x64x64 GEMM as one block of 128
// threads (cp.async + ldmatrix + mma), race check on: first call ~300 ms (JS compile and
// JIT warm-up), then 3-45 ms per call (median ~25 ms under that load, 2-3 ms at best).
// A tile-level 64^3 GEMM with a relu epilogue: 10-60 ms.
import { type DType, type Kernel } from "../ir/ir.ts";
import { evalConst, numericConfig } from "../ir/expr.ts";
import { printExpr } from "../ir/print.ts";
import { erf } from "../numeric/erf.ts";
import { floatToInt, rounder, roundTo } from "../numeric/dtype.ts";
import type { TensorValue } from "../numeric/tensor.ts";
import { bindDims } from "./bind.ts";
import { type Compiled, compileKernel } from "./compile.ts";
import { makeCopies } from "./cpasync.ts";
import { Fault, InterpError, stmtHead, where } from "./fault.ts";
import { garbage, ix1, ix2, ix3, ixN, newBuf, type RtBuf, SharedChecker } from "./memory.ts";
import { runThreadBlock } from "./threads.ts";
import { makeTma } from "./tma.ts";
import { regWrite } from "./wgmma.ts";
import { makeDequant } from "./dequant.ts";
import { copy, fill, gatherRows, gemm, scatterRows } from "./tileops.ts";
import * as MOE from "./moeops.ts";

export type { TensorValue } from "../numeric/tensor.ts";
export { bindDims } from "./bind.ts";

export interface RunArgs { tensors: Record<string, TensorValue>; scalars?: Record<string, number> }
export interface RunOptions {
  /** Report shared-memory data races (thread level). Default true. */
  raceCheck?: boolean;
  /** How mma rounds its exact sum to f32: "nearest" (default) or "toward-zero", which
   *  matches an H200 more closely (test/interp/warp-gpu.test.ts). */
  mmaRounding?: "nearest" | "toward-zero";
}

const cache = new WeakMap<Kernel, Map<string, Compiled>>();

function compiled(k: Kernel, consts: Map<string, { value: number; dtype: DType }>, globals: { name: string; dtype: DType; rank: number }[]): Compiled {
  const key = JSON.stringify([...consts.entries()]);
  let m = cache.get(k);
  if (!m) cache.set(k, (m = new Map()));
  let c = m.get(key);
  if (!c) {
    if (m.size >= 64) m.clear(); // scalar values are inlined: fuzzing them must not grow this forever
    m.set(key, (c = compileKernel({ kernel: k, consts, globals })));
  }
  return c;
}

const MF = {
  erf,
  round: Math.round, // TypeScript's: halves toward +Infinity (C's round() takes them away from zero)
};
const RND = {
  f16: rounder("f16"), bf16: rounder("bf16"),
  fp8e4m3: (x: number) => roundTo("fp8e4m3", x), fp8e5m2: (x: number) => roundTo("fp8e5m2", x),
  i64: (x: number) => roundTo("i64", x),
};
function idiv(a: number, b: number, site: number): number {
  if (b === 0) throw new Fault(`integer division by zero (${a} / 0)`, site);
  return Math.trunc(a / b);
}
function imod(a: number, b: number, site: number): number {
  if (b === 0) throw new Fault(`integer remainder by zero (${a} % 0)`, site);
  return a % b;
}
function icdiv(a: number, b: number, site: number): number {
  if (b === 0) throw new Fault(`cdiv by zero (${a})`, site);
  return Math.ceil(a / b);
}
function ifloordiv(a: number, b: number, site: number): number {
  if (b === 0) throw new Fault(`integer division by zero (Math.floor(${a} / 0))`, site);
  return Math.floor(a / b);
}

export function runKernel(k: Kernel, args: RunArgs, opts: RunOptions = {}): void {
  const scalars = args.scalars ?? {};
  const dims = bindDims(k, args.tensors, scalars);
  const consts = new Map<string, { value: number; dtype: DType }>();
  for (const [n, v] of Object.entries(numericConfig(k.config)))
    consts.set(n, { value: v, dtype: typeof k.config[n] === "boolean" ? "bool" : Number.isInteger(v) ? "i32" : "f32" });
  for (const [n, v] of Object.entries(dims)) consts.set(n, { value: v, dtype: "i32" });
  const globals: { name: string; dtype: DType; rank: number }[] = [];
  const G: RtBuf[] = [];
  for (const p of k.params) {
    if (p.kind === "scalar") {
      const v = scalars[p.name];
      if (v === undefined) throw new InterpError(`kernel ${k.name}: missing scalar argument '${p.name}'`);
      consts.set(p.name, { value: roundTo(p.dtype, v), dtype: p.dtype });
    } else {
      const t = args.tensors[p.name]!;
      globals.push({ name: p.name, dtype: p.dtype, rank: t.shape.length });
      G.push(newBuf(p.name, p.dtype, "global", [...t.shape], 0, t.data));
    }
  }
  const env = Object.fromEntries([...consts].map(([n, c]) => [n, c.value]));
  const evalLaunch = (e: import("../ir/ir.ts").Expr, what: string): number => {
    const v = evalConst(e, env);
    if (v === undefined || !Number.isInteger(v) || v < 0)
      throw new InterpError(`kernel ${k.name}: ${what} ${printExpr(e)} does not evaluate to a count (unspecialized tunable?)`);
    return v;
  };
  const grid = k.launch.grid.map((e, i) => evalLaunch(e, `grid dim ${i}`));
  const nThreads = evalLaunch(k.launch.threads, "threads");
  const c = compiled(k, consts, globals);

  const chk = new SharedChecker(opts.raceCheck ?? true);
  let localAllocs: Compiled["allocs"] = c.allocs;
  const alloc = (id: number) => {
    const a = localAllocs[id]!;
    return newBuf(a.name, a.dtype, a.scope, a.shape, garbage(a.dtype));
  };
  const tmaRt = makeTma(chk);
  const rt = { ix1, ix2, ix3, ixN, alloc, copy, gatherRows, scatterRows, fill, gemm, idiv, imod, icdiv, ifloordiv, F2I: floatToInt, RND, MF, MOE, dq: makeDequant(chk), ...makeCopies(chk),
    lds: (b: RtBuf, i: number, t: number, site: number) => { ix1(b, i, site); chk.read(b, i, t, site); return b.data[i]!; },
    sts: (b: RtBuf, i: number, v: number, t: number, site: number) => { ix1(b, i, site); chk.write(b, i, t, site); b.data[i] = v; },
    fenceAsync: (t: number) => { chk.fences[t]!++; },
    regw: (b: RtBuf, i: number, site: number) => regWrite(b, i, chk, site),
    TMA: tmaRt,
  };
  const fn = c.fn(rt) as (...a: unknown[]) => unknown;
  localAllocs = c.allocs;

  const [gx = 1, gy = 1, gz = 1] = grid;
  for (let bz = 0; bz < gz; bz++)
    for (let by = 0; by < gy; by++)
      for (let bx = 0; bx < gx; bx++) {
        const block = grid.length === 1 ? [bx] : grid.length === 2 ? [bx, by] : [bx, by, bz];
        if (k.launch.level === "thread") {
          runThreadBlock(c, fn as never, G, [bx, by, bz], nThreads, chk, k.name, opts.mmaRounding === "toward-zero", tmaRt, k.launch.perSM ?? 1);
          continue;
        }
        try {
          fn(G, null, null, 0, bx, by, bz);
        } catch (e) {
          if (e instanceof Fault) throw new InterpError(`${where(k.name, block, undefined)}: ${e.message}\n  at: ${stmtHead(c.sites[e.site])}`);
          throw new InterpError(`${where(k.name, block, undefined)}: internal interpreter error: ${(e as Error).stack ?? e}`);
        }
      }
}

