// Emitted CUDA for the hand-written kernels, compared exactly with test/cuda/golden/.
// UPDATE_GOLDEN=1 npx vitest run test/cuda/golden.test.ts rewrites them (review the diff).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { KERNELS, loadKernel } from "./kernels.ts";

const dir = new URL("./golden/", import.meta.url);
const update = process.env.UPDATE_GOLDEN === "1";

function golden(file: string, actual: string): void {
  const url = new URL(file, dir);
  if (update) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(url, actual);
    return;
  }
  if (!existsSync(url)) throw new Error(`missing golden ${file}; run with UPDATE_GOLDEN=1 to create it`);
  expect(actual).toBe(readFileSync(url, "utf8"));
}

describe("emitted CUDA matches the goldens", () => {
  for (const name of KERNELS) {
    it(name, () => {
      const out = emitCuda(loadKernel(name));
      golden(`${name}.cu`, out.cu);
      golden(`${name}.h`, out.h);
    });
  }
});
