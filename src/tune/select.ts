// Which config `tilemoe build` compiles when none is given: the cached winner for the
// nearest tuned shape of this very kernel (same IR, space, dtypes, arch), else the default.
// A cached config that is no longer a point of the space is refused, never compiled.
import type { Kernel } from "../ir/ir.ts";
import { defaultCachePath, loadCache, lookup, type Warn } from "./cache.ts";
import { dtypesOf, kernelHash, spaceHash } from "./key.ts";
import { configKey, inSpace, type Config } from "./space.ts";

export interface TunedChoice { config: Config; note: string }

export function tunedConfig(k: Kernel, arch: string, o: { cachePath?: string; shape?: Record<string, number>; gpu?: string; warn: Warn }): TunedChoice | undefined {
  const path = o.cachePath ?? defaultCachePath();
  const cache = loadCache(path, o.warn);
  const hit = lookup(cache, { kernelHash: kernelHash(k), spaceHash: spaceHash(k), dtypes: dtypesOf(k), arch, shape: o.shape, gpu: o.gpu });
  if (!hit) return undefined;
  if (!inSpace(k, hit.entry.config)) {
    o.warn(`tune cache ${path}: the cached config ${configKey(hit.entry.config)} of ${k.name} is not in its space any more; using the default config`);
    return undefined;
  }
  return { config: hit.entry.config, note: `${k.name}: ${hit.note}` };
}
