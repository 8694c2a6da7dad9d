// What the front end produces for the examples computes what the examples mean: the
// tile-level IR is run on the CPU interpreter against float64 references (built here, so
// the example files stay pure DSL). Small shapes with ragged edges.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { backendFor } from "../../src/check/backends.ts";
import { biasAddRef, gemmRef, reluRef } from "../../src/check/reference.ts";
import { checkKernel } from "../../src/check/run.ts";
import { type CheckSpec, defineCheck } from "../../src/check/spec.ts";
import type { Kernel } from "../../src/ir/ir.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");
const kernel = (file: string, name: string): Kernel => parseKernels(join(dir, file)).find((k) => k.name === name)!;
const dims = { M: [1, 80], N: [1, 80], K: [1, 70] } as const;

async function check(k: Kernel, spec: CheckSpec): Promise<void> {
  const backend = await backendFor("interp", { level: "tile", arch: "sm_90a" });
  const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 4, seed: 7, reproduce: "test" });
  expect(r.failures).toEqual([]);
  expect(r.passed).toBe(4);
}

describe("example kernels compute their references (tile-level interpreter)", () => {
  it("gemm_f32", async () => {
    await check(kernel("gemm_f32.ts", "gemm_f32"), defineCheck({
      kernel: "gemm_f32", dims,
      reference: ({ A, B }) => ({ C: gemmRef(A!, B!, { transB: true }).data }),
      reduction: ({ K }) => K!,
    }));
  });

  it("gemm_bf16 and gemm_f16", async () => {
    for (const name of ["gemm_bf16", "gemm_f16"]) {
      await check(kernel("gemm.ts", name), defineCheck({
        kernel: name, dims,
        reference: ({ A, B }) => ({ C: gemmRef(A!, B!, { transB: true }).data }),
        reduction: ({ K }) => K!,
      }));
    }
  });

  it("gemm_relu_bias", async () => {
    await check(kernel("gemm_relu_bias.ts", "gemm_relu_bias"), defineCheck({
      kernel: "gemm_relu_bias", dims,
      reference: ({ A, B, bias }) => ({ C: reluRef(biasAddRef(gemmRef(A!, B!, { transB: true }), bias!)).data }),
      reduction: ({ K }) => K!,
    }));
  });
});
