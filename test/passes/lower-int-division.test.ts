// Rounded integer division (the DSL's Math.floor(a / b), IR floordiv, and T.cdiv, IR cdiv) at
// every sign. Before, the front end made Math.floor(a / b) C's truncating `/`, so a negative
// quotient came out one too high on the GPU and in the interpreter alike (Math.floor(-7 / 2)
// gave -3), and T.cdiv was (a + b - 1) / b on the GPU but Math.ceil in the interpreter: silently,
// docs/DSL.md only said the operands were "assumed non-negative". Now lowerIntDivision keeps the
// old code where both sides are shown non-negative and lowers the rest to a shift or a corrected
// quotient. The kernels run at every sign in test/frontend/ts-semantics.test.ts.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { lowerIntDivision } from "../../src/passes/lower-int-division.ts";

const lowered = (text: string) => printKernel(lowerIntDivision(parseKernel(text)));
const body = (text: string) => lowered(text).split("\n").filter((l) => /^\s+(let|store|if)/.test(l)).map((l) => l.trim());

describe("lowerIntDivision", () => {
  it("keeps C division (floor) and cdiv where both sides are non-negative: dims, block indices, unsigned values, guarded lets", () => {
    expect(body(`kernel f(A: global i32[M] out, u: u32, w: u32, s: i32)
  dims M
launch tile grid [1] threads 32 blocks [bx] {
  let a: i32 = floordiv(M, 4)
  let b: i32 = floordiv(bx * 3 + 1, M)
  let c: u32 = floordiv(u, w)
  let e: i32 = cdiv(M, 3)
  let x: i32 = A[0]
  if (x >= 0 && x < M) {
    store A[1] = floordiv(x, 3) + cdiv(x, 3)
  }
  store A[2] = floordiv(x, 3)
}`)).toEqual([
      "let a: i32 = M / 4",
      "let b: i32 = (bx * 3 + 1) / M",
      "let c: u32 = u / w",
      "let e: i32 = cdiv(M, 3)",
      "let x: i32 = A[0]",
      "if (x >= 0 && x < M) {",
      "store A[1] = x / 3 + cdiv(x, 3)",
      "store A[2] = select(x % 3 != 0 && x < 0, x / 3 - 1, x / 3)",
    ]);
  });

  it("a power-of-two divisor becomes an arithmetic shift; otherwise the quotient moves by one as the signs that can be negative say", () => {
    expect(body(`kernel f(A: global i32[M] out, s: i32, t: i32)
  dims M
launch tile grid [1] threads 32 blocks [bx] {
  let a: i32 = floordiv(s, 16)
  let b: i32 = floordiv(s, t)
  let c: i32 = floordiv(M, t)
  let d: i32 = floordiv(s, M)
  let e: i32 = cdiv(s, 16)
  let f: i32 = cdiv(s, t)
  let g: i32 = cdiv(M, t)
  let h: i32 = cdiv(s, M)
  store A[0] = a + b + c + d + e + f + g + h
}`)).toEqual([
      "let a: i32 = s >> 4",
      "let b: i32 = select(s % t != 0 && s < 0 != t < 0, s / t - 1, s / t)",
      "let c: i32 = select(M % t != 0 && t < 0, M / t - 1, M / t)",
      "let d: i32 = select(s % M != 0 && s < 0, s / M - 1, s / M)",
      "let e: i32 = s + 15 >> 4",
      "let f: i32 = select(s % t != 0 && s < 0 == t < 0, s / t + 1, s / t)",
      "let g: i32 = select(M % t != 0 && t > 0, M / t + 1, M / t)",
      "let h: i32 = select(s % M != 0 && s > 0, s / M + 1, s / M)",
      "store A[0] = a + b + c + d + e + f + g + h",
    ]);
  });

  it("lowers the launch grid too", () => {
    expect(lowered(`kernel f(A: global i32[1] out, s: i32)
launch tile grid [floordiv(s, 3), cdiv(s, 3)] threads 32 blocks [bx, by] {
  store A[0] = 1
}`)).toMatch(/grid \[select\(s % 3 != 0 && s < 0, s \/ 3 - 1, s \/ 3\), select\(s % 3 != 0 && s > 0, s \/ 3 \+ 1, s \/ 3\)\]/);
  });

  it("the front end makes Math.floor(a / b) on integers floordiv and T.cdiv cdiv", () => {
    const k = parseKernels(join(import.meta.dirname, "../frontend/kernels/int_division.ts"))[0]!;
    expect(printKernel(k)).toMatch(/floordiv\(a, b\)[^]*cdiv\(a, b\)/);
  });
});
