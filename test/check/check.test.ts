// The checker itself: it passes correct kernels, and it catches and shrinks wrong ones.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { caseArbitrary, checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { defineCheck, ref } from "../../src/check/spec.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { DeviceLimitError } from "../../src/check/device-limit.ts";
import type { Backend } from "../../src/check/run.ts";

const file = "dsl-examples/gemm.ts";
const [gemm] = parseKernels(file).filter((k) => k.name === "gemm_bf16");

describe("tilemoe check on the interpreter", () => {
  it("finds the check specs a kernel file exports", async () => {
    const specs = await loadSpecs(file);
    expect([...specs.keys()].sort()).toEqual(["gemm_bf16", "gemm_f16"]);
  });

  it("passes the bf16 GEMM at tile level and lowered", async () => {
    const spec = (await loadSpecs(file)).get("gemm_bf16")!;
    for (const level of ["tile", "thread"] as const) {
      const backend = await backendFor("interp", { level, arch: "sm_80" });
      const r = await checkKernel(gemm!, spec, { backendName: "interp", backend, cases: 6, seed: 3, reproduce: "x" });
      expect(r, level).toMatchObject({ passed: 6, failed: 0 });
    }
  });

  it("a --shape outside the spec's dimsWhere is a clear error, not a search that never draws a case", async () => {
    const spec = defineCheck({ kernel: "gemm_bf16", dims: { M: [1, 40], N: [1, 40], K: [1, 40] }, dimsWhere: ({ M, N }) => M! <= N!,
      reference: ({ A, B }) => ({ C: ref.gemmRef(A!, B!, { transB: true }).data }) });
    expect(() => caseArbitrary(gemm!, spec, { shape: { M: 9, N: 4, K: 8 } })).toThrow(/--shape M=9,N=4,K=8 is outside the check domain of gemm_bf16/);
    expect(() => caseArbitrary(gemm!, spec, { shape: { M: 4, N: 9, K: 8 } })).not.toThrow();
  });

  it("reports a wrong result with the element, counts, and a shrunk reproducing command", async () => {
    // The reference forgets the transpose: every case with N != 1 or K != 1 must fail.
    const wrong = defineCheck({
      kernel: "gemm_bf16",
      dims: { M: [1, 40], N: [2, 40], K: [2, 40] },
      reference: ({ A, B }) => {
        const Bt = { ...B!, shape: [B!.shape[1]!, B!.shape[0]!] };
        return { C: ref.gemmRef(A!, Bt, {}).data.slice(0, A!.shape[0]! * B!.shape[0]!) };
      },
      reduction: ({ K }) => K!,
    });
    const backend = await backendFor("interp", { level: "tile", arch: "sm_80" });
    const r = await checkKernel(gemm!, wrong, { backendName: "interp", backend, cases: 4, seed: 9, reproduce: "tilemoe check F" });
    expect(r.failed).toBeGreaterThan(0);
    expect(r.failures[0]).toMatch(/C\[\d+, \d+\] = .*expected .* elements off/);
    expect(r.counterexample).toMatch(/^tilemoe check F --shape M=\d+,K=\d+,N=\d+ --config BM=\d+.* --data-seed \d+ --cases 1/);
    // Shrinking drives dims toward the smallest failing ones.
    const dims = /--shape M=(\d+),K=(\d+),N=(\d+)/.exec(r.counterexample!)!.slice(1).map(Number);
    expect(dims[0]).toBe(1);
  });

  it("names every output that is off, not only the first (was: the first alone)", async () => {
    const f2i = "test/frontend/kernels/float_to_int.ts";
    const [k] = parseKernels(f2i);
    const good = (await loadSpecs(f2i)).get("float_to_int")!;
    // The reference zeroes I16 and U8: both are off wherever an input is not near zero.
    const wrong = defineCheck({ ...good, dims: { N: [30, 40] }, reference: (ins, s, d) => {
      const r = good.reference(ins, s, d);
      return { ...r, I16: r.I16!.map(() => 0), U8: r.U8!.map(() => 0) };
    } });
    const backend = await backendFor("interp", { level: "tile", arch: "sm_80" });
    const r = await checkKernel(k!, wrong, { backendName: "interp", backend, cases: 2, seed: 5, reproduce: "x" });
    expect(r.failed).toBe(2);
    expect(r.failures[0]).toMatch(/: I16\[\d+\] = .* elements off; also off: U8 \(\d+ of \d+\)$/);
  });

  it("counts a case the device cannot run as skipped, with the reason, not as failed, and shrinks past it", async () => {
    const spec = (await loadSpecs(file)).get("gemm_bf16")!;
    const interp = await backendFor("interp", { level: "tile", arch: "sm_80" });
    // A device without room for 128-row tiles.
    const small: Backend = async (k, c, t, s) => {
      if (c.config.BM === 128) throw new DeviceLimitError(`${k.name}: needs 65536 bytes of workgroup memory, the device has 32768`);
      return interp(k, c, t, s);
    };
    const r = await checkKernel(gemm!, spec, { backendName: "small", backend: small, cases: 8, seed: 3, reproduce: "x" });
    expect(r.passed + r.skipped).toBe(8);
    expect(r.skipped).toBeGreaterThan(0);
    expect(r.failed).toBe(0);
    expect(r.skips).toEqual(["gemm_bf16: needs 65536 bytes of workgroup memory, the device has 32768"]);
    // A wrong kernel is still caught on the configs that fit, and its counterexample is one of them.
    const wrong = defineCheck({ kernel: "gemm_bf16", dims: { M: [1, 40], N: [2, 40], K: [2, 40] },
      reference: ({ A, B }) => ({ C: ref.gemmRef(A!, B!, { transB: true }).data.map((x) => x + 1) }) });
    const w = await checkKernel(gemm!, wrong, { backendName: "small", backend: small, cases: 8, seed: 3, reproduce: "x" });
    expect(w.failed).toBeGreaterThan(0);
    expect(w.counterexample).toMatch(/--config BM=64/);
  });
});
