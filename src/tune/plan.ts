// The split flow's first half: everything the GPU machine needs to time a kernel's
// candidates, in one folder that can be copied anywhere with a CUDA driver and nvcc:
//   tune-meta.json     what was built (kernel identity, shapes, every candidate and its fate)
//   candidates.txt     "ID GPU" per candidate to run
//   plans/ID.json      the runner plan of one candidate: its correctness case(s), then one
//                      timed case per shape
//   modules/ID.cubin   check/*.bin (inputs, float64 references)   runner/ (runner source)
//   run.sh             builds the runner with nvcc, runs every plan, writes results.json
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { byteSize, type Kernel, type DType } from "../ir/ir.ts";
import { evalConst } from "../ir/expr.ts";
import { encode } from "../numeric/dtype.ts";
import { rng } from "../numeric/random.ts";
import { tolerance } from "../numeric/tolerance.ts";
import { derivedTensor, magnitudeOf, makeInputs, specOnlyDims, withComputedDims } from "../check/run.ts";
import type { CheckSpec } from "../check/spec.ts";
import { clearPlanDir } from "./plan-dir.ts";
import { type Arg, type KernelCase, type Plan, type ScalarArg, tensorMapArgs } from "../runtime/plan.ts";
import { RUNNER_SOURCE_DIR } from "../runtime/cuda.ts";
import { numericConfig, type Config } from "./space.ts";
import type { Candidate } from "./candidates.ts";
import { shapeLabel } from "./key.ts";
import { runScript } from "./runsh.ts";
import { zeroInitOutputs } from "../ir/zero-init.ts";
import { userError } from "../util/user-error.ts";


export const PLAN_SCHEMA = "tilemoe.tune-plan";
export const PLAN_VERSION = 1;

export interface TuneShape {
  label: string;
  /** The kernel's dims (the cache's key). */
  dims: Record<string, number>;
  /** The check spec's own dims its derived inputs were made from (routing: E, TOPK, skew). */
  data?: Record<string, number>;
  flops: number;
  bytes: number;
}

export interface TimingSpec { warmup: number; reps: number; rotate: "auto" | number }

/** A candidate as the plan's metadata keeps it (no binaries). */
export type CandidateMeta = Omit<Candidate, "cubin" | "low"> & { plan?: string; gpu?: number };

export interface PlanMeta {
  schema: typeof PLAN_SCHEMA;
  version: typeof PLAN_VERSION;
  /** Random; run.sh writes it into results.json so results meet their own plan only. */
  planId: string;
  file: string;
  kernel: string;
  arch: string;
  kernelHash: string;
  spaceHash: string;
  dtypes: string;
  nvcc: string;
  shapes: TuneShape[];
  checkDims: Record<string, number>;
  timing: TimingSpec;
  gpus: number;
  budgetS: number;
  timeoutS: number;
  limits: string;
  candidates: CandidateMeta[];
  created: string;
}

export interface PlanInput {
  file: string;
  k: Kernel;
  spec: CheckSpec;
  candidates: Candidate[];
  shapes: Record<string, number>[];
  checkDims: Record<string, number>;
  identity: { kernelHash: string; spaceHash: string; dtypes: string; nvcc: string; arch: string };
  timing: TimingSpec;
  gpus: number;
  budgetS: number;
  timeoutS: number;
  limits: string;
  dataSeed?: number;
}

/** The correctness case's dims: the top of each dim's check domain (several tiles with
 *  ragged edges for typical domains), or seeded draws when the spec's dimsWhere refuses it.
 *  The spec's own dims (routing quantities its derive reads) are drawn too, its computed
 *  dims computed. */
export function chooseCheckDims(k: Kernel, spec: CheckSpec, fixed: Record<string, number> = {}): Record<string, number> {
  const names = [...k.dims, ...specOnlyDims(k, spec)];
  const drawn = (pick: (d: string, dom: Exclude<CheckSpec["dims"][string], (d: Record<string, number>) => number>) => number) => {
    const out: Record<string, number> = {};
    for (const d of names) {
      if (fixed[d] !== undefined) { out[d] = fixed[d]!; continue; }
      const dom = spec.dims[d];
      if (!dom) throw userError(`check spec of ${k.name} gives no domain for dim '${d}'; pass --check-shape`);
      if (typeof dom === "function") continue;
      out[d] = pick(d, dom);
    }
    return withComputedDims(spec, out);
  };
  const top = drawn((_d, dom) => (Array.isArray(dom) ? (dom as readonly number[])[1]! : Math.max(...(dom as { values: readonly number[] }).values)));
  if (!spec.dimsWhere || spec.dimsWhere(top)) return top;
  const next = rng(12345);
  for (let t = 0; t < 1000; t++) {
    const draw = drawn((_d, dom) => {
      if (Array.isArray(dom)) { const [lo, hi] = dom as readonly number[]; return lo! + Math.floor((hi! - lo! + 1) * next()); }
      const vals = (dom as { values: readonly number[] }).values;
      return vals[Math.floor(vals.length * next())]!;
    });
    if (spec.dimsWhere(draw)) return draw;
  }
  throw userError(`could not draw check dims for ${k.name} that satisfy its dimsWhere; pass --check-shape`);
}

/** Work per launch, for TFLOP/s and GB/s: every tensor read or written once; flops are
 *  2 x outputs x the reduction length (or one per output element without a reduction). */
export function workOf(k: Kernel, spec: CheckSpec, dims: Record<string, number>): { flops: number; bytes: number } {
  let bytes = 0, outs = 0;
  for (const p of k.params) {
    if (p.kind !== "tensor") continue;
    const n = tensorShape(k, p.name, p.shape ?? [], dims).reduce((a, b) => a * b, 1);
    bytes += n * byteSize(p.dtype);
    if (p.output) outs += n;
  }
  const red = spec.reduction?.(dims);
  return { flops: red !== undefined && red > 1 ? 2 * outs * red : outs, bytes };
}

function tensorShape(k: Kernel, name: string, shape: NonNullable<Kernel["params"][number]["shape"]>, dims: Record<string, number>): number[] {
  return shape.map((e, j) => {
    const n = evalConst(e, dims);
    if (n === undefined) throw userError(`${k.name}: dim ${j} of '${name}' is not set by the shape (give every dim of ${k.dims.join(", ")})`);
    return n;
  });
}

function scalarArg(dtype: DType, x: number): ScalarArg {
  switch (dtype) {
    case "f32": case "f16": case "bf16": return { f32: x };
    case "f64": return { f64: x };
    case "i64": return { i64: x };
    case "u32": return { u32: x };
    default: return { i32: x };
  }
}

function launchOf(c: Candidate, dims: Record<string, number>): { grid: number[]; block: number[] } | undefined {
  const low = c.low!;
  const env = { ...numericConfig(low.config as Config), ...dims };
  const grid = low.launch.grid.map((e, i) => {
    const g = evalConst(e, env);
    if (g === undefined) throw new Error(`${low.name}: grid[${i}] does not fold to a number for ${shapeLabel(dims)}`);
    return g;
  });
  while (grid.length < 3) grid.push(1);
  if (grid.some((g) => g <= 0)) return undefined;
  return { grid, block: [c.threads!, 1, 1] };
}

/** The spec's derived inputs at a timing shape, written under timing/<shape>/ (paths from the
 *  plan folder); derived scalars by name. None without a derive. */
function derivedTimingInputs(dir: string, k: Kernel, spec: CheckSpec, full: Record<string, number>, si: number):
  { files: Map<string, string>; scalars: Record<string, number> } {
  const files = new Map<string, string>();
  if (!spec.derive) return { files, scalars: {} };
  const d = spec.derive(full, rng(20261129 + si));
  mkdirSync(join(dir, "timing", String(si)), { recursive: true });
  for (const [name, v] of Object.entries(d.tensors ?? {})) {
    const { param, values } = derivedTensor(k, name, v, (p) => tensorShape(k, name, p.shape ?? [], full).reduce((a, b) => a * b, 1), ` at ${shapeLabel(full)}`);
    const rel = join("timing", String(si), `${name}.bin`);
    writeFileSync(join(dir, rel), encode(param.dtype, values));
    files.set(name, rel);
  }
  return { files, scalars: d.scalars ?? {} };
}

export function writeTunePlan(dir: string, input: PlanInput): PlanMeta {
  const { k, spec } = input;
  clearPlanDir(dir);
  for (const sub of ["plans", "modules", "check", "runner"]) mkdirSync(join(dir, sub), { recursive: true });

  // The correctness case: inputs and references computed here in float64, shared by all candidates.
  const check = makeInputs(k, spec, { dims: input.checkDims, config: {}, dataSeed: input.dataSeed ?? 20261127 });
  const inputs = Object.fromEntries(k.params.filter((p) => p.kind === "tensor" && !p.output).map((p) => [p.name, check.tensors[p.name]!]));
  const want = spec.reference(inputs, check.scalars, input.checkDims);
  for (const p of k.params) {
    if (p.kind !== "tensor") continue;
    const t = check.tensors[p.name]!;
    writeFileSync(join(dir, "check", `${p.name}.bin`), encode(t.dtype, t.data));
    if (p.output) {
      const w = want[p.name];
      if (!w) throw userError(`the reference of ${k.name} returns no '${p.name}'`);
      writeFileSync(join(dir, "check", `${p.name}.ref.f64`), encode("f64", w));
    }
  }
  const red = spec.reduction?.(input.checkDims) ?? 1;
  const mag = spec.magnitude ?? magnitudeOf(spec, k);
  // A shape's kernel dims key the cache; the spec's own dims (routing) only make its inputs.
  const shapes: TuneShape[] = input.shapes.map((full) => {
    const dims = Object.fromEntries(k.dims.map((d) => [d, full[d]!]));
    const data = Object.fromEntries(Object.entries(full).filter(([d]) => !k.dims.includes(d) && typeof spec.dims[d] !== "function"));
    const more = Object.keys(data).length ? ` (${shapeLabel(data)})` : "";
    return { label: shapeLabel(dims) + more, dims, ...(more ? { data } : {}), ...workOf(k, spec, dims) };
  });

  // Inputs the spec derives (the MoE kernels' routing) at each timing shape, as files shared by
  // every candidate; the other inputs stay the runner's seeded random fills.
  const timingInputs = input.shapes.map((full, si) => derivedTimingInputs(dir, k, spec, full, si));

  const metas: CandidateMeta[] = [];
  const lines: string[] = [];
  let slot = 0;
  for (const c of input.candidates) {
    const { cubin, low, ...meta } = c;
    const m: CandidateMeta = { ...meta };
    metas.push(m);
    if (c.status !== "ready") continue;
    if (!cubin || !low) throw new Error(`candidate ${c.id} is ready but has no module`);
    const module = `modules/${c.id}.cubin`;
    writeFileSync(join(dir, module), cubin);
    const gpu = slot++ % Math.max(1, input.gpus);
    // The runner resolves paths from the plan file's folder (plans/).
    const base = { module: `../${module}`, kernel: c.symbol!, smem: c.smem ?? 0 };
    const cases: KernelCase[] = [];
    const checkLaunch = launchOf(c, input.checkDims);
    // Outputs the kernel only accumulates into start at zero, as every launcher clears them.
    const zeroed = new Set(zeroInitOutputs(low));
    for (const out of k.params.filter((p) => p.kind === "tensor" && p.output)) {
      if (!checkLaunch) break;
      const args: Arg[] = low.params.map((p) => p.kind === "scalar" ? scalarArg(p.dtype, check.scalars[p.name]!)
        : { tensor: p.name, dtype: p.dtype, shape: check.tensors[p.name]!.shape,
          init: zeroed.has(p.name) ? { zeros: true as const } : { file: `../check/${p.name}.bin` }, ...(p.output ? { output: true } : {}) });
      for (const d of low.dims) args.push({ i32: input.checkDims[d]! });
      args.push(...tensorMapArgs(low.tensorMaps));
      const tol = tolerance(out.dtype, red, mag);
      cases.push({ name: `check ${out.name}`, ...base, ...checkLaunch, args,
        compare: { tensor: out.name, file: `../check/${out.name}.ref.f64`, dtype: "f64", rtol: tol.rtol, atol: tol.atol } });
    }
    shapes.forEach((s, si) => {
      const launch = launchOf(c, s.dims);
      if (!launch) return;
      const derived = timingInputs[si]!;
      const args: Arg[] = low.params.map((p, i) => {
        if (p.kind === "scalar") return scalarArg(p.dtype, derived.scalars[p.name] ?? check.scalars[p.name]!);
        const dom = spec.inputs?.[p.name] ?? { lo: -1, hi: 1 };
        const init = p.output ? { zeros: true as const } : derived.files.has(p.name) ? { file: `../${derived.files.get(p.name)!}` }
          : { random: { seed: 1 + i, lo: dom.lo, hi: dom.hi } };
        return { tensor: p.name, dtype: p.dtype, shape: tensorShape(k, p.name, p.shape ?? [], s.dims), init };
      });
      for (const d of low.dims) args.push({ i32: s.dims[d]! });
      args.push(...tensorMapArgs(low.tensorMaps));
      cases.push({ name: `time ${s.label}`, ...base, ...launch, args, time: { ...input.timing }, flops: s.flops, bytes: s.bytes });
    });
    const plan: Plan = { device: gpu, cases };
    m.plan = `plans/${c.id}.json`;
    m.gpu = gpu;
    writeFileSync(join(dir, m.plan), JSON.stringify(plan, null, 1) + "\n");
    lines.push(`${c.id} ${gpu}`);
  }
  writeFileSync(join(dir, "candidates.txt"), lines.join("\n") + (lines.length ? "\n" : ""));
  for (const f of readdirSync(RUNNER_SOURCE_DIR).filter((f) => /\.(cpp|h)$/.test(f))) copyFileSync(join(RUNNER_SOURCE_DIR, f), join(dir, "runner", f));
  const planId = randomBytes(6).toString("hex");
  writeFileSync(join(dir, "run.sh"), runScript({ planId, gpus: Math.max(1, input.gpus), budgetS: input.budgetS, timeoutS: input.timeoutS, kernel: k.name }), { mode: 0o755 });

  const meta: PlanMeta = {
    schema: PLAN_SCHEMA, version: PLAN_VERSION, planId, file: input.file, kernel: k.name, ...input.identity,
    shapes, checkDims: input.checkDims, timing: input.timing, gpus: Math.max(1, input.gpus), budgetS: input.budgetS,
    timeoutS: input.timeoutS, limits: input.limits, candidates: metas, created: new Date().toISOString(),
  };
  writeFileSync(join(dir, "tune-meta.json"), JSON.stringify(meta, null, 1) + "\n");
  return meta;
}

