// `tilemoe build` without --config: the cached winner for the nearest tuned shape, or the
// default config when the cache has none (or is corrupt, or holds a config off the space).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { buildFile, type BuildOptions } from "../../src/cli/build.ts";
import { saveEntries, type CacheEntry } from "../../src/tune/cache.ts";
import { dtypesOf, kernelHash, shapeBucket, spaceHash } from "../../src/tune/key.ts";
import { FIXTURE, tmp } from "./helpers.ts";

const k = parseKernels(FIXTURE)[0]!;
const entry = (N: number, config: Record<string, number>, over: Partial<CacheEntry> = {}): CacheEntry => ({
  kernelHash: kernelHash(k), spaceHash: spaceHash(k), dtypes: dtypesOf(k), arch: "sm_90a", gpu: "NVIDIA H200", nvcc: "release 13.0, V13.0.88",
  bucket: shapeBucket({ N }), kernel: "scale", file: FIXTURE, shape: { N }, config, median_ms: 0.01, timed: 11, space: 24,
  tunedAt: "2026-11-27T00:00:00.000Z", ...over,
});
const opts = (cachePath: string, shape?: Record<string, number>): BuildOptions => ({
  config: {}, arch: "sm_90a", backend: "cuda", emit: new Set(["cu", "h"]), outDir: tmp("build-out"), showStages: false, tuned: { cachePath, shape },
});

afterEach(() => vi.restoreAllMocks());

describe("build with the tune cache", () => {
  it("uses the winner of the nearest tuned shape and says which", async () => {
    const path = join(tmp("build"), "tune.json");
    saveEntries(path, [entry(1000, { TB: 256, warps: 2, unroll: 1 }), entry(1 << 20, { TB: 1024, warps: 4, unroll: 1 })], () => {});
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const [small] = await buildFile(FIXTURE, opts(path, { N: 1500 }));
    expect(small!.config).toBe("TB=256,warps=2,unroll=1");
    expect(small!.threads).toBe(64);
    expect(log.mock.calls.flat().join("\n")).toMatch(/scale: tuned config for N=1000 on NVIDIA H200 \(nearest tuned shape\): TB=256,warps=2,unroll=1/);
    const [big] = await buildFile(FIXTURE, opts(path, { N: 300000 }));
    expect(big!.config).toBe("TB=1024,warps=4,unroll=1");
    const [noShape] = await buildFile(FIXTURE, opts(path));
    expect(noShape!.config).toBe("TB=1024,warps=4,unroll=1");
  });

  it("falls back to the default config for an empty, corrupt or stale cache, with a warning where due", async () => {
    const dir = tmp("build-bad");
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    vi.spyOn(console, "log").mockImplementation(() => {});
    const [none] = await buildFile(FIXTURE, opts(join(dir, "absent.json")));
    expect(none!.config).toBe("TB=128,warps=1,unroll=1");
    expect(warn).not.toHaveBeenCalled();

    writeFileSync(join(dir, "corrupt.json"), "{ not json");
    const [corrupt] = await buildFile(FIXTURE, opts(join(dir, "corrupt.json")));
    expect(corrupt!.config).toBe("TB=128,warps=1,unroll=1");
    expect(warn.mock.calls.flat().join("\n")).toMatch(/corrupt\.json is corrupt/);

    // Off the space (fails the constraint): never compiled.
    saveEntries(join(dir, "stale.json"), [entry(1000, { TB: 128, warps: 4, unroll: 1 })], () => {});
    const [stale] = await buildFile(FIXTURE, opts(join(dir, "stale.json")));
    expect(stale!.config).toBe("TB=128,warps=1,unroll=1");
    expect(warn.mock.calls.flat().join("\n")).toMatch(/TB=128,warps=4,unroll=1 of scale is not in its space/);

    // Another kernel's (or another version's) entries are not used.
    saveEntries(join(dir, "other.json"), [entry(1000, { TB: 256, warps: 2, unroll: 1 }, { kernelHash: "0000" })], () => {});
    const [other] = await buildFile(FIXTURE, opts(join(dir, "other.json")));
    expect(other!.config).toBe("TB=128,warps=1,unroll=1");
  });
});
