// The candidates of one kernel's space: every config lowered, deduplicated, emitted and
// compiled (nvcc in a pool, one job per core), each either ready to time or set aside with
// the reason. Nothing here touches a GPU.
import { createHash } from "node:crypto";
import { cpus } from "node:os";
import { type Kernel, type TunableValue } from "../ir/ir.ts";
import { resolveConfig } from "../passes/specialize.ts";
import { printKernel } from "../ir/print.ts";
import { cudaTarget, lower } from "../passes/pipeline.ts";
import { emitCuda } from "../codegen/cuda/index.ts";
import { compileCuda, NvccNotFoundError, runnerModule, type Arch, type KernelResources } from "../driver/nvcc.ts";
import { allConfigs, configKey, defaultConfig, satisfies, type Config } from "./space.ts";
import { hardLimit, softLimit, type DeviceLimits } from "./limits.ts";
import { mapPool } from "./pool.ts";

export type CandidateStatus = "ready" | "pruned" | "duplicate" | "compile_error";

export interface Candidate {
  id: string;
  config: Config;
  status: CandidateStatus;
  reason?: string;
  duplicateOf?: string;
  isDefault?: boolean;
  /** Named by `--include`: always among a `--max-candidates` sample. */
  included?: boolean;
  threads?: number;
  /** Dynamic shared memory of the launch, bytes. */
  smem?: number;
  smemStatic?: number;
  registers?: number;
  spills?: number;
  symbol?: string;
  /** Not serialized: the compiled module and the lowered kernel (grid, params) for the plan. */
  cubin?: Uint8Array;
  low?: Kernel;
}

export type CompileFn = (cu: string, arch: Arch) => Promise<{ cubin: Uint8Array; resources: Record<string, KernelResources> }>;

export interface CandidateOptions {
  arch: Arch;
  limits: DeviceLimits;
  /** Default: nvcc through compileCuda (content-hash cached). */
  compile?: CompileFn;
  concurrency?: number;
  /** Compile and time at most this many (the default config always among them): the rest of
   *  the distinct, legal candidates are set aside as not sampled. */
  maxCandidates?: number;
  /** Configs (tunable assignments; unnamed tunables take their defaults) that every sample
   *  holds, e.g. the best configs known from a bench: a sample of a large space can miss them. */
  include?: Record<string, TunableValue>[];
  onProgress?: (done: number, total: number, c: Candidate) => void;
}

const defaultCompile: CompileFn = async (cu, arch) => {
  // `cubin` holds what the runner loads: a fatbin for sm_80 (runnerModule).
  const kind = runnerModule(arch);
  const r = await compileCuda(cu, { arch, outputs: [kind] });
  return { cubin: r[kind]!, resources: r.resources };
};

/** Two configs whose lowered kernels print the same (their tunables and config aside)
 *  compile to the same code: only the first is timed. */
export function loweredFingerprint(low: Kernel): string {
  const text = printKernel({ ...low, tunables: {}, where: undefined, config: {} });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

export async function buildCandidates(k: Kernel, opts: CandidateOptions): Promise<Candidate[]> {
  // The target `tilemoe build` uses for the arch, so the tuned code is the built code.
  const target = cudaTarget(opts.arch);
  const compile = opts.compile ?? defaultCompile;
  const dflt = configKey(defaultConfig(k));
  // resolveConfig refuses (a located error) a tunable the kernel lacks, a value outside its
  // space and a config its 'where' refuses: an include that could never be sampled.
  const included = new Set((opts.include ?? []).map((c) => configKey(resolveConfig(k, c))));
  const configs = allConfigs(k);
  const total = configs.length;
  let done = 0;
  const tick = (c: Candidate) => opts.onProgress?.(++done, total, c);
  const seen = new Map<string, string>();
  const toCompile: { c: Candidate; cu: string }[] = [];
  const out: Candidate[] = [];

  configs.forEach((config, i) => {
    const c: Candidate = { id: `c${String(i).padStart(3, "0")}`, config, status: "ready" };
    if (configKey(config) === dflt) c.isDefault = true;
    if (included.has(configKey(config))) c.included = true;
    out.push(c);
    const setAside = (status: CandidateStatus, reason: string) => { c.status = status; c.reason = reason; tick(c); };
    if (!satisfies(k, config)) return setAside("pruned", "fails the kernel's 'where' constraint");
    let low: Kernel;
    try {
      low = lower(k, config, target);
    } catch (e) {
      return setAside("compile_error", `lowering: ${firstLines(e, 2)}`);
    }
    const fp = loweredFingerprint(low);
    const twin = seen.get(fp);
    if (twin) { c.duplicateOf = twin; return setAside("duplicate", `lowers to the same kernel as ${twin}`); }
    seen.set(fp, c.id);
    let emitted;
    try {
      emitted = emitCuda(low, { name: `${k.name}_${c.id}` });
    } catch (e) {
      return setAside("compile_error", `CUDA emitter: ${firstLines(e, 2)}`);
    }
    Object.assign(c, { threads: emitted.threads, smem: emitted.smemBytes, symbol: emitted.kernelSymbol, low });
    const early = hardLimit({ threads: emitted.threads, smemDynamic: emitted.smemBytes }, opts.limits);
    if (early) return setAside("pruned", early);
    toCompile.push({ c, cu: emitted.cu });
  });

  const chosen = opts.maxCandidates !== undefined ? sampleCandidates(toCompile, opts.maxCandidates, (t) => t.c) : toCompile;
  if (chosen.length < toCompile.length) {
    const keep = new Set(chosen);
    for (const t of toCompile) {
      if (keep.has(t)) continue;
      t.c.status = "pruned";
      t.c.reason = `not sampled (--max-candidates ${opts.maxCandidates} of ${toCompile.length})`;
      t.c.low = undefined;
      tick(t.c);
    }
  }
  await mapPool(chosen, opts.concurrency ?? cpus().length, async ({ c, cu }) => {
    try {
      const r = await compile(cu, opts.arch);
      const res = r.resources[c.symbol!];
      c.cubin = r.cubin;
      if (res) {
        c.registers = res.registers;
        c.smemStatic = res.smemStatic;
        c.spills = res.spillLoads + res.spillStores;
      }
      const block = { threads: c.threads!, smemDynamic: c.smem!, smemStatic: c.smemStatic, registers: c.registers, spillBytes: c.spills };
      // Spills make a candidate slow, not wrong: the default config stays in as the baseline.
      const why = hardLimit(block, opts.limits) ?? (c.isDefault ? undefined : softLimit(block));
      if (why) { c.status = "pruned"; c.reason = why; }
    } catch (e) {
      if (e instanceof NvccNotFoundError) throw e;
      c.status = "compile_error";
      c.reason = `nvcc: ${firstLines(e, 3)}`;
    }
    if (c.status !== "ready") { c.cubin = undefined; }
    tick(c);
  });
  return out;
}

/**
 * A deterministic sample of `n` items: the default config first, then the included ones
 * (`--include`; more of them than `n` are all kept), then the rest in an order
 * fixed by a hash of their config (so a replan picks the same ones and nvcc's cache hits),
 * which spreads the picks over the space instead of taking one corner of the product.
 */
export function sampleCandidates<T>(items: T[], n: number, cand: (t: T) => Candidate): T[] {
  if (items.length <= n) return items;
  const h = (t: T) => createHash("sha256").update(configKey(cand(t).config)).digest("hex");
  const tier = (t: T) => (cand(t).isDefault ? 0 : cand(t).included ? 1 : 2);
  const rank = [...items].sort((a, b) => tier(a) - tier(b) || (h(a) < h(b) ? -1 : 1));
  const keep = new Set(rank.slice(0, Math.max(n, items.filter((t) => tier(t) < 2).length)));
  return items.filter((t) => keep.has(t));
}

function firstLines(e: unknown, n: number): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n").filter((l) => l.trim()).slice(0, n).join(" | ");
}
