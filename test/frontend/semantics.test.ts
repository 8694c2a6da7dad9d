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
import { randomTensor, rng } from "../../src/numeric/random.ts";
import { zeros } from "../../src/numeric/tensor.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");
// The two early MoE sketches live with the tests: dsl-examples/ holds kernels with check specs.
const sketches = new Set(["gate_softmax_top2.ts", "moe_grouped_gemm.ts"]);
const kernel = (file: string, name: string): Kernel =>
  parseKernels(join(sketches.has(file) ? join(import.meta.dirname, "kernels") : dir, file)).find((k) => k.name === name)!;
const dims = { M: [1, 80], N: [1, 80], K: [1, 70] } as const;

async function check(k: Kernel, spec: CheckSpec): Promise<void> {
  const backend = await backendFor("interp", { level: "tile", arch: "sm_90a" });
  const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 4, seed: 7, reproduce: "test" });
  expect(r.failures).toEqual([]);
  expect(r.passed).toBe(4);
}

describe("example kernels compute their references (CPU interpreter)", () => {
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

  // Its ids output is an integer tensor, which the checker's tolerance model does not
  // take yet, so this one drives the interpreter backend directly and compares by hand.
  it("gate_softmax_top2 (scalar code: loops, lets, if/else chains), tile and thread level", async () => {
    const k = kernel("gate_softmax_top2.ts", "gate_softmax_top2");
    for (const level of ["tile", "thread"] as const) {
      const backend = await backendFor("interp", { level, arch: "sm_90a" });
      for (const [T, E, BT, seed] of [[1, 1, 64, 1], [70, 8, 64, 2], [130, 33, 128, 3], [5, 2, 32, 4]] as const) {
        const logits = randomTensor("f32", [T, E], seed);
        const outs = await backend(k, { dims: { T, E }, config: { BT }, dataSeed: seed },
          { logits, weights: zeros("f32", [T, 2]), ids: zeros("i32", [T, 2]) }, {});
        const want = top2(logits.data, T, E);
        const at = `${level} T=${T} E=${E} BT=${BT}`;
        expect(Array.from(outs.ids!.data), at).toEqual(Array.from(want.ids));
        outs.weights!.data.forEach((x, i) => expect(Math.abs(x - want.weights[i]!), `${at} weights[${i}]`).toBeLessThan(1e-5));
      }
    }
  });
});

describe("moe_grouped_gemm: routing gather + per-expert GEMM (CPU interpreter)", () => {
  it("matches X[ids[r]] * W[expert[r]]^T row by row, pad rows 0, tile and thread level", async () => {
    const k = kernel("moe_grouped_gemm.ts", "moe_grouped_gemm");
    const config = { BM: 64, BN: 64, BK: 32, warps: 4 };
    for (const [tokens, K, E, N, seed] of [[5, 40, 3, 70, 1], [37, 33, 4, 20, 2]] as const) {
      const rand = rng(seed);
      // Each token picks 2 distinct experts; rows are grouped by expert, padded to BM.
      const rowsOf: number[][] = Array.from({ length: E }, () => []);
      for (let t = 0; t < tokens; t++) {
        const a = Math.floor(rand() * E);
        const b = (a + 1 + Math.floor(rand() * (E - 1))) % E;
        rowsOf[a]!.push(t);
        rowsOf[b]!.push(t);
      }
      const ids: number[] = [], expert: number[] = [];
      rowsOf.forEach((rows, e) => {
        if (!rows.length) return;
        const padded = Math.ceil(rows.length / config.BM) * config.BM;
        for (let i = 0; i < padded; i++) { ids.push(rows[i] ?? tokens); expert.push(e); }
      });
      const P = ids.length;
      const X = randomTensor("bf16", [tokens, K], seed * 3);
      const W = randomTensor("bf16", [E * N, K], seed * 5);
      const want = new Float64Array(P * N);
      for (let r = 0; r < P; r++)
        for (let n = 0; n < N; n++) {
          if (ids[r]! >= tokens) continue;
          let sum = 0;
          for (let c = 0; c < K; c++) sum += X.data[ids[r]! * K + c]! * W.data[(expert[r]! * N + n) * K + c]!;
          want[r * N + n] = sum;
        }
      for (const level of ["tile", "thread"] as const) {
        const backend = await backendFor("interp", { level, arch: "sm_90a" });
        const outs = await backend(k, { dims: { T: tokens, K, EN: E * N, P, N }, config, dataSeed: seed }, {
          X, W, ids: { dtype: "i32", shape: [P], data: Float64Array.from(ids) },
          expert: { dtype: "i32", shape: [P], data: Float64Array.from(expert) }, Y: zeros("bf16", [P, N]),
        }, {});
        const got = outs.Y!.data;
        const bad = [...want.keys()].filter((i) => !(Math.abs(got[i]! - want[i]!) <= 1e-2 * Math.abs(want[i]!) + 1e-2));
        expect(bad.slice(0, 3).map((i) => `Y[${Math.floor(i / N)}, ${i % N}] = ${got[i]}, want ${want[i]}`), `${level} T=${tokens} K=${K} E=${E} N=${N}`).toEqual([]);
      }
    }
  });
});

/** Softmax over each row, then the two largest (earlier index first on ties). */
function top2(logits: Float64Array, T: number, E: number): { weights: Float64Array; ids: Float64Array } {
  const weights = new Float64Array(T * 2), ids = new Float64Array(T * 2);
  for (let t = 0; t < T; t++) {
    const row = Array.from(logits.subarray(t * E, (t + 1) * E));
    const m = Math.max(...row);
    const p = row.map((x) => Math.exp(x - m));
    const sum = p.reduce((a, b) => a + b, 0);
    const order = p.map((x, e) => [x, e] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    // With one expert the second pick keeps the kernel's initial values (-1, expert 0).
    const second = order[1] ?? [-1, 0];
    weights.set([order[0]![0] / sum, second[0] / sum], t * 2);
    ids.set([order[0]![1], second[1]], t * 2);
  }
  return { weights, ids };
}
