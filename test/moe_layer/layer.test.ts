// The whole MoE layer: its five lowered kernels run in sequence in the interpreter, bound as
// the generated C launcher binds them, against the float64 layer reference; the emitted
// layer .cu compiles with nvcc (sm_90a).
import { describe, expect, it } from "vitest";
import { type LayerSpec } from "../../src/moe/layer.ts";
import { lowerLayer, runLayerInterp } from "../../src/moe/interp.ts";
import { emitLayerCuda } from "../../src/moe/host.ts";
import { moeLayerRef, silu } from "../../src/check/moe-layer-ref.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { dequantMatrix } from "../../src/quant/index.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";

const tiny = (weights: "bf16" | "w4a16", combine: "atomic" | "reduce" = "atomic"): LayerSpec => ({ name: `tiny_${weights}_${combine}`, experts: 4, hidden: 64,
  intermediate: weights === "w4a16" ? 136 : 32, topK: 2, blockSize: 16, activation: "silu", weights, renormalize: true, combine });

/** Inputs where expert 3 never wins: x >= 0 and its router row < 0, the others' mixed. */
function inputs(s: LayerSpec, T: number, seed: number) {
  const { hidden: H, intermediate: N, experts: E } = s;
  const x = randomTensor("bf16", [T, H], seed, 0, 1);
  const w_router = randomTensor("bf16", [E, H], seed + 1, -0.5, 0.5);
  for (let k = 0; k < H; k++) w_router.data[3 * H + k] = -Math.abs(w_router.data[3 * H + k]!) - 0.125;
  if (s.weights === "bf16") {
    const w2 = randomTensor("bf16", [E * H, N], seed + 2, -0.25, 0.25);
    const w13 = randomTensor("bf16", [E * 2 * N, H], seed + 3, -0.25, 0.25);
    return { in: { x, w_router, w13, w2 }, w13Dense: w13.data, w2Dense: w2.data };
  }
  // Both expert projections 4-bit, group 128 (N = 136 spans two down scale groups).
  const q4 = (rows: number, cols: number, seed: number) => {
    const q = randomTensor("u32", [rows, Math.ceil(cols / 8)], seed, 0, 0xffffffff);
    const sc = randomTensor("bf16", [rows, Math.ceil(cols / 128)], seed + 1, 0.01, 0.04);
    return { q, sc, dense: dequantMatrix(q.data, rows, cols, { format: "u4", order: "interleaved", scales: sc.data, zeros: 8, group: 128 }, "bf16") };
  };
  const g = q4(E * 2 * N, H, seed + 3), d = q4(E * H, N, seed + 5);
  return { in: { x, w_router, w13: g.q, s13: g.sc, w2: d.q, s2: d.sc }, w13Dense: g.dense, w2Dense: d.dense };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

describe("MoE layer in the interpreter vs the float64 layer reference", () => {
  for (const [weights, combine] of [["bf16", "atomic"], ["w4a16", "atomic"], ["bf16", "reduce"]] as const) {
    const s = tiny(weights, combine);
    const lowered = lowerLayer(s);
    for (const T of [1, 5]) {
      it(`${weights}, ${combine} combine, T = ${T}: output, routing, and an expert with no tokens`, () => {
        const { in: inp, w13Dense, w2Dense } = inputs(s, T, 100 + T);
        const got = runLayerInterp(s, inp, lowered);
        const want = moeLayerRef({ T, H: s.hidden, N: s.intermediate, E: s.experts, topK: s.topK, renormalize: true, activation: silu,
          x: inp.x.data, wRouter: inp.w_router.data, w13: w13Dense, w2: w2Dense });
        expect([...got.topk_ids!.data]).toEqual(want.ids.flat());
        expect(got.counts!.data[3]).toBe(0);
        expect(maxAbs(want.out)).toBeGreaterThan(0);
        // The intermediate is bf16 (relative 2^-9 per element) and everything else f32, so
        // 2^-7 of the output's scale bounds the error with room; a wrong routing weight or
        // a lost pick is off by a whole term.
        const tol = 2 ** -7 * maxAbs(want.out);
        const worst = maxAbs(want.out.map((v, i) => v - got.out!.data[i]!));
        expect(worst).toBeLessThanOrEqual(tol);
        expect(got.out!.data.every(Number.isFinite)).toBe(true);
      }, 120_000);
    }
  }

  it("the comparison can fail: the reference without renormalization is caught", () => {
    const s = tiny("bf16");
    const T = 5;
    const { in: inp, w13Dense, w2Dense } = inputs(s, T, 105);
    const got = runLayerInterp(s, inp, lowerLayer(s));
    const wrong = moeLayerRef({ T, H: s.hidden, N: s.intermediate, E: s.experts, topK: s.topK, renormalize: false, activation: silu,
      x: inp.x.data, wRouter: inp.w_router.data, w13: w13Dense, w2: w2Dense });
    const worst = maxAbs(wrong.out.map((v, i) => v - got.out!.data[i]!));
    expect(worst).toBeGreaterThan(2 ** -7 * maxAbs(wrong.out));
  }, 120_000);
});

describe("layer reference", () => {
  it("one expert, top-1: weight 1, out = down(act(gate) * up)", () => {
    const r = moeLayerRef({ T: 1, H: 1, N: 1, E: 1, topK: 1, renormalize: false, activation: silu,
      x: [2], wRouter: [0.5], w13: [0.25, 3], w2: [0.5] });
    expect(r.weights).toEqual([[1]]);
    expect(r.out[0]).toBeCloseTo(silu(0.5) * 6 * 0.5, 14);
  });
  it("ties go to the lower expert", () => {
    const r = moeLayerRef({ T: 1, H: 1, N: 1, E: 3, topK: 2, renormalize: true, activation: silu,
      x: [1], wRouter: [1, 2, 2], w13: new Array(6).fill(1), w2: [1, 1, 1] });
    expect(r.ids).toEqual([[1, 2]]);
  });
});

const nvcc = await nvccAvailable();
describe.skipIf(!nvcc)("the emitted layer compiles", () => {
  for (const [model, weights, combine] of [["qwen3", "bf16", "atomic"], ["mixtral", "w4a16", "atomic"], ["qwen3", "w4a16", "atomic"], ["mixtral", "bf16", "reduce"]] as const) {
    it(`${model} ${weights} ${combine} combine for sm_90a`, async () => {
      const { modelSpec } = await import("../../src/moe/layer.ts");
      const l = emitLayerCuda(modelSpec(model, weights, 64, combine));
      expect(l.lowered.map((x) => x.stage.stage)).toEqual(["router", "gate", "align", "up", "down", ...(combine === "reduce" ? ["combine"] : [])]);
      const r = await compileCuda(l.cu, { arch: "sm_90a", outputs: ["obj"] });
      expect(r.objPath).toBeTruthy();
      // Every stage's kernel made it into the object.
      for (const st of l.lowered) expect(Object.keys(r.resources)).toContain(`${st.launcher}_kernel`);
    }, 300_000);
  }
});
