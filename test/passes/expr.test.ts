import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { type Expr, bin, int, flt, v, load } from "../../src/ir/ir.ts";
import { evalConst, explicitCasts, fold, freshNamer, substitute, typeOf, promote, TRUE, FALSE } from "../../src/ir/expr.ts";

const env = {
  vars: new Map([["x", "i32"], ["u", "u32"], ["h", "f16"], ["f", "f32"], ["b", "bf16"]] as const),
  bufs: new Map([["A", "bf16"]] as const),
};

describe("fold", () => {
  it("folds int arithmetic with C semantics", () => {
    expect(fold(bin("/", int(-7), int(2)))).toEqual(int(-3));
    expect(fold(bin("%", int(-7), int(2)))).toEqual(int(-1));
    expect(fold(bin("cdiv", int(7), int(2)))).toEqual(int(4));
    expect(fold(bin("min", int(7), int(2)))).toEqual(int(2));
    expect(fold(bin("*", int(0x10000), int(0x10000)))).toEqual(int(0)); // i32 wraps
    expect(fold(bin("<", int(1), int(2)))).toEqual(TRUE);
    expect(fold({ k: "select", cond: bin(">", int(1), int(2)), a: v("x"), b: v("y") })).toEqual(v("y"));
  });
  it("leaves division by zero to run time", () => {
    expect(fold(bin("/", int(1), int(0)))).toEqual(bin("/", int(1), int(0)));
  });
  it("applies identities and reassociates int constants", () => {
    expect(fold(bin("+", v("x"), int(0)))).toEqual(v("x"));
    expect(fold(bin("*", int(1), v("x")))).toEqual(v("x"));
    expect(fold(bin("*", v("x"), int(0)))).toEqual(int(0));
    expect(fold(bin("+", bin("+", v("x"), int(3)), int(4)))).toEqual(bin("+", v("x"), int(7)));
    expect(fold(bin("/", bin("*", v("x"), int(8)), int(4)))).toEqual(bin("*", v("x"), int(2)));
    expect(fold(bin("%", bin("*", v("x"), int(8)), int(4)))).toEqual(int(0));
  });
  it("does not apply int-only identities to floats", () => {
    const e = bin("*", v("f"), int(0));
    expect(fold(e, env)).toEqual(e);
    // (x*3)/2 has no exact simpler form under truncation; keep it
    const g = bin("/", bin("*", v("x"), int(3)), int(2));
    expect(fold(g)).toEqual(g);
    expect(fold(bin("/", bin("*", v("x"), int(2)), int(4)))).toEqual(bin("/", v("x"), int(2)));
    expect(fold(bin("/", bin("/", v("x"), int(32)), int(2)))).toEqual(bin("/", v("x"), int(64)));
    expect(fold(bin("%", bin("%", v("x"), int(32)), int(4)))).toEqual(bin("%", v("x"), int(4)));
    expect(fold(bin("%", bin("*", v("x"), int(8)), int(16)))).toEqual(bin("*", bin("%", v("x"), int(2)), int(8)));
    expect(fold(bin("+", bin("*", bin("/", v("x"), int(10)), int(10)), bin("%", v("x"), int(10))))).toEqual(v("x"));
    expect(fold(bin("+", bin("%", v("x"), int(10)), bin("*", bin("/", v("x"), int(10)), int(10))))).toEqual(v("x"));
  });
  it("&& and || with literals", () => {
    expect(fold(bin("&&", TRUE, bin("<", v("x"), int(3))))).toEqual(bin("<", v("x"), int(3)));
    expect(fold(bin("||", v("p"), TRUE))).toEqual(TRUE);
    expect(fold(bin("&&", v("p"), FALSE))).toEqual(FALSE);
  });
  it("folds float arithmetic in f32", () => {
    expect(fold(bin("+", flt(0.1), flt(0.2)))).toEqual(flt(Math.fround(0.1 + 0.2)));
    expect(fold({ k: "cast", dtype: "i32", a: flt(-2.7) })).toEqual(int(-2));
  });
  it("agrees with direct evaluation on random int expressions", () => {
    // Small positive constants make the divisibility rules fire often.
    const leaf = fc.oneof(fc.integer({ min: -50, max: 50 }).map((n) => int(n)), fc.constantFrom(1, 2, 4, 8, 16, 3).map((n) => int(n)), fc.constant(v("x")));
    const ops = fc.constantFrom("+", "-", "*", "/", "%", "min", "max") as fc.Arbitrary<"+">;
    const { e: arb } = fc.letrec<{ e: Expr }>((tie) => ({
      e: fc.oneof({ depthSize: "small" }, leaf, fc.tuple(ops, tie("e"), tie("e")).map(([op, a, b]) => bin(op, a, b))),
    }));
    const ev = (e: Expr, x: number): number | undefined => {
      switch (e.k) {
        case "int": return e.v;
        case "var": return x;
        case "bin": {
          const a = ev(e.a, x), b = ev(e.b, x);
          if (a === undefined || b === undefined) return undefined;
          switch (e.op) {
            case "+": return (a + b) | 0;
            case "-": return (a - b) | 0;
            case "*": return Math.imul(a, b);
            case "/": return b === 0 ? undefined : Math.trunc(a / b) | 0;
            case "%": return b === 0 ? undefined : (a % b) | 0;
            case "min": return Math.min(a, b);
            case "max": return Math.max(a, b);
          }
        }
      }
      throw new Error("unreachable");
    };
    fc.assert(fc.property(arb, fc.integer({ min: -100, max: 100 }), (e, x) => {
      const want = ev(e, x);
      fc.pre(want !== undefined);
      expect(ev(fold(e), x)).toBe(want);
    }), { numRuns: 3000 });
  });
});

describe("evalConst / substitute", () => {
  it("evaluates with an environment", () => {
    expect(evalConst(bin("*", bin("+", v("BM"), v("BN")), int(2)), { BM: 64, BN: 32 })).toBe(192);
    expect(evalConst(bin("+", v("BM"), int(1)))).toBeUndefined();
    expect(evalConst(bin("<=", v("a"), int(3)), { a: 3 })).toBe(1);
  });
  it("substitutes inside statements", () => {
    const s = substitute([{ k: "store", buf: "A", idx: [v("i")], value: v("c") }], new Map([["i", int(3)], ["c", flt(1)]]));
    expect(s).toEqual([{ k: "store", buf: "A", idx: [int(3)], value: flt(1) }]);
  });
});

describe("typeOf", () => {
  it("follows the documented promotion", () => {
    expect(typeOf(bin("+", v("x"), int(1)), env)).toBe("i32");
    expect(typeOf(bin("+", v("u"), int(1)), env)).toBe("u32");
    expect(typeOf(bin("+", v("x"), v("u")), env)).toBe("u32");
    expect(typeOf(bin("*", v("h"), flt(0.5)), env)).toBe("f16");
    expect(typeOf(bin("*", v("h"), v("b")), env)).toBe("f32");
    expect(typeOf(bin("+", v("x"), flt(0.5)), env)).toBe("f32");
    expect(typeOf(bin("<", v("x"), int(1)), env)).toBe("bool");
    expect(typeOf(load("A", int(0)), env)).toBe("bf16");
    expect(typeOf({ k: "call", fn: "exp", args: [v("x")] }, env)).toBe("f32");
    expect(promote("f16", "f64")).toBe("f64");
  });
});

describe("explicitCasts", () => {
  it("casts operands to their promoted type and retypes untyped literals", () => {
    expect(explicitCasts(bin("*", v("h"), int(2)), env)).toEqual(bin("*", v("h"), flt(2, "f16")));
    expect(explicitCasts(bin("+", v("x"), v("u")), env)).toEqual(bin("+", { k: "cast", dtype: "u32", a: v("x") }, v("u")));
    expect(explicitCasts(bin("<", v("h"), v("b")), env)).toEqual(
      bin("<", { k: "cast", dtype: "f32", a: v("h") }, { k: "cast", dtype: "f32", a: v("b") }));
    expect(explicitCasts({ k: "call", fn: "exp", args: [v("x")] }, env)).toEqual({ k: "call", fn: "exp", args: [{ k: "cast", dtype: "f32", a: v("x") }] });
    const same = bin("+", v("f"), flt(1));
    expect(explicitCasts(same, env)).toBe(same);
  });
});

describe("freshNamer", () => {
  it("avoids declared names", () => {
    const k = {
      name: "k", params: [{ name: "A", kind: "tensor" as const, dtype: "f32" as const, shape: [v("M")] }], dims: ["M"],
      tunables: {}, config: {},
      launch: { grid: [int(1)], threads: int(32), blockVars: ["bx"], level: "tile" as const,
        body: [{ k: "let" as const, name: "i", dtype: "i32" as const, value: int(0), mutable: false }] },
    };
    const f = freshNamer(k);
    expect(f("i")).toBe("i_1");
    expect(f("i")).toBe("i_2");
    expect(f("A")).toBe("A_1");
    expect(f("q")).toBe("q");
  });
});
