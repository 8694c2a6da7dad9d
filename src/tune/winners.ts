// Tuned winners for a consumer other than `tilemoe build` (the bench): every cache entry of
// this kernel's code whose config is still a point of its space, nearest to each shape asked,
// one per GPU it was tuned on. Unlike build's lookup, a changed space (e.g. a reordered
// default) does not hide a winner: the code is the same (kernel hash), the config is legal,
// so timing it is fair; the row says the space changed.
import type { Kernel } from "../ir/ir.ts";
import { entryKey, shapeDistance, type CacheEntry, type TuneCache } from "./cache.ts";
import { dtypesOf, kernelHash, shapeBucket, spaceHash } from "./key.ts";
import { configKey, inSpace } from "./space.ts";

export interface TunedWinner {
  entry: CacheEntry;
  /** The shape asked for. */
  shape: Record<string, number>;
  /** The entry's bucket is the shape's own bucket (otherwise it is the nearest tuned one). */
  exact: boolean;
  /** The kernel's space changed since the sweep (its winner might have changed too). */
  staleSpace: boolean;
}

/** Merges caches (later ones win on equal keys). */
export function mergeCaches(caches: TuneCache[]): CacheEntry[] {
  const all = new Map<string, CacheEntry>();
  for (const c of caches) for (const e of Object.values(c.entries)) all.set(entryKey(e), e);
  return [...all.values()];
}

export function tunedWinners(k: Kernel, arch: string, entries: CacheEntry[], shapes: Record<string, number>[]): TunedWinner[][] {
  const kh = kernelHash(k), sh = spaceHash(k), dt = dtypesOf(k);
  const pool = entries.filter((e) => e.kernelHash === kh && e.dtypes === dt && e.arch === arch && inSpace(k, e.config));
  const gpus = [...new Set(pool.map((e) => e.gpu))].sort();
  return shapes.map((shape) => {
    const bucket = shapeBucket(shape);
    const out: TunedWinner[] = [];
    for (const gpu of gpus) {
      const mine = pool.filter((e) => e.gpu === gpu);
      // Nearest shape; among equals prefer the current space, then the latest sweep.
      mine.sort((a, b) => shapeDistance(bucket, a.bucket) - shapeDistance(bucket, b.bucket) ||
        Number(b.spaceHash === sh) - Number(a.spaceHash === sh) || b.tunedAt.localeCompare(a.tunedAt));
      const e = mine[0];
      if (!e) continue;
      out.push({ entry: e, shape, exact: shapeDistance(bucket, e.bucket) === 0, staleSpace: e.spaceHash !== sh });
    }
    return out;
  });
}

/** One line for a table: where and for what the winner was tuned. */
export function tunedLabel(w: TunedWinner, device?: string): string {
  const at = Object.entries(w.entry.shape).map(([n, x]) => `${n}=${x}`).join(",");
  const parts = [`tuned on ${w.entry.gpu}${device && device !== w.entry.gpu ? ` (not this GPU: ${device})` : ""}`,
    w.exact ? `for this shape` : `for ${at} (nearest tuned shape)`];
  if (w.staleSpace) parts.push("space changed since the sweep");
  return parts.join(", ");
}

/** Entries of a cache to export (all, or those of the named kernels), deterministic order. */
export function selectForExport(entries: CacheEntry[], kernels?: string[]): CacheEntry[] {
  return entries
    .filter((e) => !kernels?.length || kernels.includes(e.kernel))
    .sort((a, b) => a.kernel.localeCompare(b.kernel) || a.gpu.localeCompare(b.gpu) ||
      JSON.stringify(a.bucket).localeCompare(JSON.stringify(b.bucket)) || configKey(a.config).localeCompare(configKey(b.config)));
}
