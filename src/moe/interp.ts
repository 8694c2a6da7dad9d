// Runs the layer's lowered kernels in sequence in the CPU interpreter, bound exactly as the
// generated C launcher binds them (same stage table), with the choice-table entry the
// launcher picks for the same T (chooseConfig), so what is checked is what runs. Workspace buffers start as garbage
// (NaN floats, -12345 ints), like uninitialized device memory, so a stage reading what no
// earlier stage wrote shows up in the result.
import type { Kernel } from "../ir/ir.ts";
import { evalConst } from "../ir/expr.ts";
import { lower, SM80, type Target } from "../passes/pipeline.ts";
import { runKernel } from "../interp/index.ts";
import { clearAccumulated } from "../check/backends.ts";
import type { TensorValue } from "../numeric/tensor.ts";
import { stageBuild } from "./stage-build.ts";
import { buffers, chooseConfig, type LayerSpec, quantities, runsAt, type Stage, stageKernels, stageKey } from "./layer.ts";

export interface LayerInputs { x: TensorValue; w_router: TensorValue; w13: TensorValue; s13?: TensorValue; w2: TensorValue; s2?: TensorValue }

/** Every choice-table entry's lowered stages, by entry name, to lower once and run many
 *  token counts. A kernel at the same config in several entries is lowered once. */
export type LoweredLayer = Map<string, { stage: Stage; kernel: Kernel }[]>;

export function lowerLayer(s: LayerSpec, target: Target = SM80): LoweredLayer {
  const done = new Map<string, Kernel>();
  const out: LoweredLayer = new Map();
  for (const { config, stages } of stageKernels(s))
    out.set(config.name, stages.map(({ stage, kernel }) => {
      const key = stageKey(stage);
      let low = done.get(key);
      if (!low) { const b = stageBuild(stage, target); done.set(key, (low = lower(kernel, b.config, b.target))); }
      return { stage, kernel: low };
    }));
  return out;
}

/** The layer's output [T, H] (f32) and every workspace buffer, by name. */
export function runLayerInterp(s: LayerSpec, inputs: LayerInputs, lowered = lowerLayer(s)): Record<string, TensorValue> {
  const T = inputs.x.shape[0]!;
  const q = quantities(s, T);
  const chosen = lowered.get(chooseConfig(s, T).name);
  if (!chosen) throw new Error(`layer ${s.name}: config ${chooseConfig(s, T).name} was not lowered`);
  const bufs: Record<string, TensorValue> = {};
  for (const b of buffers(s)) {
    const n = b.numel.reduce<number>((a, f) => a * (typeof f === "number" ? f : q[f]!), 1);
    const given = (inputs as unknown as Record<string, TensorValue | undefined>)[b.name];
    if (given) {
      if (given.data.length !== n) throw new Error(`layer input ${b.name}: ${given.data.length} elements, expected ${n}`);
      bufs[b.name] = given;
    } else {
      const junk = b.workspace ? (b.dtype === "f32" || b.dtype === "bf16" ? NaN : -12345) : 0;
      bufs[b.name] = { dtype: b.dtype, shape: [n], data: new Float64Array(n).fill(junk) };
    }
  }
  for (const { stage, kernel } of chosen) {
    // The gating and routing run as one kernel or two by the call's pair count, as the launcher decides.
    if (!runsAt(stage, q.P!)) continue;
    const tensors: Record<string, TensorValue> = {};
    const scalars: Record<string, number> = {};
    const dims: Record<string, number> = {};
    for (const d of kernel.dims) dims[d] = q[stage.bind[d]!]!;
    for (const p of kernel.params) {
      const to = stage.bind[p.name]!;
      if (p.kind === "scalar") { scalars[p.name] = q[to]!; continue; }
      const buf = bufs[to]!;
      // A view with the kernel's declared shape over the layer buffer's storage.
      const shape = (p.shape ?? []).map((e) => {
        const v = evalConst(e, dims);
        if (v === undefined) throw new Error(`stage ${stage.stage}: shape of ${p.name} is not known from the dims`);
        return v;
      });
      if (shape.reduce((a, b) => a * b, 1) !== buf.data.length)
        throw new Error(`stage ${stage.stage}: ${p.name} [${shape}] does not cover layer buffer ${to} (${buf.data.length})`);
      tensors[p.name] = { dtype: buf.dtype, shape, data: buf.data };
    }
    clearAccumulated(kernel, tensors); // as the stage's C launcher does
    runKernel(kernel, { tensors, scalars }, { raceCheck: false });
  }
  return bufs;
}
