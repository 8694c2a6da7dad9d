// TypeScript kernel source in -> tile IR text out, for the constructs the examples do not use.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import type { Stmt } from "../../src/ir/ir.ts";
import { printKernel, printStmt } from "../../src/ir/print.ts";

const HEAD = `import { T, type Tensor } from "tilemoe";\n`;

/** The printed launch body of a one-kernel file whose launch body is `body`. */
function launchBody(body: string, params = `A: Tensor<"M, N", "f32">, C: Tensor<"M, N", "f32">`): string {
  const src = `${HEAD}export const k = T.kernel({ tune: { BM: [64] } }, function k(${params}, { BM }: T.Config) {
  const [M, N] = A.shape;
  T.launch([T.cdiv(M, BM)], { threads: 128 }, (bx) => {
${body}
  });
});
`;
  const [k] = parseKernels("k.ts", src);
  return k!.launch.body.map((s: Stmt) => printStmt(s)).join("\n");
}

describe("front end: expressions and statements", () => {
  it("types literals: a '.' or exponent makes a float, ints meeting floats are converted", () => {
    expect(launchBody(`const a = 1;\nconst b = 1.0;\nconst c = 2e3;\nconst d = a * b;\nconst e = M + 0.5;`)).toBe([
      "let a: i32 = 1", "let b: f32 = 1.0", "let c: f32 = 2000.0", "let d: f32 = cast<f32>(a) * b", "let e: f32 = cast<f32>(M) + 0.5",
    ].join("\n"));
  });

  it("maps Math.floor(a / b) on ints to floor division (floordiv; lowerIntDivision makes it C's `/` where the signs allow) and T.cdiv to cdiv", () => {
    expect(launchBody(`const q = Math.floor(M / 4);\nconst r = T.cdiv(N, 8);\nconst f = Math.floor(2.5 / 2.0);`)).toBe(
      ["let q: i32 = floordiv(M, 4)", "let r: i32 = cdiv(N, 8)", "let f: f32 = floor(2.5 / 2.0)"].join("\n"));
  });

  it("translates Math.*, T.* math, ternaries and casts", () => {
    const out = launchBody(`const x = 2.0;
const y = Math.max(Math.exp(x), Math.tanh(x), 0);
const z = x > 1 ? Math.sqrt(x) : -x;
const w = T.cast(T.sigmoid(x) * Math.PI, "bf16");
const p = x ** 2 + T.fma(x, x, 1);`);
    expect(out).toBe([
      "let x: f32 = 2.0",
      "let y: f32 = max(max(exp(x), tanh(x)), 0.0)",
      "let z: f32 = select(x > 1.0, sqrt(x), -(x))",
      `let w: f32 = cast<bf16>(sigmoid(x) * ${Math.PI})`,
      "let p: f32 = pow(x, 2.0) + fma(x, x, 1.0)",
    ].join("\n"));
  });

  it("turns let/assignment/compound assignment into var/assign/store", () => {
    const out = launchBody(`const acc = T.local([4], "f32");
let s = 0.0;
let n = 0;
s += acc[1];
n++;
acc[n] *= 2;
acc[0] = n;`);
    expect(out).toBe([
      "alloc acc: local f32[4]", "var s: f32 = 0.0", "var n: i32 = 0", "s = s + acc[1]", "n = n + 1",
      "store acc[n] = acc[n] * 2.0", "store acc[0] = cast<f32>(n)",
    ].join("\n"));
  });

  it("translates the loop forms and if/else", () => {
    const out = launchBody(`for (let i = 0; i < N; i++) {
  if (i < 2) { C[bx][i] = 1.0; } else if (i == 3) { C[bx][i] = 2.0; }
}
for (const j of T.serial(2, N)) { }
for (let j = 1; j <= N; j++) { }
for (const j of T.unroll(4)) { }
for (const j of T.pipelined(N, 3)) { }
for (const [i, j] of T.parallel(4, 8)) { }`);
    expect(out).toBe([
      "for i in serial(0, N) {",
      "  if (i < 2) {",
      "    store C[bx, i] = 1.0",
      "  } else {",
      "    if (i == 3) {",
      "      store C[bx, i] = 2.0",
      "    }",
      "  }",
      "}",
      "for j in serial(2, N - 2) {\n}",
      "for j in serial(1, N) {\n}",
      "for j in unroll(0, 4) {\n}",
      "for j in pipelined(0, N) stages 3 {\n}",
      "for i, j in parallel(0, 4; 0, 8) {\n}",
    ].join("\n"));
  });

  it("binds tile views by name and whole buffers as whole regions", () => {
    const out = launchBody(`const s = T.shared([BM, 8], "f32");
const t = A.tile([bx * BM, 0], [BM, 8]);
T.copy(t, s);
T.copy(s, C.tile([bx * BM, 0], [BM, 8]));
T.fill(s, 3);`);
    expect(out).toBe([
      "alloc s: shared f32[BM, 8]",
      "copy A[bx * BM : +BM, 0 : +8] -> s[0 : +BM, 0 : +8]",
      "copy s[0 : +BM, 0 : +8] -> C[bx * BM : +BM, 0 : +8]",
      "fill s[0 : +BM, 0 : +8] = 3.0",
    ].join("\n"));
  });

  it("loads and stores use every index; A.shape[i] is the dim", () => {
    expect(launchBody(`C[bx][A.shape[1] - 1] = A[bx][0] * 2.0;`)).toBe("store C[bx, N - 1] = A[bx, 0] * 2.0");
  });
});

describe("front end: kernel headers", () => {
  it("reads params, dims in first-appearance order, renamed tunables, module consts and where", () => {
    const src = `import { T as TL, type Tensor as Ten } from "tilemoe";
const SMEM = 48 * 1024;
export const moe = TL.kernel(
  { tune: { BM: [64, 128], act: [true, false], alpha: [0.5, 1.5] }, where: ({ BM }) => BM * 4 <= SMEM },
  (X: Ten<"T, cdiv(H, 2)", "u8">, W: Ten<"E, N, H", "bf16">, out: Ten<"T, N", "f32">, eps: TL.f32, k: TL.i32,
   { BM: bm, alpha }: TL.Config) => {
    const [t] = X.shape;
    const [experts, n] = W.shape;
    const blocks = TL.cdiv(t, bm);
    TL.launch([blocks, experts], { threads: 64 }, (b) => {
      out[b][n - 1] = eps * alpha;
    });
  });
const notExported = TL.kernel({}, (A: Ten<"M", "f32">) => { TL.launch([1], { threads: 32 }, () => { }); });
`;
    const ks = parseKernels("moe.ts", src);
    expect(ks.map((x) => x.name)).toEqual(["moe"]);
    expect(printKernel(ks[0]!)).toBe(`kernel moe(X: global u8[T, cdiv(H, 2)], W: global bf16[E, N, H], out: global f32[T, N] out, eps: f32, k: i32)
  dims T, H, E, N
  tune BM = [64, 128], act = [true, false], alpha = [0.5, 1.5]
  where BM * 4 <= 48 * 1024
launch tile grid [cdiv(T, BM), E] threads 64 blocks [b, by] {
  store out[b, N - 1] = eps * alpha
}
`);
    expect(ks[0]!.params[0]!.shapeText).toBe("T, cdiv(H, 2)");
    expect(ks[0]!.launch.body[0]!.loc).toEqual({ file: "moe.ts", line: 11, col: 7 });
  });

  it("takes kernel options, a tune space or a where from module-level consts several kernels share", () => {
    const body = `(A: Tensor<"M", "f32">, { BM }: T.Config) => { T.launch([T.cdiv(A.shape[0], BM)], { threads: 32 }, (b) => { A[b] = 1.0; }); }`;
    const literal = `${HEAD}const SMEM = 1024;
export const k = T.kernel({ tune: { BM: [64, 128], ST: [2, 3] }, where: ({ BM, ST }) => BM * ST * 4 <= SMEM }, ${body});
`;
    const shared = `${HEAD}const SMEM = 1024;
const tune = { BM: [64, 128], ST: [2, 3] } as const;
const where = ({ BM, ST }: T.Config) => BM * ST * 4 <= SMEM;
const OPTS = { tune, where };
export const a = T.kernel({ tune, where }, ${body});
export const b = T.kernel({ tune: tune, where: where }, ${body});
export const c = T.kernel(OPTS, ${body});
`;
    const header = (k: ReturnType<typeof parseKernels>[number]) => printKernel(k).split("\n").slice(0, 4).join("\n").replace(/^kernel \w+/, "kernel");
    const [want] = parseKernels("k.ts", literal);
    const got = parseKernels("k.ts", shared);
    expect(got.map((x) => x.name)).toEqual(["a", "b", "c"]);
    for (const k of got) expect(header(k)).toBe(header(want!));
    expect(header(want!)).toMatch(/tune BM = \[64, 128\], ST = \[2, 3\]\n  where BM \* ST \* 4 <= 1024/);
  });

  it("returns no kernels for a file that does not import tilemoe", () => {
    expect(parseKernels("plain.ts", "export const x = 1;\n")).toEqual([]);
  });
});
