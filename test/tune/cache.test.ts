// The tune cache: keys, shape buckets, atomic writes, corrupt and foreign files, lookup.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as fs from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CACHE_SCHEMA, type TuneCache, entryKey, loadCache, lookup, saveEntries, shapeDistance, writeAtomic, type CacheEntry } from "../../src/tune/cache.ts";
import { nextPow2, shapeBucket } from "../../src/tune/key.ts";
import { tmp } from "./helpers.ts";

function entry(over: Partial<CacheEntry> = {}): CacheEntry {
  const shape = over.shape ?? { M: 16, N: 14336, K: 4096 };
  return {
    kernelHash: "k1", spaceHash: "s1", dtypes: "A:bf16,B:bf16,C:bf16", arch: "sm_90a", gpu: "NVIDIA H200", nvcc: "release 13.0, V13.0.88",
    bucket: shapeBucket(shape), kernel: "gemm_bf16", file: "dsl-examples/gemm.ts", shape, config: { BM: 64, BN: 128 },
    median_ms: 0.05, timed: 10, space: 72, tunedAt: "2026-11-27T10:00:00.000Z", ...over,
  };
}

describe("keys and buckets", () => {
  it("buckets M to the next power of two and keeps the other dims exact", () => {
    expect([1, 2, 3, 16, 17, 4096, 4097].map(nextPow2)).toEqual([1, 2, 4, 16, 32, 4096, 8192]);
    expect(shapeBucket({ M: 12, N: 14336, K: 4096 })).toEqual({ M: 16, N: 14336, K: 4096 });
    expect(shapeBucket({ M: 12, N: 100 }, ["M", "N"])).toEqual({ M: 16, N: 128 });
  });

  it("gives equal keys to shapes of one bucket and different keys when anything else changes", () => {
    const base = entry();
    expect(entryKey(entry({ shape: { M: 9, N: 14336, K: 4096 }, bucket: shapeBucket({ M: 9, N: 14336, K: 4096 }) }))).toBe(entryKey(base));
    const variants: Partial<CacheEntry>[] = [
      { kernelHash: "k2" }, { spaceHash: "s2" }, { dtypes: "A:f16,B:f16,C:f16" }, { arch: "sm_80" }, { gpu: "NVIDIA H100 80GB HBM3" },
      { nvcc: "release 12.8, V12.8.93" }, { bucket: { M: 32, N: 14336, K: 4096 } }, { bucket: { M: 16, N: 14336, K: 2048 } },
    ];
    const keys = new Set([entryKey(base), ...variants.map((v) => entryKey(entry(v)))]);
    expect(keys.size).toBe(variants.length + 1);
    // The order dims are listed in does not matter.
    expect(entryKey(entry({ bucket: { K: 4096, N: 14336, M: 16 } }))).toBe(entryKey(base));
  });
});

describe("the cache file", () => {
  it("round-trips entries and replaces an entry with the same key", () => {
    const path = join(tmp("cache"), "sub", "tune.json");
    const warns: string[] = [];
    saveEntries(path, [entry()], (w) => warns.push(w));
    saveEntries(path, [entry({ config: { BM: 128, BN: 128 }, median_ms: 0.04 }), entry({ shape: { M: 1, N: 14336, K: 4096 }, bucket: { M: 1, N: 14336, K: 4096 } })], (w) => warns.push(w));
    const c = loadCache(path, (w) => warns.push(w));
    expect(warns).toEqual([]);
    expect(Object.keys(c.entries)).toHaveLength(2);
    expect(c.entries[entryKey(entry())]!.config).toEqual({ BM: 128, BN: 128 });
    expect(JSON.parse(readFileSync(path, "utf8"))).toMatchObject({ schema: CACHE_SCHEMA, version: 1 });
    expect(readdirSync(join(path, "..")).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("warns about a corrupt file, ignores it, and moves it aside when saving", () => {
    const dir = tmp("corrupt");
    const path = join(dir, "tune.json");
    writeFileSync(path, '{"schema": "tilemoe.tune-cache", "version": 1, "entries": {');
    const warns: string[] = [];
    expect(loadCache(path, (w) => warns.push(w)).entries).toEqual({});
    expect(warns[0]).toMatch(/tune cache .*tune\.json is corrupt .*ignoring it/);
    saveEntries(path, [entry()], (w) => warns.push(w));
    expect(Object.keys(loadCache(path, () => {}).entries)).toHaveLength(1);
    const aside = readdirSync(dir).filter((f) => f.startsWith("tune.json.bad-"));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]!), "utf8")).toContain('"entries": {');
  });

  it("ignores a foreign file, a future version, and malformed or mis-keyed entries", () => {
    const path = join(tmp("foreign"), "tune.json");
    const warnsOf = (text: string) => { writeFileSync(path, text); const w: string[] = []; const c = loadCache(path, (m) => w.push(m)); return { w, c }; };
    expect(warnsOf('{"triton": "autotune cache"}').w[0]).toMatch(/not a tilemoe tune cache/);
    expect(warnsOf("[1, 2, 3]").w[0]).toMatch(/not a tilemoe tune cache/);
    expect(warnsOf("null").w[0]).toMatch(/not a tilemoe tune cache/);
    expect(warnsOf(JSON.stringify({ schema: CACHE_SCHEMA, version: 2, entries: {} })).w[0]).toMatch(/schema version 2.*reads version 1/);
    const good = entry();
    const bad = { ...entry({ gpu: "x" }), median_ms: "fast" };
    const wrongKey = entry({ gpu: "y" });
    const { w, c } = warnsOf(JSON.stringify({ schema: CACHE_SCHEMA, version: 1, entries: { [entryKey(good)]: good, [entryKey(entry({ gpu: "x" }))]: bad, nope: wrongKey } }));
    expect(Object.values(c.entries)).toEqual([good]);
    expect(w).toEqual([expect.stringMatching(/2 malformed entries ignored/)]);
  });

  it("writes atomically: a failed write leaves the old file whole and no temporary behind", () => {
    const dir = tmp("atomic");
    const path = join(dir, "tune.json");
    writeFileSync(path, "old contents\n");
    const failing = { ...fs, writeFileSync: ((p: string, text: string) => { fs.writeFileSync(p, text.slice(0, 5)); throw new Error("disk full"); }) as typeof fs.writeFileSync };
    expect(() => writeAtomic(path, "new contents\n", failing)).toThrow(/disk full/);
    expect(readFileSync(path, "utf8")).toBe("old contents\n");
    expect(readdirSync(dir)).toEqual(["tune.json"]);
    const noRename = { ...fs, renameSync: (() => { throw new Error("EXDEV"); }) as typeof fs.renameSync };
    expect(() => writeAtomic(path, "new contents\n", noRename)).toThrow(/EXDEV/);
    expect(readdirSync(dir)).toEqual(["tune.json"]);
    writeAtomic(path, "new contents\n");
    expect(readFileSync(path, "utf8")).toBe("new contents\n");
    expect(existsSync(path)).toBe(true);
  });
});

describe("lookup", () => {
  const cache: TuneCache = { schema: CACHE_SCHEMA, version: 1, entries: {} };
  const add = (e: CacheEntry) => { cache.entries[entryKey(e)] = e; return e; };
  const small = add(entry({ shape: { M: 16, N: 14336, K: 4096 }, config: { BM: 64 } }));
  const big = add(entry({ shape: { M: 4096, N: 14336, K: 4096 }, bucket: { M: 4096, N: 14336, K: 4096 }, config: { BM: 128 } }));
  add(entry({ kernelHash: "other", config: { BM: 1 } }));
  const h100 = add(entry({ gpu: "NVIDIA H100", shape: { M: 16, N: 14336, K: 4096 }, config: { BM: 32 } }));
  const q = { kernelHash: "k1", spaceHash: "s1", dtypes: "A:bf16,B:bf16,C:bf16", arch: "sm_90a" };

  it("picks the nearest tuned shape and says which", () => {
    const r = lookup(cache, { ...q, shape: { M: 8, N: 14336, K: 4096 }, gpu: "NVIDIA H200" })!;
    expect(r.entry).toBe(small);
    expect(r.note).toMatch(/tuned config for M=16,N=14336,K=4096 on NVIDIA H200 \(nearest tuned shape\): BM=64/);
    expect(lookup(cache, { ...q, shape: { M: 2000, N: 14336, K: 4096 }, gpu: "NVIDIA H200" })!.entry).toBe(big);
  });

  it("prefers the asked GPU, takes the largest problem without a shape, and finds nothing for another kernel", () => {
    expect(lookup(cache, { ...q, shape: { M: 16, N: 14336, K: 4096 }, gpu: "NVIDIA H100" })!.entry).toBe(h100);
    expect(lookup(cache, { ...q, gpu: "NVIDIA H200" })!.entry).toBe(big);
    expect(lookup(cache, { ...q, kernelHash: "k3" })).toBeUndefined();
    expect(lookup(cache, { ...q, arch: "sm_80" })).toBeUndefined();
    expect(shapeDistance({ M: 8 }, { M: 16 })).toBe(1);
  });
});
