// Kernel files are ordinary TypeScript: they must type-check against src/dsl, and the
// declarations must catch the mistakes they claim to (rank, dtype names, indexing depth).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

describe("DSL type checking", () => {
  it("dsl-examples type-check with tsc --noEmit", async () => {
    const r = await execa(join(root, "node_modules/.bin/tsc"), ["--noEmit", "-p", "tsconfig.dsl.json"], { cwd: root, reject: false });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.exitCode).toBe(0);
  });

  it("rejects wrong ranks, unknown dtypes and wrong indexing depth", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tilemoe-dsl-"));
    writeFileSync(join(dir, "bad.ts"), `import { T, type Tensor } from "tilemoe";
export const k = T.kernel({ tune: { BM: [64] } }, function k(A: Tensor<"E, cdiv(K, 128)", "bf16">, { BM }: T.Config) {
  const [E, K, X] = A.shape;
  T.launch([E], { threads: 128 }, (bx) => {
    const acc = T.fragment([BM, 16], "f32");
    acc[0] = 1;
    A.tile([0], [1]);
    T.shared([16], "bf17");
    for (const [i, j] of T.parallel(4)) { acc[i][j] = bx; }
  });
});
`);
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true,
        allowImportingTsExtensions: true, skipLibCheck: true, types: [],
        paths: { tilemoe: [join(root, "src/dsl/index.ts")] },
      },
      files: ["bad.ts"],
    }));
    const r = await execa(join(root, "node_modules/.bin/tsc"), ["--noEmit", "-p", "."], { cwd: dir, reject: false });
    const lines = r.stdout.split("\n").filter((l) => l.startsWith("bad.ts("));
    const at = lines.map((l) => /^bad\.ts\((\d+),\d+\): error (TS\d+)/.exec(l)!.slice(1).join(":"));
    // The shape "E, cdiv(K, 128)" has rank 2 (the comma inside cdiv does not count).
    expect(at).toEqual(["3:TS2493", "6:TS2322", "7:TS2345", "8:TS2345", "9:TS2488"]);
  });
});
