// The dequantizing GEMM examples end to end on the interpreter (lowered, thread level), and
// the corner cases the issue names, through a real kernel: ragged K across a group
// boundary, scales of every sign, infinite and NaN scales.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { dequantMatrix, packWeights } from "../../src/quant/pack.ts";
import { gemmNT } from "../../dsl-examples/gemm_w4a16.ts";

const EXAMPLES: [string, string[]][] = [
  ["dsl-examples/gemm_w4a16.ts", ["gemm_w4a16", "gemm_w4a16_mma", "gemm_w4a16_gs", "gemm_w4a16_mma_gs", "gemm_w4a16_zp", "gemm_w4a16_bf16zp", "gemm_w4a16_bf16out"]],
  ["dsl-examples/gemm_w8a16.ts", ["gemm_w8a16", "gemm_w8a16_f16_g64"]],
  ["dsl-examples/gemm_fp8w.ts", ["gemm_fp8w"]],
];

describe("quantized GEMM examples pass tilemoe check on the interpreter", () => {
  for (const [file, names] of EXAMPLES)
    it(file, async () => {
      const specs = await loadSpecs(file);
      const kernels = parseKernels(file);
      const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
      for (const name of names) {
        const k = kernels.find((x) => x.name === name)!;
        const r = await checkKernel(k, specs.get(name)!, { backendName: "interp", backend, cases: 2, seed: 11, reproduce: "x" });
        expect(r, `${name}: ${r.failures.join("\n")}`).toMatchObject({ passed: 2, failed: 0 });
      }
    });
});

describe("corner cases through gemm_w4a16", () => {
  const [k] = parseKernels("dsl-examples/gemm_w4a16.ts").filter((x) => x.name === "gemm_w4a16");
  const M = 3, N = 5, K = 136; // 136 = 128 + 8: the second group is one word, the tile is ragged
  const G = Math.ceil(K / 128);
  const tensor = (dtype: TensorValue["dtype"], shape: number[], data: ArrayLike<number>): TensorValue =>
    ({ dtype, shape, data: Float64Array.from(data, (x) => roundTo(dtype, x)) });
  // Every nibble value appears in every row; row n's values are shifted by n.
  const q = Array.from({ length: N * K }, (_, i) => (i + Math.floor(i / K)) % 16);
  const words = packWeights(q, N, K, "u4", "interleaved").words;
  const A = tensor("bf16", [M, K], Array.from({ length: M * K }, (_, i) => ((i * 37) % 19 - 9) / 8));

  async function run(scales: number[], splitK = 1): Promise<{ got: Float64Array; want: Float64Array }> {
    const S = tensor("bf16", [N, G], scales);
    const Wt = tensor("u32", [N, Math.ceil(K / 8)], words);
    const C = tensor("f32", [M, N], new Array(M * N).fill(1234));
    const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
    const cfg = { BM: 16, BN: 64, BK: 64, stages: 3, warps: 4, splitK };
    const out = await backend(k!, { dims: { M, N, K }, config: cfg, dataSeed: 0 }, { A, W: Wt, S, C }, {});
    const Wd = dequantMatrix(words, N, K, { format: "u4", order: "interleaved", scales: S.data, zeros: 8, group: 128 }, "bf16");
    return { got: out.C!.data, want: gemmNT(A, Wd, N) };
  }

  // splitK 2: K's 3 tiles of 64 split 2 + 1 (the second block's second tile lies past K);
  // splitK 4: one tile per block and a block with nothing to add.
  it.each([1, 2, 4])("scales of both signs and zero, across the group boundary at ragged K (splitK %i)", async (splitK) => {
    const { got, want } = await run([0.5, -0.25, -1, 2, 0, 0.125, -0, 3, 1, -1], splitK);
    for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) * 2 ** -7 + 1e-6);
    // Row 2 has scale 0 in its first group, so only its last 8 columns count: a group bug shows here.
    expect(want[2]).not.toBe(0);
  });

  it.each([1, 2])("infinite and NaN scales propagate as IEEE says (splitK %i)", async (splitK) => {
    // n=0: +inf in group 0 (its row has weights of both signs: +inf + -inf = NaN);
    // n=1: NaN in group 1; n=2: -inf in the ragged group only; n=3, 4 finite.
    const { got, want } = await run([Infinity, 1, 1, NaN, 1, -Infinity, 1, 1, 0.5, 0.5], splitK);
    for (let i = 0; i < got.length; i++) {
      if (Number.isNaN(want[i]!)) expect(got[i], `C[${i}]`).toBeNaN();
      else if (!Number.isFinite(want[i]!)) expect(got[i], `C[${i}]`).toBe(want[i]);
      else expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(Math.abs(want[i]!) * 2 ** -7 + 1e-6);
    }
    expect(want.some((x) => Number.isNaN(x))).toBe(true);
    // Rows with finite scales stay finite: the NaN must not leak across rows or groups.
    for (let m = 0; m < M; m++) for (const n of [3, 4]) expect(Number.isFinite(got[m * N + n]!)).toBe(true);
  });
});

describe("the mma order through gemm_w4a16_mma", () => {
  // One integer matrix packed in both orders (bench/w4a16.ts does the same on the GPU): the two
  // kernels must give the float64 reference of the same dequantized weights, and each other's
  // result bit for bit (the same products in the same mma order), at small ragged shapes.
  const kernels = parseKernels("dsl-examples/gemm_w4a16.ts");
  const byName = (n: string) => kernels.find((x) => x.name === n)!;
  it("agrees with gemm_w4a16 on the same integers and with the float64 reference", async () => {
    const backend = await backendFor("interp", { level: "thread", arch: "sm_90a" });
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 300 }),
      fc.constantFrom(64, 128), fc.constantFrom(1, 4), fc.integer({ min: 0, max: 1000 }),
      async (M, N, K, BK, splitK, seed) => {
        const G = Math.ceil(K / 128);
        const q = Array.from({ length: N * K }, (_, i) => (i * 7 + seed * 13 + (i >> 3)) % 16);
        const A = Array.from({ length: M * K }, (_, i) => roundTo("bf16", (((i + seed) * 37) % 23 - 11) / 8));
        const S = Array.from({ length: N * G }, (_, i) => roundTo("bf16", ((i * 5 + seed) % 9 - 4) / 16));
        const cfg = { BM: 16, BN: 64, BK, stages: 2, warps: 4, splitK };
        const outs = [];
        for (const order of ["interleaved", "mma"] as const) {
          const p = packWeights(q, N, K, "u4", order);
          const t = (dtype: TensorValue["dtype"], shape: number[], data: ArrayLike<number>): TensorValue => ({ dtype, shape, data: Float64Array.from(data) });
          const out = await backend(byName(order === "mma" ? "gemm_w4a16_mma" : "gemm_w4a16"), { dims: { M, N, K }, config: cfg, dataSeed: 0 },
            { A: t("bf16", [M, K], A), W: t("u32", [N, p.wordsPerRow], p.words), S: t("bf16", [N, G], S), C: t("f32", [M, N], new Array(M * N).fill(5)) }, {});
          outs.push(out.C!.data);
        }
        expect([...outs[1]!]).toEqual([...outs[0]!]);
        const Wd = dequantMatrix(packWeights(q, N, K, "u4", "mma").words, N, K, { format: "u4", order: "mma", scales: S, zeros: 8, group: 128 }, "bf16");
        const want = gemmNT({ dtype: "bf16", shape: [M, K], data: Float64Array.from(A) }, Wd, N);
        for (let i = 0; i < want.length; i++) expect(Math.abs(outs[1]![i]! - want[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i]!)));
      }), { numRuns: 10, seed: 3 });
  }, 240_000);
});

describe("T.dequant without scales", () => {
  const file = "dsl-examples/gemm_w4a16.ts";
  const src = readFileSync(file, "utf8");
  it("needs a group only with scales or a zero-point tensor: the error names the call and the option", () => {
    const bad = src.replace(/order: "interleaved", scales: S, zeros: 8, group: 128, at/, 'order: "interleaved", scales: S, zeros: 8, at');
    expect(bad).not.toBe(src);
    expect(() => parseKernels(file, bad)).toThrow(/dequant needs the option 'group' \(the values of K that share one scale\)/);
    // Without scales and with a literal zero point, none is needed (the _gs kernels parse).
    expect(parseKernels(file).map((k) => k.name)).toEqual(expect.arrayContaining(["gemm_w4a16_gs", "gemm_w4a16_mma_gs"]));
  });

  it("the tile holds q - 8 exactly: every 4-bit value through gemm_w4a16_mma_gs with A = 1, scales 1 (tile level and sm_90a thread level)", async () => {
    const [k] = parseKernels(file).filter((x) => x.name === "gemm_w4a16_mma_gs");
    const M = 2, N = 16, K = 200, G = Math.ceil(K / 128);
    // Row n: nibble values (n + k) % 16, so every row and column sees every value.
    const q = Array.from({ length: N * K }, (_, i) => (Math.floor(i / K) + (i % K)) % 16);
    const { words, wordsPerRow } = packWeights(q, N, K, "u4", "mma");
    const t = (dtype: TensorValue["dtype"], shape: number[], data: ArrayLike<number>): TensorValue => ({ dtype, shape, data: Float64Array.from(data) });
    const want = Array.from({ length: M * N }, (_, i) => { let s = 0; for (let kk = 0; kk < K; kk++) s += q[(i % N) * K + kk]! - 8; return s; });
    for (const level of ["tile", "thread"] as const) {
      const backend = await backendFor("interp", { level, arch: "sm_90a" });
      const out = await backend(k!, { dims: { M, N, K }, config: { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, splitK: 2 }, dataSeed: 0 },
        { A: t("bf16", [M, K], new Array(M * K).fill(1)), W: t("u32", [N, wordsPerRow], words), S: t("bf16", [N, G], new Array(N * G).fill(1)), C: t("f32", [M, N], new Array(M * N).fill(7)) }, {});
      expect([...out.C!.data], level).toEqual(want);
    }
  });
});
