// The register-A wgmma for T.dequant + gemm (src/passes/dequant-wgmma.ts): IR text in -> out,
// when the lowering takes it, the lowered kernel against its tile-level form in the
// interpreter (every packed format, ragged shapes, infinite scales; the DSL examples at
// configs that take it), and the PTX rules the interpreter enforces (a wgmma.fence after the
// A registers are written, no write of them while their wgmma is in flight).
// UPDATE_GOLDEN=1 rewrites test/wgmma/golden/dequant_wgmma.{ir,cu} (review the diff).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Kernel, Stmt, TunableValue } from "../../src/ir/ir.ts";
import { walkStmts } from "../../src/ir/expr.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { runKernel } from "../../src/interp/index.ts";
import { zeros, type TensorValue } from "../../src/numeric/tensor.ts";
import { rng } from "../../src/numeric/random.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { SM90A, cudaTarget, lower, type Target } from "../../src/passes/pipeline.ts";
import { lowerChecked, tileLevel } from "../passes/harness.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { parseDequant } from "../../src/cli/args.ts";
import { rsSrc, type RsShape } from "./dequant-src.ts";
import { e2e, example } from "./dequant-e2e.ts";

const CP = cudaTarget("sm_90a", "wgmma", "cp.async");
const TMA = cudaTarget("sm_90a", "wgmma", "tma");
const RS: Target = { ...CP, dequantWgmma: true };
const WS = cudaTarget("sm_90a", "wgmma", "tma", undefined, true);
const update = process.env.UPDATE_GOLDEN === "1";

function golden(file: string, actual: string): void {
  const url = new URL(`./golden/${file}`, import.meta.url);
  if (update) { writeFileSync(url, actual); return; }
  if (!existsSync(url)) throw new Error(`missing golden ${file}; run with UPDATE_GOLDEN=1 to create it`);
  expect(actual).toBe(readFileSync(url, "utf8"));
}

const stmts = (k: Kernel, kind: Stmt["k"]): Stmt[] => {
  const out: Stmt[] = [];
  walkStmts(k.launch.body, (s) => { if (s.k === kind) out.push(s); });
  return out;
};
const regA = (k: Kernel) => stmts(k, "wgmma").filter((s) => s.k === "wgmma" && "regs" in s.a).length;
const allocs = (k: Kernel) => stmts(k, "alloc").map((s) => (s.k === "alloc" ? s.buf.name : ""));
const SMALL: RsShape = { BM: 16, BN: 64, BK: 32, threads: 128 };

describe("register-A dequant wgmma lowering", () => {
  it("IR text in -> out (u4, BM 16, BN 64, BK 32, one warpgroup, cp.async pipeline)", () => {
    const k = lowerChecked(parseKernel(rsSrc("u4", 8, SMALL)), {}, RS);
    const text = printKernel(k);
    golden("dequant_wgmma.ir", text);
    // The golden parses back to itself (the register operand has a text form).
    expect(printKernel(parseKernel(text))).toBe(text);
    expect(allocs(k)).not.toContain("Bs");
    expect(text).toContain("layout wgmma_acc_t(1, 1)");
    expect(text).toMatch(/wgmma\.m64n16k16\.bf16 acc\[0\] \+= aq\[kk % 2 \* 8\], As\[k % 3 \* 512 \+ kk \* 16\] sw64 lbo 16 sbo 512/);
    // Group 16 is a whole k-step: one scale per row and k-step, read once per tile.
    expect(text).toMatch(/store dqs\[nj \* 2 \+ sl\] = cast<bf16>\(s\)/);
    expect(text).toMatch(/dequant\.u4\.interleaved bq\[0\] <- wq\[h\] scale cast<f32>\(dqs\[rh \* 2 \+ kk\]\) zero 3\.0 pair t/);
  });

  it("emits CUDA with the register operand {a0..a3} (golden)", () => {
    const out = emitCuda(lower(parseKernel(rsSrc("u4", 8, SMALL)), {}, RS));
    golden("dequant_wgmma.cu", out.cu);
    expect(out.cu).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n16k16\.f32\.bf16\.bf16 \{%0, [^}]*\}, \{%8, %9, %10, %11\}, %12, p, 1, 1, 0;/);
  });

  it("8-bit words: word 4 kk + 2h + t/2, pair t & 1, no 64-bit word pair", () => {
    const text = printKernel(lower(parseKernel(rsSrc("u8", 4, SMALL)), {}, RS));
    expect(text).toContain("let w: i32 = kk * 4 + h * 2 + (t >> 1)");
    // The scale of the k-step's group, read once per tile into dqs (dequant-instance.ts).
    expect(text).toMatch(/dequant\.u8\.interleaved bq\[0\] <- Ws\[.*\] scale cast<f32>\(dqs\[rh \* 2 \+ kk\]\) zero 3\.0 pair t & 1/);
    expect(text).not.toContain("wq");
  });

  it("one k-step per tile (BK 16): the gemm first waits for the last step's registers", () => {
    const k = lower(parseKernel(rsSrc("u4", 8, { ...SMALL, BK: 16 })), {}, RS);
    const loop = stmts(k, "for").find((s) => s.k === "for" && s.vars[0] === "k" && s.kind === "serial") as Extract<Stmt, { k: "for" }>;
    const waits: number[] = [];
    walkStmts(loop.body, (s) => { if (s.k === "wgmma_wait") waits.push(s.n); });
    expect(waits).toEqual([0, 1]);
  });

  it("two warpgroups own 64 weight rows each; BM 8 is wgmma n 8", () => {
    const text = printKernel(lower(parseKernel(rsSrc("u4", 8, { BM: 8, BN: 128, BK: 32, threads: 256 })), {}, RS));
    expect(text).toContain("layout wgmma_acc_t(2, 1)");
    expect(text).toContain("let wrow: i32 = tx / 128 * 64 + tx % 128 / 32 * 16 + grp");
    expect(text).toMatch(/wgmma\.m64n8k16\.bf16 acc\[0\] \+= aq/);
  });
});

describe("where the register-A wgmma is chosen", () => {
  const g = example("gemm_w4a16.ts", "gemm_w4a16");
  const at = (cfg: Record<string, TunableValue>, t: Target) => lower(g, { stages: 3, splitK: 1, ...cfg }, t);
  it("sm_90a, 64 rows and more: taken (visible in the IR: wgmma with a register A, no bf16 tile)", () => {
    for (const cfg of [{ BM: 64, BN: 64, BK: 64, warps: 4 }, { BM: 128, BN: 128, BK: 64, warps: 8 }, { BM: 128, BN: 128, BK: 64, warps: 4 }]) {
      const k = at(cfg, SM90A);
      expect(regA(k), JSON.stringify(cfg)).toBeGreaterThan(0);
      expect(allocs(k)).not.toContain("Bs");
    }
  });
  it("below 64 rows: the mma.sync fusion unless --dequant wgmma or mma = \"wgmma\"", () => {
    const cfg = { BM: 16, BN: 64, BK: 64, warps: 4 };
    expect(regA(at(cfg, SM90A))).toBe(0);
    expect(stmts(at(cfg, SM90A), "mma").length).toBeGreaterThan(0);
    expect(regA(at(cfg, { ...SM90A, dequantWgmma: true }))).toBeGreaterThan(0);
    expect(regA(lower({ ...g, tunables: { ...g.tunables, mma: ["wgmma"] } }, { ...cfg, stages: 3, splitK: 1 }, SM90A))).toBeGreaterThan(0);
  });
  it("--dequant: wgmma or auto, sm_90a only, a usage error naming the flag otherwise", () => {
    expect(parseDequant(undefined, "sm_90a")).toBe(false);
    expect(parseDequant("auto", "sm_80")).toBe(false);
    expect(parseDequant("wgmma", "sm_90a")).toBe(true);
    expect(() => parseDequant("sync", "sm_90a")).toThrow(/--dequant takes wgmma or auto, got 'sync'/);
    expect(() => parseDequant("wgmma", "sm_80")).toThrow(/--dequant wgmma is for --arch sm_90a, got sm_80/);
  });
  it("not taken: mma = \"mma_sync\", sm_80, BK 128 (no wgmma swizzle for 256-byte rows), BN not 64 per warpgroup", () => {
    expect(regA(lower({ ...g, tunables: { ...g.tunables, mma: ["mma_sync"] } }, { BM: 64, BN: 64, BK: 64, warps: 4, stages: 3, splitK: 1 }, SM90A))).toBe(0);
    expect(regA(at({ BM: 64, BN: 64, BK: 64, warps: 4 }, cudaTarget("sm_80")))).toBe(0);
    expect(regA(at({ BM: 64, BN: 128, BK: 128, warps: 4 }, SM90A))).toBe(0);
    expect(regA(at({ BM: 64, BN: 64, BK: 64, warps: 8 }, SM90A))).toBe(0);
  });
});

describe("register-A wgmma in the interpreter, against the tile-level kernel", () => {
  // Full-range words, scales of both signs, an infinite one, and ragged M, N, K: the masked
  // tail of K must stay 0 and not become NaN.
  function compare(fmt: string, per: number, shape: RsShape, M: number, N: number, K: number, seed: number) {
    const src = parseKernel(rsSrc(fmt, per, shape));
    const tile = tileLevel(src, {}, RS), thread = lowerChecked(src, {}, RS);
    expect(regA(thread)).toBeGreaterThan(0);
    const KW = Math.ceil(K / per), G = Math.ceil(K / 16);
    const r = rng(seed);
    const t = (dtype: TensorValue["dtype"], dims: number[], f: (i: number) => number): TensorValue =>
      ({ dtype, shape: dims, data: Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => roundTo(dtype, f(i))) });
    const ins = {
      A: t("bf16", [M, K], () => r() * 2 - 1),
      W: t("u32", [N, KW], () => Math.floor(r() * 2 ** 32)),
      S: t("bf16", [N, G], (i) => (i === 1 ? Infinity : (r() - 0.5) / 4)),
    };
    const [want, got] = [tile, thread].map((k) => {
      const C = zeros("f32", [M, N]);
      runKernel(k, { tensors: { ...ins, C } }, { raceCheck: true });
      return C.data;
    });
    for (let i = 0; i < want!.length; i++) {
      if (Number.isNaN(want![i])) { expect(got![i], `${fmt} [${i}]`).toBeNaN(); continue; }
      expect(Math.abs(got![i]! - want![i]!), `${fmt} ${M}x${N}x${K} [${i}]`).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want![i]!)));
    }
  }
  const formats: [string, number][] = [["u4", 8], ["s4", 8], ["u8", 4], ["s8", 4], ["e4m3", 4]];
  for (const [fmt, per] of formats)
    it(`${fmt}: ragged M, N and K, an infinite scale`, () => {
      compare(fmt, per, SMALL, 19, 70, 75, 1);
      compare(fmt, per, { BM: 8, BN: 64, BK: 16, threads: 128 }, 5, 13, 37, 2);
    });
  it("two warpgroups, BM 8", () => compare("u4", 8, { BM: 8, BN: 128, BK: 32, threads: 256 }, 9, 130, 100, 3));
});

describe("the DSL examples at configs that take the path, against their tile level", () => {
  // [file, kernel, config, target, dims]: sym / zp / bf16zp, w8a16, fp8w, the MoE up and down projections,
  // BM 16 / 64 / 128, BN 64 / 128, warps 4 / 8, split-K, cp.async, TMA, warp-specialized and
  // persistent.
  const cases: [string, string, Record<string, TunableValue>, Target, Record<string, number>][] = [
    ["gemm_w4a16.ts", "gemm_w4a16", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 1 }, CP, { M: 70, N: 130, K: 200 }],
    ["gemm_w4a16.ts", "gemm_w4a16", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 2 }, TMA, { M: 70, N: 65, K: 264 }],
    ["gemm_w4a16.ts", "gemm_w4a16", { BM: 16, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 2 }, RS, { M: 5, N: 70, K: 200 }],
    ["gemm_w4a16.ts", "gemm_w4a16", { BM: 128, BN: 128, BK: 64, stages: 3, warps: 8, splitK: 1 }, CP, { M: 130, N: 130, K: 136 }],
    ["gemm_w4a16.ts", "gemm_w4a16", { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, splitK: 1 }, WS, { M: 130, N: 130, K: 200 }],
    ["gemm_w4a16.ts", "gemm_w4a16", { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, splitK: 1 }, { ...WS, persistentBlocks: 3 }, { M: 200, N: 260, K: 136 }],
    // The mma order (lane-owned words): word 4 (kk >> 1) + t, pair 2 (kk & 1) + h.
    ["gemm_w4a16.ts", "gemm_w4a16_mma", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 1 }, CP, { M: 70, N: 130, K: 200 }],
    ["gemm_w4a16.ts", "gemm_w4a16_mma", { BM: 16, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 2 }, RS, { M: 5, N: 70, K: 100 }],
    ["gemm_w4a16.ts", "gemm_w4a16_zp", { BM: 64, BN: 128, BK: 64, stages: 3, warps: 8 }, TMA, { M: 33, N: 129, K: 256 }],
    ["gemm_w4a16.ts", "gemm_w4a16_bf16zp", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4 }, CP, { M: 65, N: 70, K: 136 }],
    ["gemm_w8a16.ts", "gemm_w8a16", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4 }, CP, { M: 40, N: 70, K: 136 }],
    ["gemm_w8a16.ts", "gemm_w8a16_f16_g64", { BM: 16, BN: 128, BK: 64, stages: 3, warps: 8 }, RS, { M: 17, N: 130, K: 100 }],
    ["gemm_fp8w.ts", "gemm_fp8w", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4 }, TMA, { M: 70, N: 64, K: 136 }],
    ["moe_gemm_up_w4a16.ts", "moe_gemm_up_w4a16", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4 }, CP,
      { T: 8, K: 150, N: 40, E: 3, TOPK: 2, skew: 1, E2N: 240, BS: 64, NB: 4 }],
    ["moe_gemm_up_w4a16.ts", "moe_gemm_up_w4a16", { BM: 16, BN: 64, BK: 64, stages: 3, warps: 4 }, RS,
      { T: 5, K: 100, N: 33, E: 4, TOPK: 2, skew: 0, E2N: 264, BS: 16, NB: 5 }],
    ["moe_gemm_down_w4a16.ts", "moe_gemm_down_w4a16", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4 }, CP,
      { T: 8, TOPK: 2, E: 3, skew: 1, N: 150, H: 70, EH: 210, BS: 64, NB: 4 }],
  ];
  for (const [file, name, config, target, dims] of cases)
    it(`${name} ${JSON.stringify(config)}${target.warpSpecialize ? " ws" : target.tma ? " tma" : ""}${target.dequantWgmma ? " --dequant wgmma" : ""}${target.persistentBlocks ? " persistent" : ""}`, async () => {
      const { err, lowered } = await e2e(file, name, config, target, dims);
      expect(regA(lowered)).toBeGreaterThan(0);
      if (target.tma) expect(stmts(lowered, "tma_load").length).toBeGreaterThan(0);
      if (target.warpSpecialize) expect(stmts(lowered, "setmaxnreg").length).toBeGreaterThan(0);
      expect(err).toBeLessThan(1e-5);
    }, 300_000);
});

describe("PTX rules for register operands, enforced by the interpreter", () => {
  const run = (text: string) => {
    const k = parseKernel(text);
    const M = 16, N = 64, K = 64;
    const r = rng(5);
    const t = (dtype: TensorValue["dtype"], dims: number[], f: () => number): TensorValue =>
      ({ dtype, shape: dims, data: Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => roundTo(dtype, f())) });
    runKernel(k, { tensors: { A: t("bf16", [M, K], () => r() - 0.5), W: t("u32", [N, K / 8], () => Math.floor(r() * 2 ** 32)),
      S: t("bf16", [N, K / 16], () => r() - 0.5), C: zeros("f32", [M, N]) } }, { raceCheck: true });
  };
  const good = () => printKernel(lower(parseKernel(rsSrc("u4", 8, SMALL)), {}, RS));
  it("the lowered kernel runs clean", () => expect(() => run(good())).not.toThrow());
  it("the verifier: register operands only for A, of the wgmma's input type, in local memory", () => {
    const wg = /wgmma\.m64n16k16\.bf16 acc\[0\] \+= aq\[kk % 2 \* 8\], (As\[[^\]]*\]) sw64 lbo 16 sbo 512/;
    expect(good()).toMatch(wg);
    const errs = (text: string) => verifyErrors(parseKernel(text)).join("\n");
    expect(errs(good().replace(wg, "wgmma.m64n16k16.bf16 acc[0] += $1 sw64 lbo 16 sbo 512, aq[kk % 2 * 8]"))).toMatch(/wgmma b must be a shared-memory operand/);
    expect(errs(good().replace(wg, "wgmma.m64n16k16.f16 acc[0] += aq[kk % 2 * 8], $1 sw64 lbo 16 sbo 512"))).toMatch(/wgmma a registers 'aq' must be f16, it is bf16/);
    expect(errs(good().replace(wg, "wgmma.m64n16k16.bf16 acc[0] += $1, $1 sw64 lbo 16 sbo 512"))).toMatch(/wgmma a \(registers\)/);
  });
  it("reports A registers written after the last wgmma.fence", () => {
    const text = good().replace(/\n\s*wgmma\.fence/g, "");
    expect(() => run(text)).toThrow(/missing wgmma\.fence between writing the A registers and the wgmma/);
  });
  it("reports A registers overwritten while their wgmma is in flight (one register set, wait 1)", () => {
    const text = good().replace(/kk % 2 \* 8 \+ /g, "").replace(/aq\[kk % 2 \* 8\]/g, "aq[0]");
    expect(text).not.toContain("kk % 2");
    expect(() => run(text)).toThrow(/aq\[\d+\] is written while a wgmma that reads it as register operand A is in flight/);
  });
});
