import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { v } from "../../src/ir/ir.ts";
import { evalConst } from "../../src/ir/expr.ts";
import { fragmentCoord, fragmentSlots } from "../../src/layout/fragment.ts";
import { fragCoordExpr } from "../../src/passes/frag-coord.ts";
import { chooseWarps } from "../../src/passes/infer-layouts.ts";

describe("fragCoordExpr", () => {
  it("agrees with fragmentCoord for every thread and slot (cyclic and mma_acc)", () => {
    const shapes = fc.oneof(
      fc.record({ rows: fc.integer({ min: 1, max: 20 }), cols: fc.integer({ min: 1, max: 20 }), threads: fc.constantFrom(8, 32, 64), mma: fc.constant(false) }),
      fc.record({ rows: fc.constantFrom(16, 32, 64), cols: fc.constantFrom(8, 16, 32, 64), threads: fc.constantFrom(32, 64, 128), mma: fc.constant(true) }),
    );
    fc.assert(fc.property(shapes, ({ rows, cols, threads, mma }) => {
      const w = mma ? chooseWarps(rows, cols, threads) : undefined;
      fc.pre(!mma || w !== undefined);
      const layout = w ? { kind: "mma_acc" as const, ...w } : { kind: "cyclic" as const };
      const s = { rows, cols, threads };
      const sym = fragCoordExpr(layout, s, v("tx"), v("slot"));
      const seen = new Set<number>();
      for (let slot = 0; slot < fragmentSlots(layout, s); slot++) {
        for (let tx = 0; tx < threads; tx++) {
          const ref = fragmentCoord(layout, s, v("tx"), slot);
          const env = { tx, slot };
          const want = [evalConst(ref.row, env), evalConst(ref.col, env), ref.valid ? evalConst(ref.valid, env) : 1];
          const got = [evalConst(sym.row, env), evalConst(sym.col, env), sym.valid ? evalConst(sym.valid, env) : 1];
          expect(got).toEqual(want);
          if (got[2]) seen.add(got[0]! * cols + got[1]!);
        }
      }
      expect(seen.size).toBe(rows * cols); // every element held by exactly one (thread, slot)
    }), { numRuns: 60 });
  });
});
