// A choice-table entry whose grouped GEMMs are built with persistent blocks (`persistent: P`
// in LayerConfig.up / .down; src/moe/stage-build.ts): the option reaches the target, not the
// kernel's tunables; the launcher's grid is min(G, P); the layer in the interpreter, lowered
// for sm_90a (TMA, warp-specialized, the producer running ahead across tiles), gives the
// same output as the entry without it.
import { describe, expect, it } from "vitest";
import type { LayerConfig, LayerSpec } from "../../src/moe/layer.ts";
import { lowerLayer, runLayerInterp } from "../../src/moe/interp.ts";
import { emitLayerCuda } from "../../src/moe/host.ts";
import { stageBuild } from "../../src/moe/stage-build.ts";
import { printExpr, printKernel } from "../../src/ir/print.ts";
import type { Expr } from "../../src/ir/ir.ts";

const printExprs = (es: Expr[]) => es.map(printExpr).join(", ");
import { cudaTarget } from "../../src/passes/pipeline.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { tinyPermutedConfigs } from "./tiny.ts";

const SM90 = cudaTarget("sm_90a", "wgmma", "tma");
const prefill = (P?: number): LayerConfig => {
  const c: LayerConfig = { ...tinyPermutedConfigs()[1]!, maxTokens: null, combine: "atomic" };
  return P === undefined ? c : { ...c, up: { ...c.up, persistent: P }, down: { ...c.down, persistent: P } };
};
const spec = (P?: number): LayerSpec => ({ name: `tiny_persist${P ?? ""}`, experts: 8, hidden: 64, intermediate: 72, topK: 2, activation: "silu",
  weights: "bf16", renormalize: true, configs: [prefill(P)] });

describe("MoE layer: persistent grouped GEMMs", () => {
  it("`persistent` is a build option: the target gets it, the kernel's config does not", () => {
    const up = { stage: "up", file: "f", kernel: "moe_gemm_up_permuted", config: { BM: 128, persistent: 132 }, bind: {} };
    const b = stageBuild(up, SM90);
    expect(b.config).toEqual({ BM: 128 });
    expect(b.target.persistentBlocks).toBe(132);
    expect(stageBuild({ ...up, config: { BM: 128 } }, SM90).target).toBe(SM90);
    expect(() => stageBuild({ ...up, config: { persistent: 0 } }, SM90)).toThrow(/layer stage 'up' \(moe_gemm_up_permuted\): 'persistent' is a block count .*got 0/);
  });

  it("the up and down kernels launch min(G, P) blocks with the running pipeline; the launcher's grid says so", () => {
    const low = lowerLayer(spec(132), SM90).get("prefill")!;
    for (const name of ["up", "down"]) {
      const k = low.find(({ stage }) => stage.stage === name)!.kernel;
      expect(printExprs(k.launch.grid)).toMatch(/^min\(.*, 132\)$/);
      expect(printKernel(k)).toContain("pipe = pipe + ");
    }
    for (const name of ["router", "permute"]) expect(printExprs(low.find(({ stage }) => stage.stage === name)!.kernel.launch.grid)).not.toContain("132");
    const cu = emitLayerCuda(spec(132)).cu;
    expect(cu.match(/tm_grid0 = min\([^;\n]*, \(int64_t\)132\);/g)).toHaveLength(2);
    expect(cu).toContain("persistent=132");
  });

  // 3 blocks: every block loops over several tiles; T = 200 puts up to 2 routing blocks on an
  // expert and leaves some of the NB blocks unused (their tiles skip the loop).
  for (const T of [64, 200]) it(`T = ${T}: on 3 persistent blocks the layer's output is the plain entry's`, () => {
    const H = 64, N = 72, E = 8;
    const inp = {
      x: randomTensor("bf16", [T, H], T, 0, 1), w_router: randomTensor("bf16", [E, H], T + 1, -0.5, 0.5),
      w2: randomTensor("bf16", [E * H, N], T + 2, -0.25, 0.25), w13: randomTensor("bf16", [E * 2 * N, H], T + 3, -0.25, 0.25),
    };
    const want = runLayerInterp(spec(), inp, lowerLayer(spec(), SM90));
    const got = runLayerInterp(spec(3), inp, lowerLayer(spec(3), SM90));
    expect([...got.block_expert!.data].some((e) => e < 0)).toBe(true);
    // The same tiles; only the order of the down projection's f32 atomics differs.
    let scale = 0, worst = 0;
    want.out!.data.forEach((w, i) => { scale = Math.max(scale, Math.abs(w)); worst = Math.max(worst, Math.abs(w - got.out!.data[i]!)); });
    expect(scale).toBeGreaterThan(0);
    expect(worst).toBeLessThanOrEqual(1e-5 * scale);
    expect([...got.y!.data]).toEqual([...want.y!.data]);
  }, 300_000);
});
