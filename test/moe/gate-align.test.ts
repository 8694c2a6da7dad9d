// moe_gate_align_softmax (dsl-examples/moe_gate_align.ts): the gating and routing of up to 256
// pairs in one block. Against the float64 references of moe_gate and moe_align at the corner
// shapes (tile level and lowered), and bit for bit against the two kernels it replaces in the
// layer (moe_gate_softmax at the layer's BT 4, then moe_align), both lowered and run in the
// thread-level interpreter on the same logits, ties included.
import { routingBlocks } from "../../src/moe/routing.ts";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { lower, SM80 } from "../../src/passes/pipeline.ts";
import { runKernel } from "../../src/interp/index.ts";
import type { Kernel } from "../../src/ir/ir.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";
import { randomTensor } from "../../src/numeric/random.ts";

const FILE = "dsl-examples/moe_gate_align.ts";
const fused = parseKernels(FILE).find((k) => k.name === "moe_gate_align_softmax")!;
const gate = parseKernels("dsl-examples/moe_gate.ts").find((k) => k.name === "moe_gate_softmax")!;
const align = parseKernels("dsl-examples/moe_align.ts").find((k) => k.name === "moe_align")!;

/** NB as the layer sizes it (routingBlocks: the most blocks any routing of P pairs takes). */
const nbOf = routingBlocks;

describe("moe_gate_align_softmax against the references of moe_gate and moe_align", () => {
  // T = 1; ragged T (13: not a multiple of BT 8 or 32; 37 at top 1); E = 20 with one token:
  // most experts get nothing; E = 1: every pair on one expert (several routing blocks of it);
  // top_k = E = 4; T * top_k = 256 (32 x 8, 128 x 2: the largest the layer sends).
  const shapes = [
    { T: 1, E: 8, K: 2, BS: 16, NB: nbOf(2, 8, 16) },
    { T: 13, E: 6, K: 3, BS: 4, NB: nbOf(39, 6, 4) },
    { T: 37, E: 3, K: 1, BS: 2, NB: nbOf(37, 3, 2) },
    { T: 1, E: 20, K: 2, BS: 16, NB: nbOf(2, 20, 16) },
    { T: 40, E: 1, K: 1, BS: 16, NB: nbOf(40, 1, 16) },
    { T: 9, E: 4, K: 4, BS: 1, NB: nbOf(36, 4, 1) },
    { T: 32, E: 20, K: 8, BS: 16, NB: nbOf(256, 20, 16) },
    { T: 128, E: 8, K: 2, BS: 32, NB: nbOf(256, 8, 32) },
  ];
  for (const level of ["tile", "thread"] as const) {
    it(`${level} level: random cases and the corner shapes`, async () => {
      const spec = (await loadSpecs(FILE)).get("moe_gate_align_softmax")!;
      const backend = await backendFor("interp", { level, arch: "sm_80" });
      const r = await checkKernel(fused, spec, { backendName: "interp", backend, cases: 3, seed: 5, reproduce: "x" });
      expect(r, `${level} random`).toMatchObject({ failed: 0 });
      for (const [i, shape] of shapes.entries()) {
        // Each BT once at least: one gating round, or several (T = 37, 40, 128 at BT 8).
        const config = { BT: [8, 32, 16][i % 3]!, EMAX: i % 2 ? 256 : 128, KMAX: 8, CH: 256 };
        const c = await checkKernel(fused, spec, { backendName: "interp", backend, cases: 1, seed: 7, shape, config, reproduce: "x" });
        expect(c, `${level} ${JSON.stringify(shape)} ${JSON.stringify(config)}`).toMatchObject({ passed: 1, failed: 0 });
      }
    }, 300_000);
  }
});

const tensor = (dtype: "f32" | "i32", shape: number[], fill: number): TensorValue => {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, data: new Float64Array(n).fill(fill) };
};

/** Runs a lowered kernel on the interpreter (outputs start as junk, as the layer's workspace). */
function run(k: Kernel, tensors: Record<string, TensorValue>, scalars: Record<string, number> = {}) {
  runKernel(k, { tensors, scalars }, { raceCheck: true });
}

/** The layer's two kernels on `logits`: moe_gate_softmax at the layer's config, then moe_align on its ids. */
function twoKernels(logits: TensorValue, K: number, renorm: number, BS: number, EMAX: number) {
  const [T, E] = logits.shape as [number, number];
  const P = T * K, NB = nbOf(P, E, BS);
  const out = { weights: tensor("f32", [T, K], NaN), ids: tensor("i32", [T, K], -12345), sorted: tensor("i32", [NB, BS], -12345),
    block_expert: tensor("i32", [NB], -12345), counts: tensor("i32", [E], -12345), total: tensor("i32", [1], -12345) };
  run(lower(gate, { BT: 4, EMAX, KMAX: 8 }, SM80), { logits, weights: out.weights, ids: out.ids }, { renorm });
  run(lower(align, { EMAX: 256, CH: 256 }, SM80), { ids: { ...out.ids, shape: [P] }, sorted: out.sorted, block_expert: out.block_expert,
    counts: out.counts, total: out.total });
  return out;
}

function oneKernel(logits: TensorValue, K: number, renorm: number, BS: number, config: Record<string, number>) {
  const [T, E] = logits.shape as [number, number];
  const P = T * K, NB = nbOf(P, E, BS);
  const out = { weights: tensor("f32", [T, K], NaN), ids: tensor("i32", [T, K], -12345), sorted: tensor("i32", [NB, BS], -12345),
    block_expert: tensor("i32", [NB], -12345), counts: tensor("i32", [E], -12345), total: tensor("i32", [1], -12345) };
  run(lower(fused, { KMAX: 8, CH: 256, ...config }, SM80), { logits, ...out }, { renorm });
  return out;
}

/** Logits on a coarse grid (many exact ties between experts, ties go to the lower index) or not. */
function logitsOf(T: number, E: number, seed: number, ties: boolean): TensorValue {
  const l = randomTensor("f32", [T, E], seed, -4, 4);
  if (ties) l.data = l.data.map((v) => Math.round(v * 2) / 2);
  return l;
}

describe("moe_gate_align_softmax is the layer's gate + align, bit for bit", () => {
  // Qwen3 (E 128, top 8) up to T = 32, Mixtral (E 8, top 2) up to 128 (its mid entry), E 200
  // (EMAX 256), renormalized or not, BS 16 / 32, the fused kernel at BT 8 and 32.
  const cases = [
    { T: 1, E: 128, K: 8, BS: 16, renorm: 1, BT: 32, ties: false },
    { T: 32, E: 128, K: 8, BS: 16, renorm: 1, BT: 32, ties: true },
    { T: 19, E: 128, K: 8, BS: 16, renorm: 0, BT: 8, ties: false },
    { T: 1, E: 8, K: 2, BS: 16, renorm: 1, BT: 32, ties: true },
    { T: 128, E: 8, K: 2, BS: 32, renorm: 1, BT: 32, ties: true },
    { T: 3, E: 200, K: 8, BS: 16, renorm: 1, BT: 8, ties: true },
  ];
  for (const c of cases) {
    it(`T = ${c.T}, E = ${c.E}, top ${c.K}, BS ${c.BS}, renorm ${c.renorm}, BT ${c.BT}${c.ties ? ", tied logits" : ""}`, () => {
      const EMAX = c.E <= 128 ? 128 : 256;
      const logits = logitsOf(c.T, c.E, 300 + c.T + c.E, c.ties);
      const want = twoKernels(logits, c.K, c.renorm, c.BS, EMAX);
      const got = oneKernel(logits, c.K, c.renorm, c.BS, { BT: c.BT, EMAX });
      for (const name of Object.keys(want) as (keyof typeof want)[])
        expect(Array.from(got[name].data), name).toEqual(Array.from(want[name].data));
      // The gating picked ties and spread the pairs (the comparison is not of empty outputs).
      expect(want.total.data[0]).toBeGreaterThan(0);
      expect(want.weights.data.every((w) => w > 0 && w <= 1)).toBe(true);
    }, 300_000);
  }

  it("the comparison can fail: moe_gate_softmax at BT 16 (8 lanes a row) sums in another order", () => {
    const logits = logitsOf(32, 128, 5, false);
    const weights = tensor("f32", [32, 8], NaN), ids = tensor("i32", [32, 8], -12345);
    run(lower(gate, { BT: 16, EMAX: 128, KMAX: 8 }, SM80), { logits, weights, ids }, { renorm: 0 });
    const got = oneKernel(logits, 8, 0, 16, { BT: 32, EMAX: 128 });
    expect(Array.from(got.ids.data)).toEqual(Array.from(ids.data));
    expect(Array.from(got.weights.data)).not.toEqual(Array.from(weights.data));
  }, 300_000);

  it("more pairs than one chunk (T * top_k > 256): the gating is still right, total says -1", () => {
    const logits = logitsOf(33, 16, 9, false);
    const want = twoKernels(logits, 8, 1, 16, 128);
    const got = oneKernel(logits, 8, 1, 16, { BT: 32, EMAX: 128 });
    expect(Array.from(got.weights.data)).toEqual(Array.from(want.weights.data));
    expect(Array.from(got.ids.data)).toEqual(Array.from(want.ids.data));
    expect(Array.from(got.total.data)).toEqual([-1]);
  }, 300_000);
});
