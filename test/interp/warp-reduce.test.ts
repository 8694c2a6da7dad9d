// warp_reduce in the interpreter: the butterfly order of ir.ts exactly (f32 sums whose
// value depends on the order), groups of every width, and divergence reported.
import { describe, expect, it } from "vitest";
import { runKernel } from "../../src/interp/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import { warpReduceInputs, warpReduceKernel, warpReduceRef } from "./warp-reduce-ref.ts";

function run(N: number, seed: number) {
  const { X, I } = warpReduceInputs(N, seed);
  const out = { S: zeros("f32", [N]), M: zeros("f32", [N]), J: zeros("i32", [N]), U: zeros("u32", [N]) };
  runKernel(warpReduceKernel(), { tensors: { X, I, ...out } });
  return { X, I, out };
}

describe("warp_reduce in the interpreter", () => {
  it.each([1, 31, 64, 100, 192])("N = %i: every lane gets its group's butterfly, bit for bit", (N) => {
    const { X, I, out } = run(N, N);
    const want = warpReduceRef(X, I);
    for (const k of ["S", "M", "J", "U"] as const) expect(Array.from(out[k].data), k).toEqual(want[k]);
  });

  it("the order is the butterfly's, not the serial loop's: the inputs tell them apart", () => {
    const { X, out } = run(192, 7);
    let differs = 0;
    for (let w = 0; w < 192; w += 32) {
      let serial = 0;
      for (let l = 0; l < 32; l++) serial = Math.fround(serial + X.data[w + l]!);
      if (serial !== out.S.data[w]) differs++;
    }
    expect(differs).toBeGreaterThan(0);
  });

  it("reports lanes of a warp that do not all reach it (divergence), and a partial warp", () => {
    const src = (threads: number, trip: string) => `kernel d(Y: global f32[64] out)
launch thread grid [1] threads ${threads} blocks [bx] thread tx {
  for i in serial(0, ${trip}) {
    warp_reduce.sum width 32 s: f32 = 1.0
    store Y[tx] = s
  }
}`;
    const Y = () => ({ Y: zeros("f32", [64]) });
    expect(() => runKernel(parseKernel(src(64, "tx % 2 + 1")), { tensors: Y() })).toThrow(/warp divergence at a warp-collective warp_reduce/);
    expect(() => runKernel(parseKernel(src(48, "1")), { tensors: Y() })).toThrow(/warp-collective warp_reduce in a partial warp/);
    const ok = Y();
    runKernel(parseKernel(src(64, "1")), { tensors: ok });
    expect(Array.from(ok.Y.data)).toEqual(new Array(64).fill(32));
  });
});
