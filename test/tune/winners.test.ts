// Sampling a large space (--max-candidates), exporting winners to a committed file
// (--export), and picking each bench shape's tuned winners from caches.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import type { TunableValue } from "../../src/ir/ir.ts";
import { buildCandidates } from "../../src/tune/candidates.ts";
import { ARCH_LIMITS } from "../../src/tune/limits.ts";
import { emptyCache, entryKey, loadCache, saveEntries, type CacheEntry } from "../../src/tune/cache.ts";
import { dtypesOf, kernelHash, shapeBucket, spaceHash } from "../../src/tune/key.ts";
import { exportWinners } from "../../src/tune/export.ts";
import { mergeCaches, tunedLabel, tunedWinners } from "../../src/tune/winners.ts";
import { tuneCommand } from "../../src/cli/tune.ts";
import { preparePlan } from "../../src/tune/tune.ts";
import { FIXTURE, fakeCompile, planOptions, tmp } from "./helpers.ts";

const k = parseKernels(FIXTURE)[0]!;

describe("--max-candidates", () => {
  const build = async (maxCandidates?: number) => {
    const calls: string[] = [];
    const cs = await buildCandidates(k, { arch: "sm_90a", limits: ARCH_LIMITS.sm_90a, compile: fakeCompile(() => ({}), calls), maxCandidates });
    return { cs, compiled: calls.map((s) => /_(c\d+)_kernel/.exec(s)![1]!).sort() };
  };

  it("compiles only a sample, the default among it, and records the rest as not sampled", async () => {
    const all = await build();
    const legal = all.cs.filter((c) => c.status === "ready").length;
    expect(legal).toBeGreaterThan(3);
    const { cs, compiled } = await build(3);
    expect(compiled).toHaveLength(3);
    expect(cs.filter((c) => c.status === "ready").map((c) => c.id).sort()).toEqual(compiled);
    expect(cs.find((c) => c.isDefault)!.status).toBe("ready");
    const unsampled = cs.filter((c) => c.reason?.startsWith("not sampled"));
    expect(unsampled).toHaveLength(legal - 3);
    expect(unsampled[0]!.reason).toBe(`not sampled (--max-candidates 3 of ${legal})`);
    // Constraint failures and duplicates keep their own reasons.
    expect(cs.filter((c) => c.status === "duplicate").length).toBe(all.cs.filter((c) => c.status === "duplicate").length);
  });

  it("samples the same candidates every time, and a limit above the space changes nothing", async () => {
    expect((await build(4)).compiled).toEqual((await build(4)).compiled);
    expect((await build(1000)).compiled).toEqual((await build()).compiled);
  });

  it("reaches the plan: only the sampled candidates get runner plans, the rest say why in tune-meta.json", async () => {
    const dir = tmp("mc-plan");
    const meta = await preparePlan(dir, planOptions({ maxCandidates: 2 }));
    expect(meta.candidates.filter((c) => c.plan).length).toBe(2);
    expect(readdirSync(join(dir, "plans")).length).toBe(2);
    const onDisk = JSON.parse(readFileSync(join(dir, "tune-meta.json"), "utf8")) as typeof meta;
    expect(onDisk.candidates.filter((c) => c.reason?.startsWith("not sampled")).length).toBeGreaterThan(0);
  });

  it("is a flag of tilemoe tune --plan", async () => {
    await expect(tuneCommand([FIXTURE, "--shape", "N=1000", "--max-candidates", "zero", "--plan", tmp("mc")])).rejects.toThrow(/max-candidates/);
  });
});

describe("--include", () => {
  const build = async (maxCandidates: number, include: Record<string, TunableValue>[]) => {
    const calls: string[] = [];
    const cs = await buildCandidates(k, { arch: "sm_90a", limits: ARCH_LIMITS.sm_90a, compile: fakeCompile(() => ({}), calls), maxCandidates, include });
    return { cs, compiled: calls.map((s) => /_(c\d+)_kernel/.exec(s)![1]!).sort() };
  };
  // Configs a hash-ordered sample of 2 (the default and one more) does not pick.
  const unpicked = async () => {
    const { cs } = await build(2, []);
    return cs.filter((c) => c.reason?.startsWith("not sampled")).map((c) => c.config);
  };

  it("always samples the named configs, besides the default, even past --max-candidates", async () => {
    const [a, b] = await unpicked();
    const { cs, compiled } = await build(2, [a!, b!]);
    const inc = cs.filter((c) => c.included);
    expect(inc.map((c) => c.config)).toEqual([a, b]);
    expect(inc.every((c) => c.status === "ready")).toBe(true);
    // default + both includes: the named configs are never dropped for the limit.
    expect(compiled).toEqual([cs.find((c) => c.isDefault)!.id, ...inc.map((c) => c.id)].sort());
  });

  it("fills unnamed tunables with their defaults", async () => {
    const { cs } = await build(1, [{ TB: 512 }]);
    expect(cs.filter((c) => c.included).map((c) => c.config)).toEqual([{ TB: 512, warps: 1, unroll: 1 }]);
  });

  it("refuses a config outside the space, naming the tunable and its values", async () => {
    await expect(build(2, [{ TB: 96 }])).rejects.toThrow(/tunable 'TB' = 96 is not allowed for kernel 'scale'; allowed values: 128, 256, 512, 1024/);
    await expect(build(2, [{ BM: 64 }])).rejects.toThrow(/kernel 'scale' has no tunable 'BM'/);
    await expect(tuneCommand([FIXTURE, "--shape", "N=1000", "--include", "TB", "--plan", tmp("inc")])).rejects.toThrow(/--include/);
  });
});

function entry(over: Partial<CacheEntry> & { shape: Record<string, number> }): CacheEntry {
  return {
    kernelHash: kernelHash(k), spaceHash: spaceHash(k), dtypes: dtypesOf(k), arch: "sm_90a", gpu: "NVIDIA H200",
    nvcc: "release 13.0, V13.0.88", bucket: shapeBucket(over.shape), kernel: "scale", file: FIXTURE,
    config: { TB: 256, warps: 2, unroll: 1 }, median_ms: 0.01, timed: 9, space: 24, tunedAt: "2026-11-28T00:00:00.000Z", ...over,
  };
}

describe("tuned winners for the bench", () => {
  const big = entry({ shape: { N: 1 << 20 }, config: { TB: 1024, warps: 4, unroll: 1 } });
  const small = entry({ shape: { N: 1000 }, config: { TB: 128, warps: 2, unroll: 1 } });
  const h100 = entry({ shape: { N: 1000 }, gpu: "NVIDIA H100 80GB HBM3", config: { TB: 256, warps: 1, unroll: 2 } });

  it("takes per shape the nearest tuned shape's winner, one per GPU, and says whether it is exact", () => {
    const [a, b] = tunedWinners(k, "sm_90a", [big, small, h100], [{ N: 1 << 20 }, { N: 2000 }]);
    expect(a!.map((w) => [w.entry.gpu, w.entry.config.TB, w.exact])).toEqual([
      ["NVIDIA H100 80GB HBM3", 256, false], ["NVIDIA H200", 1024, true]]);
    expect(b!.map((w) => [w.entry.gpu, w.entry.config.TB, w.exact])).toEqual([
      ["NVIDIA H100 80GB HBM3", 256, false], ["NVIDIA H200", 128, false]]);
    expect(tunedLabel(b![1]!, "NVIDIA H100 80GB HBM3")).toBe("tuned on NVIDIA H200 (not this GPU: NVIDIA H100 80GB HBM3), for N=1000 (nearest tuned shape)");
    expect(tunedLabel(a![1]!, "NVIDIA H200")).toBe("tuned on NVIDIA H200, for this shape");
  });

  it("ignores other code, dtypes, arch and configs outside the space; keeps a winner of a changed space, labelled", () => {
    const others = [
      entry({ shape: { N: 1000 }, kernelHash: "other" }), entry({ shape: { N: 1000 }, arch: "sm_80" }),
      entry({ shape: { N: 1000 }, dtypes: "X:f16,Y:f16" }), entry({ shape: { N: 1000 }, config: { TB: 128, warps: 4, unroll: 1 } }),
    ];
    expect(tunedWinners(k, "sm_90a", others, [{ N: 1000 }])[0]).toEqual([]);
    const stale = entry({ shape: { N: 1000 }, spaceHash: "old" });
    const [[w]] = tunedWinners(k, "sm_90a", [stale], [{ N: 1000 }]) as [[ReturnType<typeof tunedWinners>[0][0]]];
    expect(w).toMatchObject({ exact: true, staleSpace: true });
    expect(tunedLabel(w)).toMatch(/space changed since the sweep/);
    // With both, the current space's entry wins.
    expect(tunedWinners(k, "sm_90a", [stale, small], [{ N: 1000 }])[0]![0]!.staleSpace).toBe(false);
  });

  it("merges caches, the later one winning on equal keys", () => {
    const c1 = emptyCache(), c2 = emptyCache();
    c1.entries[entryKey(small)] = small;
    const newer = { ...small, median_ms: 0.005 };
    c2.entries[entryKey(newer)] = newer;
    c2.entries[entryKey(big)] = big;
    const m = mergeCaches([c1, c2]);
    expect(m).toHaveLength(2);
    expect(m.find((e) => e.shape.N === 1000)!.median_ms).toBe(0.005);
  });
});

describe("--export", () => {
  it("copies the winners of the named kernels into a file that reads back as a cache, merging on re-export", async () => {
    const dir = tmp("export");
    const cache = join(dir, "tune.json"), out = join(dir, "tuned.json");
    const other = entry({ shape: { N: 1000 }, kernel: "gemm_bf16", kernelHash: "g" });
    const warns: string[] = [];
    saveEntries(cache, [entry({ shape: { N: 1000 } }), other], (w) => warns.push(w));
    expect(exportWinners(cache, out, { kernels: ["scale"], warn: (w) => warns.push(w) })).toBe(1);
    expect(Object.values(loadCache(out, (w) => warns.push(w)).entries).map((e) => e.kernel)).toEqual(["scale"]);
    expect(await tuneCommand(["--export", out, "--cache", cache, "--kernel", "gemm_bf16"])).toBe(0);
    const back = loadCache(out, (w) => warns.push(w));
    expect(Object.values(back.entries).map((e) => e.kernel).sort()).toEqual(["gemm_bf16", "scale"]);
    expect(JSON.parse(readFileSync(out, "utf8")).schema).toBe("tilemoe.tune-cache");
    expect(warns).toEqual([]);
  });

  it("leaves the file alone and fails when there is nothing to export", async () => {
    const dir = tmp("export-empty");
    const warns: string[] = [];
    expect(exportWinners(join(dir, "none.json"), join(dir, "out.json"), { warn: (w) => warns.push(w) })).toBe(0);
    expect(warns[0]).toMatch(/has no tuned winners/);
    expect(loadCache(join(dir, "out.json"), () => {}).entries).toEqual({});
  });
});
