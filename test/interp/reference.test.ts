import { describe, expect, it } from "vitest";
import { biasAddRef, gemmRef, geluRef, geluTanhRef, reluRef, siluRef } from "../../src/check/reference.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";

const t = (shape: number[], xs: number[]): TensorValue => ({ dtype: "f64", shape, data: Float64Array.from(xs) });

describe("float64 references", () => {
  it("gemmRef honours transA / transB", () => {
    const A = t([2, 3], [1, 2, 3, 4, 5, 6]);          // [[1,2,3],[4,5,6]]
    const B = t([3, 2], [7, 8, 9, 10, 11, 12]);       // [[7,8],[9,10],[11,12]]
    expect([...gemmRef(A, B).data]).toEqual([58, 64, 139, 154]);
    const At = t([3, 2], [1, 4, 2, 5, 3, 6]), Bt = t([2, 3], [7, 9, 11, 8, 10, 12]);
    expect([...gemmRef(At, Bt, { transA: true, transB: true }).data]).toEqual([58, 64, 139, 154]);
    expect(() => gemmRef(A, A)).toThrow(/inner dims differ/);
  });
  it("epilogue helpers", () => {
    const x = t([2, 2], [-1, 0, 1, 2]);
    expect([...reluRef(x).data]).toEqual([0, 0, 1, 2]);
    expect(siluRef(x).data[2]).toBeCloseTo(0.7310585786300049, 15);
    expect(geluRef(x).data[2]).toBeCloseTo(0.8413447460685429, 15);   // Phi(1)
    expect(geluTanhRef(x).data[2]).toBeCloseTo(0.8411919906082768, 15);
    expect([...biasAddRef(x, t([2], [10, 20])).data]).toEqual([9, 20, 11, 22]);
  });
});
