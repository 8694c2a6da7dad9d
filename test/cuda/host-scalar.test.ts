// Random integer expressions through the whole compiler, three ways: an evaluator written here
// with TypeScript's meaning (Math.floor / Math.ceil for floordiv / cdiv, truncating `/`, JS `%`
// and shifts), the interpreter on the lowered kernel, and the CUDA C++ the emitter writes, built
// by g++ and run on the host (host-run.ts). Each expression is stored, used as an `if` test and
// bounds a loop, so the emitter's precedence is checked in those places too (a loop end that was
// a ternary once compiled to `k < c ? a : b`, a test that is never false).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { BinOp, Expr } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printExpr } from "../../src/ir/print.ts";
import { SM80, lower } from "../../src/passes/pipeline.ts";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { runKernel } from "../../src/interp/run.ts";
import { hostCompiler, runOnHost } from "./host-run.ts";

const VARS = ["a", "b", "c"] as const;
const POINTS = [[7, -3, 0], [-7, 2, 5], [0, 0, 1], [-20, 19, -1], [13, -13, 4], [1, -1, -8], [-9, -4, 3]];

const bin = (op: BinOp, a: Expr, b: Expr): Expr => ({ k: "bin", op, a, b });
const lit = (v: number): Expr => ({ k: "int", v });

function arbCond(depth: number): fc.Arbitrary<Expr> {
  const cmp = fc.tuple(fc.constantFrom<BinOp>("<", "<=", ">", ">=", "==", "!="), arbInt(depth - 1), arbInt(depth - 1))
    .map(([op, a, b]) => bin(op, a, b));
  if (depth <= 1) return cmp;
  return fc.oneof(cmp,
    fc.tuple(fc.constantFrom<BinOp>("&&", "||"), arbCond(depth - 1), arbCond(depth - 1)).map(([op, a, b]) => bin(op, a, b)),
    arbCond(depth - 1).map((a): Expr => ({ k: "un", op: "not", a })));
}

function arbInt(depth: number): fc.Arbitrary<Expr> {
  const leaf = fc.oneof(fc.constantFrom(...VARS).map((name): Expr => ({ k: "var", name })), fc.integer({ min: -9, max: 9 }).map(lit));
  if (depth <= 0) return leaf;
  const sub = arbInt(depth - 1);
  return fc.oneof(
    { depthSize: "small" },
    leaf,
    fc.tuple(fc.constantFrom<BinOp>("+", "-", "*", "/", "%", "min", "max", "cdiv", "floordiv", "&", "|", "^"), sub, sub)
      .map(([op, a, b]) => bin(op, a, b)),
    // Shifts by a small constant; a left shift of a masked (non-negative) value (C++17 leaves
    // negative ones undefined).
    fc.tuple(sub, fc.integer({ min: 0, max: 4 })).map(([a, s]) => bin(">>", a, lit(s))),
    fc.tuple(sub, fc.integer({ min: 0, max: 4 })).map(([a, s]) => bin("<<", bin("&", a, lit(255)), lit(s))),
    fc.tuple(arbCond(depth), sub, sub).map(([cond, a, b]): Expr => ({ k: "select", cond, a, b })),
    sub.map((a): Expr => ({ k: "un", op: "neg", a })),
    sub.map((a): Expr => ({ k: "un", op: "bitnot", a })),
  );
}

class Undefined extends Error {}

/** TypeScript's value of e (C's where C and TypeScript agree); Undefined on a zero divisor or a
 *  value outside +-2^24 (where i32 arithmetic could overflow). */
function evaluate(e: Expr, env: Record<string, number>): number {
  const ev = (x: Expr) => evaluate(x, env);
  const r = ((): number => {
    switch (e.k) {
      case "int": return e.v;
      case "var": return env[e.name]!;
      case "un": {
        const a = ev(e.a);
        return e.op === "neg" ? -a : e.op === "not" ? +(a === 0) : ~a;
      }
      case "select": return ev(e.cond) !== 0 ? ev(e.a) : ev(e.b);
      case "bin": {
        if (e.op === "&&") return ev(e.a) !== 0 ? +(ev(e.b) !== 0) : 0;
        if (e.op === "||") return ev(e.a) !== 0 ? 1 : +(ev(e.b) !== 0);
        const a = ev(e.a), b = ev(e.b);
        const divisor = () => { if (b === 0) throw new Undefined(); return b; };
        switch (e.op) {
          case "+": return a + b;
          case "-": return a - b;
          case "*": return a * b;
          case "/": return Math.trunc(a / divisor());
          case "%": return a % divisor() + 0;
          case "floordiv": return Math.floor(a / divisor());
          case "cdiv": return Math.ceil(a / divisor()) + 0;
          case "min": return Math.min(a, b);
          case "max": return Math.max(a, b);
          case "&": return a & b;
          case "|": return a | b;
          case "^": return a ^ b;
          case "<<": return a << b;
          case ">>": return a >> b;
          case "<": return +(a < b);
          case "<=": return +(a <= b);
          case ">": return +(a > b);
          case ">=": return +(a >= b);
          case "==": return +(a === b);
          case "!=": return +(a !== b);
        }
      }
    }
    throw new Error(`unexpected ${e.k}`);
  })();
  if (Math.abs(r) > 2 ** 24) throw new Undefined();
  return r + 0; // integers have no -0
}

const defined = (e: Expr) => POINTS.every(([a, b, c]) => {
  try { evaluate(e, { a: a!, b: b!, c: c! }); return true; } catch (x) { if (x instanceof Undefined) return false; throw x; }
});

/** Per expression i: O[3i] its value, O[3i + 1] whether it is positive (an if), O[3i + 2] how many
 *  times a loop up to it (at most 5: a select, so the loop end is a ternary in C) runs. */
function kernelText(es: Expr[]): string {
  const lines = es.flatMap((e, i) => {
    const x = printExpr(e);
    return [
      `store O[${3 * i}] = ${x}`,
      `if ((${x}) > 0) {`, `  store O[${3 * i + 1}] = 1`, `} else {`, `  store O[${3 * i + 1}] = 0`, `}`,
      `var n${i}: i32 = 0`, `for k${i} in serial(0, select((${x}) > 5, 5, ${x})) {`, `  n${i} = n${i} + 1`, `}`,
      `store O[${3 * i + 2}] = n${i}`,
    ];
  });
  return [`kernel f(O: global i32[N] out, a: i32, b: i32, c: i32)`, `  dims N`,
    `launch tile grid [1] threads 1 blocks [bx] {`, ...lines.map((l) => `  ${l}`), `}`].join("\n");
}

const compiler = hostCompiler();
// `npm run fuzz` multiplies the draws (TILEMOE_FUZZ) for a long campaign.
const FUZZ = Math.max(1, Number.parseInt(process.env.TILEMOE_FUZZ ?? "1", 10) || 1);

describe("integer expressions: TypeScript's values, the interpreter's and the emitted CUDA's run on the host", () => {
  it.skipIf(!compiler)(compiler ? "agree at signs both ways, in stores, if tests and loop bounds" : "[skipped: no g++ on PATH]", () => {
    fc.assert(fc.property(fc.array(arbInt(3), { minLength: 20, maxLength: 30 }), (raw) => {
      const es = raw.filter(defined);
      if (es.length === 0) return;
      const k = lower(parseKernel(kernelText(es)), {}, SM80);
      const want = POINTS.map(([a, b, c]) => es.flatMap((e) => {
        const v = evaluate(e, { a: a!, b: b!, c: c! });
        return [v, +(v > 0), Math.min(Math.max(v, 0), 5)];
      }));
      const interp = POINTS.map(([a, b, c]) => {
        const O = { dtype: "i32" as const, shape: [3 * es.length], data: new Float64Array(3 * es.length) };
        runKernel(k, { tensors: { O }, scalars: { a: a!, b: b!, c: c! } });
        return [...O.data];
      });
      const { cu, kernelSymbol } = emitCuda(k);
      const n = 3 * es.length;
      const main = POINTS.map(([a, b, c]) =>
        `  { int O[${n}] = {0}; call(O, ${a}, ${b}, ${c}, ${n}); for (int i = 0; i < ${n}; ++i) std::printf("%d ", O[i]); std::printf("\\n"); }`).join("\n");
      const host = runOnHost(cu, kernelSymbol, main).trim().split("\n").map((l) => l.trim().split(" ").map(Number));
      for (let p = 0; p < POINTS.length; p++)
        for (let i = 0; i < es.length; i++) {
          const at = `${printExpr(es[i]!)} at (a, b, c) = (${POINTS[p]!.join(", ")})`;
          expect(interp[p]!.slice(3 * i, 3 * i + 3), `interpreter: ${at}`).toEqual(want[p]!.slice(3 * i, 3 * i + 3));
          expect(host[p]!.slice(3 * i, 3 * i + 3), `CUDA on the host: ${at}`).toEqual(want[p]!.slice(3 * i, 3 * i + 3));
        }
    }), { numRuns: 6 * FUZZ, seed: FUZZ > 1 ? undefined : 20261129, endOnFailure: true });
  }, 120_000);
});
