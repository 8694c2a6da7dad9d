// The bench's plan and report: unit checks on made-up results, and one whole trip through
// the runner on the fake driver (whose gemm_bt kernel stands in for ours).
import { beforeAll, describe, expect, it } from "vitest";
import { type BenchShape, type CompiledConfig, COPY_NAME, benchPlan, cublasName, oursName, tunedName } from "../../bench/plan.ts";
import { benchReport, markdownTable, textTable } from "../../bench/report.ts";
import { type KernelCase, type Results, isCublasCase, isKernelCase, runPlan, writePlan } from "../../src/runtime/cuda.ts";
import { mockLibs, planDir, runner } from "./helpers.ts";

const square: BenchShape = { label: "sq", M: 32, N: 48, K: 64, skinny: false };
const skinny: BenchShape = { label: "sk", M: 1, N: 64, K: 32, skinny: true };
const cfgA = { BM: 64, BN: 64, BK: 32, stages: 2, warps: 4 };
const cfgB = { BM: 128, BN: 64, BK: 32, stages: 3, warps: 8 };

// Like the real kernel, dims in first-appearance order (M, K, N), not M, N, K.
const compiled = (c: typeof cfgA, kernel = "gemm_bt"): CompiledConfig => ({
  config: c, module: "m.cubin", kernel, threads: c.warps * 32, smem: 1024, dims: ["M", "K", "N"],
  grid: (d) => [Math.ceil(d.N! / c.BN), Math.ceil(d.M! / c.BM)],
});

describe("bench plan", () => {
  it("puts each cuBLAS reference before the kernels compared with it, with the same inputs", () => {
    const { cases, meta, skipped } = benchPlan([square, skinny], () => [compiled(cfgA), { config: cfgB, error: "nvcc failed" }], { reps: 7 });
    expect(skipped.map((s) => s.shape.label)).toEqual(["sq", "sk"]);
    const names = cases.map((c) => c.name);
    expect(names.slice(0, 3)).toEqual([cublasName(square), cublasName(skinny), COPY_NAME]);
    const k = cases.find((c) => c.name === oursName(square, cfgA)) as KernelCase;
    expect(isKernelCase(k)).toBe(true);
    expect(k.grid).toEqual([1, 1]);
    expect(k.block).toEqual([128]);
    expect(k.args.slice(3)).toEqual([{ i32: 32 }, { i32: 64 }, { i32: 48 }]); // M, K, N
    expect(k.compare).toMatchObject({ tensor: "C", with: cublasName(square), withTensor: "C" });
    const ref = cases[0]!;
    expect(isCublasCase(ref) && ref.cublas).toMatchObject({ m: 32, n: 48, k: 64, transB: true });
    expect(isCublasCase(ref) && [ref.cublas.a, ref.cublas.b]).toEqual([
      (k.args[0] as { init: unknown }).init, (k.args[1] as { init: unknown }).init,
    ]);
    expect(k.time?.reps).toBe(7);
    expect(meta.filter((m) => m.kind === "ours")).toHaveLength(2);
  });

  it("reports the fastest config that matched cuBLAS, never a wrong one", () => {
    const { meta } = benchPlan([square, skinny], () => [compiled(cfgA), compiled(cfgB)]);
    const results: Results = {
      device: { name: "Card", cc: "9.0", sms: 132, l2_bytes: 0, smem_optin_bytes: 0, memory_bytes: 0, driver_version: 0 },
      cases: [
        { name: cublasName(square), status: "ok", median_ms: 0.5 },
        { name: cublasName(skinny), status: "ok", median_ms: 0.02 },
        { name: COPY_NAME, status: "ok", gbps: 2000 },
        // cfgB is faster on the square shape but wrong: cfgA must be reported
        { name: oursName(square, cfgA), status: "ok", median_ms: 1.0, compare: { with: "", pass: true } },
        { name: oursName(square, cfgB), status: "mismatch", median_ms: 0.1, compare: { with: "", pass: false } },
        { name: oursName(skinny, cfgA), status: "ok", median_ms: 0.004, compare: { with: "", pass: true } },
        { name: oursName(skinny, cfgB), status: "error", error: "CUDA_ERROR_INVALID_VALUE" },
      ],
    };
    const rep = benchReport(meta, results);
    const [sq, sk] = rep.rows;
    expect(sq!.config).toContain("BM=64 BN=64");
    expect(sq!.oursMs).toBe(1.0);
    expect(sq!.tflops).toBeCloseTo((2 * 32 * 48 * 64) / 1e-3 / 1e12, 12);
    expect(sq!.vsCublas).toBeCloseTo(0.5);
    expect(sq!.note).toContain("1 config(s) wrong vs cuBLAS");
    expect(sk!.weightGBs).toBeCloseTo((2 * 64 * 32) / 0.004e-3 / 1e9);
    expect(sk!.ofCopy).toBeCloseTo(sk!.weightGBs! / 2000);
    expect(sk!.note).toContain("1 failed to run");
    const md = markdownTable(rep);
    expect(md).toMatch(/^\| shape \| best config \|/);
    expect(md).toContain("| sq | BM=64 BN=64 BK=32 st=2 w=4 | 1.0000 |");
    expect(textTable(rep).split("\n")[1]).toMatch(/^sq\s+BM=64/);
  });

  it("says 'no correct config' when every config is wrong", () => {
    const { meta } = benchPlan([square], () => [compiled(cfgA)]);
    const rep = benchReport(meta, { cases: [
      { name: cublasName(square), status: "ok", median_ms: 0.5 },
      { name: oursName(square, cfgA), status: "mismatch", median_ms: 0.1, compare: { with: "", pass: false } },
    ] });
    expect(rep.rows[0]!.oursMs).toBeUndefined();
    expect(rep.rows[0]!.note).toMatch(/^no correct config/);
  });
});

describe("bench on the fake driver", () => {
  let bin = "", mock = "";
  beforeAll(async () => {
    [bin, mock] = await Promise.all([runner(), mockLibs()]);
  }, 120_000);

  it("runs the whole plan in one runner process and tells a wrong kernel from a right one", async () => {
    const dir = planDir();
    // The fake gemm_bt takes (A, B, C, M, N, K): give it that dim order.
    const fake = (c: typeof cfgA, kernel: string): CompiledConfig => ({ ...compiled(c, kernel), dims: ["M", "N", "K"] });
    const { cases, meta } = benchPlan([square, skinny], () => [fake(cfgA, "gemm_bt"), fake(cfgB, "gemm_bt_wrong")], { reps: 3, warmup: 1, copyBytes: 1 << 20 });
    writePlan(dir, cases);
    const results = await runPlan(dir, { runner: bin, env: { LD_LIBRARY_PATH: mock } });
    expect(results.cases.every((c) => c.status === "ok" || c.status === "mismatch")).toBe(true);
    const rep = benchReport(meta, results);
    expect(rep.device).toBe("Fake GPU");
    expect(rep.copyGBs).toBeCloseTo(1000, 0);
    for (const r of rep.rows) {
      expect(r.config).toContain("BM=64 BN=64"); // gemm_bt_wrong never wins
      expect(r.note).toContain("1 config(s) wrong vs cuBLAS");
      expect(r.vsCublas).toBeCloseTo(0.5, 1); // the fake cuBLAS is twice as fast
    }
    expect(rep.rows[1]!.ofCopy).toBeGreaterThan(0);
  });
});

describe("bench: tuned winners", () => {
  const from = { gpu: "NVIDIA H200", at: "M=32,N=48,K=64", exact: true, staleSpace: false };
  const near = { gpu: "NVIDIA H100", at: "M=16,N=48,K=64", exact: false, staleSpace: true };

  it("times each tuned winner as its own case, compared with cuBLAS like the fixed configs", () => {
    const { cases, meta } = benchPlan([square], () => [compiled(cfgA)], { tuned: () => [{ compiled: compiled(cfgB), from }, { compiled: compiled(cfgA), from: near }] });
    const tuned = meta.filter((m) => m.tuned);
    expect(tuned.map((m) => [m.name, m.tuned!.gpu])).toEqual([
      [tunedName(square, cfgB, from), "NVIDIA H200"], [tunedName(square, cfgA, near), "NVIDIA H100"]]);
    // Same config as a fixed one, still its own case (names differ).
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    const k = cases.find((c) => c.name === tunedName(square, cfgB, from)) as KernelCase;
    expect(k.compare).toMatchObject({ with: cublasName(square) });
  });

  it("reports a row per tuned winner next to the best fixed one, labelled with its GPU, and never a wrong one as timed", () => {
    const { meta } = benchPlan([square], () => [compiled(cfgA)], { tuned: () => [{ compiled: compiled(cfgB), from }, { compiled: compiled(cfgA), from: near }] });
    const rep = benchReport(meta, { device: { name: "NVIDIA H200", cc: "9.0", sms: 132, l2_bytes: 0, smem_optin_bytes: 0, memory_bytes: 0, driver_version: 0 }, cases: [
      { name: cublasName(square), status: "ok", median_ms: 0.5 },
      { name: oursName(square, cfgA), status: "ok", median_ms: 1.0, compare: { with: "", pass: true } },
      { name: tunedName(square, cfgB, from), status: "ok", median_ms: 0.4, compare: { with: "", pass: true } },
      { name: tunedName(square, cfgA, near), status: "mismatch", median_ms: 0.1, compare: { with: "", pass: false } },
    ] });
    expect(rep.rows.map((r) => r.tuned?.gpu ?? "fixed")).toEqual(["fixed", "NVIDIA H200", "NVIDIA H100"]);
    const [fixed, t, wrong] = rep.rows;
    expect(fixed!.oursMs).toBe(1.0);
    expect(t!.oursMs).toBe(0.4);
    expect(t!.vsFixed).toBeCloseTo(2.5);
    expect(t!.vsCublas).toBeCloseTo(1.25);
    expect(t!.note).toBe("tuned for this shape");
    expect(wrong!.oursMs).toBeUndefined();
    expect(wrong!.note).toMatch(/^mismatch; tuned for M=16,N=48,K=64 \(nearest tuned shape\), tuned on another GPU \(NVIDIA H100\), not on this NVIDIA H200, the kernel's space changed/);
    const md = markdownTable(rep);
    expect(md).toContain("| sq | tuned (NVIDIA H200): BM=128 BN=64 BK=32 st=3 w=8 | 0.4000 |");
    expect(md).toContain("| 2.50x | tuned for this shape |");
    expect(md).toContain("| sq | tuned (NVIDIA H200) BM=128 BN=64 BK=32 st=3 w=8 | ok |");
  });
});
