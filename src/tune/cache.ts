// The tuning cache: one JSON file, versioned, replaced atomically (write a temporary file
// beside it, then rename), so a reader sees the old file or the new one, never half of one.
// A file that is corrupt or written by something else is reported and ignored: the cache
// only ever chooses among configs, so ignoring it costs speed, never correctness.
import { randomBytes, createHash } from "node:crypto";
import * as fs from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { TunableValue } from "../ir/ir.ts";
import type { Config } from "./space.ts";
import { userError } from "../util/user-error.ts";
import { reason } from "../util/out-dir.ts";

export const CACHE_SCHEMA = "tilemoe.tune-cache";
export const CACHE_VERSION = 1;

/** Everything the winner depends on; two runs with equal keys replace each other. */
export interface EntryKey {
  kernelHash: string;
  spaceHash: string;
  dtypes: string;
  arch: string;
  gpu: string;
  nvcc: string;
  bucket: Record<string, number>;
}

export interface CacheEntry extends EntryKey {
  kernel: string;
  file: string;
  /** The shape it was timed at (the bucket is what it is keyed by). */
  shape: Record<string, number>;
  config: Config;
  median_ms: number;
  tflops?: number;
  gbps?: number;
  /** The default config's time at that shape, when it ran. */
  default_ms?: number;
  /** Candidates timed successfully / in the space. */
  timed: number;
  space: number;
  tunedAt: string;
}

export interface TuneCache {
  schema: typeof CACHE_SCHEMA;
  version: typeof CACHE_VERSION;
  entries: Record<string, CacheEntry>;
}

export const emptyCache = (): TuneCache => ({ schema: CACHE_SCHEMA, version: CACHE_VERSION, entries: {} });

export function defaultCachePath(): string {
  return resolve(process.env.TILEMOE_TUNE_CACHE ?? ".cache/tune.json");
}

export function entryKey(e: EntryKey): string {
  const bucket = Object.keys(e.bucket).sort().map((n) => `${n}=${e.bucket[n]}`).join(",");
  const parts = [e.kernelHash, e.spaceHash, e.dtypes, e.arch, e.gpu, e.nvcc, bucket];
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 20);
}

export type Warn = (msg: string) => void;

/** Never throws: a missing file is an empty cache; a bad one is an empty cache and a warning. */
export function loadCache(path: string, warn: Warn): TuneCache {
  return readCache(path, warn).cache;
}

function readCache(path: string, warn: Warn): { cache: TuneCache; bad: boolean } {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return { cache: emptyCache(), bad: false };
    warn(`tune cache ${path} cannot be read (${(e as Error).message}); ignoring it`);
    return { cache: emptyCache(), bad: false };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    warn(`tune cache ${path} is corrupt (${(e as Error).message}); ignoring it, the default configs are used`);
    return { cache: emptyCache(), bad: true };
  }
  const r = raw as Partial<TuneCache> | null;
  if (!r || typeof r !== "object" || r.schema !== CACHE_SCHEMA) {
    warn(`tune cache ${path} is not a tilemoe tune cache (no "schema": "${CACHE_SCHEMA}"); ignoring it`);
    return { cache: emptyCache(), bad: true };
  }
  if (r.version !== CACHE_VERSION) {
    warn(`tune cache ${path} has schema version ${JSON.stringify(r.version)}, this tilemoe reads version ${CACHE_VERSION}; ignoring it (retune to refill)`);
    return { cache: emptyCache(), bad: true };
  }
  const cache = emptyCache();
  let dropped = 0;
  for (const [key, e] of Object.entries(r.entries ?? {})) {
    if (validEntry(e) && entryKey(e) === key) cache.entries[key] = e;
    else dropped++;
  }
  if (dropped) warn(`tune cache ${path}: ${dropped} malformed entr${dropped === 1 ? "y" : "ies"} ignored`);
  return { cache, bad: false };
}

function validEntry(e: unknown): e is CacheEntry {
  if (!e || typeof e !== "object") return false;
  const x = e as Record<string, unknown>;
  const str = (n: string) => typeof x[n] === "string";
  const dimsOk = (d: unknown) => !!d && typeof d === "object" && Object.values(d).every((v) => Number.isInteger(v) && (v as number) >= 0);
  const cfgOk = (c: unknown) => !!c && typeof c === "object" &&
    Object.values(c).every((v: TunableValue) => ["number", "string", "boolean"].includes(typeof v));
  return ["kernelHash", "spaceHash", "dtypes", "arch", "gpu", "nvcc", "kernel", "file"].every(str) &&
    dimsOk(x.bucket) && dimsOk(x.shape) && cfgOk(x.config) && typeof x.median_ms === "number" && Number.isFinite(x.median_ms);
}

/** Adds (or replaces) entries: read, merge, write atomically. A bad existing file is moved
 *  aside (PATH.bad-<time>) rather than overwritten, so nothing is silently lost. */
export function saveEntries(path: string, entries: CacheEntry[], warn: Warn): TuneCache {
  if (fs.existsSync(path) && fs.statSync(path).isDirectory())
    throw userError(`tune cache ${path} is a folder; give the path of a JSON file (e.g. ${join(path, "tune.json")})`);
  const { cache, bad } = readCache(path, warn);
  if (bad) {
    const aside = `${path}.bad-${Date.now()}`;
    fs.renameSync(path, aside);
    warn(`tune cache: the unreadable file was moved to ${aside}`);
  }
  for (const e of entries) cache.entries[entryKey(e)] = e;
  try {
    writeAtomic(path, JSON.stringify(cache, null, 2) + "\n");
  } catch (e) {
    throw userError(`cannot write the tune cache ${path}: ${reason(e)}; give a path you can write`);
  }
  return cache;
}

/** Writes `text` to `path` through a temporary file and a rename; on failure the old
 *  file is untouched and the temporary removed. `io` is for tests. */
export function writeAtomic(path: string, text: string,
  io: Pick<typeof fs, "writeFileSync" | "renameSync" | "rmSync" | "mkdirSync"> = fs): void {
  io.mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    io.writeFileSync(tmp, text);
    io.renameSync(tmp, path);
  } catch (e) {
    io.rmSync(tmp, { force: true });
    throw e;
  }
}

export interface LookupQuery {
  kernelHash: string;
  spaceHash: string;
  dtypes: string;
  arch: string;
  /** The problem the caller will run; without it the largest tuned problem is taken. */
  shape?: Record<string, number>;
  /** Prefer entries of this GPU / nvcc when present. */
  gpu?: string;
  nvcc?: string;
}

export interface LookupResult { entry: CacheEntry; note: string }

/** Distance between shapes in octaves, summed over dims (a missing dim counts as far). */
export function shapeDistance(a: Record<string, number>, b: Record<string, number>): number {
  let d = 0;
  for (const n of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (!(n in a) || !(n in b)) { d += 64; continue; }
    d += Math.abs(Math.log2(Math.max(1, a[n]!)) - Math.log2(Math.max(1, b[n]!)));
  }
  return d;
}

const work = (s: Record<string, number>) => Object.values(s).reduce((p, x) => p * Math.max(1, x), 1);

/** The cached winner for this kernel closest to the query, and a sentence saying which. */
export function lookup(cache: TuneCache, q: LookupQuery): LookupResult | undefined {
  let pool = Object.values(cache.entries).filter((e) =>
    e.kernelHash === q.kernelHash && e.spaceHash === q.spaceHash && e.dtypes === q.dtypes && e.arch === q.arch);
  if (!pool.length) return undefined;
  if (q.gpu && pool.some((e) => e.gpu === q.gpu)) pool = pool.filter((e) => e.gpu === q.gpu);
  if (q.nvcc && pool.some((e) => e.nvcc === q.nvcc)) pool = pool.filter((e) => e.nvcc === q.nvcc);
  const score = (e: CacheEntry) => (q.shape ? shapeDistance(q.shape, e.bucket) : -work(e.shape));
  pool.sort((a, b) => score(a) - score(b) || b.tunedAt.localeCompare(a.tunedAt));
  const entry = pool[0]!;
  const shape = Object.entries(entry.shape).map(([n, x]) => `${n}=${x}`).join(",");
  const why = q.shape ? "nearest tuned shape" : "largest tuned shape; pass --shape to choose";
  return { entry, note: `tuned config for ${shape} on ${entry.gpu} (${why}): ${Object.entries(entry.config).map(([n, x]) => `${n}=${x}`).join(",")}, ${entry.median_ms.toFixed(4)} ms there` };
}
