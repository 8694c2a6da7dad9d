// Helpers for semantic pass tests: run a kernel before and after lowering in the
// interpreter on the same random inputs and compare the outputs.
import { type DType, type Kernel, type TunableValue, isInt } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { runKernel } from "../../src/interp/index.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { type TensorValue, zeros } from "../../src/numeric/tensor.ts";
import { specialize } from "../../src/passes/specialize.ts";
import { inferTypes } from "../../src/passes/infer-types.ts";
import { lower, type Target } from "../../src/passes/pipeline.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { makeInputs } from "../../src/check/run.ts";
import type { CheckSpec } from "../../src/check/spec.ts";

/** lower() with the verifier run after every pass. */
export function lowerChecked(k: Kernel, config: Record<string, TunableValue>, target: Target): Kernel {
  const errs = verifyErrors(k);
  if (errs.length) throw new Error(`input does not verify:\n${errs.join("\n")}`);
  return lower(k, config, target, (name, out) => {
    const e = verifyErrors(out);
    if (e.length) throw new Error(`after ${name}:\n${e.join("\n")}`);
  });
}

export function tileLevel(k: Kernel, config: Record<string, TunableValue>, target: Target): Kernel {
  return inferTypes(specialize(k, { config, target }));
}

export interface Case { dims: Record<string, number>; seed: number }

/** Tensors for every param: inputs random, outputs zero-filled (shapes from the dims). */
export function inputs(k: Kernel, dims: Record<string, number>, seed: number): Record<string, TensorValue> {
  const out: Record<string, TensorValue> = {};
  k.params.forEach((p, i) => {
    if (p.kind !== "tensor") return;
    const shape = (p.shape ?? []).map((e) => {
      if (e.k === "var") return dims[e.name]!;
      if (e.k === "int") return e.v;
      throw new Error("test harness: shapes must be dims or literals");
    });
    // Integer inputs are mostly indices (routing ids, expert ids): keep them small and
    // non-negative; kernels mask ids beyond their tensors themselves.
    out[p.name] = p.output ? zeros(p.dtype, shape)
      : isInt(p.dtype) ? randomTensor(p.dtype, shape, seed * 31 + i, 0, 3) : randomTensor(p.dtype, shape, seed * 31 + i);
  });
  return out;
}

const clone = (t: Record<string, TensorValue>) =>
  Object.fromEntries(Object.entries(t).map(([n, v]) => [n, { ...v, data: v.data.slice() }]));

/** Runs the tile-level kernel and the fully lowered one; returns both output sets. */
export function runBoth(src: string | Kernel, config: Record<string, TunableValue>, target: Target, c: Case) {
  const k = typeof src === "string" ? parseKernel(src) : src;
  const tile = tileLevel(k, config, target);
  const thread = lowerChecked(k, config, target);
  const ins = inputs(tile, c.dims, c.seed);
  const a = clone(ins), b = clone(ins);
  runKernel(tile, { tensors: a });
  runKernel(thread, { tensors: b });
  const outs = tile.params.filter((p) => p.output).map((p) => p.name);
  return { outs, want: a, got: b, thread };
}

/** Rounding of the output dtype: two lowerings may sum in different orders, and a sum that
 *  lands near a rounding boundary of a narrow output type then differs by one unit. */
const ULP: Partial<Record<DType, number>> = { f16: 2 ** -10, bf16: 2 ** -7, fp8e4m3: 2 ** -3, fp8e5m2: 2 ** -2 };

/** Largest |want - got| / (1 + |want|) over the outputs, in units of the output dtype's
 *  relative precision beyond f32 (so `< 1e-5` reads the same for every dtype). */
export function maxRelErr(outs: string[], want: Record<string, TensorValue>, got: Record<string, TensorValue>): number {
  let m = 0;
  for (const n of outs) {
    const w = want[n]!.data, g = got[n]!.data;
    const scale = ULP[want[n]!.dtype] ? 1e-5 / ULP[want[n]!.dtype]! : 1;
    for (let i = 0; i < w.length; i++) {
      const e = w[i] === g[i] || (Number.isNaN(w[i]) && Number.isNaN(g[i])) ? 0 : scale * Math.abs(w[i]! - g[i]!) / (1 + Math.abs(w[i]!));
      if (!(e <= m)) m = Number.isNaN(e) ? Infinity : e;
    }
  }
  return m;
}

/** A kernel at one config and target, run at tile level and lowered (race, wait and register
 *  checks on) on the same inputs drawn from its check spec: the outputs' maxRelErr. */
export function specVsLowered(k: Kernel, spec: CheckSpec, config: Record<string, TunableValue>, target: Target,
  dims: Record<string, number>, seed: number): { err: number; lowered: Kernel } {
  const tile = tileLevel(k, config, target);
  const thread = lowerChecked(k, config, target);
  const { tensors, scalars } = makeInputs(tile, spec, { dims, config, dataSeed: seed });
  const a = clone(tensors), b = clone(tensors);
  runKernel(tile, { tensors: a, scalars });
  runKernel(thread, { tensors: b, scalars }, { raceCheck: true });
  const outs = tile.params.filter((p) => p.output).map((p) => p.name);
  return { err: maxRelErr(outs, a, b), lowered: thread };
}
