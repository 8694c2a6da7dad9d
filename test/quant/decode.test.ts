// Every quantized example at decode configs (BM 16: the register-fused dequant-gemm, with the
// per-tile scales, the whole-tile / ragged copies of the k-step loop and the 128-bit word
// reads of src/passes/fuse-dequant-gemm.ts), lowered to thread level for sm_80 and sm_90a
// and run in the interpreter against the float64 references. Drawn shapes have ragged N and
// K (K not a multiple of BK, group boundaries of 128 inside and across tiles).
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { packWeights } from "../../src/quant/pack.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";
import { lower, SM80, SM90A, type Target } from "../../src/passes/pipeline.ts";
import { printKernel } from "../../src/ir/print.ts";
import type { Kernel } from "../../src/ir/ir.ts";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { mainLoopStats } from "../../src/driver/ptx-loop.ts";

type Cfg = Record<string, number>;
const decode = (BK: number, more: Cfg = {}): Cfg => ({ BM: 16, BN: 64, BK, stages: 2, warps: 4, ...more });
const CASES: [string, string, Cfg[]][] = [
  ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16", [decode(64, { splitK: 1 }), decode(128, { splitK: 4 }), decode(64, { splitK: 8 })]],
  ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16_mma", [decode(64, { splitK: 1 }), decode(128, { splitK: 4 }), decode(64, { splitK: 8 })]],
  ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16_gs", [decode(64, { splitK: 1 }), decode(128, { splitK: 4 })]],
  ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16_mma_gs", [decode(64, { splitK: 1 }), decode(128, { splitK: 4 }), decode(64, { splitK: 8 })]],
  ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16_zp", [decode(64), decode(128)]],
  ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16_bf16zp", [decode(64), decode(128)]],
  ["dsl-examples/gemm_w8a16.ts", "gemm_w8a16", [decode(64), decode(128)]],
  ["dsl-examples/gemm_w8a16.ts", "gemm_w8a16_f16_g64", [decode(64), decode(128)]],
  ["dsl-examples/gemm_fp8w.ts", "gemm_fp8w", [decode(64)]],
];

function sameAsSm80(k: Kernel, config: Cfg): boolean {
  const text = (target: Target) => printKernel(lower(k, config, target)).split("\n").filter((l) => !l.includes("griddepcontrol")).join("\n");
  return text(SM90A) === text(SM80);
}

describe("quantized examples at decode configs (register-fused), interpreter vs float64", () => {
  for (const [file, name, configs] of CASES)
    for (const arch of ["sm_80", "sm_90a"] as const)
      it(arch === "sm_80" ? `${name} sm_80` : `${name} sm_90a: lowers as sm_80 but for the PDL wait, or passes itself`, async () => {
        const k = parseKernels(file).find((x) => x.name === name)!;
        const spec = (await loadSpecs(file)).get(name)!;
        const backend = await backendFor("interp", { level: "thread", arch });
        for (const config of configs) {
          // At these configs sm_90a lowers as sm_80 does but for its PDL wait (griddepcontrol,
          // a no-op here): the same program need not run twice (npm test's budget). Where the
          // two ever differ, sm_90a runs too.
          if (arch === "sm_90a" && sameAsSm80(k, config)) continue;
          // Drawn shapes, and a pinned one: N ragged past BN, K ragged past BK, 2 groups of 128
          // (7 of 32, 4 of 64) and tiles that straddle none of them (BK divides the group).
          for (const shape of [undefined, { M: 3, N: 70, K: 200 }]) {
            const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 2, seed: 5, config, shape, reproduce: `tilemoe check ${file} --kernel ${name}` });
            expect({ config, shape, failures: r.failures }).toEqual({ config, shape, failures: [] });
          }
        }
      }, 120_000);

  // The gathered up-projection and the down-projection at decode tiles: K = 136 and N = 136
  // put a group boundary (128) inside the second, ragged K tile.
  const MOE: [string, string, Record<string, number>][] = [
    ["dsl-examples/moe_gemm_up_w4a16.ts", "moe_gemm_up_w4a16", { T: 3, K: 136, N: 10, E: 4, TOPK: 4, skew: 0, BS: 16, NB: 8 }],
    ["dsl-examples/moe_gemm_down_w4a16.ts", "moe_gemm_down_w4a16", { T: 1, N: 136, H: 20, E: 4, TOPK: 2, skew: 0, BS: 4, NB: 3 }],
  ];
  for (const [file, name, shape] of MOE)
    it(`${name} sm_80, BK 64 and 128`, async () => {
      const k = parseKernels(file).find((x) => x.name === name)!;
      const spec = (await loadSpecs(file)).get(name)!;
      const backend = await backendFor("interp", { level: "thread", arch: "sm_80" });
      const E2N = shape.E! * 2 * (shape.N ?? 0), EH = shape.E! * (shape.H ?? 0);
      for (const config of [decode(64), decode(128)]) {
        const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 1, seed: 42, config, shape: { ...shape, E2N, EH }, reproduce: `tilemoe check ${file} --kernel ${name}` });
        expect({ config, failures: r.failures }).toEqual({ config, failures: [] });
      }
    }, 120_000);
});

describe("the K mask at decode configs", () => {
  // Every weight is q - 8 = 1 and every activation 1, the ragged group's scale +inf: C is
  // +inf exactly. Values past K (zero-filled words: q = 0, weight -inf, activation 0) must be
  // masked to 0, or 0 * -inf = NaN leaks in: a tile wrongly taken as whole shows here.
  const kernels = parseKernels("dsl-examples/gemm_w4a16.ts");
  const cases = [[136, 64, 1], [132, 64, 1], [136, 128, 1], [200, 64, 8], [130, 128, 4]] as const;
  // The partial-sum kernels (_gs) too: their fold must see the same K as the values (ones masked alike).
  it.each(cases.flatMap((c) => (["interleaved", "mma"] as const).flatMap((o) => ["", "_gs"].map((gs) => [...c, o, gs] as const))))("K %i, BK %i, splitK %i, order %s%s: +inf, not NaN", async (K, BK, splitK, order, gs) => {
    const k = kernels.find((x) => x.name === (order === "mma" ? "gemm_w4a16_mma" : "gemm_w4a16") + gs);
    const M = 2, N = 9, G = Math.ceil(K / 128);
    const q = new Array(N * K).fill(9);
    const { words, wordsPerRow } = packWeights(q, N, K, "u4", order);
    const t = (dtype: TensorValue["dtype"], shape: number[], data: ArrayLike<number>): TensorValue => ({ dtype, shape, data: Float64Array.from(data) });
    const S = t("bf16", [N, G], Array.from({ length: N * G }, (_, i) => (i % G === G - 1 ? Infinity : 0.5)));
    const backend = await backendFor("interp", { level: "thread", arch: "sm_90a" });
    const out = await backend(k!, { dims: { M, N, K }, config: decode(BK, { splitK }), dataSeed: 0 },
      { A: t("bf16", [M, K], new Array(M * K).fill(1)), W: t("u32", [N, wordsPerRow], words), S, C: t("f32", [M, N], new Array(M * N).fill(7)) }, {});
    expect([...out.C!.data]).toEqual(new Array(M * N).fill(Infinity));
  });
});

const nvcc = await nvccAvailable();
if (!nvcc) console.warn("SKIPPED nvcc part of test/quant/decode.test.ts: nvcc not found on PATH");
describe.skipIf(!nvcc)("decode configs compile (nvcc, sm_80 and sm_90a): no spills, the per-tile work stays per tile", () => {
  const BUILDS: [string, string, Cfg, "sm_80" | "sm_90a"][] = [
    ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16", decode(64, { splitK: 8 }), "sm_90a"],
    ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16_mma", decode(128, { splitK: 8 }), "sm_90a"],
    ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16_mma", decode(64, { splitK: 4 }), "sm_80"],
    ["dsl-examples/gemm_w4a16.ts", "gemm_w4a16_zp", decode(128), "sm_80"],
    ["dsl-examples/gemm_w8a16.ts", "gemm_w8a16", decode(64), "sm_90a"],
    ["dsl-examples/moe_gemm_up_w4a16.ts", "moe_gemm_up_w4a16", decode(64), "sm_80"],
    ["dsl-examples/gemm_fp8w.ts", "gemm_fp8w", decode(64), "sm_90a"],
  ];
  for (const [file, name, config, arch] of BUILDS)
    it(`${name} ${arch} ${JSON.stringify(config)}`, async () => {
      const k = parseKernels(file).find((x) => x.name === name)!;
      const out = emitCuda(lower(k, config, arch === "sm_80" ? SM80 : SM90A));
      const res = await compileCuda(out.cu, { arch, outputs: ["cubin", "ptx"] });
      const r = res.resources[out.kernelSymbol]!;
      expect({ spills: r.spillStores + r.spillLoads }).toEqual({ spills: 0 });
      const loop = mainLoopStats(res.ptx!)!;
      // The scale (bf16 -> f32 for the masked read) is converted once per n-tile and k tile:
      // 2 n-tiles per warp (BN 64, 4 warps), twice for the up-projection's two gemms and for
      // fp8w's two group slices (group 32, BK 64).
      const cvt = res.ptx!.split("\n").slice(loop.lines[0] - 1, loop.lines[1]).filter((l) => l.includes("cvt.f32.bf16")).length;
      expect(cvt).toBeLessThanOrEqual(name === "moe_gemm_up_w4a16" || name === "gemm_fp8w" ? 4 : 2);
      // 4-bit: 128-bit word reads shared by the 4 lanes of a group; the mma order: each lane its own 32-bit word.
      if (name === "gemm_w4a16_mma") expect({ v4: loop.byOp["ld.shared.v4"] ?? 0, u32: loop.byOp["ld.shared"] ?? 0 }).toEqual({ v4: 0, u32: 2 * 2 * ((config.BK! / 32) as number) });
      else if (name.includes("w4a16")) expect(loop.byOp["ld.shared.v4"]).toBeGreaterThan(0);
      expect(res.ptx).not.toMatch(/ld\.local|st\.local/);
    }, 240_000);
});

describe.skipIf(!nvcc)("the partial-sum decode loop (nvcc, PTX): no packed bf16 math per pair, fewer instructions than the scaled loop", () => {
  const BUILDS: [string, Cfg, "sm_80" | "sm_90a"][] = [
    ["gemm_w4a16_mma", decode(128, { splitK: 4 }), "sm_90a"],
    ["gemm_w4a16_mma", decode(64, { splitK: 8 }), "sm_80"],
    ["gemm_w4a16", decode(128, { splitK: 4 }), "sm_90a"],
  ];
  const file = "dsl-examples/gemm_w4a16.ts";
  const kernels = parseKernels(file);
  const build = async (name: string, config: Cfg, arch: "sm_80" | "sm_90a") => {
    const out = emitCuda(lower(kernels.find((x) => x.name === name)!, config, arch === "sm_80" ? SM80 : SM90A));
    const res = await compileCuda(out.cu, { arch, outputs: ["cubin", "ptx"] });
    return { r: res.resources[out.kernelSymbol]!, loop: mainLoopStats(res.ptx!)!, ptx: res.ptx! };
  };
  for (const [name, config, arch] of BUILDS)
    it(`${name}_gs against ${name}, ${arch} ${JSON.stringify(config)}`, async () => {
      const gs = await build(`${name}_gs`, config, arch), scaled = await build(name, config, arch);
      expect({ spills: gs.r.spillStores + gs.r.spillLoads }).toEqual({ spills: 0 });
      expect(gs.ptx).not.toMatch(/ld\.local|st\.local/);
      // The scaled loop: a packed subtract and multiply per pair; the partial-sum loop none.
      expect(scaled.loop.hot.byOp["x2 math"]).toBeGreaterThan(0);
      expect(gs.loop.byOp["x2 math"] ?? 0).toBe(0);
      // Per k-step one more mma (the row sums, one m-tile) beside the n-tiles': 4 warps over BN 64.
      const nTiles = config.BN! / 8 / 4;
      expect(gs.loop.hot.byOp.mma! / (scaled.loop.hot.byOp.mma! / nTiles)).toBe(nTiles + 1);
      // Per mma of the gemm itself, the hot block is at least 15% shorter.
      const per = (x: typeof gs.loop.hot, mmas: number) => x.total / mmas;
      expect(per(gs.loop.hot, gs.loop.hot.byOp.mma! * nTiles / (nTiles + 1))).toBeLessThan(0.85 * per(scaled.loop.hot, scaled.loop.hot.byOp.mma!));
    }, 240_000);
});
