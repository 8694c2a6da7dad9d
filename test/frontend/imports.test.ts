// Helper functions imported from another module (src/frontend/modules.ts): kernel code calls
// them like the file's own helpers; their bodies see their own module's constants, T name and
// helpers; errors inside them and about the import name the right file and line.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { CompileError, type Kernel } from "../../src/ir/ir.ts";
import { printStmt } from "../../src/ir/print.ts";

const dir = mkdtempSync(join(tmpdir(), "tilemoe-imports-"));
mkdirSync(join(dir, "lib"));
const write = (name: string, text: string) => { writeFileSync(join(dir, name), text); return join(dir, name); };

// A helper module with its own T alias, a module constant and an internal helper.
write("lib/rows.ts", `import { T as TL, type Tensor } from "tilemoe";
const SCALE = 3.0;
function scaled(x: number) { return x * SCALE; }
/** Copies rows [row0, row0 + rows) of src, scaled, into dst. */
export function scaleRows(src: Tensor<"M, N", "f32">, dst: Tensor<"M, N", "f32">, row0: number, rows: number) {
  const [, N] = src.shape;
  const t = TL.shared([rows, N], src.dtype);
  TL.copy(src.tile([row0, 0], [rows, N]), t);
  for (const [i, j] of TL.parallel(rows, N)) { t[i][j] = scaled(t[i][j]); }
  TL.copy(t, dst.tile([row0, 0], [rows, N]));
}
export function twice(x: number, f: (y: number) => number) { return f(f(x)); }
export function broken(x: number) { return x + notDefinedAnywhere; }
function hidden(x: number) { return x; }
export const notAFunction = 4;
`);

const kernelFile = (imports: string, launch: string, before = "") => `import { T, type Tensor } from "tilemoe";
${imports}
${before}
export const k = T.kernel({ tune: { BM: [64] } }, function k(A: Tensor<"M, N", "f32">, C: Tensor<"M, N", "f32">, { BM }: T.Config) {
  const [M, N] = A.shape;
  T.launch([T.cdiv(M, BM)], { threads: 128 }, (bx) => {
${launch}
  });
});
`;

function parse(name: string, text: string): Kernel[] {
  return parseKernels(write(name, text));
}
function error(name: string, text: string): string {
  try {
    parse(name, text);
  } catch (e) {
    if (e instanceof CompileError) return e.diagnostics.map((d) => `${d.loc?.file}:${d.loc?.line}:${d.loc?.col} ${d.message}`).join("\n");
    throw e;
  }
  throw new Error("expected a CompileError");
}
const body = (k: Kernel) => k.launch.body.map((s) => printStmt(s)).join("\n");

describe("helpers imported from another module", () => {
  it("inlines an imported statement helper at home: its T alias, constants and own helpers", () => {
    const [k] = parse("a.ts", kernelFile(`import { scaleRows } from "./lib/rows.ts";`, `scaleRows(A, C, bx * BM, BM);`));
    expect(body(k!)).toBe([
      "alloc t: shared f32[BM, N]",
      "copy A[bx * BM : +BM, 0 : +N] -> t[0 : +BM, 0 : +N]",
      "for i, j in parallel(0, BM; 0, N) {\n  store t[i, j] = t[i, j] * 3.0\n}",
      "copy t[0 : +BM, 0 : +N] -> C[bx * BM : +BM, 0 : +N]",
    ].join("\n"));
  });

  it("takes an alias, an extensionless path, and a local helper passed into an imported one", () => {
    const [k] = parse("b.ts", kernelFile(`import { twice as thrice } from "./lib/rows";`,
      `for (const [i, j] of T.parallel(BM, N)) { C[bx * BM + i][j] = thrice(A[bx * BM + i][j], inc); }`,
      `const STEP = 0.5;\nfunction inc(y: number) { return y + STEP; }`));
    expect(body(k!)).toContain("store C[bx * BM + i, j] = A[bx * BM + i, j] + 0.5 + 0.5");
  });

  it("does not read a module nobody calls into (host-side imports stay host-side)", () => {
    const [k] = parse("c.ts", kernelFile(`import { gone } from "./lib/missing.ts";`, `C[bx][0] = A[bx][0];`));
    expect(k!.name).toBe("k");
  });

  it("names the module and the fix when the import cannot be used", () => {
    const file = join(dir, "d.ts");
    expect(error("d.ts", kernelFile(`import { gone } from "./lib/missing.ts";`, `C[bx][0] = gone(A[bx][0]);`)))
      .toBe(`${file}:7:12 'gone' is imported from './lib/missing.ts', which cannot be read as a kernel module: no such file`);
    expect(error("d.ts", kernelFile(`import { hidden } from "./lib/rows.ts";`, `C[bx][0] = hidden(A[bx][0]);`)))
      .toBe(`${file}:7:12 './lib/rows.ts' has no exported top-level function 'hidden' (kernel code can call imported functions only)`);
    expect(error("d.ts", kernelFile(`import { notAFunction } from "./lib/rows.ts";`, `C[bx][0] = notAFunction(A[bx][0]);`)))
      .toContain(`'./lib/rows.ts' has no exported top-level function 'notAFunction'`);
  });

  it("reports a mistake inside an imported helper at its own file and line", () => {
    expect(error("e.ts", kernelFile(`import { broken } from "./lib/rows.ts";`, `C[bx][0] = broken(A[bx][0]);`)))
      .toMatch(new RegExp(`^${join(dir, "lib/rows.ts").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:13:\\d+ .*notDefinedAnywhere`));
  });
});
