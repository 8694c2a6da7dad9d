// dequant-uniform.ts: which parts of a T.dequant loop body are the same for every word of the
// tile (the group scale read), and the whole-tile form of the K mask.
import { describe, expect, it } from "vitest";
import { type Expr, type Stmt, bin, int, v } from "../../src/ir/ir.ts";
import { printExpr } from "../../src/ir/print.ts";
import { tileFacts, wholeTileCond } from "../../src/passes/dequant-uniform.ts";

// The front end's body (src/frontend/dequant.ts) for a tile at k0, W words of `per` values.
function body(k0: Expr, per: number, group: number): Stmt[] {
  const inside = bin("&&", bin("<", v("n"), v("N")), bin("<", v("g"), v("G")));
  return [
    { k: "let", name: "n", dtype: "i32", value: bin("+", v("n0"), v("r")), mutable: false },
    { k: "let", name: "kq", dtype: "i32", value: bin("+", k0, bin("*", v("w"), int(per))), mutable: false },
    { k: "let", name: "g", dtype: "i32", value: bin("/", v("kq"), int(group)), mutable: false },
    { k: "let", name: "s", dtype: "f32", value: { k: "float", v: 0 }, mutable: true },
    { k: "if", cond: inside, then: [{ k: "assign", name: "s", value: { k: "cast", dtype: "f32", a: { k: "load", buf: "S", idx: [v("n"), v("g")] } } }], else: [] },
  ];
}
const readOnly = (b: string) => b === "S";
const tileK0 = (BK: number) => bin("*", bin("+", bin("*", v("bz"), v("KT")), v("k")), int(BK));

describe("tileFacts", () => {
  it.each([
    // [BK, group, per, same scale for every word?]
    [64, 128, 8, true], [128, 128, 8, true], [64, 64, 4, true], [32, 128, 8, true],
    [128, 64, 8, false], [64, 32, 4, false], [256, 128, 8, false],
  ])("BK %i, group %i, %i per word: uniform %s", (BK, group, per, uniform) => {
    const f = tileFacts(body(tileK0(BK), per, group), "w", BK / per, readOnly)!;
    expect(f.dep(v("s")) <= 1).toBe(uniform);
    expect(f.dep(v("kq"))).toBe(2); // the word's own k varies
    expect(f.dep(v("n"))).toBe(0);
  });

  it.each([
    // [BK, group, per, words per slice, uniform per slice?]
    [64, 32, 4, 8, true], [128, 32, 4, 8, true], [128, 64, 4, 16, true], [128, 32, 4, 16, false], [64, 32, 8, 4, true],
  ])("BK %i, group %i, %i per word, slices of %i words: uniform %s", (BK, group, per, slice, uniform) => {
    const f = tileFacts(body(tileK0(BK), per, group), "w", BK / per, readOnly, slice)!;
    expect(f.dep(v("s")) <= 1).toBe(uniform);
  });

  it("a tile origin not known to be a multiple of BK is not uniform", () => {
    const f = tileFacts(body(bin("+", tileK0(64), v("off")), 8, 128), "w", 8, readOnly)!;
    expect(f.dep(v("s"))).toBe(2);
  });

  it("a read of a buffer the kernel writes is not hoisted", () => {
    const f = tileFacts(body(tileK0(64), 8, 128), "w", 8, () => false)!;
    expect(f.dep(v("s"))).toBe(2);
  });

  it("other statements (a store) make the body unanalysed", () => {
    expect(tileFacts([...body(tileK0(64), 8, 128), { k: "store", buf: "X", idx: [int(0)], value: int(0) }], "w", 8, readOnly)).toBeUndefined();
  });
});

describe("wholeTileCond", () => {
  const f = tileFacts(body(tileK0(64), 8, 128), "w", 8, readOnly)!;
  it("kq + j < K holds for the whole tile iff it holds for its last value", () => {
    const c = wholeTileCond(f, bin("<", bin("+", v("kq"), v("j")), v("K")), "w", 8, "j", 8);
    expect(c && printExpr(c)).toBe("(bz * KT + k) * 64 + 63 < K");
  });
  it("is undefined for a condition that does not grow with w and j", () => {
    expect(wholeTileCond(f, bin("<", bin("-", v("kq"), v("j")), v("K")), "w", 8, "j", 8)).toBeUndefined();
    expect(wholeTileCond(f, bin(">=", v("kq"), v("K")), "w", 8, "j", 8)).toBeUndefined();
    expect(wholeTileCond(f, bin("<", v("kq"), v("s")), "w", 8, "j", 8)).toBeUndefined();
  });
});
