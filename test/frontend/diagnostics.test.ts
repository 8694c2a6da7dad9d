// Malformed kernels: each is rejected with a CompileError whose first diagnostic names the
// construct and sits at the right line:col. `/*!*/` in a case marks where the error must
// point (the construct starting right after it; comments are trivia to ts-morph).
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { CompileError, formatDiagnostic } from "../../src/ir/ir.ts";

const HEAD = `import { T, type Tensor } from "tilemoe";\n`;
/** A kernel around `body` (statements of the launch body). */
const inLaunch = (body: string, extraParams = "") => `${HEAD}export const k = T.kernel({ tune: { BM: [64, 128] } },
  function k(A: Tensor<"M, N", "f32">, C: Tensor<"M, N", "f32">${extraParams}, { BM }: T.Config) {
    const [M, N] = A.shape;
    T.launch([T.cdiv(M, BM)], { threads: 128 }, (bx) => {
      const acc = T.fragment([BM, 16], "f32");
${body}
    });
  });
`;
/** A whole kernel whose parts are given. */
const kernel = (params: string, body: string, opts = "{}") =>
  `${HEAD}export const k = T.kernel(${opts},\n  function k(${params}) {\n${body}\n  });\n`;
const LAUNCH = `T.launch([1], { threads: 32 }, (bx) => { });`;

interface Case { name: string; src: string; msg: RegExp; colShift?: number }

const cases: Case[] = [
  { name: "while loop", src: inLaunch(`/*!*/while (true) { }`), msg: /while loops are not supported/ },
  { name: "do-while loop", src: inLaunch(`/*!*/do { } while (false);`), msg: /do-while loops are not supported/ },
  { name: "class", src: inLaunch(`/*!*/class X { }`), msg: /classes are not supported/ },
  { name: "closure", src: inLaunch(`const f = /*!*/() => 1;`), msg: /closures are not supported/ },
  { name: "nested function", src: inLaunch(`/*!*/function g() { }`), msg: /nested functions are not supported/ },
  { name: "unknown T.* name", src: inLaunch(`/*!*/T.frobnicate(acc);`), msg: /unknown function T\.frobnicate/ },
  { name: "wrong arity of a tile op", src: inLaunch(`/*!*/T.copy(acc);`), msg: /T\.copy takes 2 arguments, got 1/ },
  { name: "row gather indexed by floats", src: inLaunch(`const s = T.shared([BM, 16], "f32"); const ix = T.shared([BM], "f32"); T.copy(A.rows(/*!*/ix, 0, 16), s);`),
    msg: /the row indices of A\.rows must be a 1-d i32 T\.shared or T\.local buffer; 'ix' is a 1-d f32 shared buffer/ },
  { name: "wrong arity of a row gather", src: inLaunch(`const s = T.shared([BM, 16], "f32"); const ix = T.shared([BM], "i32"); T.copy(/*!*/A.rows(ix, 0), s);`),
    msg: /A\.rows takes 3 arguments \(row indices, first column, width\), got 2/ },
  { name: "wrong arity of T.cdiv", src: inLaunch(`const q = /*!*/T.cdiv(M);`), msg: /T\.cdiv takes 2 arguments, got 1/ },
  { name: "wrong dtype string", src: inLaunch(`const s = T.shared([16], /*!*/"bf17");`), msg: /unknown dtype "bf17"/ },
  { name: "wrong tensor dtype", src: kernel(`A: Tensor<"M", /*!*/"float32">`, LAUNCH), msg: /unknown dtype "float32"/ },
  { name: "bad shape string", src: kernel(`A: Tensor</*!*/"M,, K", "f32">`, LAUNCH), msg: /bad shape "M,, K": unexpected ','/, colShift: 3 },
  { name: "dim only inside an expression", src: kernel(`A: Tensor</*!*/"M, K/8", "i32">`, LAUNCH), msg: /dim 'K' appears only inside an expression/ },
  { name: "unknown identifier", src: inLaunch(`const x = /*!*/foo + 1;`), msg: /unknown identifier 'foo'/ },
  { name: "assignment to a const", src: inLaunch(`const x = 1;\n/*!*/x = 2;`), msg: /cannot assign to 'x': it is a const; declare it with let/ },
  { name: "assignment to a loop variable", src: inLaunch(`for (const i of T.serial(4)) { /*!*/i = 2; }`), msg: /cannot assign to 'i': it is a loop variable/ },
  { name: "assignment to a dim", src: inLaunch(`/*!*/M += 1;`), msg: /cannot assign to 'M'/ },
  { name: "tensor used as a scalar", src: inLaunch(`const x = /*!*/A + 1;`), msg: /'A' is a tensor, not a scalar/ },
  { name: "missing T.launch", src: kernel(`A: Tensor<"M", "f32">`, `const [M] = A.shape;`).replace("function k", "/*!*/function k"), msg: /no T\.launch/ },
  { name: "two launches", src: kernel(`A: Tensor<"M", "f32">`, `${LAUNCH}\n/*!*/${LAUNCH}`), msg: /exactly one T\.launch; this is the second/ },
  { name: "launch inside launch", src: inLaunch(`/*!*/${LAUNCH}`), msg: /T\.launch inside a launch body/ },
  { name: "recursion", src: inLaunch(`/*!*/k(A, C);`), msg: /recursion is not supported/ },
  { name: "async kernel", src: kernel(`A: Tensor<"M", "f32">`, LAUNCH).replace("function k", "/*!*/async function k"), msg: /kernels cannot be async/ },
  { name: "await", src: inLaunch(`const x = /*!*/await 1;`), msg: /await is not supported/ },
  { name: "try/catch", src: inLaunch(`/*!*/try { } catch { }`), msg: /try\/catch is not supported/ },
  { name: "throw", src: inLaunch(`/*!*/throw 1;`), msg: /throw is not supported/ },
  { name: "string ops", src: inLaunch(`const s = /*!*/"a" + 1;`), msg: /strings are not supported/ },
  { name: "template string", src: inLaunch("const s = /*!*/`x${1}`;"), msg: /strings are not supported/ },
  { name: "integer division", src: inLaunch(`const q = /*!*/M / 2;`), msg: /divides integers; write T\.cdiv\(a, b\) .* Math\.floor\(a \/ b\)/ },
  { name: "var", src: inLaunch(`/*!*/var x = 1;`), msg: /'var' is not supported/ },
  { name: "partial indexing", src: inLaunch(`const x = /*!*/acc[0];`), msg: /'acc' has rank 2 but is indexed with 1 index/ },
  { name: "float index", src: inLaunch(`const x = acc[/*!*/0.5][0];`), msg: /an index must be an integer/ },
  { name: "numeric if condition", src: inLaunch(`if (/*!*/M) { }`), msg: /condition 'M' is i32, not a boolean/ },
  { name: "for step other than 1", src: inLaunch(`for (let i = 0; i < 8; /*!*/i += 2) { }`), msg: /loop step must be i\+\+/ },
  { name: "for-of over an array", src: inLaunch(`for (const i of /*!*/[1, 2]) { }`), msg: /for-of must iterate T\.serial/ },
  { name: "parallel tuple without destructuring", src: inLaunch(`for (const /*!*/i of T.parallel(4, 4)) { }`), msg: /yields tuples/ },
  { name: "return", src: inLaunch(`/*!*/return;`), msg: /return is not supported/ },
  { name: "break", src: inLaunch(`for (const i of T.serial(4)) { /*!*/break; }`), msg: /break is not supported/ },
  { name: "switch", src: inLaunch(`/*!*/switch (M) { }`), msg: /switch is not supported/ },
  { name: "new", src: inLaunch(`const a = /*!*/new Array(3);`), msg: /kernels cannot create objects/ },
  { name: "unknown Math function", src: inLaunch(`const r = /*!*/Math.random();`), msg: /Math\.random is not supported/ },
  { name: "buffer declared with let", src: inLaunch(`/*!*/let s = T.shared([16], "f32");`), msg: /buffer 's' must be declared with const/ },
  { name: "unknown gemm option", src: inLaunch(`T.gemm(acc, acc, acc, { /*!*/transC: true });`), msg: /unknown gemm option/ },
  { name: "tile rank mismatch", src: inLaunch(`T.copy(A.tile(/*!*/[0], [1, 1]), acc);`), msg: /A\.tile offsets need 2 entries \(one per dim\), got 1/ },
  { name: "number param", src: kernel(`A: Tensor<"M", "f32">, alpha: /*!*/number`, LAUNCH), msg: /'number' does not say which dtype; write T\.f32/ },
  { name: "untyped param", src: kernel(`/*!*/A`, LAUNCH), msg: /needs a type/ },
  { name: "unknown tunable", src: kernel(`A: Tensor<"M", "f32">, { /*!*/BX }: T.Config`, LAUNCH, "{ tune: { BM: [64] } }"), msg: /'BX' is not a tunable of this kernel; declare it in tune \(tunables: BM\)/ },
  { name: "where over an undeclared tunable", src: kernel(`A: Tensor<"M", "f32">`, LAUNCH, "{ tune: { BM: [64] }, where: ({ /*!*/BN }) => BN > 0 }"), msg: /where uses 'BN', which is not declared in tune/ },
  { name: "non-boolean where", src: kernel(`A: Tensor<"M", "f32">`, LAUNCH, "{ tune: { BM: [64] }, where: ({ BM }) => /*!*/BM * 2 }"), msg: /is i32, not a boolean/ },
  { name: "unknown kernel option", src: kernel(`A: Tensor<"M", "f32">`, LAUNCH, "{ /*!*/tunes: {} }"), msg: /unknown kernel option/ },
  { name: "tune naming a let", src: kernel(`A: Tensor<"M", "f32">`, LAUNCH, "{ tune: /*!*/TUNE }").replace(HEAD, `${HEAD}let TUNE = { BM: [64] };\n`), msg: /tune 'TUNE' must be declared with const, not let/ },
  { name: "options naming an unknown const", src: kernel(`A: Tensor<"M", "f32">`, LAUNCH, "/*!*/OPTS"), msg: /kernel options 'OPTS' must be written here or be a const declared at the top level of this file/ },
  { name: "where naming a const that is no function", src: kernel(`A: Tensor<"M", "f32">`, LAUNCH, "{ tune: { BM: [64] }, where: FITS }").replace(HEAD, `${HEAD}const FITS = /*!*/3;\n`), msg: /where must be a function of the tunables/ },
  { name: "statement after launch", src: kernel(`A: Tensor<"M", "f32">`, `${LAUNCH}\n/*!*/const x = 1;`), msg: /statements after T\.launch/ },
  { name: "let outside the launch", src: kernel(`A: Tensor<"M", "f32">`, `/*!*/let x = 1;\n${LAUNCH}`), msg: /only const bindings may appear outside the launch body/ },
  { name: "too many block indices", src: kernel(`A: Tensor<"M", "f32">`, `T.launch([1], { threads: 32 }, (bx, /*!*/by) => { });`), msg: /grid has 1 dim but the launch body takes 2 block indices/ },
  { name: "float stored into an int buffer", src: inLaunch(`const r = T.local([4], "i32");\nr[0] = /*!*/1.5;`), msg: /cannot use f32 value '1\.5' as i32; convert with T\.cast/ },
  { name: "unused call value", src: inLaunch(`/*!*/Math.exp(1.0);`), msg: /value of 'Math\.exp\(1\.0\)' is unused/ },
  { name: "syntax error", src: inLaunch(`const x = /*!*/;`), msg: /syntax error: Expression expected/ },
  { name: "module-level let used in a kernel", src: `let G = 3;\n` + inLaunch(`const x = /*!*/G;`).replace("let G = 3;\n", ""), msg: /module-level let\/var/ },
  { name: "shadowing", src: inLaunch(`const /*!*/M = 3;`), msg: /'M' is already defined \(as a dim\)/ },
  { name: "unsigned right shift", src: inLaunch(`const x = /*!*/M >>> 1;`), msg: /'>>>' is not supported/ },
  { name: "boolean arithmetic", src: inLaunch(`const x = /*!*/(M < 2) + 1;`), msg: /arithmetic on a boolean/ },
  { name: "unknown launch option", src: kernel(`A: Tensor<"M", "f32">`, `T.launch([1], { threads: 32, /*!*/maxRegs: 64 }, (bx) => { });`), msg: /unknown launch option 'maxRegs: 64'; the options are threads and minBlocks/ },
  { name: "minBlocks not an integer", src: kernel(`A: Tensor<"M", "f32">`, `T.launch([1], { threads: 32, minBlocks: /*!*/1.5 }, (bx) => { });`), msg: /minBlocks/ },
];

/** 1-based line and column of the construct right after the marker. */
function markerPos(src: string): { line: number; col: number } {
  const at = src.indexOf("/*!*/");
  if (at < 0) throw new Error("case without a /*!*/ marker");
  const before = src.slice(0, at + "/*!*/".length);
  const lines = before.split("\n");
  return { line: lines.length, col: lines.at(-1)!.length + 1 };
}

describe("malformed kernels are located CompileErrors", () => {
  it("has at least 20 cases", () => expect(cases.length).toBeGreaterThanOrEqual(20));

  for (const c of cases) {
    it(c.name, () => {
      let err: unknown;
      try {
        parseKernels("bad.ts", c.src);
      } catch (e) {
        err = e;
      }
      expect(err, "must be rejected").toBeInstanceOf(CompileError);
      const d = (err as CompileError).diagnostics[0]!;
      const want = markerPos(c.src);
      expect(d.message).toMatch(c.msg);
      expect({ line: d.loc?.line, col: d.loc?.col }).toEqual({ line: want.line, col: want.col + (c.colShift ?? 0) });
      expect(formatDiagnostic(d)).toMatch(new RegExp(`^bad\\.ts:${want.line}:\\d+: error: `));
    });
  }
});

describe("several kernels", () => {
  it("reports the first error of every kernel of the file, in source order", () => {
    const one = (name: string, bad: string) => `export const ${name} = T.kernel({}, function ${name}(A: Tensor<"M", "f32">) {
  T.launch([1], { threads: 32 }, (bx) => {
    ${bad}
  });
});\n`;
    const src = HEAD + one("a", "while (true) { }") + one("fine", "A[bx] = 1.0;") + one("b", "const x = nope;");
    let err: unknown;
    try { parseKernels("many.ts", src); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(CompileError);
    expect((err as CompileError).message.split("\n")).toEqual([
      "many.ts:4:5: error: while loops are not supported; use for (const i of T.serial(n)) with a bound",
      "many.ts:14:15: error: unknown identifier 'nope'",
    ]);
  });
});

describe("robustness", () => {
  const gemm = readFileSync(join(import.meta.dirname, "../../dsl-examples/gemm_relu_bias.ts"), "utf8");

  it("mangled kernel sources give CompileErrors or kernels, never other exceptions", () => {
    const edit = fc.tuple(fc.nat({ max: gemm.length }), fc.nat({ max: 12 }), fc.constantFrom("", "x", "(", ")", "1.5", "\"s\"", "=", "[", "}", ";", "/", "T.", "-"));
    fc.assert(fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
      let src = gemm;
      for (const [at, len, ins] of edits) src = src.slice(0, at) + ins + src.slice(Math.min(src.length, at + len));
      try {
        parseKernels("m.ts", src);
      } catch (e) {
        if (!(e instanceof CompileError)) throw new Error(`raw ${(e as Error).constructor.name} for:\n${src}\n${(e as Error).stack}`);
        expect(e.diagnostics[0]!.loc?.file).toBe("m.ts");
      }
    }), { numRuns: 300 });
  });
});
