// `tilemoe tune --export FILE`: copies cache winners into a small file meant to be committed
// (bench/tuned.json), because the cache lives in the git-ignored .cache and the GPU machine
// gets only the tree. The file is itself a tune cache (same schema, same validation), so
// `tilemoe build --tune-cache FILE` and the bench read it like any cache; exporting again
// merges into it.
import { loadCache, saveEntries, type Warn } from "./cache.ts";
import { selectForExport } from "./winners.ts";

export function exportWinners(cachePath: string, outPath: string, o: { kernels?: string[]; warn: Warn }): number {
  const entries = selectForExport(Object.values(loadCache(cachePath, o.warn).entries), o.kernels);
  if (!entries.length) {
    o.warn(`${cachePath} has no tuned winners${o.kernels ? ` of ${o.kernels.join(", ")}` : ""}; ${outPath} left as it was`);
    return 0;
  }
  saveEntries(outPath, entries, o.warn);
  return entries.length;
}
