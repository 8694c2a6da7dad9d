// The checker: draw cases (dims, config, data seed) with fast-check from the kernel's
// space and the spec's domain, run the kernel on a backend, compare every output with the
// float64 reference under the dtype-aware tolerance, and shrink the first failure to a
// command that reproduces it.
import fc from "fast-check";
import { isFloat, type Kernel, type Param, type TunableValue } from "../ir/ir.ts";
import { evalConst } from "../ir/expr.ts";
import { randomTensor, rng } from "../numeric/random.ts";
import { roundTo } from "../numeric/dtype.ts";
import type { TensorValue } from "../numeric/tensor.ts";
import { firstMismatch, tolerance } from "../numeric/tolerance.ts";
import { enumerateConfigs, configKey, type Config } from "../tune/space.ts";
import type { CheckSpec } from "./spec.ts";
import { userError } from "../util/user-error.ts";
import { isDeviceLimit } from "./device-limit.ts";

/** Integer and boolean outputs (indices, counts, routing) must match exactly. */
const EXACT = { atol: 0, rtol: 0 };

export interface CheckCase { dims: Record<string, number>; config: Config; dataSeed: number }

export interface BatchItem { c: CheckCase; tensors: Record<string, TensorValue>; scalars: Record<string, number> }

/** Runs one kernel on one case; returns the output tensors by param name. A backend with
 *  a costly start (a GPU process) may also run many cases at once through `batch`. */
export type Backend = ((k: Kernel, c: CheckCase, tensors: Record<string, TensorValue>, scalars: Record<string, number>) =>
  Promise<Record<string, TensorValue>>) & {
  batch?: (k: Kernel, items: BatchItem[]) => Promise<(Record<string, TensorValue> | Error)[]>;
};

export interface CheckOptions {
  backendName: string;
  backend: Backend;
  cases: number;
  seed: number;
  /** Fixed dims / config (reproducing a case): only the rest is drawn. */
  shape?: Record<string, number>;
  config?: Config;
  dataSeed?: number;
  /** Command prefix that reproduces a case (file, kernel, backend flags). */
  reproduce: string;
  log?: (line: string) => void;
}

/** `skipped`: cases the device could not run (DeviceLimitError: a tile past its workgroup memory, a
 *  grid past its limits), with the distinct reasons in `skips`; they neither pass nor fail. */
export interface CheckReport { passed: number; failed: number; skipped: number; failures: string[]; skips: string[]; counterexample?: string }

/** A case's outcome: undefined = passed, a string = why it failed, a Skip = the device cannot run it. */
export interface Skip { skip: string }
type Outcome = string | Skip | undefined;
const isSkip = (o: Outcome): o is Skip => typeof o === "object";

export async function checkKernel(k: Kernel, spec: CheckSpec, opts: CheckOptions): Promise<CheckReport> {
  const arb = caseArbitrary(k, spec, opts);
  const cases = fc.sample(arb, { numRuns: opts.cases, seed: opts.seed });
  const report: CheckReport = { passed: 0, failed: 0, skipped: 0, failures: [], skips: [] };
  const batched = opts.backend.batch ? await runBatch(k, spec, cases, opts.backend.batch) : undefined;
  for (const [i, c] of cases.entries()) {
    const problem = batched ? batched[i] : await runCase(k, spec, c, opts.backend);
    if (problem === undefined) report.passed++;
    else if (isSkip(problem)) {
      report.skipped++;
      if (!report.skips.includes(problem.skip) && report.skips.length < 3) report.skips.push(problem.skip);
    } else {
      report.failed++;
      if (report.failures.length < 5) report.failures.push(`${describe(c)}: ${problem}`);
    }
    const tag = problem === undefined ? "ok  " : isSkip(problem) ? "skip" : "FAIL";
    opts.log?.(`${tag} ${describe(c)}${problem === undefined ? "" : `: ${isSkip(problem) ? problem.skip : problem}`}`);
  }
  if (report.failed) {
    // fast-check replays the same seed until its first failure and shrinks it; a case the
    // device cannot run is discarded, not shrunk toward.
    const r = await fc.check(fc.asyncProperty(arb, async (c) => {
      const o = await runCase(k, spec, c, opts.backend);
      fc.pre(!isSkip(o));
      return o === undefined;
    }), { numRuns: opts.cases, seed: opts.seed, interruptAfterTimeLimit: 120_000 });
    const ex = r.counterexample?.[0] as CheckCase | undefined;
    if (ex) {
      const why = await runCase(k, spec, ex, opts.backend);
      report.counterexample = `${reproduceCommand(opts.reproduce, ex)}\n  # ${why === undefined ? "(passed on replay: flaky — look for a race)" : isSkip(why) ? why.skip : why}`;
    }
  }
  return report;
}

export function reproduceCommand(prefix: string, c: CheckCase): string {
  const shape = Object.entries(c.dims).map(([n, x]) => `${n}=${x}`).join(",");
  return `${prefix} --shape ${shape} --config ${configKey(c.config)} --data-seed ${c.dataSeed} --cases 1`;
}

function describe(c: CheckCase): string {
  return `${Object.entries(c.dims).map(([n, x]) => `${n}=${x}`).join(" ")} [${configKey(c.config)}] data-seed=${c.dataSeed}`;
}

/** Cases of the kernel's space and the spec's domain: dims (a range's top capped at `cap`
 *  when given), config (shrinking toward the default), data seed. Fixed parts come from
 *  `shape`, `config`, `dataSeed`. */
export function caseArbitrary(k: Kernel, spec: CheckSpec,
  opts: Pick<CheckOptions, "shape" | "config" | "dataSeed"> & { cap?: number }): fc.Arbitrary<CheckCase> {
  const dimArbs: Record<string, fc.Arbitrary<number>> = {};
  const names = [...k.dims, ...Object.keys(spec.dims).filter((d) => !k.dims.includes(d))];
  for (const d of names) {
    if (opts.shape?.[d] !== undefined) { dimArbs[d] = fc.constant(opts.shape[d]!); continue; }
    const dom = spec.dims[d];
    if (!dom) throw userError(`check spec for ${k.name} gives no domain for dim '${d}' (add it to 'dims')`);
    if (typeof dom === "function") continue; // computed from the others (withComputedDims)
    dimArbs[d] = Array.isArray(dom) ? fc.integer({ min: (dom as readonly number[])[0]!, max: Math.min((dom as readonly number[])[1]!, opts.cap ?? Infinity) })
      : fc.constantFrom(...(dom as { values: readonly number[] }).values);
  }
  let dims = fc.record(dimArbs).map((d) => withComputedDims(spec, d));
  // Every drawn dim pinned by --shape: a shape outside the spec's domain would be rejected by
  // the filter below forever (no case is ever drawn); say so instead.
  const free = names.filter((d) => opts.shape?.[d] === undefined && typeof spec.dims[d] !== "function");
  if (spec.dimsWhere && free.length === 0) {
    const pinned = withComputedDims(spec, { ...opts.shape });
    if (!spec.dimsWhere(pinned))
      throw userError(`--shape ${Object.entries(pinned).map(([n, x]) => `${n}=${x}`).join(",")} is outside the check domain of ${k.name} ` +
        `(its spec's dimsWhere refuses it); pick dims it allows (see the defineCheck of ${k.name})`);
  }
  if (spec.dimsWhere) dims = dims.filter(spec.dimsWhere);
  let configs: fc.Arbitrary<Config>;
  if (opts.config) configs = fc.constant(opts.config);
  else {
    const all = enumerateConfigs(k);
    if (!all.length) throw userError(`kernel ${k.name}: no configuration satisfies its 'where' constraint`);
    // Index arbitrary: shrinks toward the first (default) config.
    configs = fc.integer({ min: 0, max: all.length - 1 }).map((i) => all[i]!);
  }
  const seed = opts.dataSeed !== undefined ? fc.constant(opts.dataSeed) : fc.integer({ min: 1, max: 0x7fffffff });
  return fc.record({ dims, config: configs, dataSeed: seed });
}

/** undefined when the kernel's outputs match the reference, a Skip when the device cannot run
 *  the case, else why not. */
export async function runCase(k: Kernel, spec: CheckSpec, c: CheckCase, backend: Backend): Promise<Outcome> {
  const { tensors, scalars } = makeInputs(k, spec, c);
  const inputs = inputsOf(k, tensors);
  let outs: Record<string, TensorValue>;
  try {
    outs = await backend(k, c, tensors, scalars);
  } catch (e) {
    return failed(e as Error);
  }
  return compare(k, spec, c, inputs, scalars, outs);
}

/** All cases in one backend call; results (undefined = pass) in case order. */
async function runBatch(k: Kernel, spec: CheckSpec, cases: CheckCase[], batch: NonNullable<Backend["batch"]>): Promise<Outcome[]> {
  const items = cases.map((c) => ({ c, ...makeInputs(k, spec, c) }));
  const inputs = items.map((it) => inputsOf(k, it.tensors)); // before the kernel can touch them
  let outs: (Record<string, TensorValue> | Error)[];
  try {
    outs = await batch(k, items);
  } catch (e) {
    return cases.map(() => failed(e as Error));
  }
  return outs.map((o, i) => (o instanceof Error ? failed(o) : compare(k, spec, cases[i]!, inputs[i]!, items[i]!.scalars, o)));
}

function failed(e: Error): string | Skip {
  if (isDeviceLimit(e)) return { skip: e.message };
  return `kernel failed: ${e.message.split("\n").slice(0, 6).join("\n    ")}`;
}

function inputsOf(k: Kernel, tensors: Record<string, TensorValue>): Record<string, TensorValue> {
  const inputs: Record<string, TensorValue> = {};
  for (const p of k.params) if (p.kind === "tensor" && !p.output) inputs[p.name] = tensors[p.name]!;
  return inputs;
}

function compare(k: Kernel, spec: CheckSpec, c: CheckCase, inputs: Record<string, TensorValue>, scalars: Record<string, number>,
  outs: Record<string, TensorValue>): string | undefined {
  const want = spec.reference(inputs, scalars, c.dims);
  const red = spec.reduction?.(c.dims) ?? 1;
  // The first output that is off, in full; every other one that is off, by its count.
  let first: string | undefined;
  const others: string[] = [];
  for (const p of k.params) {
    if (p.kind !== "tensor" || !p.output) continue;
    const w = want[p.name];
    if (!w) return `the reference returns no '${p.name}' (it returned: ${Object.keys(want).join(", ") || "nothing"})`;
    const got = outs[p.name];
    if (!got) return `backend returned no '${p.name}'`;
    const tol = isFloat(p.dtype) ? tolerance(p.dtype, red, spec.magnitude ?? magnitudeOf(spec, k)) : EXACT;
    const mm = firstMismatch(got.data, w, tol);
    if (!mm) continue;
    const bad = countBad(got.data, w, tol);
    if (first !== undefined) { others.push(`${p.name} (${bad} of ${w.length})`); continue; }
    const at = unflatten(mm.index, got.shape).join(", ");
    first = `${p.name}[${at}] = ${mm.got}, expected ${mm.want} (|err| ${mm.err.toExponential(2)} > ${mm.allowed.toExponential(2)}); ${bad} of ${w.length} elements off`;
  }
  return first === undefined ? undefined : others.length ? `${first}; also off: ${others.join(", ")}` : first;
}

/** The dims a check spec draws beyond its kernel's (routing quantities such as E, TOPK, skew
 *  that only its derive and dimsWhere read); the computed ones (functions of the others) not. */
export function specOnlyDims(k: Kernel, spec: CheckSpec): string[] {
  return Object.keys(spec.dims).filter((d) => !k.dims.includes(d) && typeof spec.dims[d] !== "function");
}

/** dims with the spec's computed dims (e.g. EH = E * H) added. */
export function withComputedDims(spec: CheckSpec, dims: Record<string, number>): Record<string, number> {
  const all = { ...dims };
  for (const [n, dom] of Object.entries(spec.dims)) if (typeof dom === "function" && all[n] === undefined) all[n] = dom(all);
  return all;
}

/** Inputs drawn from the spec's domains; outputs pre-filled with a large sentinel pattern
 *  so that an element the kernel forgets to write cannot pass by accident. */
/** A tensor of the check larger than this (2^28 elements: 2 GiB as float64) is refused, not
 *  allocated: JavaScript typed arrays end near there, with an error that names no shape. */
const MAX_CHECK_ELEMENTS = 2 ** 28;

export function makeInputs(k: Kernel, spec: CheckSpec, c: CheckCase) {
  const tensors: Record<string, TensorValue> = {};
  const scalars: Record<string, number> = {};
  k.params.forEach((p, i) => {
    const seed = (c.dataSeed * 31 + i * 7919) >>> 0;
    if (p.kind === "scalar") {
      const d = spec.scalars?.[p.name] ?? { lo: -1, hi: 1 };
      scalars[p.name] = randomTensor(p.dtype, [1], seed, d.lo, d.hi).data[0]!;
      return;
    }
    const shape = (p.shape ?? []).map((e, j) => {
      const n = evalConst(e, c.dims);
      if (n === undefined) throw new Error(`${k.name}: shape dim ${j} of '${p.name}' is not determined by the dims`);
      return n;
    });
    const elements = shape.reduce((a, b) => a * b, 1);
    if (elements > MAX_CHECK_ELEMENTS)
      throw userError(`${k.name}: '${p.name}' would hold ${elements.toExponential(2)} elements at ${Object.entries(c.dims).map(([n, x]) => `${n}=${x}`).join(",")}, ` +
        `too many to check here (at most ${MAX_CHECK_ELEMENTS}: the inputs and the float64 reference live in this process's memory); pass a smaller --shape`);
    const d = p.output ? { lo: 1000, hi: 2000 } : spec.inputs?.[p.name] ?? { lo: -1, hi: 1 };
    tensors[p.name] = randomTensor(p.dtype, shape, seed, d.lo, d.hi);
    const fill = p.output ? spec.outputs?.[p.name]?.fill : undefined;
    if (fill !== undefined) tensors[p.name]!.data.fill(roundTo(p.dtype, fill));
  });
  if (spec.derive) applyDerived(k, spec.derive(c.dims, rng((c.dataSeed * 131 + 17) >>> 0)), tensors, scalars);
  return { tensors, scalars };
}

/** A tensor a spec's derive returns: its input param (refused, naming it, where `name` is not
 *  one) and its values rounded to the param's dtype, checked against the element count `size`
 *  gives for that param (`at`: where, for the message). */
export function derivedTensor(k: Kernel, name: string, values: ArrayLike<number>,
  size: (p: Param) => number, at = ""): { param: Param; values: number[] } {
  const p = k.params.find((q) => q.name === name);
  if (!p || p.kind !== "tensor" || p.output) throw userError(`check spec for ${k.name}: derive names '${name}', which is not an input tensor`);
  const n = size(p);
  if (values.length !== n) throw userError(`check spec for ${k.name}: derive gives ${values.length} values for '${name}', which holds ${n}${at}`);
  return { param: p, values: Array.from(values, (x) => roundTo(p.dtype, x)) };
}

function applyDerived(k: Kernel, d: ReturnType<NonNullable<CheckSpec["derive"]>>, tensors: Record<string, TensorValue>,
  scalars: Record<string, number>): void {
  for (const [name, v] of Object.entries(d.tensors ?? {}))
    tensors[name]!.data.set(derivedTensor(k, name, v, (p) => tensors[p.name]!.data.length).values);
  for (const [name, v] of Object.entries(d.scalars ?? {})) {
    if (!(name in scalars)) throw userError(`check spec for ${k.name}: derive names '${name}', which is not a scalar param`);
    scalars[name] = v;
  }
}

/** Bound on |a_i * b_i| in a reduction: the product of the input domains' magnitudes. */
export function magnitudeOf(spec: CheckSpec, k: Kernel): number {
  let m = 1;
  for (const p of k.params) {
    if (p.kind !== "tensor" || p.output) continue;
    const d = spec.inputs?.[p.name] ?? { lo: -1, hi: 1 };
    m *= Math.max(Math.abs(d.lo), Math.abs(d.hi), 1e-30);
  }
  return m;
}

function countBad(got: ArrayLike<number>, want: ArrayLike<number>, tol: { atol: number; rtol: number }): number {
  let n = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!, w = want[i]!;
    if (Object.is(g, w)) continue;
    if (!(Math.abs(g - w) <= tol.atol + tol.rtol * Math.abs(w))) n++;
  }
  return n;
}

function unflatten(i: number, shape: number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) { out[d] = i % shape[d]!; i = Math.floor(i / shape[d]!); }
  return out;
}


export type { TunableValue };
