// The register-fused dequant-gemm (src/passes/fuse-dequant-gemm.ts): IR text in -> lowered
// IR text out, when the lowering takes it and when not, and the fused kernel against its
// tile-level form in the interpreter (every format, ragged N and K, infinite scales).
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Kernel, type Stmt, flt, int } from "../../src/ir/ir.ts";
import { evalConst, freeVars, stmtExprs, walkExpr, walkStmts } from "../../src/ir/expr.ts";
import { packedRowPad } from "../../src/passes/pad-packed-tiles.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printExpr, printKernel } from "../../src/ir/print.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { runKernel } from "../../src/interp/index.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import { dequantWord, orderProblem, QFORMATS, QORDERS, slotOrder, valuesPerWord } from "../../src/quant/format.ts";
import { SM80, SM90A, WGSL, lower } from "../../src/passes/pipeline.ts";
import { kernel, alloc, tensor } from "../interp/helpers.ts";
import { dequantGemmSrc, dequantPartialSrc, FUSED_MMA } from "./fused/dequant-gemm-src.ts";
import { lowerChecked, tileLevel } from "./harness.ts";
import { rng } from "../../src/numeric/random.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { dequantMatrix } from "../../src/quant/pack.ts";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";

const stmts = (k: Kernel, kind: Stmt["k"]): Stmt[] => {
  const out: Stmt[] = [];
  walkStmts(k.launch.body, (s) => { if (s.k === kind) out.push(s); });
  return out;
};
const mainLoop = (k: Kernel) => stmts(k, "for").find((s) => s.k === "for" && s.vars[0] === "k") as Extract<Stmt, { k: "for" }>;
const allocs = (k: Kernel) => stmts(k, "alloc").map((s) => (s.k === "alloc" ? s.buf.name : ""));

describe("fused dequant-gemm lowering", () => {
  it("lowers T.dequant + gemm to per-pair dequants into the B fragments (IR text in -> out)", () => {
    // The lowered text is also the CUDA golden / nvcc kernel test/cuda/kernels/dequant_gemm.ir.
    const want = readFileSync(new URL("../cuda/kernels/dequant_gemm.ir", import.meta.url), "utf8");
    expect(printKernel(lowerChecked(parseKernel(dequantGemmSrc("u4", 8)), {}, SM80))).toBe(want);
  });

  it("drops the bf16 tile and its barriers: one barrier per k tile, no shared stores", () => {
    const k = lower(parseKernel(dequantGemmSrc("u4", 8)), {}, SM80);
    expect(allocs(k)).not.toContain("Bs");
    expect(k.smemBytes).toBe(2 * 16 * 16 * 2 + 2 * 8 * 2 * 4); // As and Ws, two stages each, no Bs
    const loop = mainLoop(k);
    let barriers = 0, ldm = 0, sharedStores = 0;
    walkStmts(loop.body, (s) => {
      if (s.k === "barrier") barriers++;
      if (s.k === "ldmatrix") ldm++;
      if (s.k === "store" && (s.buf === "As" || s.buf === "Ws")) sharedStores++;
    });
    // Two copies of the k-step loop (a tile below K and a ragged one), one ldmatrix each.
    expect({ barriers, ldm, sharedStores }).toEqual({ barriers: 1, ldm: 2, sharedStores: 0 });
    const pairs = stmts(k, "dequant");
    expect(pairs.length).toBe(2);
    expect(pairs.every((s) => s.k === "dequant" && s.pair !== undefined)).toBe(true);
  });

  it("8-bit words: the lane's word is 2h + t/2 of the k-step, pair t & 1", () => {
    const k = lower(parseKernel(dequantGemmSrc("u8", 4)), {}, SM80);
    const text = printKernel(k);
    expect(text).toContain("let w: i32 = h * 2 + (t >> 1)");
    expect(text).toMatch(/dequant\.u8\.interleaved bq\[0\] <- Ws\[.*\] scale cast<f32>\(dqs\[nj_1\]\) zero 3\.0 pair t & 1/);
  });

  it("keeps the shared tile when something else reads it, on WGSL, and under a forced wgmma", () => {
    const second = "\n    gemm As[0 : +16, 0 : +16], Bs[0 : +8, 0 : +16] -> acc[0 : +16, 0 : +8] transB";
    expect(allocs(lower(parseKernel(dequantGemmSrc("u4", 8, second)), {}, SM80))).toContain("Bs");
    expect(allocs(lower(parseKernel(dequantGemmSrc("u4", 8)), {}, WGSL))).toContain("Bs");
    expect(stmts(lower(parseKernel(dequantGemmSrc("u4", 8)), {}, WGSL), "dequant").every((s) => s.k === "dequant" && !s.pair)).toBe(true);
  });

  it("sm_90a: decode tiles (BM 16) fuse with mma.sync; 64-row tiles take the register-A wgmma (dequant-wgmma.ts)", () => {
    const [g] = parseKernels("dsl-examples/gemm_w4a16.ts").filter((x) => x.name === "gemm_w4a16");
    const decode = lower(g!, { BM: 16, BN: 64, BK: 128, warps: 4 }, SM90A);
    expect(allocs(decode)).not.toContain("Bs");
    expect(stmts(decode, "mma").length).toBeGreaterThan(0);
    const big = lower(g!, { BM: 64, BN: 128, BK: 64, warps: 4 }, SM90A);
    expect(allocs(big)).not.toContain("Bs");
    expect(stmts(big, "wgmma").every((s) => s.k === "wgmma" && "regs" in s.a)).toBe(true);
  });

  it("several warps along M keep the shared tile (each weight would be decoded once per warp row)", () => {
    const [g] = parseKernels("dsl-examples/moe_gemm_up_w4a16.ts");
    const k = lower(g!, { BM: 64, BN: 64, BK: 64, warps: 8 }, SM80);
    expect(allocs(k)).toEqual(expect.arrayContaining(["Gs", "Us"]));
    const d = lower(g!, { BM: 16, BN: 64, BK: 64, warps: 4 }, SM80);
    expect(allocs(d)).not.toContain("Gs");
    expect(allocs(d)).not.toContain("Us");
  });

  it("the gate and up gemms of moe_gemm_up_w4a16 both fuse, past the other dequant between them", () => {
    const [g] = parseKernels("dsl-examples/moe_gemm_up_w4a16.ts");
    const k = lower(g!, { BM: 16, BN: 64, BK: 64, warps: 4 }, SM80);
    const fused = stmts(k, "dequant").filter((s) => s.k === "dequant" && s.pair);
    // gate and up, k-step 0 and the prefetch of the next, in the whole-tile and ragged copies
    expect(fused.length).toBe(8);
    expect(stmts(k, "dequant").length).toBe(8);
  });
});

describe("per-tile work of the fused loop (decode configs)", () => {
  const [g] = parseKernels("dsl-examples/gemm_w4a16.ts").filter((x) => x.name === "gemm_w4a16");
  const decode = (BK: number) => lower(g!, { BM: 16, BN: 64, BK, stages: 2, warps: 4, splitK: 8 }, SM90A);
  const tileLevelOf = (BK: number) => {
    let out: Kernel | undefined;
    lower(g!, { BM: 16, BN: 64, BK, stages: 2, warps: 4, splitK: 8 }, SM90A, (n, kk) => { if (n === "padPackedTiles") out = kk; });
    return out!;
  };
  const loads = (stmts: Stmt[], buf: string) => {
    let n = 0;
    walkStmts(stmts, (s) => { for (const e of stmtExprs(s)) walkExpr(e, (x) => { if (x.k === "load" && x.buf === buf) n++; }); });
    return n;
  };

  it("group 128, BK 64 and 128: the scale is read once per n-tile and k tile, before the pipeline's wait", () => {
    for (const BK of [64, 128]) {
      const body = mainLoop(decode(BK)).body;
      const wait = body.findIndex((s) => s.k === "cp_wait");
      // alloc dqs, then one unrolled loop over the warp's 2 n-tiles reading S once each
      expect(body.slice(0, wait).map((s) => s.k)).toEqual(["alloc", "for"]);
      expect(loads(body.slice(0, wait), "S")).toBe(1);
      expect(loads(body.slice(wait), "S")).toBe(0);
      const text = printKernel(decode(BK));
      expect(text).toContain("store dqs[nj] = cast<bf16>(dq0_s)");
      expect(text).toMatch(/dequant\.u4\.interleaved bq\[0\] <- wq\[.*\] scale cast<f32>\(dqs\[nj_\d+\]\) zero 8\.0 pair t/);
    }
  });

  it("a group smaller than BK (fp8w, group 32): one scale per slice of whole k-steps, still before the wait", () => {
    const [f] = parseKernels("dsl-examples/gemm_fp8w.ts");
    for (const [BK, slices] of [[64, 2], [128, 4]] as const) {
      const k = lower(f!, { BM: 16, BN: 64, BK, stages: 2, warps: 4 }, SM90A);
      const body = mainLoop(k).body;
      const wait = body.findIndex((s) => s.k === "cp_wait");
      expect(loads(body.slice(0, wait), "S")).toBe(1);
      expect(loads(body.slice(wait), "S")).toBe(0);
      expect(printKernel(k)).toContain(`alloc dqs: local bf16[${2 * slices}]`);
      // The slice of a k-step is its first word's: no lane variable in the index.
      expect(printKernel(k)).toMatch(new RegExp(`scale cast<f32>\\(dqs\\[nj_\\d+ \\* ${slices} \\+ \\(kk \\+ 1\\)`));
    }
    // Group 64 (gemm_w8a16_f16_g64): BK 64 lies in one group, BK 128 takes two slices.
    const g64 = parseKernels("dsl-examples/gemm_w8a16.ts").find((x) => x.name === "gemm_w8a16_f16_g64")!;
    const dqs = (BK: number) => /alloc dqs: local f16\[(\d+)\]/.exec(printKernel(lower(g64, { BM: 16, BN: 64, BK, stages: 2, warps: 4 }, SM90A)))?.[1];
    expect([dqs(64), dqs(128)]).toEqual(["2", "4"]);
  });

  it("the K mask is one uniform branch per k tile: the whole-tile copy has no select", () => {
    const loop = mainLoop(decode(64));
    const branch = loop.body.find((s) => s.k === "if" && stmts({ ...decode(64), launch: { ...decode(64).launch, body: s.then } } as Kernel, "mma").length > 0);
    expect(branch?.k).toBe("if");
    if (branch?.k !== "if") return;
    expect(printExpr(branch.cond)).toBe("(bz * cdiv(cdiv(K, 64), 8) + k) * 64 + 63 < K");
    let thenSel = 0, elseSel = 0;
    const count = (ss: Stmt[], f: () => void) => walkStmts(ss, (s) => { for (const e of stmtExprs(s)) walkExpr(e, (x) => { if (x.k === "select") f(); }); });
    count(branch.then, () => thenSel++);
    count(branch.else, () => elseSel++);
    expect(thenSel).toBe(0);
    expect(elseSel).toBeGreaterThan(0);
  });

  it("4-bit words: one 128-bit shared read per n-tile every other k-step (BK 64: 2 per copy of the loop)", () => {
    const loop = mainLoop(decode(64));
    const v = stmts({ ...decode(64), launch: { ...decode(64).launch, body: loop.body } } as Kernel, "vcopy")
      .filter((s) => s.k === "vcopy" && s.src.buf === "Ws");
    expect(v.map((s) => (s.k === "vcopy" ? s.lanes : 0))).toEqual([4, 4, 4, 4]);
    expect(printKernel(decode(64))).toMatch(/if \(\(kk \+ 1\) % 2 == 0\) \{/);
  });

  it("the packed tile's rows are padded so that a warp's 128-bit word reads hit every bank once", () => {
    for (const [BK, stride] of [[64, 12], [128, 20]] as const) {
      const k = decode(BK);
      expect(printKernel(tileLevelOf(BK))).toContain(`alloc Ws: shared u32[64, ${stride}]`);
      // Warp 0's 32 lanes at k = 0, k-step 0, n-tile 0: 8 distinct rows (4 lanes each).
      const loop = mainLoop(k);
      const read = stmts({ ...k, launch: { ...k.launch, body: loop.body } } as Kernel, "vcopy").find((s) => s.k === "vcopy" && s.src.buf === "Ws" && s.lanes === 4);
      if (read?.k !== "vcopy") throw new Error("no 128-bit word read");
      const lets = stmts({ ...k, launch: { ...k.launch, body: loop.body } } as Kernel, "let");
      const groups = new Set<number>(), addrs = new Set<number>();
      for (let tx = 0; tx < 32; tx++) {
        const env: Record<string, number> = { [k.launch.threadVar!]: tx, k: 0 };
        for (const l of lets) if (l.k === "let" && env[l.name] === undefined) { const x = evalConst(l.value, env); if (x !== undefined) env[l.name] = x; }
        for (const x of freeVars(read.src.idx[0]!)) if (env[x] === undefined) env[x] = 0; // n-tile and k-step 0
        const a = evalConst(read.src.idx[0]!, env)!;
        addrs.add(a);
        groups.add(Math.floor((a * 4) / 16) % 8);
      }
      expect({ BK, addrs: addrs.size, groups: groups.size }).toEqual({ BK, addrs: 8, groups: 8 });
    }
    // Unpadded rows of 8 or 16 words would put the 8 rows on 4 or 2 bank groups.
    expect([8, 16, 12, 20, 4].map(packedRowPad)).toEqual([4, 4, 0, 0, 0]);
  });

  it("8-bit words keep one word per k-step and half (their lane's words are not neighbours)", () => {
    const [w8] = parseKernels("dsl-examples/gemm_w8a16.ts");
    const k = lower(w8!, { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4 }, SM90A);
    expect(stmts(k, "vcopy").some((s) => s.k === "vcopy" && s.src.buf === "Ws" && s.lanes === 4)).toBe(false);
  });
});

describe("the mma order (lane-owned words, src/quant/format.ts)", () => {
  const mmaSrc = (fmt = "u4") => parseKernel(dequantGemmSrc(fmt, 8, "", FUSED_MMA, true));
  it("lowers to the lane's own word and constant pairs (IR text in -> out)", () => {
    // The lowered text is also the CUDA golden / nvcc kernel test/cuda/kernels/dequant_gemm_mma.ir.
    const want = readFileSync(new URL("../cuda/kernels/dequant_gemm_mma.ir", import.meta.url), "utf8");
    expect(printKernel(lowerChecked(mmaSrc(), {}, SM80))).toBe(want);
  });

  it("each lane reads word 4 (kk >> 1) + t once per two k-steps, 32 bits, no broadcast; pairs are 2 (kk & 1) + h", () => {
    const k = lower(mmaSrc(), {}, SM80);
    const text = printKernel(k);
    expect(text).toContain("store wm[nj_4] = Ws[k % 2 * 32 + ((nj_4 * 8 + grp) * 4 + ((kk + 1 >> 1) * 4 + t))]");
    const pairs = stmts(k, "dequant").map((x) => (x.k === "dequant" && x.pair ? printExpr(x.pair) : ""));
    // No pair names the lane (t): the shift is a constant of the unrolled kk and h.
    expect(pairs.length).toBe(4);
    expect(pairs.every((x) => /^(h|h_\d|\(kk(_\d)? \+ 1 & 1\) \* 2 \+ h_\d)$/.test(x))).toBe(true);
    expect(stmts(k, "vcopy").some((x) => x.k === "vcopy" && x.src.buf === "Ws")).toBe(false);
    // The 4 lanes of a group (t = 0..3) read 4 different consecutive words of their row.
    const read = stmts(k, "store").find((x) => x.k === "store" && x.buf.startsWith("wm"));
    if (read?.k !== "store" || read.value.k !== "load") throw new Error("no word read");
    const words = [0, 1, 2, 3].map((t) => evalConst(read.value.k === "load" ? read.value.idx[0]! : int(0), { k: 0, grp: 0, t, [read.idx[0]!.k === "var" ? read.idx[0]!.name : "nj"]: 0 }));
    expect(words).toEqual([0, 1, 2, 3]);
  });

  it("the decode example: the per-tile scale and the K-mask versioning stay, the row read is one 32-bit word per n-tile", () => {
    const [k] = parseKernels("dsl-examples/gemm_w4a16.ts").filter((x) => x.name === "gemm_w4a16_mma");
    const low = lower(k!, { BM: 16, BN: 64, BK: 128, stages: 2, warps: 4, splitK: 4 }, SM90A);
    const text = printKernel(low);
    expect(text).toMatch(/alloc dqs: local bf16\[2\]/);
    expect(text).toMatch(/if \(\(bz \* cdiv\(cdiv\(K, 128\), 4\) \+ k\) \* 128 \+ 127 < K\) \{/);
    expect(text).toContain("alloc Ws: shared u32[2560]"); // 64 rows of 16 words padded to 20, 2 stages
    expect(stmts(low, "dequant").every((x) => x.k === "dequant" && x.pair && !freeVarsOf(x.pair).has("t"))).toBe(true);
  });

  it("8-bit formats refuse the order, with the place and the fix", () => {
    const src = readFileSync("dsl-examples/gemm_w8a16.ts", "utf8").replace(/order: "interleaved"/, 'order: "mma"');
    expect(() => parseKernels("dsl-examples/gemm_w8a16.ts", src)).toThrow(/order "mma" is defined for the 4-bit formats \(u4, s4\), not (u8|s8)/);
  });

  it("a config whose tile is not whole 32-value blocks (BK 16) is refused at the T.dequant call", () => {
    const src = readFileSync("dsl-examples/gemm_w4a16.ts", "utf8").replace("BK: [128, 64], stages: [2, 3, 4]", "BK: [128, 64, 16], stages: [2, 3, 4]");
    const k = parseKernels("dsl-examples/gemm_w4a16.ts", src).find((x) => x.name === "gemm_w4a16_mma")!;
    const line = src.split("\n").findIndex((l) => l.includes('order: "mma", scales')) + 1;
    let err: unknown;
    try { lower(k, { BM: 16, BN: 64, BK: 16, stages: 2, warps: 4, splitK: 1 }, SM90A); } catch (e) { err = e; }
    expect(String((err as Error)?.message)).toMatch(/order "mma" needs whole 32-value blocks \(4 words\) per tile row: this config gives 2 words/);
    expect(JSON.stringify(err)).toContain(`"line":${line}`);
    // BK 64 (two blocks) lowers, on the shared-tile path of WGSL too.
    expect(() => lower(k, { BM: 16, BN: 64, BK: 64, stages: 2, warps: 4, splitK: 1 }, WGSL)).not.toThrow();
  });

  it("a group that is not whole 32-value blocks is refused", () => {
    const src = readFileSync("dsl-examples/gemm_w4a16.ts", "utf8").replace(/order: "mma", scales: S, zeros: 8, group: 128/, 'order: "mma", scales: S, zeros: 8, group: 16');
    expect(() => parseKernels("dsl-examples/gemm_w4a16.ts", src)).toThrow(/group must be "channel" or a positive literal multiple of 32 \(an mma-order word spans 32 values of K\)/);
  });
});

const freeVarsOf = (e: Parameters<typeof freeVars>[0]) => { const s = new Set<string>(); freeVars(e, s); return s; };

describe("fused form in the interpreter, against the tile-level kernel", () => {
  // Full-range words (the harness draws small integers), scales of both signs, an infinite
  // one, and ragged M, N, K: the masked tail of K must stay 0 and not become NaN.
  function compare(fmt: string, per: number, M: number, N: number, K: number, seed: number, mma = false) {
    const src = parseKernel(mma ? dequantGemmSrc(fmt, per, "", FUSED_MMA, true) : dequantGemmSrc(fmt, per));
    const tile = tileLevel(src, {}, SM80), thread = lowerChecked(src, {}, SM80);
    const KW = mma ? 4 * Math.ceil(K / 32) : Math.ceil(K / per), G = Math.ceil(K / (mma ? 32 : 16));
    const r = rng(seed);
    const t = (dtype: TensorValue["dtype"], shape: number[], f: (i: number) => number): TensorValue =>
      ({ dtype, shape, data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => roundTo(dtype, f(i))) });
    const ins = {
      A: t("bf16", [M, K], () => r() * 2 - 1),
      W: t("u32", [N, KW], () => Math.floor(r() * 2 ** 32)),
      S: t("bf16", [N, G], (i) => (i === 1 ? Infinity : (r() - 0.5) / 4)),
    };
    const outs = [tile, thread].map((k) => {
      const C = zeros("f32", [M, N]);
      runKernel(k, { tensors: { ...ins, C } });
      return C.data;
    });
    return { want: outs[0]!, got: outs[1]! };
  }
  const formats: [string, number, boolean][] = [["u4", 8, false], ["s4", 8, false], ["u8", 4, false], ["s8", 4, false], ["e4m3", 4, false], ["u4", 8, true], ["s4", 8, true]];
  for (const [fmt, per, mma] of formats)
    it(`${fmt}${mma ? " (mma order)" : ""}: ragged M, N and K, an infinite scale`, () => {
      for (const [M, N, K, seed] of [[5, 13, 37, 1], [17, 8, 16, 2], [1, 3, 49, 3], [2, 9, 96, 4]] as const) {
        const { want, got } = compare(fmt, per, M, N, K, seed, mma);
        let nan = 0;
        for (let i = 0; i < want.length; i++) {
          if (Number.isNaN(want[i])) { nan++; expect(got[i], `${fmt} ${M}x${N}x${K} [${i}]`).toBeNaN(); continue; }
          expect(Math.abs(got[i]! - want[i]!), `${fmt} ${M}x${N}x${K} [${i}]`).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(want[i]!)));
        }
        // Integer formats: only the infinite scale (one (row, group) of S) makes NaNs, in one
        // column of C at most (0 * inf, or inf - inf); e4m3 words also hold NaN patterns.
        if (fmt !== "e4m3") expect(nan).toBeLessThanOrEqual(M);
      }
    });
});

describe("dequant pair statement", () => {
  it("prints and parses back", () => {
    const k = parseKernel(readFileSync(new URL("../cuda/kernels/dequant_gemm.ir", import.meta.url), "utf8"));
    expect(printKernel(k)).toBe(readFileSync(new URL("../cuda/kernels/dequant_gemm.ir", import.meta.url), "utf8"));
    expect(stmts(k, "dequant").some((s) => s.k === "dequant" && s.pair)).toBe(true);
  });

  it("writes values 2p and 2p+1 of the word, as src/quant/format.ts defines them (every format and order)", () => {
    fc.assert(fc.property(
      fc.constantFrom(...QFORMATS), fc.constantFrom(...QORDERS), fc.integer({ min: 0, max: 0xffffffff }), fc.nat(3),
      fc.constantFrom(0.37, -2, 0, Infinity), fc.constantFrom(0, 3, -1.5), fc.constantFrom("bf16" as const, "f16" as const),
      (format, order, word, p0, scale, zero, to) => {
        if (orderProblem(format, order)) return;
        const p = p0 % (valuesPerWord(format) / 2);
        const k = kernel("dqp", [tensor("W", "u32", [1]), tensor("Y", to, [2], true)], [], {
          body: [
            alloc("r", "local", to, [2]),
            // The statement names the word's slot order (an mma word's slots are the interleaved ones).
            { k: "dequant", format, order: slotOrder(order), dst: { buf: "r", idx: [int(0)] }, word: { k: "load", buf: "W", idx: [int(0)] }, scale: flt(scale), zero: flt(zero), pair: int(p) },
            { k: "store", buf: "Y", idx: [int(0)], value: { k: "load", buf: "r", idx: [int(0)] } },
            { k: "store", buf: "Y", idx: [int(1)], value: { k: "load", buf: "r", idx: [int(1)] } },
          ],
        });
        const Y = zeros(to, [2]);
        runKernel(k, { tensors: { W: { dtype: "u32", shape: [1], data: Float64Array.from([word]) }, Y } });
        const all = dequantWord(format, order, word, zero, scale, to);
        expect([...Y.data]).toEqual(all.slice(2 * p, 2 * p + 2));
      }), { numRuns: 300 });
  });
});

describe("group scales on partial sums: T.dequant without scales, the biased fold", () => {
  const partial = (o: Parameters<typeof dequantPartialSrc>[0] = {}) => lowerChecked(parseKernel(dequantPartialSrc(o)), {}, SM80);
  const dequants = (k: Kernel) => stmts(k, "dequant").map((x) => (x.k === "dequant" ? `scale ${printExpr(x.scale)} zero ${printExpr(x.zero)}` : ""));

  it("lowers to biased pairs, a row-sum mma per k-step and the fold after the k-steps (IR text in -> out)", () => {
    // The lowered text is also the CUDA golden / nvcc kernel test/cuda/kernels/dequant_gemm_partial.ir.
    const want = readFileSync(new URL("../cuda/kernels/dequant_gemm_partial.ir", import.meta.url), "utf8");
    expect(printKernel(partial({ mma: true }))).toBe(want);
  });

  for (const mma of [false, true])
    it(`${mma ? "mma" : "interleaved"} order: every pair is the lop3 alone (zero -128, scale 1), one extra mma per k-step, part -= 136 rowsum`, () => {
      const k = partial({ mma });
      expect(new Set(dequants(k))).toEqual(new Set(["scale 1.0 zero -128.0"]));
      // One statement per copy of the k-step loop (whole tile, ragged K), in the loop over k-steps.
      const mmas = stmts(k, "mma").map((x) => (x.k === "mma" ? x.d.buf : ""));
      expect(mmas.filter((b) => b === "rsum").length).toBe(2);
      expect(mmas.filter((b) => b === "part").length).toBe(2);
      expect(printKernel(k)).toMatch(/store part\[e_\d\] = part\[e_\d\] - 136\.0 \* rsum\[e_\d\]/);
      const cu = emitCuda(k).cu;
      expect(cu).not.toMatch(/__hsub2|__hmul2|__hfma2/);
    });

  it("the zero point folds into the bias (zero 3: 131 rowsum)", () => {
    const text = printKernel(partial({ zero: "3.0" }));
    expect(text).toContain("- 131.0 * rsum");
  });

  it("no fold where the lop3 alone is not 128 + q: s4 words, a zero point read per group, a scaled dequant", () => {
    for (const [what, k] of [["s4", partial({ fmt: "s4" })], ["zero read", partial({ zero: "z" })],
      ["scaled", lowerChecked(parseKernel(dequantGemmSrc("u4", 8)), {}, SM80)]] as const) {
      expect(allocs(k), what).not.toContain("rsum");
      expect(dequants(k).some((x) => x.includes("zero -128")), what).toBe(false);
    }
    // Unscaled and not folded: the pairs multiply by nothing (scale 1), the s4 subtraction stays.
    const cu = emitCuda(partial({ fmt: "s4" })).cu;
    expect(cu).toContain("__hsub2");
    expect(cu).not.toContain("__hmul2");
  });
});

describe("the biased fold's f32 error, through the interpreter (tile and thread level)", () => {
  // part = sum_k A (128 + q) - (128 + z) rowsum(A) cancels: its f32 sums hold terms up to 143 |a|
  // where the result's are |a (q - 8)| <= 8 |a|. Per K tile (one group, kSteps k-steps of 16) the
  // lowered code rounds the running biased sum once per k-step (|.| <= 143 S, S = sum |a| over the
  // tile), the row sum once per k-step (136 |.| <= 136 S), then 136 rowsum and the subtraction:
  // |part - exact| <= (2 kSteps + 2) 143 S u, u = 2^-24 (the interpreter rounds to nearest; the GPU
  // may truncate: 2^-23). The scaled accumulate adds a rounding of |acc| per tile.
  const u = 2 ** -24;
  type Gen = "unit" | "large" | "const";
  type Words = "random" | "eights" | "every";
  const run = (mma: boolean, level: "tile" | "thread", M: number, N: number, K: number, seed: number, agen: Gen, wgen: Words) => {
    const shape = mma ? FUSED_MMA : undefined;
    const BK = mma ? 32 : 16, kSteps = BK / 16;
    const src = parseKernel(dequantPartialSrc({ mma }));
    const k = level === "tile" ? tileLevel(src, {}, SM80) : lowerChecked(src, {}, SM80);
    const KW = mma ? 4 * Math.ceil(K / 32) : Math.ceil(K / 8), G = Math.ceil(K / BK);
    const r = rng(seed);
    const t = (dtype: TensorValue["dtype"], shp: number[], f: (i: number) => number): TensorValue =>
      ({ dtype, shape: shp, data: Float64Array.from({ length: shp.reduce((a, b) => a * b, 1) }, (_, i) => roundTo(dtype, f(i))) });
    const c = (r() * 2 - 1) * 200;
    const A = t("bf16", [M, K], () => (agen === "unit" ? r() * 2 - 1 : agen === "large" ? (r() < 0.5 ? -1 : 1) * (64 + r() * 192) : c));
    // Every 4-bit value: nibbles 0..7 and 8..15 in turn.
    const W = t("u32", [N, KW], (i) => (wgen === "eights" ? 0x88888888 : wgen === "every" ? (i % 2 ? 0xfedcba98 : 0x76543210) : Math.floor(r() * 2 ** 32)));
    const S = t("bf16", [N, G], () => (r() - 0.5) / 2);
    const C = zeros("f32", [M, N]);
    runKernel(k, { tensors: { A, W, S, C } });
    // Exact: the unrounded weights (q - 8) s in float64, and the bound per output.
    const Wd = dequantMatrix(W.data, N, K, { format: "u4", order: mma ? "mma" : "interleaved", scales: S.data, zeros: 8, group: BK }, "f64");
    const errs: { err: number; bound: number; scale: number }[] = [];
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let want = 0, bound = 0, scale = 0;
        for (let g = 0; g < G; g++) {
          let p = 0, sa = 0, pa = 0;
          for (let kk = g * BK; kk < Math.min(K, (g + 1) * BK); kk++) {
            const a = A.data[m * K + kk]!, w = Wd[n * K + kk]!;
            p += a * w; sa += Math.abs(a); pa += Math.abs(a * w);
          }
          const s = Math.abs(S.data[n * G + g]!);
          want += p; scale += pa;
          bound += s * (2 * kSteps + 2) * 143 * sa * u * (1 + 4 * u) + 2 * u * (scale + s * (2 * kSteps + 2) * 143 * sa * u);
        }
        errs.push({ err: Math.abs(C.data[m * N + n]! - want), bound, scale });
      }
    return errs;
  };

  for (const mma of [false, true])
    it(`${mma ? "mma" : "interleaved"} order: within the bound for random shapes (ragged K), unit and large activations, every 4-bit value`, () => {
      fc.assert(fc.property(
        fc.integer({ min: 1, max: 18 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 80 }), fc.nat(1000),
        fc.constantFrom<Gen>("unit", "large", "const"), fc.constantFrom<Words>("random", "eights", "every"),
        (M, N, K, seed, agen, wgen) => {
          for (const level of ["thread", "tile"] as const)
            for (const e of run(mma, level, M, N, K, seed, agen, wgen))
              expect(e.err, `${level} ${M}x${N}x${K} ${agen} ${wgen}`).toBeLessThanOrEqual(e.bound);
        }), { numRuns: 12, seed: 7 });
    }, 120_000);

  it("all q = 8 (weights 0) under large activations: the biased sums cancel to (almost) 0", () => {
    for (const mma of [false, true]) {
      const errs = run(mma, "thread", 17, 9, 75, 3, "large", "eights");
      // 136 sum(a) - 136 rowsum: both f32 sums of the same values, K ragged (75).
      for (const e of errs) { expect(e.scale).toBe(0); expect(e.err).toBeLessThanOrEqual(e.bound); }
    }
  });

  it("unit activations and scales: the error is a few 1e-6 of the output scale sum |a w|", () => {
    let worst = 0;
    for (const mma of [false, true])
      for (const e of run(mma, "thread", 16, 16, 96, 11, "unit", "random")) worst = Math.max(worst, e.err / e.scale);
    expect(worst).toBeLessThan(1e-5);
  });
});
