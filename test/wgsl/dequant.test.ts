// The dequant statement on the WebGPU adapter: each thread dequantizes one packed word into
// a local array and stores it; results must equal src/quant/format.ts bit for bit (NaN
// included), for every format and slot order, into bf16 and f16 (native and emulated), with
// run-time scale and zero drawn from integers, fractions and specials. Plus the w4a16 GEMM
// from dsl-examples through the checker's webgpu backend.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CompileError, type DType } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { emitWgsl } from "../../src/codegen/wgsl/index.ts";
import { runCompiled } from "../../runtime/webgpu/host.ts";
import { dequantWord, QFORMATS, QORDERS, slotOrder, type QFormat, type QOrder, valuesPerWord } from "../../src/quant/format.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { gpu, gpuHandle, gpuIt } from "./gpu.ts";

const kernelText = (f: QFormat, o: QOrder, t: DType) => {
  const n = valuesPerWord(f);
  return `kernel dq(W: global u32[N], Y: global ${t}[N * ${n}] out, s: f32, z: f32)
  dims N
launch thread grid [cdiv(N, 64)] threads 64 blocks [bx] thread tx {
  alloc L: local ${t}[${n}]
  let i: i32 = bx * 64 + tx
  if (i < N) {
    dequant.${f}.${o} L[0] <- W[i] scale s zero z
    for j in serial(0, ${n}) {
      store Y[i * ${n} + j] = L[j]
    }
  }
}`;
};

const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

// Words: random, plus patterns with every nibble / byte extreme (e4m3 NaN 0x7f/0xff, -0 = 0x80).
const WORDS = [0, 0xffffffff, 0x80808080, 0x7f7f7f7f, 0x88888888, 0x77777777, 0x01234567, 0xfedcba98, 0x7fff80ff, 0x00ff7f80];
const special = fc.constantFrom(0, -0, 1, 8, 0.5, 1 / 3, 1e-3, 65504, 1e5, Infinity, -Infinity, NaN, 1e-8);

async function checkFormat(f: QFormat, o: QOrder, t: DType, f16: boolean) {
  const k = parseKernel(kernelText(f, o, t));
  const wk = emitWgsl(k, { f16, subgroups: false });
  const n = valuesPerWord(f);
  await fc.assert(fc.asyncProperty(
    fc.array(fc.nat({ max: 0xffffffff }), { minLength: 1, maxLength: 100 }),
    fc.oneof(fc.double({ min: -4, max: 4, noNaN: true }), special),
    fc.oneof(fc.integer({ min: -8, max: 255 }), fc.double({ min: -10, max: 10, noNaN: true }), special),
    async (random, s, z) => {
      const words = [...WORDS, ...random];
      const N = words.length;
      const r = await runCompiled(gpuHandle(), k, wk, { W: { dtype: "u32", shape: [N], data: Float64Array.from(words) } },
        { s: Math.fround(s), z: Math.fround(z) });
      const got = r.outputs.Y!.data;
      for (let i = 0; i < N; i++) {
        const want = dequantWord(f, o, words[i]!, Math.fround(z), Math.fround(s), t);
        for (let j = 0; j < n; j++)
          if (!same(got[i * n + j]!, want[j]!))
            throw new Error(`${f}.${o} -> ${t}: word 0x${words[i]!.toString(16)} value ${j}, scale ${s}, zero ${z}: got ${got[i * n + j]}, want ${want[j]}`);
      }
    }), { numRuns: 6 });
}

describe("dequant on WebGPU equals src/quant/format.ts exactly", () => {
  // The statement's slot orders (an mma-order word is decoded by the interleaved statement).
  for (const f of QFORMATS) for (const o of QORDERS.filter((x) => slotOrder(x) === x)) {
    gpuIt(`${f}.${o} -> bf16, f16 (shader-f16), f16 (emulated)`, async () => {
      await checkFormat(f, o, "bf16", false);
      if (gpu.ok && gpu.gpu.hasF16) await checkFormat(f, o, "f16", true);
      await checkFormat(f, o, "f16", false);
    }, 120_000);
  }
});

describe("dequant in the WGSL emitter", () => {
  it("rejects a destination that is not bf16 or f16", () => {
    const bad = kernelText("u4", "linear", "bf16").replace("alloc L: local bf16[8]", "alloc L: local f32[8]");
    expect(() => emitWgsl(parseKernel(bad), { f16: false, subgroups: false })).toThrow(CompileError);
    expect(() => emitWgsl(parseKernel(bad), { f16: false, subgroups: false })).toThrow(/bf16 or f16/);
  });

  it("rounds zero and scale to the destination dtype before use", () => {
    // 1 + 2^-10 is not a bf16: the shader must see it rounded (to 1.0), as format.ts does.
    expect(roundTo("bf16", 1 + 2 ** -10)).toBe(1);
    const w = emitWgsl(parseKernel(kernelText("u8", "linear", "bf16")), { f16: false, subgroups: false }).wgsl;
    expect(w).toMatch(/let _qz\d+: f32 = _round_bf16\(z\);/);
    expect(w).toMatch(/let _qs\d+: f32 = _round_bf16\(s\);/);
  });
});

describe("w4a16 GEMM (dsl-examples) through tilemoe check --backend webgpu", () => {
  const file = "dsl-examples/gemm_w4a16.ts";
  for (const name of ["gemm_w4a16", "gemm_w4a16_zp", "gemm_w4a16_bf16zp"]) {
    gpuIt(`${name}: 40 cases`, async () => {
      const k = parseKernels(file).find((x) => x.name === name)!;
      const spec = (await loadSpecs(file)).get(name)!;
      const backend = await backendFor("webgpu", { level: "thread", arch: "sm_80" });
      const config = { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, ...(name === "gemm_w4a16" ? { splitK: 1 } : {}) };
      const r = await checkKernel(k, { ...spec, dims: { ...spec.dims, M: [1, 20], N: [1, 70] } }, {
        backendName: "webgpu", backend, cases: 40, seed: 7, config, reproduce: `tilemoe check ${file} --kernel ${name} --backend webgpu`,
      });
      expect([...r.failures, ...(r.counterexample ? [r.counterexample] : [])]).toEqual([]);
      expect(r.passed).toBe(40);
    }, 180_000);
  }
});
