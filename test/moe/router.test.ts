// The router's split K (dsl-examples/moe_router.ts): the slice count it picks at run time for
// the layer's configs at the models' shapes, and the lowered kernel against the float64
// reference where that count is bounded by each of its three limits.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { evalConst } from "../../src/ir/expr.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { lower, cudaTarget } from "../../src/passes/pipeline.ts";
import { CHOICES } from "../../src/moe/layer.ts";

const file = "dsl-examples/moe_router.ts";
const kernel = parseKernels(file).find((k) => k.name === "moe_router")!;
const decode = CHOICES.mixtral!.w4a16[0]!.router;
const prefill = CHOICES.mixtral!.w4a16.at(-1)!.router;

/** The lowered kernel's grid for the dims. */
function grid(config: Record<string, number | string | boolean>, dims: Record<string, number>): number[] {
  const low = lower(kernel, config, cudaTarget("sm_90a", "wgmma", "tma"));
  return low.launch.grid.map((g) => evalConst(g, dims)!);
}

describe("moe_router: K slices chosen at run time", () => {
  it("the table's decode and prefill routers bring the grid to ~128 blocks, no more slices than K tiles", () => {
    expect(CHOICES.qwen3!.bf16[0]!.router).toEqual(decode);
    // Mixtral H = 4096 (64 K tiles of 64), E = 8: one column tile.
    expect(grid(decode, { T: 1, H: 4096, E: 8 })).toEqual([1, 1, 64]);
    expect(grid(decode, { T: 16, H: 4096, E: 8 })).toEqual([1, 1, 64]);
    expect(grid(decode, { T: 64, H: 4096, E: 8 })).toEqual([1, 4, 32]);
    expect(grid(decode, { T: 4096, H: 4096, E: 8 })).toEqual([1, 256, 1]);
    // Qwen3 H = 2048 (32 K tiles), E = 128: two column tiles.
    expect(grid(decode, { T: 1, H: 2048, E: 128 })).toEqual([2, 1, 32]);
    expect(grid(decode, { T: 64, H: 2048, E: 128 })).toEqual([2, 4, 16]);
    expect(grid(prefill, { T: 64, H: 4096, E: 8 })).toEqual([1, 1, 16]);
    expect(grid(prefill, { T: 1024, H: 2048, E: 128 })).toEqual([2, 16, 4]);
    expect(grid(prefill, { T: 8192, H: 2048, E: 128 })).toEqual([2, 128, 1]);
    // No tokens or no experts: an empty grid (the launcher returns before launching), never a
    // division by zero in the slice count.
    expect(grid(decode, { T: 0, H: 64, E: 8 })[1]).toBe(0);
    expect(grid(decode, { T: 1, H: 0, E: 8 })).toEqual([1, 1, 1]);
  });

  // [shape, what bounds the slice count] at BK 32, splitK 8 (decode-like BM 16).
  const cases: [Record<string, number>, string][] = [
    [{ T: 1, H: 200, E: 8 }, "K tiles (7 < 8)"],
    [{ T: 3, H: 600, E: 20 }, "splitK (19 tiles)"],
    [{ T: 300, H: 600, E: 20 }, "the block target (19 row tiles: 6 slices of 4 tiles, the last empty)"],
    [{ T: 5, H: 0, E: 3 }, "nothing to sum: logits are the cleared zeros"],
  ];
  for (const arch of ["sm_80", "sm_90a"] as const)
    it(`lowered for ${arch} = float64 reference where the count is bounded by each limit`, async () => {
      const spec = (await loadSpecs(file)).get("moe_router")!;
      const backend = await backendFor("interp", { level: "thread", arch });
      const config = { BM: 16, BN: 64, BK: 32, stages: 3, warps: 4, splitK: 8 };
      for (const [shape, why] of cases) {
        const r = await checkKernel(kernel, spec, { backendName: "interp", backend, cases: 1, seed: 3, shape, config, reproduce: "x" });
        expect(r, `${JSON.stringify(shape)}: ${why}`).toMatchObject({ passed: 1, failed: 0 });
      }
    }, 300_000);
});
