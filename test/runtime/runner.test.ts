// The native runner, built here and run without a GPU: its self-test, its refusal to run
// without a driver, and whole plans against the fake libcuda/libcublas in mock/.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { encode } from "../../src/numeric/dtype.ts";
import { type KernelCase, gpuAvailable, readTensor, runPlan, writePlan, writeTensor } from "../../src/runtime/cuda.ts";
import { fillValues } from "../../src/runtime/prng.ts";
import { fakeLayerLib, mockLibs, planDir, runner } from "./helpers.ts";

let bin = "";
let mock = "";
beforeAll(async () => {
  [bin, mock] = await Promise.all([runner(), mockLibs()]);
}, 120_000);

const env = (extra: Record<string, string> = {}) => ({ LD_LIBRARY_PATH: mock, ...extra });

function gemmCase(name: string, kernel: string, M: number, N: number, K: number, extra: Partial<KernelCase> = {}): KernelCase {
  return {
    name, module: "m.cubin", kernel, grid: [1], block: [128],
    args: [
      { tensor: "A", dtype: "bf16", shape: [M, K], init: { random: { seed: 1 } } },
      { tensor: "B", dtype: "bf16", shape: [N, K], init: { random: { seed: 2 } } },
      { tensor: "C", dtype: "bf16", shape: [M, N], init: { zeros: true }, output: true },
      { i32: M }, { i32: N }, { i32: K },
    ],
    ...extra,
  };
}

describe("runner binary", () => {
  it("passes its self-test (JSON reader, plan reader, number formats, PRNG, compare)", async () => {
    const r = await execa(bin, ["--selftest"], { reject: false });
    expect(r.stdout + r.stderr).toMatch(/0 failed/);
    expect(r.exitCode).toBe(0);
  });

  it.skipIf(gpuAvailable().ok)("fails cleanly without a driver: 'libcuda.so.1 not found', exit 2", async () => {
    const dir = planDir();
    writePlan(dir, [{ name: "copy", copy: { bytes: 1024 } }]);
    const r = await execa(bin, [join(dir, "plan.json"), "--out", join(dir, "results.json")], { reject: false, env: { LD_LIBRARY_PATH: "" } });
    expect(r.exitCode).toBe(2);
    expect(r.signal).toBeUndefined();
    expect(r.stderr).toContain("libcuda.so.1 not found");
    const res = JSON.parse(readFileSync(join(dir, "results.json"), "utf8"));
    expect(res.error).toContain("libcuda.so.1 not found");
    expect(res.cases[0].status).toBe("skipped");
  });

  it("rejects a malformed plan with the JSON path of the fault, exit 3", async () => {
    const dir = planDir();
    writeFileSync(join(dir, "plan.json"), JSON.stringify({ cases: [{ name: "x", module: "m", kernel: "k", grid: [1], block: [1], args: [{ tensor: "A", dtype: "bf17", shape: [2] }] }] }));
    const r = await execa(bin, [join(dir, "plan.json")], { reject: false, env: env() });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("cases[0].args[0].dtype: unknown dtype 'bf17'");
    writeFileSync(join(dir, "plan.json"), '{"cases": [\n  {"name": 1,}]}');
    const r2 = await execa(bin, [join(dir, "plan.json")], { reject: false, env: env() });
    expect(r2.exitCode).toBe(3);
    expect(r2.stderr).toMatch(/plan\.json:2:14: expected a string key/);
  });

  it("fills random tensors exactly as src/runtime/prng.ts computes them", async () => {
    const dir = planDir();
    for (const [dtype, lo, hi] of [["bf16", -1, 1], ["f16", -3, 5], ["fp8e4m3", -500, 500], ["f32", 0, 1], ["i8", -8, 7], ["u32", 0, 4294967295]] as const) {
      const out = join(dir, `${dtype}.bin`);
      await execa(bin, ["--gen", dtype, "12345", String(lo), String(hi), "3000", out]);
      const want = encode(dtype, fillValues(dtype, 12345, lo, hi, 3000));
      expect(new Uint8Array(readFileSync(out)), dtype).toEqual(want);
    }
  });
});

describe("plans on the fake driver", () => {
  it("compares a kernel against cuBLAS, saves outputs, and reports a wrong kernel as a mismatch", async () => {
    const dir = planDir();
    const M = 24, N = 40, K = 64;
    writePlan(dir, [
      { name: "ref", cublas: { m: M, n: N, k: K, dtype: "bf16", transB: true }, time: { reps: 3 } },
      gemmCase("good", "gemm_bt", M, N, K, {
        compare: { tensor: "C", with: "ref", withTensor: "C", rtol: 0.02, atol: 0.02 }, time: { warmup: 1, reps: 4 }, flops: 2 * M * N * K,
        args: [...gemmCase("", "", M, N, K).args.slice(0, 2), { tensor: "C", dtype: "bf16", shape: [M, N], init: { zeros: true }, save: "C.bin" }, { i32: M }, { i32: N }, { i32: K }],
      }),
      gemmCase("bad", "gemm_bt_wrong", M, N, K, { compare: { tensor: "C", with: "ref", withTensor: "C" } }),
    ]);
    const res = await runPlan(dir, { runner: bin, env: env() });
    const [ref, good, bad] = res.cases;
    expect(res.device?.name).toBe("Fake GPU");
    expect(ref!.status).toBe("ok");
    expect(good!.status).toBe("ok");
    expect(good!.compare).toMatchObject({ pass: true, mismatches: 0, count: M * N });
    expect(good!.median_ms).toBeGreaterThan(0);
    expect(good!.tflops).toBeCloseTo((2 * M * N * K) / (good!.median_ms! * 1e-3) / 1e12, 6);
    expect(bad!.status).toBe("mismatch");
    expect(bad!.compare).toMatchObject({ pass: false, mismatches: 1, first_mismatch: { index: 0 } });

    // The saved output is A * B^T of the documented random fills (float64 reference).
    const A = fillValues("bf16", 1, -1, 1, M * K), B = fillValues("bf16", 2, -1, 1, N * K);
    const C = readTensor(join(dir, "C.bin"), "bf16");
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += A[m * K + k]! * B[n * K + k]!;
        expect(Math.abs(C[m * N + n]! - acc)).toBeLessThanOrEqual(0.01 + 0.01 * Math.abs(acc));
      }
  });

  it("maps row-major C = A * B (transB false) onto column-major cuBLAS correctly", async () => {
    const dir = planDir();
    const M = 5, N = 7, K = 3;
    const A = Array.from({ length: M * K }, (_, i) => (i % 5) - 2);
    const B = Array.from({ length: K * N }, (_, i) => (i % 3) - 1); // [K, N]
    writeTensor(join(dir, "A.bin"), "bf16", A);
    writeTensor(join(dir, "B.bin"), "bf16", B);
    writePlan(dir, [{ name: "nn", cublas: { m: M, n: N, k: K, dtype: "bf16", transB: false, a: { file: "A.bin" }, b: { file: "B.bin" }, save: "C.bin" } }]);
    const res = await runPlan(dir, { runner: bin, env: env() });
    expect(res.cases[0]!.status).toBe("ok");
    const C = readTensor(join(dir, "C.bin"), "bf16");
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += A[m * K + k]! * B[k * N + n]!;
        expect(C[m * N + n], `C[${m},${n}]`).toBe(acc);
      }
  });

  it("passes file inputs and scalars, and compares against a reference file", async () => {
    const dir = planDir();
    const n = 1000;
    const x = Array.from({ length: n }, (_, i) => Math.sin(i)), y = Array.from({ length: n }, (_, i) => i / 7);
    writeTensor(join(dir, "x.bin"), "f32", x);
    writeTensor(join(dir, "y.bin"), "f32", y);
    const want = x.map((v, i) => Math.fround(Math.fround(y[i]!) + Math.fround(Math.fround(0.5) * Math.fround(v))));
    writeTensor(join(dir, "want.bin"), "f64", want);
    writePlan(dir, [{
      name: "axpy", module: "m.cubin", kernel: "axpy", grid: [1], block: [256],
      args: [{ tensor: "x", dtype: "f32", shape: [n], init: { file: "x.bin" } }, { tensor: "y", dtype: "f32", shape: [n], init: { file: "y.bin" }, save: "y.out.bin" }, { i32: n }, { f32: 0.5 }],
      compare: { tensor: "y", file: "want.bin", dtype: "f64", rtol: 0, atol: 0 },
    }]);
    const res = await runPlan(dir, { runner: bin, env: env() });
    expect(res.cases[0]).toMatchObject({ status: "ok", compare: { pass: true, max_abs: 0 } });
    expect(Array.from(readTensor(join(dir, "y.out.bin"), "f32"))).toEqual(want);
  });

  it("rotates enough input copies to exceed twice the L2 between timed launches", async () => {
    const dir = planDir();
    const log = join(dir, "launches.log");
    const n = 10_000; // x and y: 80 KB per copy; L2 256 KiB -> 2 * 262144 / 80000 + 1 = 7 copies
    writePlan(dir, [{
      name: "axpy", module: "m.cubin", kernel: "axpy", grid: [1], block: [256],
      args: [{ tensor: "x", dtype: "f32", shape: [n] }, { tensor: "y", dtype: "f32", shape: [n] }, { i32: n }, { f32: 1 }],
      time: { warmup: 3, reps: 20, rotate: "auto" },
    }]);
    const res = await runPlan(dir, { runner: bin, env: env({ FAKECUDA_L2: "262144", FAKECUDA_LOG: log }) });
    expect(res.cases[0]!.rotate).toBe(7);
    const ptrs = readFileSync(log, "utf8").trim().split("\n").map((l) => l.split(" ")[1]);
    expect(ptrs.length).toBe(1 + 3 + 20);
    expect(new Set(ptrs).size).toBe(7);
    // consecutive launches never reuse the same inputs
    for (let i = 1; i < ptrs.length; i++) expect(ptrs[i]).not.toBe(ptrs[i - 1]);
  });

  it("calls a layer library with its tensors, a workspace and the token count; saves workspace slices; flushes L2 outside the timed span", async () => {
    const dir = planDir();
    const lib = await fakeLayerLib(mock);
    const log = join(dir, "launches.log");
    const T = 6;
    writePlan(dir, [
      { name: "layer", layer: { library: lib, symbol: "moe_layer_fake", tokens: T, workspace: [{ name: "ids", offset: 4, bytes: 8, save: "ids.bin" }] },
        args: [{ tensor: "x", dtype: "bf16", shape: [T, 4], init: { random: { seed: 7 } } }, { tensor: "out", dtype: "f32", shape: [T, 4], save: "out.bin" }],
        time: { warmup: 2, reps: 5, flush_l2: true } },
      { name: "too many tokens", layer: { library: lib, symbol: "moe_layer_fake", tokens: 2000 },
        args: [{ tensor: "x", dtype: "bf16", shape: [2000, 4] }, { tensor: "out", dtype: "f32", shape: [2000, 4] }] },
      { name: "slice past the workspace", layer: { library: lib, symbol: "moe_layer_fake", tokens: 2, workspace: [{ name: "ids", offset: 4, bytes: 8, save: "x.bin" }] },
        args: [{ tensor: "x", dtype: "bf16", shape: [2, 4] }, { tensor: "out", dtype: "f32", shape: [2, 4] }] },
      { name: "no such symbol", layer: { library: lib, symbol: "moe_layer_nope", tokens: 1 }, args: [] },
    ]);
    const res = await runPlan(dir, { runner: bin, env: env({ FAKECUDA_L2: "1000", FAKECUDA_LOG: log }) });
    const [ok, many, past, nosym] = res.cases;
    // 1 ms per call exactly: the flushes (fake memsets that advance the clock) are not in the timed span.
    expect(ok).toMatchObject({ status: "ok", workspace_bytes: 4 * T, flush_l2: true, median_ms: 1, reps: 5 });
    expect(Array.from(readTensor(join(dir, "out.bin"), "f32"))).toEqual(Array.from(fillValues("bf16", 7, -1, 1, T * 4), (v) => 2 * v));
    expect(Array.from(readTensor(join(dir, "ids.bin"), "i32"))).toEqual([1, 2]);
    const flushes = readFileSync(log, "utf8").trim().split("\n").filter((l) => l.startsWith("memset_async")).map((l) => l.split(" ").slice(0, 2).join(" "));
    expect(flushes).toEqual(new Array(2 + 5).fill("memset_async 2000"));
    expect(many).toMatchObject({ status: "error", error: "moe_layer_fake returned 1: fake layer: T > 1000" });
    expect(past!.error).toContain("workspace slice ids [4, +8) lies past the layer's 8 workspace bytes");
    expect(nosym!.error).toContain("has no symbol moe_layer_nope_buffers");
  });

  it("clears a clearBeforeLaunch tensor on the stream before every launch, inside the timed region", async () => {
    const dir = planDir();
    const log = join(dir, "launches.log");
    const n = 1 << 20; // 4 MB of y: 0.004 ms of fake memset per launch
    const axpy = (name: string, clear: boolean): KernelCase => ({
      name, module: "m.cubin", kernel: "axpy", grid: [1], block: [256],
      args: [{ tensor: "x", dtype: "f32", shape: [n], init: { random: { seed: 1, lo: 1, hi: 1 } } },
        { tensor: "y", dtype: "f32", shape: [n], init: { random: { seed: 2, lo: 5, hi: 5 } }, output: true, save: `${name}.y.bin`, clearBeforeLaunch: clear },
        { i32: n }, { f32: 1 }],
      time: { warmup: 2, reps: 5, rotate: 2 },
    });
    writePlan(dir, [axpy("cleared", true)]);
    const res = await runPlan(dir, { runner: bin, env: env({ FAKECUDA_LOG: log }) });
    expect(res.cases[0]).toMatchObject({ status: "ok" });
    // y = 0 + 1 * x after the checked launch, not 5 + x.
    expect(Array.from(readTensor(join(dir, "cleared.y.bin"), "f32").subarray(0, 3))).toEqual([1, 1, 1]);
    const lines = readFileSync(log, "utf8").trim().split("\n").map((l) => l.split(" "));
    expect(lines.length).toBe(2 * (1 + 2 + 5));
    for (let i = 0; i < lines.length; i += 2) expect(lines[i]![0]).toBe("memset_async");
    const plain = planDir();
    writePlan(plain, [axpy("plain", false)]);
    const res0 = await runPlan(plain, { runner: bin, env: env() });
    // The memset's fake time (n * 4 bytes at 1 TB/s) is in the cleared case's timings.
    expect(res.cases[0]!.median_ms! - res0.cases[0]!.median_ms!).toBeCloseTo((4 * n) / 1e9, 6);
  });

  it("clears a clearKernel tensor by that zero kernel, plainly, then launches the kernel with PDL, inside the timed region", async () => {
    const dir = planDir();
    const log = join(dir, "launches.log");
    const n = 1 << 20; // 4 MB of y: 0.004 ms of fake zero kernel per launch, as the memset
    const axpy = (name: string, clear: { clearKernel?: string; clearBeforeLaunch?: boolean }): KernelCase => ({
      name, module: "m.cubin", kernel: "axpy", grid: [1], block: [256],
      args: [{ tensor: "x", dtype: "f32", shape: [n], init: { random: { seed: 1, lo: 1, hi: 1 } } },
        { tensor: "y", dtype: "f32", shape: [n], init: { random: { seed: 2, lo: 5, hi: 5 } }, output: true, save: `${name}.y.bin`, ...clear },
        { i32: n }, { f32: 1 }],
      time: { warmup: 2, reps: 5, rotate: 2 },
    });
    writePlan(dir, [axpy("by kernel", { clearKernel: "zero" })]);
    const res = await runPlan(dir, { runner: bin, env: env({ FAKECUDA_LOG: log }) });
    expect(res.cases[0]).toMatchObject({ status: "ok" });
    expect(Array.from(readTensor(join(dir, "by kernel.y.bin"), "f32").subarray(0, 3))).toEqual([1, 1, 1]);
    // Every launch: the zero kernel on y (plain), then axpy with the PDL attribute; no memset.
    const lines = readFileSync(log, "utf8").trim().split("\n").map((l) => l.split(" "));
    expect(lines.length).toBe(2 * (1 + 2 + 5));
    for (let i = 0; i < lines.length; i += 2) {
      expect([lines[i]![0], lines[i]!.length, lines[i + 1]![0], lines[i + 1]![2]]).toEqual(["zero", 2, "axpy", "pdl"]);
      expect(lines[i + 1]![1]).not.toBe(lines[i]![1]); // axpy's first pointer is x; the zero kernel's is y
    }
    const memset = planDir();
    writePlan(memset, [axpy("by memset", { clearBeforeLaunch: true })]);
    const res0 = await runPlan(memset, { runner: bin, env: env() });
    // The zero kernel's fake time equals the memset's: both are in the timings.
    expect(res.cases[0]!.median_ms!).toBeCloseTo(res0.cases[0]!.median_ms!, 9);
    // A tensor is cleared one way, not both; a zero kernel the module lacks is the case's error.
    const both = planDir();
    writePlan(both, [axpy("both", { clearKernel: "zero", clearBeforeLaunch: true })]);
    const r = await execa(bin, [join(both, "plan.json")], { reject: false, env: env() });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("cases[0].args[1].clearKernel: a tensor is cleared by a memset (clearBeforeLaunch) or by a zero kernel, not both");
    const missing = planDir();
    writePlan(missing, [axpy("missing", { clearKernel: "nope_zero" })]);
    const res2 = await runPlan(missing, { runner: bin, env: env() });
    expect(res2.cases[0]).toMatchObject({ status: "error" });
    expect(res2.cases[0]!.error).toContain("cuModuleGetFunction(nope_zero)");
  });

  it("names CUDA errors with their case and kernel, keeps going, and reruns after a lost context", async () => {
    const dir = planDir();
    writePlan(dir, [
      { name: "ref", cublas: { m: 8, n: 8, k: 8, dtype: "bf16" } },
      { name: "too much smem", module: "m.cubin", kernel: "axpy", grid: [1], block: [32], smem: 300_000, args: [] },
      { name: "no such kernel", module: "m.cubin", kernel: "nope", grid: [1], block: [32], args: [] },
      { name: "fault", module: "m.cubin", kernel: "fault", grid: [1], block: [32], args: [] },
      gemmCase("after", "gemm_bt", 8, 8, 8, { compare: { tensor: "C", with: "ref", withTensor: "C" } }),
      { name: "copy", copy: { bytes: 1 << 20 }, time: { reps: 3 } },
    ]);
    const raw = await execa(bin, [join(dir, "plan.json"), "--out", join(dir, "raw.json")], { reject: false, env: env() });
    expect(raw.exitCode).toBe(1);
    expect(raw.stderr).toContain("context lost in case 'fault'");
    expect(raw.stderr).toContain("runner: case 'no such kernel' error: CUDA_ERROR_NOT_FOUND in cuModuleGetFunction(nope)");

    const res = await runPlan(dir, { runner: bin, env: env() });
    const by = Object.fromEntries(res.cases.map((c) => [c.name, c]));
    expect(by["too much smem"]!.error).toContain("CUDA_ERROR_INVALID_VALUE in cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES=300000) for kernel axpy");
    expect(by["no such kernel"]!.error).toContain("CUDA_ERROR_NOT_FOUND in cuModuleGetFunction(nope)");
    expect(by["fault"]).toMatchObject({ status: "error", context_lost: true });
    expect(by["fault"]!.error).toContain("CUDA_ERROR_ILLEGAL_ADDRESS in kernel fault");
    expect(res.context_lost).toEqual(["fault"]);
    expect(by["after"]).toMatchObject({ status: "ok", compare: { pass: true } });
    expect(by["copy"]!.status).toBe("ok");
    expect(by["copy"]!.gbps).toBeCloseTo(1000, 0); // the fake copies at 2 bytes per ns, read + written
    expect(res.cases.map((c) => c.name)).toEqual(["ref", "too much smem", "no such kernel", "fault", "after", "copy"]);
  });
});
