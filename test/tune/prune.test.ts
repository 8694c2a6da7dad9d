// Pruning before timing: the constraint, the device's limits (shared memory, registers x
// threads), ptxas spills, duplicates after specialization, compile failures.
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { buildCandidates } from "../../src/tune/candidates.ts";
import { ARCH_LIMITS, hardLimit, softLimit } from "../../src/tune/limits.ts";
import { allConfigs, defaultConfig, inSpace, satisfies } from "../../src/tune/space.ts";
import { FIXTURE, fakeCompile } from "./helpers.ts";

const k = parseKernels(FIXTURE)[0]!;
const byKey = <C extends { config: Record<string, unknown> }>(cs: C[], TB: number, warps: number, unroll: number): C =>
  cs.find((c) => c.config.TB === TB && c.config.warps === warps && c.config.unroll === unroll)!;

describe("candidates", () => {
  it("sets aside configs that fail the constraint, with the reason, and never compiles them", async () => {
    const calls: string[] = [];
    const cs = await buildCandidates(k, { arch: "sm_90a", limits: ARCH_LIMITS.sm_90a, compile: fakeCompile(() => ({}), calls) });
    expect(cs).toHaveLength(allConfigs(k).length);
    for (const c of cs) {
      const ok = (c.config.TB as number) >= (c.config.warps as number) * 64;
      if (!ok) expect([c.status, c.reason]).toEqual(["pruned", "fails the kernel's 'where' constraint"]);
      else expect(c.status).not.toBe("pruned");
    }
    const compiled = new Set(calls.map((s) => /_(c\d+)_kernel/.exec(s)![1]));
    expect([...compiled].sort()).toEqual(cs.filter((c) => c.status === "ready").map((c) => c.id).sort());
  });

  it("keeps the first of configs that lower to the same kernel and points the others at it", async () => {
    const cs = await buildCandidates(k, { arch: "sm_90a", limits: ARCH_LIMITS.sm_90a, compile: fakeCompile() });
    const a = byKey(cs, 256, 2, 1), b = byKey(cs, 256, 2, 2);
    expect(a.status).toBe("ready");
    expect(b).toMatchObject({ status: "duplicate", duplicateOf: a.id });
    // Configs that differ in a tunable the code uses are not duplicates.
    expect(byKey(cs, 512, 2, 1).status).toBe("ready");
  });

  it("prunes by the device's shared memory before compiling, and records smem and threads", async () => {
    const calls: string[] = [];
    const limits = { ...ARCH_LIMITS.sm_90a, smemPerBlock: 2048, source: "test device" };
    const cs = await buildCandidates(k, { arch: "sm_90a", limits, compile: fakeCompile(() => ({}), calls) });
    const big = byKey(cs, 1024, 2, 1);
    expect(big.status).toBe("pruned");
    expect(big.reason).toMatch(/shared memory 4 KiB per block exceeds 2 KiB \(test device\)/);
    expect(calls.some((s) => s.includes(big.id))).toBe(false);
    expect(byKey(cs, 512, 2, 1)).toMatchObject({ status: "ready", smem: 2048, threads: 64 });
  });

  it("prunes registers x threads over the block's register file and spilling candidates, but not the default", async () => {
    const cs = await buildCandidates(k, {
      arch: "sm_90a", limits: ARCH_LIMITS.sm_90a,
      compile: fakeCompile((sym) => sym.includes("c010") ? { registers: 600 } : sym.includes("c000") || sym.includes("c008") ? { spillStores: 8, spillLoads: 4 } : {}),
    });
    expect(cs.find((c) => c.id === "c010")!.reason).toMatch(/600 registers x 128 threads = 76800 > 65536/);
    expect(cs.find((c) => c.id === "c008")).toMatchObject({ status: "pruned", spills: 12 });
    expect(cs.find((c) => c.id === "c008")!.reason).toMatch(/spills 12 bytes/);
    // c000 is the default config: slow is not wrong, it stays as the baseline.
    expect(cs.find((c) => c.id === "c000")).toMatchObject({ status: "ready", isDefault: true, spills: 12 });
  });

  it("records a compile failure with nvcc's message and goes on", async () => {
    const ok = fakeCompile();
    const cs = await buildCandidates(k, {
      arch: "sm_80", limits: ARCH_LIMITS.sm_80,
      compile: async (cu, arch) => { if (cu.includes("scale_c006_kernel")) throw new Error("nvcc failed:\nptxas error: too much shared data"); return ok(cu, arch); },
    });
    expect(cs.find((c) => c.id === "c006")).toMatchObject({ status: "compile_error" });
    expect(cs.find((c) => c.id === "c006")!.reason).toMatch(/nvcc: nvcc failed: \| ptxas error: too much shared data/);
    expect(cs.filter((c) => c.status === "ready").length).toBeGreaterThan(5);
  });
});

describe("limits and space helpers", () => {
  it("uses the per-arch shared memory table", () => {
    const r = { threads: 256, smemDynamic: 200 * 1024 };
    expect(hardLimit(r, ARCH_LIMITS.sm_90a)).toBeUndefined();
    expect(hardLimit(r, ARCH_LIMITS.sm_80)).toMatch(/200 KiB per block exceeds 163 KiB/);
    expect(hardLimit({ threads: 256, smemDynamic: 160 * 1024, smemStatic: 4 * 1024 }, ARCH_LIMITS.sm_80)).toMatch(/164 KiB/);
    expect(hardLimit({ threads: 2048, smemDynamic: 0 }, ARCH_LIMITS.sm_80)).toMatch(/2048 threads/);
    expect(hardLimit({ threads: 256, smemDynamic: 0, registers: 256 }, ARCH_LIMITS.sm_80)).toBeUndefined();
    expect(hardLimit({ threads: 256, smemDynamic: 0, registers: 257 }, ARCH_LIMITS.sm_80)).toMatch(/registers/);
    expect(softLimit({ threads: 1, smemDynamic: 0, spillBytes: 0 })).toBeUndefined();
  });

  it("knows the default config and what is in the space", () => {
    expect(defaultConfig(k)).toEqual({ TB: 128, warps: 1, unroll: 1 });
    expect(inSpace(k, { TB: 256, warps: 4, unroll: 2 })).toBe(true);
    expect(inSpace(k, { TB: 128, warps: 4, unroll: 2 })).toBe(false); // constraint
    expect(inSpace(k, { TB: 100, warps: 1, unroll: 1 })).toBe(false); // not a listed value
    expect(inSpace(k, { TB: 128, warps: 1 })).toBe(false); // missing tunable
    expect(satisfies(k, { TB: 128, warps: 2, unroll: 1 })).toBe(true);
  });
});
