// The grouped expert GEMMs of the MoE layer (dsl-examples/moe_gemm_up.ts, moe_gemm_down.ts):
// the routing generator's corner modes, each kernel against its float64 reference at the
// corner shapes of issue 4 (one token, experts with no tokens, all tokens on one expert,
// top-k = E) in the lowered (thread-level) interpreter, and compile-only for sm_80/sm_90a.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { SM80, SM90A, cudaTarget, lower } from "../../src/passes/pipeline.ts";
import { rng } from "../../src/numeric/random.ts";
import { routing } from "../../dsl-examples/moe_gemm_up.ts";
import { zeroInitOutputs } from "../../src/ir/zero-init.ts";

const UP = "dsl-examples/moe_gemm_up.ts", DOWN = "dsl-examples/moe_gemm_down.ts", UPQ = "dsl-examples/moe_gemm_up_w4a16.ts";
const DOWNQ = "dsl-examples/moe_gemm_down_w4a16.ts", DOWNR = "dsl-examples/moe_gemm_down_reduce.ts";
const PERM = "dsl-examples/moe_permute.ts";

describe("routing generator", () => {
  it("skew 1 with top_k 1 puts every token on expert 0; unused blocks are -1", () => {
    const r = routing(5, 4, 1, 4, 4, 1, rng(3));
    expect([...r.counts]).toEqual([5, 0, 0, 0]);
    expect([...r.block_expert]).toEqual([0, 0, -1, -1]);
    expect([...r.sorted]).toEqual([0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5]);
  });
  it("top_k = E routes every token to every expert once", () => {
    const r = routing(3, 3, 3, 6, 2, 0, rng(7));
    expect([...r.counts]).toEqual([3, 3, 3]);
  });
  it("skew 2 leaves odd experts empty when top_k <= E / 2", () => {
    const r = routing(6, 6, 2, 12, 4, 2, rng(11));
    expect([r.counts[1], r.counts[3], r.counts[5]]).toEqual([0, 0, 0]);
    expect(r.counts.reduce((a, b) => a + b, 0)).toBe(12);
  });
});

// Shapes pinned, data and configs drawn. BS=16 with BM=64 also covers a ragged routing block.
const corners: { kernel: string; file: string; shapes: Record<string, number>[] }[] = [
  { kernel: "moe_gemm_up", file: UP, shapes: [
    { T: 1, K: 24, N: 20, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 3 },            // single token, empty experts
    { T: 7, K: 33, N: 9, E: 5, TOPK: 1, skew: 1, BS: 16, NB: 6 },            // all tokens on one expert
    { T: 3, K: 16, N: 12, E: 3, TOPK: 3, skew: 0, BS: 4, NB: 6 },            // top-k = E
  ] },
  // The permuted rows: the same corners (T and TOPK shape the routing; Xp is [NB * BS, K]).
  { kernel: "moe_gemm_up_permuted", file: UP, shapes: [
    { T: 1, K: 24, N: 20, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 3 },
    { T: 7, K: 33, N: 9, E: 5, TOPK: 1, skew: 1, BS: 16, NB: 6 },
    { T: 3, K: 16, N: 12, E: 3, TOPK: 3, skew: 0, BS: 4, NB: 6 },
  ] },
  // Unused blocks keep Xp's sentinel, pads are zeros; BS 4 below the row tile is ragged.
  { kernel: "moe_permute", file: PERM, shapes: [
    { T: 1, H: 24, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 3 },
    { T: 7, H: 264, E: 5, TOPK: 1, skew: 1, BS: 16, NB: 6 },
    { T: 3, H: 16, E: 3, TOPK: 3, skew: 0, BS: 4, NB: 6 },
  ] },
  { kernel: "moe_gemm_up_gelu", file: UP, shapes: [{ T: 4, K: 19, N: 10, E: 4, TOPK: 2, skew: 2, BS: 4, NB: 6 }] },
  { kernel: "moe_gemm_up_w4a16", file: UPQ, shapes: [{ T: 3, K: 136, N: 10, E: 4, TOPK: 4, skew: 0, BS: 16, NB: 8 }] },
  { kernel: "moe_gemm_down", file: DOWN, shapes: [
    { T: 1, N: 24, H: 20, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 3 },
    { T: 7, N: 33, H: 9, E: 5, TOPK: 1, skew: 1, BS: 16, NB: 6 },
    { T: 3, N: 16, H: 12, E: 3, TOPK: 3, skew: 0, BS: 4, NB: 6 },
  ] },
  { kernel: "moe_gemm_down_pairs", file: DOWNR, shapes: [
    { T: 1, N: 24, H: 20, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 3, P: 2 },
    { T: 7, N: 33, H: 9, E: 5, TOPK: 1, skew: 1, BS: 16, NB: 6, P: 7 },
  ] },
  // N = 136: two scale groups, a ragged K tile; an expert with no tokens; all on one expert.
  { kernel: "moe_gemm_down_w4a16", file: DOWNQ, shapes: [
    { T: 1, N: 136, H: 20, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 3 },
    { T: 5, N: 40, H: 9, E: 5, TOPK: 1, skew: 1, BS: 16, NB: 6 },
  ] },
];

describe("grouped expert GEMMs against their references (lowered, interpreter)", () => {
  for (const { kernel, file, shapes } of corners) {
    it(`${kernel}: corner shapes`, async () => {
      const k = parseKernels(file).find((x) => x.name === kernel)!;
      const spec = (await loadSpecs(file)).get(kernel)!;
      const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
      for (const shape of shapes) {
        const E2N = shape.E! * 2 * (shape.N ?? 0), EH = shape.E! * (shape.H ?? 0);
        const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 1, seed: 42, shape: { ...shape, E2N, EH },
          reproduce: `tilemoe check ${file} --kernel ${kernel}` });
        expect({ shape, failures: r.failures }).toEqual({ shape, failures: [] });
      }
    }, 120_000);
  }

  // The grouped tile order reassigns the block coordinates under `if (GROUP_M > 1)`; the
  // warp-specialized producer must follow it (it once kept only the unconditional lets, loaded
  // the grid's own tiles and waited on barriers its consumers never reached: the layer hung).
  // H = 128 is 2 column tiles and NB * BS / BM = 4 row tiles, so the order is not the grid's.
  it("moe_gemm_down: warp-specialized TMA with GROUP_M 8 (the producer follows the grouped order)", async () => {
    const k = parseKernels(DOWN).find((x) => x.name === "moe_gemm_down")!;
    const spec = (await loadSpecs(DOWN)).get("moe_gemm_down")!;
    const backend = await backendFor("interp", { level: "thread", arch: "sm_90a", copy: "tma", ws: true });
    for (const splitK of [1, 2]) {
      const shape = { T: 12, N: 128, H: 128, E: 2, TOPK: 2, skew: 0, BS: 16, NB: 4, EH: 256 };
      const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 1, seed: 5, shape,
        config: { BM: 16, BN: 64, BK: 64, stages: 4, warps: 4, splitK, GROUP_M: 8 }, reproduce: `tilemoe check ${DOWN} --ws` });
      expect({ splitK, failures: r.failures }).toEqual({ splitK, failures: [] });
    }
  }, 120_000);

  // The permuted rows are plain tiles: on sm_90a every operand of the up GEMM arrives by TMA
  // and the loop is warp-specialized, where the gathered kernel keeps cp.async. Routing
  // block 128 with BM 128 (one tile a block) and BM 64 (two), BN 256 and 128: N = 300 is two
  // column tiles of 256 (the last ragged), K = 136 three K tiles of 64 (the last ragged).
  it("moe_gemm_up_permuted: TMA for Xp and both weight tiles, warp-specialized, against the reference", async () => {
    const k = parseKernels(UP).find((x) => x.name === "moe_gemm_up_permuted")!;
    const spec = (await loadSpecs(UP)).get("moe_gemm_up_permuted")!;
    const gathered = parseKernels(UP).find((x) => x.name === "moe_gemm_up")!;
    const ws = cudaTarget("sm_90a");
    const config = { BM: 64, BN: 128, BK: 64, stages: 3, warps: 8, GROUP_M: 8 };
    const low = lower(k, config, ws);
    expect(low.tensorMaps!.map((m) => m.tensor)).toEqual(["Xp", "W13", "W13"]);
    expect(low.launch.threads).toEqual({ k: "int", v: 8 * 32 + 128 });
    expect(lower(gathered, config, ws).tensorMaps ?? []).toEqual([]);
    const backend = await backendFor("interp", { level: "thread", arch: "sm_90a", copy: "tma", ws: true });
    // BN 256 fits the shared-memory budget with 2 stages.
    for (const [BM, BN, stages] of [[128, 128, 3], [64, 256, 2]] as const) {
      const shape = { T: 40, K: 136, N: 300, E: 3, E2N: 1800, TOPK: 2, skew: 1, BS: 128, NB: 4 };
      const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 1, seed: 13, shape,
        config: { BM, BN, BK: 64, stages, warps: 8, GROUP_M: 8 }, reproduce: `tilemoe check ${UP} --kernel moe_gemm_up_permuted --ws` });
      expect({ BM, BN, failures: r.failures }).toEqual({ BM, BN, failures: [] });
    }
  }, 300_000);

  // Split-K over the down projection's N: slices add into `out` with the combine's atomics.
  // N = 136 at BK 32 is 5 K tiles: splitK 4 gives slices of 2, 2, 1 and an empty one (tiles
  // past N read 0); 8 leaves three slices empty. A dirty `out` is cleared by the launcher.
  for (const [file, kernel, BK] of [[DOWN, "moe_gemm_down", 32], [DOWNQ, "moe_gemm_down_w4a16", 64]] as const) {
    it(`${kernel}: split-K slices add into out (one token, empty experts, all on one expert)`, async () => {
      const k = parseKernels(file).find((x) => x.name === kernel)!;
      const spec = (await loadSpecs(file)).get(kernel)!;
      const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
      for (const splitK of [2, 4, 8])
        for (const shape of [{ T: 1, N: 136, H: 20, E: 4, TOPK: 2, skew: 0, BS: 16, NB: 3 }, { T: 6, N: 136, H: 9, E: 3, TOPK: 1, skew: 1, BS: 16, NB: 4 }]) {
          const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 1, seed: 7, shape: { ...shape, EH: shape.E * shape.H },
            config: { BM: 16, BN: 64, BK, stages: 2, warps: 4, splitK }, reproduce: `tilemoe check ${file} --kernel ${kernel}` });
          expect({ splitK, shape, failures: r.failures }).toEqual({ splitK, shape, failures: [] });
        }
    }, 120_000);
  }

  // Grouped block order: 8 row blocks sweep the column tiles together. NB = 11 blocks of
  // BS 4 with BM 16 (one tile a block) leave a ragged last group of 3; H / N of 150 are 3
  // column tiles of 64 (the last ragged).
  for (const [file, kernel, shape, extra] of [
    [UP, "moe_gemm_up", { T: 9, K: 40, N: 150, E: 4, TOPK: 2, skew: 2, BS: 4, NB: 11 }, {}],
    [UPQ, "moe_gemm_up_w4a16", { T: 9, K: 136, N: 150, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 11 }, {}],
    [DOWN, "moe_gemm_down", { T: 9, N: 40, H: 150, E: 4, TOPK: 2, skew: 2, BS: 4, NB: 11 }, { splitK: 2 }],
    [DOWNQ, "moe_gemm_down_w4a16", { T: 9, N: 136, H: 150, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 11 }, { splitK: 2 }],
    [DOWNR, "moe_gemm_down_pairs", { T: 9, N: 40, H: 150, E: 4, TOPK: 2, skew: 2, BS: 4, NB: 11, P: 18 }, {}],
  ] as const) {
    it(`${kernel}: grouped block order (GROUP_M 8, ragged last group) covers every tile once`, async () => {
      const k = parseKernels(file).find((x) => x.name === kernel)!;
      const spec = (await loadSpecs(file)).get(kernel)!;
      const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
      const E2N = shape.E * 2 * ("K" in shape ? shape.N : 0), EH = shape.E * ("H" in shape ? shape.H : 0);
      const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 1, seed: 11, shape: { ...shape, E2N, EH },
        config: { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, GROUP_M: 8, ...extra }, reproduce: `tilemoe check ${file} --kernel ${kernel}` });
      expect(r.failures).toEqual([]);
    }, 120_000);
  }

  it("split-K: the grid has a slice dimension; out stays written only by atomics (cleared by launchers)", () => {
    for (const [file, kernel] of [[DOWN, "moe_gemm_down"], [DOWNQ, "moe_gemm_down_w4a16"]]) {
      const k = parseKernels(file!).find((x) => x.name === kernel)!;
      for (const splitK of [1, 4]) {
        const low = lower(k, { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, splitK }, SM80);
        expect(low.launch.grid[2]).toEqual({ k: "int", v: splitK });
        expect(zeroInitOutputs(low)).toEqual(["out"]);
      }
    }
  });

  it("the check can fail: a reference without the routing weight is caught", async () => {
    const k = parseKernels(DOWN).find((x) => x.name === "moe_gemm_down")!;
    const spec = (await loadSpecs(DOWN)).get("moe_gemm_down")!;
    const wrong = { ...spec, reference: (a: Parameters<typeof spec.reference>[0], s: Record<string, number>, d: Record<string, number>) =>
      spec.reference({ ...a, topk_weights: { ...a.topk_weights!, data: a.topk_weights!.data.map(() => 1) } }, s, d) };
    const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
    const r = await checkKernel(k, wrong, { backendName: "interp", backend, cases: 1, seed: 5,
      shape: { T: 2, N: 8, H: 8, E: 2, EH: 16, TOPK: 2, skew: 0, BS: 4, NB: 4 }, reproduce: "x" });
    expect(r.failed).toBe(1);
  }, 120_000);
});

const nvcc = await nvccAvailable();
describe.skipIf(!nvcc)("grouped expert GEMMs compile (default config)", () => {
  for (const [target, arch] of [[SM80, "sm_80"], [SM90A, "sm_90a"]] as const) {
    for (const [file, kernel] of [[UP, "moe_gemm_up"], [UP, "moe_gemm_up_gelu"], [UP, "moe_gemm_up_permuted"], [PERM, "moe_permute"], [DOWN, "moe_gemm_down"], [UPQ, "moe_gemm_up_w4a16"], [DOWNQ, "moe_gemm_down_w4a16"],
      [DOWNR, "moe_gemm_down_pairs"], [DOWNR, "moe_combine"]]) {
      it(`${kernel} ${arch}`, async () => {
        const k = parseKernels(file!).find((x) => x.name === kernel)!;
        const out = emitCuda(lower(k, {}, target));
        const res = await compileCuda(out.cu, { arch, outputs: ["cubin"] });
        const r = res.resources[out.kernelSymbol];
        expect(r, res.log).toBeDefined();
        expect(r!.spillStores ?? 0).toBe(0);
      }, 180_000);
    }
  }
});
