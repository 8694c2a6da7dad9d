// Helper inlining keeps a helper's locals apart from the caller's names: a property over random
// helpers and callers that declare and update locals from one small pool of names (so they
// collide), the helper's argument an expression over the caller's names (substituted into a
// body whose locals may carry the same names), run on the interpreter against the values
// computed here. The assignment that kept
// the source name (98dd459: `n = ...` in a helper wrote the caller's `n`) fails it.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { runKernel } from "../../src/interp/index.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import { specialize } from "../../src/passes/specialize.ts";
import { SM80 } from "../../src/passes/pipeline.ts";

const POOL = ["a", "b", "n", "x"];

/** An update of local `to`: to = to + (local `from` or a literal); to += lit; to++; to = to * 2;
 *  to = to + p (the helper's parameter; a caller's block has none and adds 0); `if (to > lit)
 *  { to++; }`; a loop adding lit twice, its variable a pool name the block does not declare (so
 *  it may be one of the other side's). */
type Op = { to: number; kind: "add" | "addeq" | "inc" | "mul2" | "param" | "if" | "loop"; from: number; lit: number };
interface Block { names: string[]; inits: number[]; ops: Op[] }

const block = (minNames: number): fc.Arbitrary<Block> => fc.subarray(POOL, { minLength: minNames, maxLength: POOL.length }).chain((names) =>
  fc.record({
    names: fc.constant(names),
    inits: fc.array(fc.integer({ min: -5, max: 5 }), { minLength: names.length, maxLength: names.length }),
    ops: names.length === 0 ? fc.constant<Op[]>([]) : fc.array(fc.record({
      to: fc.nat({ max: names.length - 1 }), kind: fc.constantFrom("add" as const, "addeq" as const, "inc" as const, "mul2" as const, "param" as const, "if" as const, "loop" as const),
      from: fc.integer({ min: -1, max: names.length - 1 }), lit: fc.integer({ min: -3, max: 3 }),
    }), { maxLength: 6 }),
  }));

const source = (b: Block, row: number, param = "0") => [
  ...b.names.map((n, i) => `let ${n} = ${b.inits[i]};`),
  ...b.ops.map((o) => {
    const to = b.names[o.to]!;
    switch (o.kind) {
      case "add": return `${to} = ${to} + ${o.from < 0 ? `(${o.lit})` : b.names[o.from]};`;
      case "addeq": return `${to} += ${o.lit};`;
      case "inc": return `${to}++;`;
      case "mul2": return `${to} = ${to} * 2;`;
      case "param": return `${to} = ${to} + ${param};`;
      case "if": return `if (${to} > ${o.lit}) { ${to}++; }`;
      case "loop": {
        const lv = [...POOL, "k"].find((n) => !b.names.includes(n))!;
        return `for (let ${lv} = 0; ${lv} < 2; ${lv}++) { ${to} += ${o.lit}; }`;
      }
    }
  }),
  ...b.names.map((n, i) => `O[${row}][${i}] = T.cast(${n}, "f32");`),
].join("\n      ");

/** The values the block leaves in its locals (p: the helper parameter's value). */
function values(b: Block, p = 0): number[] {
  const v = [...b.inits];
  for (const o of b.ops) {
    if (o.kind === "param") v[o.to] = v[o.to]! + p;
    else if (o.kind === "if") v[o.to] = v[o.to]! > o.lit ? v[o.to]! + 1 : v[o.to]!;
    else if (o.kind === "loop") v[o.to] = v[o.to]! + 2 * o.lit;
    else if (o.kind === "add") v[o.to] = v[o.to]! + (o.from < 0 ? o.lit : v[o.from]!);
    else if (o.kind === "addeq") v[o.to] = v[o.to]! + o.lit;
    else if (o.kind === "inc") v[o.to] = v[o.to]! + 1;
    else v[o.to] = v[o.to]! * 2;
  }
  return v;
}

describe("helper inlining keeps names apart", () => {
  it("a helper's locals and the caller's, from one pool of names, each keep their own values (one or two calls)", () => {
    fc.assert(fc.property(block(1), block(0), fc.integer({ min: 1, max: 2 }), fc.integer({ min: -1, max: 3 }), (helper, caller, calls, argOf) => {
      // The caller's locals are declared before the calls and updated after them; the helper's
      // argument is an expression over one of them (their values at the call) or a literal.
      const callerDecl: Block = { ...caller, ops: [] };
      const argName = argOf >= 0 && argOf < caller.names.length ? caller.names[argOf] : undefined;
      const arg = argName ? `${argName} + 1` : "2";
      const argValue = argName ? caller.inits[argOf]! + 1 : 2;
      const src = `import { T, type Tensor } from "tilemoe";
function h(O: Tensor<"R, C", "f32">, p: number) {
      ${source(helper, 0, "p")}
}
export const k = T.kernel({}, function k(O: Tensor<"R, C", "f32">) {
  T.launch([1], { threads: 32 }, () => {
    for (const i of T.parallel(1)) {
      ${callerDecl.names.map((n, j) => `let ${n} = ${caller.inits[j]};`).join("\n      ")}
      ${Array(calls).fill(`h(O, ${arg});`).join("\n      ")}
      ${source({ ...caller, inits: [] }, 1).split("\n      ").filter((l) => !l.startsWith("let ")).join("\n      ")}
    }
  });
});
`;
      const k = specialize(parseKernels("k.ts", src)[0]!, { config: {}, target: SM80 });
      const O = zeros("f32", [2, POOL.length]);
      runKernel(k, { tensors: { O } });
      const got = [0, 1].map((r) => Array.from(O.data.slice(r * POOL.length, r * POOL.length + (r === 0 ? helper : caller).names.length)));
      expect(got, src).toEqual([values(helper, argValue), values(caller)]);
    }), { numRuns: 150, seed: 11 });
  });
});
