// Split-K as a tunable of gemm_w4a16: which outputs launchers must clear (decided on the
// specialized kernel), and that the cleared output is what makes the result independent of
// the caller's initial content.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { lower, SM80 } from "../../src/passes/pipeline.ts";
import { zeroInitOutputs } from "../../src/ir/zero-init.ts";
import { runKernel } from "../../src/interp/index.ts";
import { backendFor } from "../../src/check/backends.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { dequantMatrix } from "../../src/quant/pack.ts";
import { gemmNT } from "../../dsl-examples/gemm_w4a16.ts";

const [k] = parseKernels("dsl-examples/gemm_w4a16.ts").filter((x) => x.name === "gemm_w4a16");
const base = { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4 };

describe("zero-initialized outputs", () => {
  it("splitK 1 stores C (nothing to clear); splitK > 1 only adds into it", () => {
    expect(zeroInitOutputs(lower(k!, { ...base, splitK: 1 }, SM80))).toEqual([]);
    for (const splitK of [2, 8]) expect(zeroInitOutputs(lower(k!, { ...base, splitK }, SM80))).toEqual(["C"]);
  });

  it("the grid has a K-split dimension of size splitK", () => {
    const low = lower(k!, { ...base, splitK: 4 }, SM80);
    expect(low.launch.grid).toHaveLength(3);
    expect(low.launch.grid[2]).toEqual({ k: "int", v: 4 });
  });
});

describe("split-K result", () => {
  const M = 2, N = 70, K = 264; // 5 K tiles of 64 (the last ragged); N spans two BN tiles
  const A = randomTensor("bf16", [M, K], 5, -1, 1);
  const W = randomTensor("u32", [N, Math.ceil(K / 8)], 6, 0, 0xffffffff);
  const S = randomTensor("bf16", [N, Math.ceil(K / 128)], 7, -0.25, 0.25);
  const Wd = dequantMatrix(W.data, N, K, { format: "u4", order: "interleaved", scales: S.data, zeros: 8, group: 128 }, "bf16");
  const want = gemmNT(A, Wd, N);
  const dirtyC = () => randomTensor("f32", [M, N], 8, 1000, 2000);
  const close = (got: Float64Array) => got.every((g, i) => Math.abs(g - want[i]!) <= 1e-3 * (1 + Math.abs(want[i]!)));

  it.each([2, 4, 8])("splitK %i through the check backend matches the float64 reference from a dirty C", async (splitK) => {
    const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
    const out = await backend(k!, { dims: { M, N, K }, config: { ...base, splitK }, dataSeed: 0 }, { A, W, S, C: dirtyC() }, {});
    expect(close(out.C!.data)).toBe(true);
  });

  it("without the launcher's clear the adds land on the old content (so the clear is load-bearing)", () => {
    const low = lower(k!, { ...base, splitK: 2 }, SM80);
    const C = dirtyC();
    const before = Float64Array.from(C.data);
    runKernel(low, { tensors: { A, W, S, C }, scalars: {} }, { raceCheck: true });
    expect(close(C.data)).toBe(false);
    C.data.forEach((g, i) => expect(Math.abs(g - before[i]! - want[i]!)).toBeLessThan(1e-3 * (1 + Math.abs(before[i]!))));
  });
});
