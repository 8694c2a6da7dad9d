// The whole MoE layer: its lowered kernels (router, gating and routing as one kernel where
// T * top_k <= 256 or two, [permute,] up, down[, combine]) run in sequence in the interpreter, bound as
// the generated C launcher binds them, against the float64 layer reference, through each
// entry of a choice table alone and through the table (the entry picked by T). That the
// emitted layer .cu compiles with nvcc: layer-nvcc.test.ts.
import { describe, expect, it } from "vitest";
import { chooseConfig, type Combine, type LayerSpec, W4_ORDERS, workspaceLayout } from "../../src/moe/layer.ts";
import { routingBlocks } from "../../src/moe/routing.ts";
import { tinyConfigs, tinyMixedConfigs, tinyPermutedConfigs } from "./tiny.ts";
import { lowerLayer, runLayerInterp } from "../../src/moe/interp.ts";
import { cudaTarget } from "../../src/passes/pipeline.ts";
import { moeLayerRef, silu } from "../../src/check/moe-layer-ref.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { dequantMatrix } from "../../src/quant/index.ts";
import { type QOrder, wordsPerRow } from "../../src/quant/format.ts";

// N = 72 is 3 K tiles of the decode entry's BK 32 (bf16), 136 two of 128 and two scale groups (w4a16).
// `combine` forces every entry to it (the reduce combine cannot split K), as modelSpec does.
const tiny = (weights: "bf16" | "w4a16", combine: Combine = "atomic"): LayerSpec => ({ name: `tiny_${weights}_${combine}`, experts: 4, hidden: 64,
  intermediate: weights === "w4a16" ? 136 : 72, topK: 2, activation: "silu", weights, renormalize: true,
  configs: tinyConfigs(weights).map((c) => ({ ...c, combine, ...(combine !== "atomic" ? { down: { ...c.down, splitK: 1 } } : {}) })) });

/** The layer with one entry of its choice table for every T. */
const only = (s: LayerSpec, name: string): LayerSpec => ({ ...s, name: `${s.name}_${name}`,
  configs: s.configs.filter((c) => c.name === name).map((c) => ({ ...c, maxTokens: null })) });

/** Inputs where expert 3 never wins: x >= 0 and its router row < 0, the others' mixed. With
 *  `oneExpert`, expert 0's row is > 0, so every token picks expert 0 (all T pairs of slot 0
 *  on one expert: T / 16 routing blocks of it) and the other slot spreads over 1 and 2. */
function inputs(s: LayerSpec, T: number, seed: number, oneExpert = false) {
  const { hidden: H, intermediate: N, experts: E } = s;
  const x = randomTensor("bf16", [T, H], seed, 0, 1);
  const w_router = randomTensor("bf16", [E, H], seed + 1, -0.5, 0.5);
  for (let k = 0; k < H; k++) w_router.data[3 * H + k] = -Math.abs(w_router.data[3 * H + k]!) - 0.125;
  if (oneExpert) for (let k = 0; k < H; k++) w_router.data[k] = Math.abs(w_router.data[k]!) + 0.125;
  if (s.weights === "bf16") {
    const w2 = randomTensor("bf16", [E * H, N], seed + 2, -0.25, 0.25);
    const w13 = randomTensor("bf16", [E * 2 * N, H], seed + 3, -0.25, 0.25);
    return { in: { x, w_router, w13, w2 }, w13Dense: w13.data, w2Dense: w2.data };
  }
  // Both expert projections 4-bit, group 128 (N = 136 spans two down scale groups).
  // Each in the layer's packing order (W4_ORDERS: w13 interleaved, w2 mma).
  const q4 = (rows: number, cols: number, seed: number, order: QOrder) => {
    const q = randomTensor("u32", [rows, wordsPerRow("u4", order, cols)], seed, 0, 0xffffffff);
    const sc = randomTensor("bf16", [rows, Math.ceil(cols / 128)], seed + 1, 0.01, 0.04);
    return { q, sc, dense: dequantMatrix(q.data, rows, cols, { format: "u4", order, scales: sc.data, zeros: 8, group: 128 }, "bf16") };
  };
  const g = q4(E * 2 * N, H, seed + 3, W4_ORDERS.w13), d = q4(E * H, N, seed + 5, W4_ORDERS.w2);
  return { in: { x, w_router, w13: g.q, s13: g.sc, w2: d.q, s2: d.sc }, w13Dense: g.dense, w2Dense: d.dense };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

describe("MoE layer in the interpreter vs the float64 layer reference", () => {
  function check(s: LayerSpec, lowered: ReturnType<typeof lowerLayer>, T: number, oneExpert: boolean) {
    const { in: inp, w13Dense, w2Dense } = inputs(s, T, 100 + T, oneExpert);
    const got = runLayerInterp(s, inp, lowered);
    const want = moeLayerRef({ T, H: s.hidden, N: s.intermediate, E: s.experts, topK: s.topK, renormalize: true, activation: silu,
      x: inp.x.data, wRouter: inp.w_router.data, w13: w13Dense, w2: w2Dense });
    expect([...got.topk_ids!.data]).toEqual(want.ids.flat());
    expect(got.counts!.data[3]).toBe(0);
    if (oneExpert) expect(got.counts!.data[0]).toBe(T);
    expect(maxAbs(want.out)).toBeGreaterThan(0);
    // The intermediate is bf16 (relative 2^-9 per element) and everything else f32, so
    // 2^-7 of the output's scale bounds the error with room; a wrong routing weight or
    // a lost pick (or split-K slice) is off by a whole term.
    const tol = 2 ** -7 * maxAbs(want.out);
    const worst = maxAbs(want.out.map((v, i) => v - got.out!.data[i]!));
    expect(worst).toBeLessThanOrEqual(tol);
    expect(got.out!.data.every(Number.isFinite)).toBe(true);
    return got;
  }

  // Each entry alone at every T: decode at prefill sizes and the other way round must still
  // be right (the table may move its thresholds). T = 1 and 64 route randomly (expert 3
  // empty); T = 16 and 256 put every token on expert 0 as well (1 and 16 decode blocks).
  for (const [weights, combine] of [["bf16", "atomic"], ["w4a16", "atomic"], ["bf16", "reduce"], ["w4a16", "reduce"]] as const) {
    for (const entry of ["decode", "prefill"]) {
      const s = only(tiny(weights, combine), entry);
      const lowered = lowerLayer(s);
      // (w4a16's decode entry at 128, 8 blocks on expert 0: its thread-level dequant is the
      // slowest to interpret, 12 s a case at 256, npm test's budget.)
      // The reduce combine (the pairs kernels, then the combine) at a single token and at the
      // largest T; its GEMM tiles at 16 and 64 are the atomic entries' (npm test's budget).
      const big = weights === "w4a16" && entry === "decode" ? 128 : 256;
      for (const T of combine === "reduce" ? [1, big] : [1, 16, 64, big]) {
        const oneExpert = T === 16 || T >= 128;
        it(`${weights}, ${combine} combine, ${entry} entry, T = ${T}: output and routing${oneExpert ? ", all tokens on expert 0" : ""}, expert 3 empty`, () => {
          check(s, lowered, T, oneExpert);
        }, 300_000);
      }
    }
  }

  // bf16 pair rows (combine reduce_bf16): each pair's row rounded once more, within the same
  // bound; a decode entry (mma.sync tiles) and a prefill one at two T each.
  for (const [weights, entry] of [["bf16", "prefill"], ["w4a16", "decode"]] as const) {
    const s = only(tiny(weights, "reduce_bf16"), entry);
    const lowered = lowerLayer(s);
    for (const T of [16, 64]) {
      it(`${weights}, reduce_bf16 combine, ${entry} entry, T = ${T}: output and routing${T === 16 ? ", all tokens on expert 0" : ""}, expert 3 empty`, () => {
        check(s, lowered, T, T === 16);
      }, 300_000);
    }
  }

  // w4a16 with the activation rows permuted first (moe_permute, moe_gemm_up_permuted_w4a16):
  // the prefill entry's tiles, the f32 pair rows.
  {
    const base = only(tiny("w4a16", "reduce"), "prefill");
    const s: LayerSpec = { ...base, name: `${base.name}_permuted`, configs: base.configs.map((c) => ({ ...c, permute: true })) };
    const lowered = lowerLayer(s);
    for (const T of [16, 64]) {
      it(`w4a16, permuted prefill entry, T = ${T}: output and routing${T === 16 ? ", all tokens on expert 0" : ""}, expert 3 empty`, () => {
        expect(lowered.get("prefill")!.map(({ stage }) => stage.kernel)).toContain("moe_gemm_up_permuted_w4a16");
        check(s, lowered, T, T === 16);
      }, 300_000);
    }
  }

  // Through the table: the interpreter runs the entry the launcher picks for T, the same
  // kernels as that entry alone (bit for bit: split-K changes the summation order). The bf16
  // table mixes the combines as the models' do: decode adds into `out` with atomics (split-K
  // 2), prefill stores a row per pair into `pairs` and the combine stage sums them.
  for (const weights of ["bf16", "w4a16"] as const) {
    it(`${weights}: the table runs decode up to T = 16 and prefill from 17, as each entry alone does${weights === "bf16" ? " (atomic, then reduce combine)" : ""}`, () => {
      const s: LayerSpec = weights === "bf16" ? { ...tiny("bf16"), name: "tiny_bf16_mixed", configs: tinyMixedConfigs() } : tiny(weights);
      const lowered = lowerLayer(s);
      expect([16, 17].map((T) => chooseConfig(s, T).name)).toEqual(["decode", "prefill"]);
      if (weights === "bf16") {
        expect(lowered.get("decode")!.map(({ stage }) => `${stage.stage} ${stage.kernel}`).slice(-1)).toEqual(["down moe_gemm_down"]);
        expect(lowered.get("prefill")!.map(({ stage }) => `${stage.stage} ${stage.kernel}`).slice(-2)).toEqual(["down moe_gemm_down_pairs", "combine moe_combine"]);
      }
      // Gating and routing in one kernel (T * top_k <= 256 here) against the same table with gate + align: bit for bit.
      const split = { ...s, name: `${s.name}_split`, gateAlignPairs: 0 };
      const splitLowered = lowerLayer(split);
      for (const [T, entry] of [[16, "decode"], [17, "prefill"]] as const) {
        const alone = only(s, entry);
        const got = check(s, lowered, T, false);
        const want = runLayerInterp(alone, inputs(s, T, 100 + T).in, lowerLayer(alone));
        expect(got.sorted!.data.length).toBe(want.sorted!.data.length);
        expect(Array.from(got.out!.data)).toEqual(Array.from(want.out!.data));
        const two = runLayerInterp(split, inputs(s, T, 100 + T).in, splitLowered);
        for (const b of ["topk_weights", "topk_ids", "sorted", "block_expert", "counts", "total", "out"])
          expect(Array.from(got[b]!.data), `${b}, T = ${T}`).toEqual(Array.from(two[b]!.data));
        // The atomic entry leaves `pairs` empty; the reducing entry writes every pair's row.
        if (weights === "bf16") expect(got.pairs!.data.length).toBe(entry === "decode" ? 0 : T * 2 * s.hidden);
        if (weights === "bf16" && entry === "prefill") expect(got.pairs!.data.every(Number.isFinite)).toBe(true);
      }
    }, 300_000);
  }

  // Lowered for sm_90a as the generated .cu is (emitLayerCuda): TMA for the bf16 down
  // projection's tiles, mma.sync at BM 16 (decode), wgmma at BM 64 (prefill).
  for (const weights of ["bf16", "w4a16"] as const) {
    it(`${weights}: the table lowered for sm_90a with TMA, T = 1, 16 (decode) and 17, 64 (prefill)`, () => {
      const s = tiny(weights);
      const lowered = lowerLayer(s, cudaTarget("sm_90a", "wgmma", "tma"));
      const down = (e: string) => lowered.get(e)!.find(({ stage }) => stage.stage === "down")!.kernel;
      expect(down("decode").tensorMaps?.map((m) => m.tensor) ?? []).toEqual(weights === "bf16" ? ["A", "W2"] : []);
      expect(down("prefill").tensorMaps?.map((m) => m.tensor) ?? []).toEqual(weights === "bf16" ? ["A", "W2"] : []);
      for (const T of [1, 16, 17, 64]) check(s, lowered, T, T === 16);
    }, 300_000);
  }

  // The bf16 prefill entry as the models have it: moe_permute copies the rows into routing
  // order, the gate/up GEMM reads them as plain tiles; routing block 128 with 128-row tiles.
  // Both models shrunk: Mixtral's E = 8, top 2 and Qwen3's E = 16 (of 128), top 8, hidden 64.
  // T = 1: one token; 16 and 200: every token on expert 0 as well (200: two routing blocks of
  // it, the second partly pads); 64: random. Expert 3 receives nothing in every case.
  for (const [model, E, topK, N] of [["mixtral", 8, 2, 72], ["qwen3", 16, 8, 40]] as const) {
    const s: LayerSpec = { name: `tiny_${model}_permuted`, experts: E, hidden: 64, intermediate: N, topK, activation: "silu",
      weights: "bf16", renormalize: true, configs: tinyPermutedConfigs() };
    const pre = only(s, "prefill");
    const lowered = lowerLayer(pre);
    it(`${model}-shaped bf16, permuted prefill entry: stages and the workspace's xp`, () => {
      expect(lowered.get("prefill")!.map(({ stage }) => `${stage.stage} ${stage.kernel}`)).toEqual(["router moe_router", "gate_align moe_gate_align_softmax",
        "gate moe_gate_softmax", "align moe_align", "permute moe_permute", "up moe_gemm_up_permuted", "down moe_gemm_down"]);
      // xp holds one row of H per routing slot: NB * BS rows; the decode entry's is empty.
      const xp = (spec: LayerSpec, T: number) => workspaceLayout(spec, T).slices.find((x) => x.name === "xp")!.bytes;
      const NB = routingBlocks(64 * topK, E, 128);
      expect(xp(pre, 64)).toBe(NB * 128 * 64 * 2);
      expect([xp(s, 16), xp(s, 64)]).toEqual([0, NB * 128 * 64 * 2]);
    });
    for (const T of [1, 16, 64, 200]) {
      const oneExpert = T === 16 || T === 200;
      it(`${model}-shaped bf16, permuted prefill entry, T = ${T}: output and routing${oneExpert ? ", all tokens on expert 0" : ""}, expert 3 empty`, () => {
        const got = check(pre, lowered, T, oneExpert);
        // Unused routing blocks of xp are never written (still the workspace's NaN junk): the
        // up GEMM skips them as the permute does.
        const { block_expert } = got;
        const unused = [...block_expert!.data].findIndex((e) => e < 0);
        if (unused >= 0) expect(Number.isNaN(got.xp!.data[unused * 128 * 64])).toBe(true);
      }, 300_000);
    }
  }

  // Lowered for sm_90a as the generated .cu is: all three operand tiles of the permuted up
  // GEMM by TMA with a warp-specialized producer (and the down GEMM's), BM 128 wgmma tiles.
  it("mixtral-shaped bf16, permuted prefill entry lowered for sm_90a (TMA, warp-specialized), T = 64 and 200", () => {
    const s: LayerSpec = { name: "tiny_mixtral_permuted_sm90", experts: 8, hidden: 64, intermediate: 72, topK: 2, activation: "silu",
      weights: "bf16", renormalize: true, configs: tinyPermutedConfigs() };
    const pre = only(s, "prefill");
    const lowered = lowerLayer(pre, cudaTarget("sm_90a", "wgmma", "tma"));
    const up = lowered.get("prefill")!.find(({ stage }) => stage.stage === "up")!.kernel;
    expect(up.tensorMaps!.map((m) => m.tensor)).toEqual(["Xp", "W13", "W13"]);
    expect(up.launch.threads).toEqual({ k: "int", v: 8 * 32 + 128 });
    for (const T of [64, 200]) check(pre, lowered, T, T === 200);
  }, 300_000);

  it("the table with a permuted prefill entry runs the decode stages up to T = 16 and the permute from 17, as each entry alone does", () => {
    const s: LayerSpec = { ...tiny("bf16"), name: "tiny_bf16_permuted", configs: tinyPermutedConfigs() };
    const lowered = lowerLayer(s);
    for (const [T, entry] of [[16, "decode"], [17, "prefill"]] as const) {
      const alone = only(s, entry);
      const got = check(s, lowered, T, false);
      const want = runLayerInterp(alone, inputs(s, T, 100 + T).in, lowerLayer(alone));
      expect(Array.from(got.out!.data)).toEqual(Array.from(want.out!.data));
      // The decode entry leaves xp empty; the prefill entry fills it.
      expect(got.xp!.data.length).toBe(entry === "decode" ? 0 : want.xp!.data.length);
    }
  }, 300_000);

  // Qwen3-shaped (E = 16, top 8), the switch at its most (gateAlignPairs 256; the default is 64):
  // T = 32 is 256 pairs, the most gate_align routes (one chunk),
  // in two gating rounds of BT 16; T = 7 ragged; T = 33 (264 pairs) takes gate + align. Against
  // the same table with gate + align in every call, bit for bit, and the float64 layer reference (check).
  it("qwen3-shaped table: gate_align up to T = 32 (256 pairs), bit for bit as gate + align; gate + align from T = 33", () => {
    const [decode, prefill] = tinyConfigs("bf16");
    const s: LayerSpec = { name: "tiny_qwen3_fused", experts: 16, hidden: 64, intermediate: 40, topK: 8, activation: "silu", weights: "bf16",
      renormalize: true, configs: [{ ...decode!, maxTokens: 64 }, prefill!], gateAlignPairs: 256 };
    const lowered = lowerLayer(s);
    const split = { ...s, name: "tiny_qwen3_split", gateAlignPairs: 0 };
    const splitLowered = lowerLayer(split);
    expect(lowered.get("decode")!.map(({ stage }) => `${stage.stage}${stage.pairs ? ` ${JSON.stringify(stage.pairs)}` : ""}`).slice(0, 4))
      .toEqual(["router", 'gate_align {"atMost":256}', 'gate {"above":256}', 'align {"above":256}']);
    expect(splitLowered.get("decode")!.map(({ stage }) => stage.stage).slice(0, 4)).toEqual(["router", "gate", "align", "up"]);
    for (const T of [7, 32, 33]) {
      const got = check(s, lowered, T, T === 32);
      const want = runLayerInterp(split, inputs(s, T, 100 + T, T === 32).in, splitLowered);
      for (const b of ["topk_weights", "topk_ids", "sorted", "block_expert", "counts", "total", "out"])
        expect(Array.from(got[b]!.data), `${b}, T = ${T}`).toEqual(Array.from(want[b]!.data));
    }
  }, 300_000);

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
