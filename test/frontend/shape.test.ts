import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CompileError, type Expr, bin, int, v } from "../../src/ir/ir.ts";
import { printExpr } from "../../src/ir/print.ts";
import { parseShape } from "../../src/ir/shape.ts";

const at = { file: "k.ts", line: 7, col: 20 };

function errorOf(text: string): { col: number; message: string } {
  try {
    parseShape(text, at);
  } catch (e) {
    expect(e).toBeInstanceOf(CompileError);
    const d = (e as CompileError).diagnostics[0]!;
    expect(d.loc?.line).toBe(7);
    return { col: d.loc!.col, message: d.message };
  }
  throw new Error(`expected "${text}" to be rejected`);
}

describe("shape grammar", () => {
  it("parses dims, integer arithmetic and calls", () => {
    expect(parseShape("M, K/8")).toEqual([v("M"), bin("/", v("K"), int(8))]);
    expect(parseShape("E, N, cdiv(K, 128)")).toEqual([v("E"), v("N"), bin("cdiv", v("K"), int(128))]);
    expect(parseShape("M, 2*N")).toEqual([v("M"), bin("*", int(2), v("N"))]);
    expect(parseShape("min(M, 64), max(N, K) % 3")).toEqual([
      bin("min", v("M"), int(64)), bin("%", bin("max", v("N"), v("K")), int(3)),
    ]);
    expect(parseShape("  T  ")).toEqual([v("T")]);
  });

  it("gives * / % precedence over + - and associates left", () => {
    expect(parseShape("a - b - c")).toEqual([bin("-", bin("-", v("a"), v("b")), v("c"))]);
    expect(parseShape("a + b * c")).toEqual([bin("+", v("a"), bin("*", v("b"), v("c")))]);
    expect(parseShape("(a + b) * c")).toEqual([bin("*", bin("+", v("a"), v("b")), v("c"))]);
    expect(parseShape("-1 + a")).toEqual([bin("+", int(-1), v("a"))]);
  });

  it("reports errors at the column inside the string", () => {
    // at.col is the first character inside the quotes, so offset i is column 20 + i.
    expect(errorOf("M,, K")).toMatchObject({ col: 22, message: expect.stringContaining("unexpected ','") });
    expect(errorOf("M, K$")).toMatchObject({ col: 24, message: expect.stringContaining("unexpected character '$'") });
    expect(errorOf("M, foo(K, 2)")).toMatchObject({ col: 23, message: expect.stringContaining("unknown function 'foo'") });
    expect(errorOf("M, cdiv(K)")).toMatchObject({ col: 23, message: expect.stringContaining("cdiv takes 2 arguments") });
    expect(errorOf("M, (K")).toMatchObject({ col: 25, message: expect.stringContaining("unexpected end") });
    expect(errorOf("")).toMatchObject({ col: 20 });
    expect(errorOf("M K")).toMatchObject({ col: 22 });
  });

  it("reads back what the IR printer writes for any integer shape expression", () => {
    const leaf = fc.oneof(fc.nat({ max: 4096 }).map((n) => int(n)), fc.constantFrom("M", "N", "K", "E").map(v));
    const tree = fc.letrec<{ e: Expr }>((tie) => ({
      e: fc.oneof({ depthSize: "small", withCrossShrink: true },
        leaf,
        fc.tuple(fc.constantFrom("+", "-", "*", "/", "%", "cdiv", "min", "max") as fc.Arbitrary<"+">, tie("e"), tie("e"))
          .map(([op, a, b]) => bin(op, a, b))),
    })).e;
    fc.assert(fc.property(fc.array(tree, { minLength: 1, maxLength: 4 }), (dims) => {
      expect(parseShape(dims.map(printExpr).join(", "))).toEqual(dims);
    }), { numRuns: 300 });
  });
});
