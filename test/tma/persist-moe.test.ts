// The MoE grouped GEMMs (moe_gemm_up_permuted, moe_gemm_down) warp-specialized in persistent
// blocks whose producer runs ahead across tiles, against their float64 references in the
// thread-level interpreter: 2-d and 3-d (split-K) grids on fewer blocks than tiles, unused
// routing blocks (block_expert -1) whose tiles skip the pipelined loop, 1 and 2 consumer
// warpgroups, the grouped tile order; the up kernel's bf16 epilogue staged through a shared
// tile of its own (lower-epilogue.ts) under the interpreter's race check.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { printKernel } from "../../src/ir/print.ts";
import { cudaTarget, lower } from "../../src/passes/pipeline.ts";

const UP = "dsl-examples/moe_gemm_up.ts", DOWN = "dsl-examples/moe_gemm_down.ts";

describe("MoE grouped GEMMs, warp-specialized persistent blocks", () => {
  it("take the running pipeline (IR)", () => {
    for (const [file, name, extra] of [[UP, "moe_gemm_up_permuted", {}], [DOWN, "moe_gemm_down", { splitK: 1 }]] as const) {
      const k = parseKernels(file).find((x) => x.name === name)!;
      const text = printKernel(lower(k, { BM: 128, BN: 128, BK: 64, stages: 3, warps: 8, GROUP_M: 8, ...extra }, cudaTarget("sm_90a", "wgmma", "tma", 132)));
      // The up kernel's bf16 epilogue (SiLU(gate) * up) stages through a tile of its own; the
      // down kernel's f32 partial sums leave from the registers.
      const staged = /alloc gate_out: shared bf16\[16384\] layout xor_swizzle\(7, 0\)\n/.test(text);
      expect({ name, running: text.includes("pipe = pipe + "), grid: /grid \[min\(.*, 132\)\]/.test(text), staged })
        .toEqual({ name, running: true, grid: true, staged: name === "moe_gemm_up_permuted" });
    }
  });

  // Six routing blocks of 64 rows, some unused (block_expert -1: their tiles skip the loop);
  // each block gets several used tiles, so stages are refilled across tiles.
  const cases: [string, string, Record<string, number>, Record<string, number>, number][] = [
    // 4 of 6 blocks used x 3 column tiles, 3 K tiles a tile (ragged): 18 tiles on 4 blocks.
    ["moe_gemm_up_permuted", UP, { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, GROUP_M: 8 }, { T: 40, K: 136, N: 136, E: 4, E2N: 1088, TOPK: 2, skew: 0, BS: 64, NB: 6 }, 4],
    // 2 consumer warpgroups, 4 stages, 4 K tiles: 2 of 6 blocks used (odd experts empty) x 2 column tiles on 3 blocks.
    ["moe_gemm_up_permuted", UP, { BM: 64, BN: 64, BK: 64, stages: 4, warps: 8, GROUP_M: 1 }, { T: 40, K: 200, N: 70, E: 4, E2N: 560, TOPK: 2, skew: 2, BS: 64, NB: 6 }, 3],
    ["moe_gemm_down", DOWN, { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 1, GROUP_M: 8 }, { T: 40, N: 136, H: 192, E: 4, TOPK: 2, skew: 0, BS: 64, NB: 6, EH: 768 }, 5],
    // Split-K: a 3-d grid (2 slices of 2 K tiles), 2 consumer warpgroups, 24 tiles on 3 blocks.
    ["moe_gemm_down", DOWN, { BM: 64, BN: 64, BK: 64, stages: 3, warps: 8, splitK: 2, GROUP_M: 1 }, { T: 40, N: 200, H: 128, E: 4, TOPK: 2, skew: 2, BS: 64, NB: 6, EH: 512 }, 3],
  ];
  for (const [name, file, config, shape, P] of cases) it(`${name} ${JSON.stringify(config)} on ${P} blocks: against the reference`, async () => {
    const k = parseKernels(file).find((x) => x.name === name)!;
    // The up kernel's epilogue takes the staged path here too (the check's interpreter runs
    // with the race check on, so the staging tile's reuse across tiles is checked).
    const lowered = printKernel(lower(k, config, { ...cudaTarget("sm_90a", "wgmma", "tma", undefined, true), persistentBlocks: P }));
    expect(lowered.includes("alloc gate_out: shared bf16")).toBe(name === "moe_gemm_up_permuted");
    const spec = (await loadSpecs(file)).get(name)!;
    const backend = await backendFor("interp", { level: "thread", arch: "sm_90a", copy: "tma", ws: true, persistent: P });
    const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 1, seed: 9, shape, config,
      reproduce: `tilemoe check ${file} --kernel ${name} --ws --persistent ${P}` });
    expect(r.failures).toEqual([]);
  }, 300_000);
});
