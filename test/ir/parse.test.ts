import { describe, expect, it } from "vitest";
import { CompileError, type Expr } from "../../src/ir/ir.ts";
import { parseExpr, parseKernel, parseStmts } from "../../src/ir/parse.ts";
import { printExpr, printStmts } from "../../src/ir/print.ts";

function diag(f: () => unknown): { line: number; col: number; message: string } {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CompileError);
    const d = (e as CompileError).diagnostics[0]!;
    return { line: d.loc!.line, col: d.loc!.col, message: d.message };
  }
  throw new Error("expected a CompileError");
}

describe("parseExpr", () => {
  it("follows C precedence and left associativity", () => {
    expect(parseExpr("a - b - c")).toEqual(parseExpr("(a - b) - c"));
    expect(parseExpr("a << b + c")).toEqual(parseExpr("a << (b + c)"));
    expect(parseExpr("a | b ^ c & d == e < f << g + h * i")).toEqual(
      parseExpr("a | (b ^ (c & (d == (e < (f << (g + (h * i)))))))"));
    expect(parseExpr("a || b && c")).toEqual(parseExpr("a || (b && c)"));
  });

  it("reads literals, negative literals and unary operators apart", () => {
    expect(parseExpr("-3")).toEqual({ k: "int", v: -3 });
    expect(parseExpr("-(3)")).toEqual({ k: "un", op: "neg", a: { k: "int", v: 3 } });
    expect(parseExpr("-0.0")).toEqual({ k: "float", v: -0 });
    expect(Object.is((parseExpr("-0.0") as { v: number }).v, -0)).toBe(true);
    expect(parseExpr("2.5e-3_f16")).toEqual({ k: "float", v: 2.5e-3, dtype: "f16" });
    expect(parseExpr("7_u8")).toEqual({ k: "int", v: 7, dtype: "u8" });
    expect(parseExpr("-inf_bf16")).toEqual({ k: "float", v: -Infinity, dtype: "bf16" });
    expect(parseExpr("true")).toEqual({ k: "int", v: 1, dtype: "bool" });
    expect(parseExpr("a - -1")).toEqual({ k: "bin", op: "-", a: { k: "var", name: "a" }, b: { k: "int", v: -1 } });
    const n = parseExpr("nan") as Expr & { k: "float" };
    expect(n.k).toBe("float");
    expect(Number.isNaN(n.v)).toBe(true);
  });

  it("maps call syntax to BinOps, select, MathFns and casts", () => {
    expect(parseExpr("max(a, 0)")).toEqual({ k: "bin", op: "max", a: { k: "var", name: "a" }, b: { k: "int", v: 0 } });
    expect(parseExpr("select(p, x, y)").k).toBe("select");
    expect(parseExpr("fma(a, b, c)")).toMatchObject({ k: "call", fn: "fma" });
    expect(parseExpr("cast<u16>(x)")).toEqual({ k: "cast", dtype: "u16", a: { k: "var", name: "x" } });
  });

  it("accepts keywords as names", () => {
    expect(parseExpr("copy + for[gemm]")).toEqual({ k: "bin", op: "+", a: { k: "var", name: "copy" }, b: { k: "load", buf: "for", idx: [{ k: "var", name: "gemm" }] } });
    expect(printStmts(parseStmts("barrier = barrier + 1\nbarrier\n"))).toBe("barrier = barrier + 1\nbarrier\n");
  });

  it("reports located errors", () => {
    expect(diag(() => parseExpr("a +\n  * b"))).toMatchObject({ line: 2, col: 3 });
    expect(diag(() => parseExpr("foo(1)"))).toMatchObject({ line: 1, col: 1, message: expect.stringContaining("unknown function") });
    expect(diag(() => parseExpr("min(1)")).message).toContain("2 arguments");
    expect(diag(() => parseExpr("1_q7")).message).toContain("unknown dtype");
    expect(diag(() => parseExpr("a $ b"))).toMatchObject({ line: 1, col: 3 });
    expect(diag(() => parseExpr("a b"))).toMatchObject({ line: 1, col: 3 });
    expect(diag(() => parseExpr("-x")).message).toContain("-(x)");
  });
});

describe("parseStmts / parseKernel", () => {
  it("records statement locations", () => {
    const [a, b] = parseStmts("let x: f32 = 1.0\n  store o[0] = x\n", "t.ir");
    expect(a!.k === "let" && a!.loc).toEqual({ file: "t.ir", line: 1, col: 1 });
    expect(b!.k === "store" && b!.loc).toEqual({ file: "t.ir", line: 2, col: 3 });
  });

  it("rejects bad statement words with their location", () => {
    expect(diag(() => parseStmts("for i in sideways(0, 4) {\n}\n"))).toMatchObject({ line: 1, col: 10, message: expect.stringContaining("loop kind") });
    expect(diag(() => parseStmts("alloc a: texture f32[4]\n"))).toMatchObject({ line: 1, col: 10 });
    expect(diag(() => parseStmts("ldmatrix.x3 a[0] <- b[0]\n"))).toMatchObject({ line: 1, col: 10 });
    expect(diag(() => parseStmts("alloc a: local f32[4] layout spiral\n")).message).toContain("unknown layout");
    expect(diag(() => parseStmts("if (x) {\n  barrier\n"))).toMatchObject({ line: 2, message: expect.stringContaining("the end of the input") });
    expect(diag(() => parseStmts("copy a[0 : +1] b[0 : +1]\n"))).toMatchObject({ line: 1, col: 16, message: "syntax error: expected '->', found 'b'" });
  });

  it("reads a thread-level kernel header", () => {
    const k = parseKernel("kernel k(x: global f32[N] out)\n  dims N\nlaunch thread grid [N] threads 32 blocks [b] thread t {\n  store x[b * 32 + t] = 0.0\n}\n");
    expect(k.launch).toMatchObject({ level: "thread", threadVar: "t", blockVars: ["b"] });
    expect(k.params[0]).toMatchObject({ kind: "tensor", output: true });
    expect(k.loc).toEqual({ file: "<ir>", line: 1, col: 1 });
  });
});

describe("printExpr after parseExpr", () => {
  it.each(["a - (b - c)", "(a + b) * c", "a << b + c", "-(a) * ~(b)", "x[i, j] % 3_i64"])("%s is a fixed point", (t) => {
    expect(printExpr(parseExpr(t))).toBe(t);
  });
});

describe("keywords as names after optional trailing keywords", () => {
  it.each([
    "alloc a: local f32[4]\nlayout = 1\n",
    "alloc a: local f32[4] layout cyclic\nalign = 1\n",
    "if (p) {\n}\nelse = 2\n",
    "gemm a[0 : +16, 0 : +16], b[0 : +16, 0 : +16] -> c[0 : +16, 0 : +16] transA\ntransB = 3\n",
  ])("%j", (t) => expect(printStmts(parseStmts(t))).toBe(t));
});
