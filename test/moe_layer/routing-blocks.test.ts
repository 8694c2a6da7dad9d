// routingBlocks (src/moe/routing.ts, `tilemoe/moe`): the layer's routing capacity in blocks, which
// sizes the workspace's sorted / block_expert / xp and the grouped GEMMs' grids. It must hold every routing
// (moe_align's reference places every pair and total stays within NB * BS) and be reached by
// some routing (no grid row that can never have work), and the launcher's C form must agree.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { alignRef } from "../../dsl-examples/moe_align.ts";
import { modelSpec, quantities, quantitiesC } from "../../src/moe/layer.ts";
import { routingBlocks } from "../../src/moe/routing.ts";

describe("routingBlocks", () => {
  it("holds every routing of P pairs over E experts: all pairs placed, total <= NB * BS", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom(1, 4, 16, 64, 128),
      fc.array(fc.nat(), { minLength: 300, maxLength: 300 }), (P, E, BS, draws) => {
        const NB = routingBlocks(P, E, BS);
        const r = alignRef(P, E, NB, BS, (p) => draws[p]! % E);
        expect(r.total[0]!).toBeLessThanOrEqual(NB * BS);
        expect([...r.sorted].filter((x) => x < P).sort((a, b) => a - b)).toEqual(Array.from({ length: P }, (_, p) => p));
      }), { numRuns: 300 });
  });

  it("is reached: min(E, P) experts with one pair each and the rest on one of them", () => {
    for (const [P, E, BS] of [[2, 8, 16], [32, 8, 16], [8, 128, 16], [34, 8, 128], [8192, 8, 128], [5, 3, 4]]) {
      const u = Math.min(E, P);
      const r = alignRef(P, E, routingBlocks(P, E, BS), BS, (p) => (p < u ? p : 0));
      expect(r.total[0]!, `P ${P} E ${E} BS ${BS}`).toBe(routingBlocks(P, E, BS) * BS);
    }
  });

  it("the launcher's C expression equals it for the models' T and routing blocks", () => {
    for (const [model, weights] of [["mixtral", "w4a16"], ["qwen3", "bf16"]] as const) {
      const s = modelSpec(model, weights);
      const c = quantitiesC(s).NB!;
      for (const T of [1, 2, 5, 16, 17, 63, 64, 256, 1024, 4096]) {
        const { BS, NB } = quantities(s, T);
        // The C text evaluated as JS (its ?: and arithmetic read the same); its one division is
        // the outermost operation, on non-negative int64_t, so C's truncation is a floor here.
        expect(c.match(/\//g)).toHaveLength(1);
        const value = Math.floor(Function(`return ${c.replace(/\bT\b/g, String(T)).replace(/\bBS\b/g, String(BS))};`)() as number);
        expect({ model, T, NB: value }).toEqual({ model, T, NB });
      }
    }
  });
});
