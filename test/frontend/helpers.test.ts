// Helper functions: top-level functions of a kernel file that kernel code calls, inlined
// where called (src/frontend/helpers.ts). Source in -> tile IR text out, and the errors.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { CompileError, type Kernel } from "../../src/ir/ir.ts";
import { printKernel, printStmt } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { inferTypes } from "../../src/passes/infer-types.ts";
import { specialize } from "../../src/passes/specialize.ts";
import { SM80 } from "../../src/passes/pipeline.ts";

const HEAD = `import { T, type Tensor } from "tilemoe";\n`;

function kernels(src: string): Kernel[] {
  return parseKernels("k.ts", HEAD + src);
}
const body = (k: Kernel) => k.launch.body.map((s) => printStmt(s)).join("\n");

function error(src: string): string {
  try {
    kernels(src);
  } catch (e) {
    if (e instanceof CompileError) return e.diagnostics.map((d) => `${d.loc?.line}:${d.loc?.col} ${d.message}`).join("\n");
    throw e;
  }
  throw new Error("expected a CompileError");
}

/** One kernel over A -> C whose launch body is `launch`, after the file-level `before`. */
const withHelpers = (before: string, launch: string) => `${before}
export const k = T.kernel({ tune: { BM: [64] } }, function k(A: Tensor<"M, N", "f32">, C: Tensor<"M, N", "f32">, { BM }: T.Config) {
  const [M, N] = A.shape;
  T.launch([T.cdiv(M, BM)], { threads: 128 }, (bx) => {
${launch}
  });
});
`;

describe("helper functions", () => {
  it("inlines an expression helper with its consts, arguments substituted", () => {
    const [k] = kernels(withHelpers(
      `function gelu(x: number) { const c = 0.7978845608; return 0.5 * x * (1.0 + Math.tanh(c * (x + 0.044715 * x * x * x))); }`,
      `for (const [i, j] of T.parallel(BM, N)) { C[bx * BM + i][j] = gelu(A[bx * BM + i][j]); }`));
    expect(body(k!)).toContain("store C[bx * BM + i, j] = 0.5 * A[bx * BM + i, j] * (1.0 + tanh(0.7978845608 * (A[bx * BM + i, j]");
  });

  it("splices a statement helper in, binding buffers, tiles and scalars by name", () => {
    const [k] = kernels(withHelpers(
      `function scaleRows(src: Tensor<"M, N", "f32">, dst: Tensor<"M, N", "f32">, row0: number, rows: number, s: number) {
  const [, N] = src.shape;
  const t = T.shared([rows, N], src.dtype);
  T.copy(src.tile([row0, 0], [rows, N]), t);
  for (const [i, j] of T.parallel(rows, N)) { t[i][j] = t[i][j] * s; }
  T.copy(t, dst.tile([row0, 0], [rows, N]));
}`,
      `scaleRows(A, C, bx * BM, BM, 2.0);`));
    expect(body(k!)).toBe([
      "alloc t: shared f32[BM, N]",
      "copy A[bx * BM : +BM, 0 : +N] -> t[0 : +BM, 0 : +N]",
      "for i, j in parallel(0, BM; 0, N) {\n  store t[i, j] = t[i, j] * 2.0\n}",
      "copy t[0 : +BM, 0 : +N] -> C[bx * BM : +BM, 0 : +N]",
    ].join("\n"));
    expect(verifyErrors(k!)).toEqual([]);
  });

  it("gives a helper's locals fresh IR names where they land beside the caller's, and again on a second call", () => {
    const [k] = kernels(withHelpers(
      `function bump(buf: Tensor<"M, N", "f32">, r: number) { const x = 1.0; for (const j of T.serial(4)) { buf[r][j] += x; } }`,
      `const x = 3;\nbump(C, x);\nbump(C, x + 1);\nconst j = 2;\nC[j][0] = 0.0;`));
    expect(body(k!)).toBe([
      "let x: i32 = 3",
      "let x_1: f32 = 1.0",
      "for j in serial(0, 4) {\n  store C[x, j] = C[x, j] + x_1\n}",
      "let x_2: f32 = 1.0",
      // The loop variable lives in the loop's scope: the second call's loop may reuse it.
      "for j in serial(0, 4) {\n  store C[x + 1, j] = C[x + 1, j] + x_2\n}",
      "let j: i32 = 2",
      "store C[j, 0] = 0.0",
    ].join("\n"));
    expect(verifyErrors(k!)).toEqual([]);
    // A caller name declared after the call meets the helper's local in the same IR scope.
    const [k2] = kernels(withHelpers(`function one(buf: Tensor<"M, N", "f32">) { const t = 1.0; buf[0][0] = t; }`,
      `one(C);\nconst t = 2.0;\nC[0][1] = t;`));
    expect(body(k2!)).toBe(["let t: f32 = 1.0", "store C[0, 0] = t", "let t_1: f32 = 2.0", "store C[0, 1] = t_1"].join("\n"));
    expect(verifyErrors(k2!)).toEqual([]);
  });

  // The assignment kept the source name: a helper's `n = ...` on its renamed local `n_1` wrote
  // the caller's `n` (found when lib/moe_tiles.ts liveRows met moe_gemm_up.ts's row count).
  it("assigns to a helper's renamed local, not to the caller's variable of the source name", () => {
    const [k] = kernels(withHelpers(`function mark(buf: Tensor<"M, N", "f32">) { let n = 0; n = n + 1; n += 2; n++; buf[0][0] = T.cast(n, "f32"); }`,
      `let n = 5;\nmark(C);\nC[1][0] = T.cast(n, "f32");`));
    expect(body(k!)).toBe([
      "var n: i32 = 5",
      "var n_1: i32 = 0",
      "n_1 = n_1 + 1",
      "n_1 = n_1 + 2",
      "n_1 = n_1 + 1",
      "store C[0, 0] = cast<f32>(n_1)",
      "store C[1, 0] = cast<f32>(n)",
    ].join("\n"));
    expect(verifyErrors(k!)).toEqual([]);
  });

  // The IR's type environment is one per kernel (inferTypes), so a name of sibling scopes with
  // two dtypes was one variable of the last dtype: moe_gate_align.ts's i32 pair index `p` after
  // softmaxTopk's f32 `p` truncated every gating weight to 0 or 1.
  it("renames a variable whose name a sibling scope declares with another dtype, the helper's local or the caller's", () => {
    const [k] = kernels(withHelpers(`function half(buf: Tensor<"M, N", "f32">, rows: number) { for (const i of T.parallel(rows)) { let p = 0.0; p = buf[i][0] * 0.5; buf[i][1] = p; } }`,
      `half(C, BM);
for (const i of T.parallel(BM)) { const p = i * 2; C[i][2] = T.cast(p, "f32"); }
for (const i of T.parallel(BM)) { const p = i + 1; C[i][3] = T.cast(p, "f32"); }`));
    expect(body(k!)).toBe([
      "for i in parallel(0, BM) {\n  var p: f32 = 0.0\n  p = C[i, 0] * 0.5\n  store C[i, 1] = p\n}",
      "for i in parallel(0, BM) {\n  let p_1: i32 = i * 2\n  store C[i, 2] = cast<f32>(p_1)\n}",
      // The same dtype again: the name may be shared (as loop variables are).
      "for i in parallel(0, BM) {\n  let p_1: i32 = i + 1\n  store C[i, 3] = cast<f32>(p_1)\n}",
    ].join("\n"));
    expect(verifyErrors(k!)).toEqual([]);
    // After inferTypes the f32 p is still stored as itself (it was cast<f32> of an i32 p).
    const typed = inferTypes(specialize(k!, { config: {}, target: SM80 }));
    expect(printStmt(typed.launch.body[0]!)).toContain("store C[i, 1] = p\n");
  });

  it("takes an argument that reads memory once, at the call (call by value)", () => {
    const [k] = kernels(withHelpers(
      `function twice(dst: Tensor<"M, N", "f32">, v: number) { dst[0][0] = v; dst[0][1] = v; }`,
      `twice(C, C[0][0] + 1.0);`));
    expect(body(k!)).toBe(["let v: f32 = C[0, 0] + 1.0", "store C[0, 0] = v", "store C[0, 1] = v"].join("\n"));
  });

  it("passes a let variable read-only", () => {
    expect(error(withHelpers(`function inc(n: number) { n = n + 1; }`, `let m = 0;\ninc(m);`)))
      .toMatch(/cannot assign to 'n': it is a helper parameter/);
  });

  it("lets a helper hold the whole launch, so kernels that differ in dtypes share one body", () => {
    const src = `function copyRows(A: Tensor<"M, N", "f16" | "bf16">, C: Tensor<"M, N", "f16" | "bf16">, BM: number) {
  const [M, N] = A.shape;
  T.launch([T.cdiv(M, BM)], { threads: 64 }, (bx) => {
    const t = T.shared([BM, N], A.dtype);
    T.copy(A.tile([bx * BM, 0], [BM, N]), t);
    T.copy(t, C.tile([bx * BM, 0], [BM, N]));
  });
}
export const copy_f16 = T.kernel({ tune: { BM: [32] } }, function copy_f16(A: Tensor<"M, N", "f16">, C: Tensor<"M, N", "f16">, { BM }: T.Config) {
  copyRows(A, C, BM);
});
export const copy_bf16 = T.kernel({ tune: { BM: [32] } }, function copy_bf16(A: Tensor<"M, N", "bf16">, C: Tensor<"M, N", "bf16">, { BM }: T.Config) {
  copyRows(A, C, BM);
});
`;
    const [f16, bf16] = kernels(src);
    expect(body(f16!)).toContain("alloc t: shared f16[BM, N]");
    expect(body(bf16!)).toContain("alloc t: shared bf16[BM, N]");
    expect(f16!.params.find((p) => p.name === "C")!.output).toBe(true);
    expect(printKernel(bf16!).replace(/bf16/g, "f16").replace("copy_f16", "copy_bf16")).toBe(printKernel(f16!).replace("copy_f16", "copy_bf16"));
  });

  it("takes another helper as an argument (an epilogue's activation) and inlines it where called", () => {
    const acts = `function silu(x: number) { return x * T.sigmoid(x); }
function relu(x: number) { return Math.max(x, 0.0); }
function epilogue(dst: Tensor<"M, N", "f32">, act: (x: number) => number) { dst[0][0] = act(dst[0][1]); }`;
    expect(body(kernels(withHelpers(acts, `epilogue(C, silu);`))[0]!)).toBe("store C[0, 0] = C[0, 1] * sigmoid(C[0, 1])");
    expect(body(kernels(withHelpers(acts, `epilogue(C, relu);`))[0]!)).toBe("store C[0, 0] = max(C[0, 1], 0.0)");
  });

  it("may be used in the where constraint", () => {
    const [k] = kernels(`function smem(a: number, b: number) { return (a + b) * 2; }
export const k = T.kernel({ tune: { BM: [64, 128] }, where: ({ BM }) => smem(BM, BM) <= 300 }, function k(A: Tensor<"M", "f32">, { BM }: T.Config) {
  T.launch([1], { threads: 32 }, (bx) => { A[bx][0] = 0.0; });
});`.replace("A[bx][0]", "A[bx]"));
    expect(k!.where).toBeDefined();
  });

  it("sees module constants but not the caller's names", () => {
    expect(error(withHelpers(`function f(dst: Tensor<"M, N", "f32">) { dst[0][0] = T.cast(bx, "f32"); }`, `f(C);`)))
      .toMatch(/unknown identifier 'bx'/);
    const [k] = kernels(withHelpers(`const SCALE = 4.0;\nfunction f(dst: Tensor<"M, N", "f32">) { dst[0][0] = SCALE; }`, `f(C);`));
    expect(body(k!)).toBe("store C[0, 0] = 4.0");
  });

  it("rejects recursion, wrong arity, returns in statement helpers and non-returning value helpers", () => {
    expect(error(withHelpers(`function f(dst: Tensor<"M, N", "f32">) { f(dst); }`, `f(C);`))).toMatch(/recursion is not supported: 'f' is already being inlined \(f -> f\)/);
    expect(error(withHelpers(`function f(a: number, b: number) { return a + b; }`, `C[0][0] = f(1.0);`))).toMatch(/'f' takes 2 arguments, got 1/);
    expect(error(withHelpers(`function f(dst: Tensor<"M, N", "f32">) { dst[0][0] = 1.0; return; }`, `f(C);`))).toMatch(/called as a statement, so it cannot return/);
    expect(error(withHelpers(`function f(x: number) { const y = x; }`, `C[0][0] = f(1.0);`))).toMatch(/used as a value, so its body must end with 'return expr;'/);
    expect(error(withHelpers(`function f(x: number) { let y = x; return y; }`, `C[0][0] = f(1.0);`))).toMatch(/may only bind consts before its return/);
    expect(error(withHelpers(`function f(g: number) { return g; }\nfunction h(x: number) { return x; }`, `C[0][0] = f(h);`))).toMatch(/'g' is a function, not a scalar/);
  });

  it("binds a destructured helper's list: names it bound are taken as they are, other values become lets, a let copies", () => {
    const [k] = kernels(withHelpers(
      `function tile(g: number, rows: number, flip: boolean) {
  let r = g;
  if (flip) {
    r = rows - 1 - g;
  }
  const q = Math.floor(r / 4);
  return [q, (r % 4) * 16, A0(q)] as const;
}
function A0(q: number) { return q * 2; }`,
      `const [q, r0, twice] = tile(bx, 8, true);\nlet [w] = tile(bx + 1, 8, false);\nw += 1;\nC[q][r0] = 1.0 * (twice + w);`));
    expect(body(k!)).toBe([
      "var r: i32 = bx",
      "if (true) {\n  r = 8 - 1 - bx\n}",
      "let q: i32 = floordiv(r, 4)",
      "let r0: i32 = r % 4 * 16",
      "let twice: i32 = q * 2",
      "var r_1: i32 = bx + 1",
      "if (false) {\n  r_1 = 8 - 1 - (bx + 1)\n}",
      "let q_1: i32 = floordiv(r_1, 4)",
      "var w: i32 = q_1",
      "w = w + 1",
      "store C[q, r0] = 1.0 * cast<f32>(twice + w)",
    ].join("\n"));
    expect(verifyErrors(k!)).toEqual([]);
  });

  it("rejects a destructured helper that does not end in a list, returns early, returns too few values or spreads", () => {
    const call = `const [a, b] = f(1);\nC[a][b] = 0.0;`;
    expect(error(withHelpers(`function f(x: number) { return x; }`, call))).toMatch(/'f' is destructured, so its body must end with 'return \[a, b, \.\.\.\];'/);
    expect(error(withHelpers(`function f(x: number) { if (x > 0) { return [x, x]; } return [x, 0]; }`, call))).toMatch(/'f' is destructured, so only its last statement may return/);
    expect(error(withHelpers(`function f(x: number) { return [x]; }`, call))).toMatch(/2 names are destructured from 'f', which returns 1 value$/);
    expect(error(withHelpers(`function f(x: number) { const l = [x, x]; return [...l]; }`, call))).toMatch(/'f' must return a list of plain values/);
    expect(error(withHelpers(`function f(x: number) { return [x, x]; }`, `const [a, [b]] = f(1);\nC[a][b] = 0.0;`))).toMatch(/destructure 'f' into plain names/);
  });

  it("points errors inside a helper at the helper's line", () => {
    const msg = error(withHelpers(`function f(dst: Tensor<"M, N", "f32">) {\n  while (true) { }\n}`, `f(C);`));
    expect(msg).toMatch(/^3:3 while loops are not supported/);
  });
});
