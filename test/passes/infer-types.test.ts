import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { CompileError } from "../../src/ir/ir.ts";
import { inferTypes } from "../../src/passes/infer-types.ts";

const kernel = (body: string, params = "A: global bf16[M, N], B: global f32[M, N], s: f32") => `kernel k(${params})
  dims M, N
launch tile grid [1] threads 64 blocks [bx] {
${body}
}
`;
const err = (text: string) => {
  try { inferTypes(parseKernel(text, "k.ir")); } catch (e) { if (e instanceof CompileError) return e.message; throw e; }
  throw new Error("no error");
};

describe("inferTypes", () => {
  it("makes conversions explicit and marks written tensors as outputs", () => {
    const out = inferTypes(parseKernel(kernel(`  alloc F: fragment f32[16, 16]
  alloc H: fragment f16[16, 16]
  fill F[0 : +16, 0 : +16] = 0.0
  fill H[0 : +16, 0 : +16] = 1
  let i: i32 = 3
  let x: f32 = A[i, 0] * s
  let h: f16 = x
  store B[0, 0] = A[i, 1]
  store A[0, 0] = x + 1.0`)));
    expect(printKernel(out)).toBe(kernel(`  alloc F: fragment f32[16, 16]
  alloc H: fragment f16[16, 16]
  fill F[0 : +16, 0 : +16] = 0.0
  fill H[0 : +16, 0 : +16] = 1.0_f16
  let i: i32 = 3
  let x: f32 = cast<f32>(A[i, 0]) * s
  let h: f16 = cast<f16>(x)
  store B[0, 0] = cast<f32>(A[i, 1])
  store A[0, 0] = cast<bf16>(x + 1.0)`, "A: global bf16[M, N] out, B: global f32[M, N] out, s: f32"));
  });
  it("reports unknown names at their statement", () => {
    const text = kernel(`  store B[0, 0] = q`);
    expect(err(text)).toMatch(/^k\.ir:4:\d+: error: unknown name 'q'/);
  });
  it("requires constant tile shapes", () => {
    expect(err(kernel(`  alloc S: shared f32[M, 16]`))).toMatch(/dimension 0 of shared buffer 'S' is not a compile-time constant/);
    expect(err(kernel(`  alloc S: shared f32[16, 16]
  copy B[0 : +M, 0 : +16] -> S[0 : +16, 0 : +16]`))).toMatch(/extent 0 of the tile of 'B' is not a compile-time constant/);
  });
  it("checks copy extents and region ranks", () => {
    expect(err(kernel(`  alloc S: shared f32[16, 16]
  copy B[0 : +16, 0 : +8] -> S[0 : +16, 0 : +16]`))).toMatch(/k\.ir:5:\d+: error: copy from a \[16, 8\] tile of 'B' to a \[16, 16\] tile of 'S': extents differ/);
    expect(err(kernel(`  alloc S: shared f32[16, 16]
  copy B[0 : +16] -> S[0 : +16, 0 : +16]`))).toMatch(/region of 'B' has 1 offsets and 1 extents, the buffer has rank 2/);
    // a row of B into a 1-d tile: unit extents do not count
    expect(() => inferTypes(parseKernel(kernel(`  alloc R: shared f32[16]
  copy B[3 : +1, 0 : +16] -> R[0 : +16]`)))).not.toThrow();
  });
  it("checks gemm shapes and integer-only operators", () => {
    expect(err(kernel(`  alloc X: shared f16[16, 32]
  alloc Y: shared f16[16, 16]
  alloc C: fragment f32[16, 16]
  gemm X[0 : +16, 0 : +32], Y[0 : +16, 0 : +16] -> C[0 : +16, 0 : +16]`))).toMatch(/gemm shapes do not agree: a is 16x32, b is 16x16/);
    expect(err(kernel(`  let y: f32 = s & 1`))).toMatch(/operator '&' needs integer operands, got f32/);
  });
});
