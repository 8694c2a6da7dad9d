// `tilemoe build` and `tilemoe build-all`: front end -> passes -> emitters -> nvcc,
// writing the requested artifacts and a one-line-per-kernel summary.
import { existsSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { CompileError, type Kernel, type TunableValue } from "../ir/ir.ts";
import { printKernel } from "../ir/print.ts";
import { parseKernels } from "../frontend/index.ts";
import { cudaTarget, lower, WGSL, type Target, type TensorCoreChoice, type CopyChoice } from "../passes/pipeline.ts";
import { emitCuda } from "../codegen/cuda/index.ts";
import { emitWgsl, wgslBundle } from "../codegen/wgsl/index.ts";
import { compileCuda, nvccAvailable } from "../driver/nvcc.ts";
import { noKernels, parse, parseAssignments, parseCopy, parseCores, parseDequant, parsePdl, parsePersistent, checkPingpong, checkWarpSpecialize, parseShape, refuseCudaOnly, requireFile, unknownDims, UsageError } from "./args.ts";
import { tunedConfig } from "../tune/select.ts";
import { ARCH_LIMITS, hardLimit } from "../tune/limits.ts";
import { userError } from "../util/user-error.ts";
import { printTable } from "./table.ts";
import { claimArtifacts, ensureOutDir, writeArtifact } from "../util/out-dir.ts";

const EMITS = ["ir", "cu", "h", "ptx", "cubin", "wgsl", "json"] as const;
/** Summary columns, the free-text status last so long reasons do not widen the table. */
const COLUMNS = ["file", "kernel", "config", "target", "threads", "smem", "registers", "spills", "status"];
type Emit = (typeof EMITS)[number];

export interface BuildOptions {
  kernel?: string;
  config: Record<string, TunableValue>;
  arch: "sm_80" | "sm_90a";
  cores?: TensorCoreChoice;
  copy?: CopyChoice;
  persistent?: number;
  /** --ws: warp-specialized TMA pipelines. */
  ws?: boolean;
  /** --pingpong: two consumer warpgroups alternate the persistent tiles (needs ws, persistent). */
  pingpong?: boolean;
  /** --dequant wgmma: dequant-gemms under 64 rows take the register-A wgmma too. */
  dequantWgmma?: boolean;
  /** --pdl: programmatic dependent launch (sm_90a): griddepcontrol.wait / launch_dependents at
   *  the kernel's top, and a launcher that launches it with the PDL attribute. */
  pdl?: boolean;
  backend: "cuda" | "wgsl";
  emit: Set<Emit>;
  outDir: string;
  /** Print each IR stage to stdout (with --emit ir on a single build). */
  showStages: boolean;
  /** Without --config: take the tune cache's winner for the nearest tuned shape (CUDA only). */
  tuned?: { cachePath?: string; shape?: Record<string, number> };
}

export interface BuildRow {
  file: string; kernel: string; config: string; target: string;
  threads: number; smem: number; registers?: number; spills?: number; status: string;
}

const BUILD_USAGE = "tilemoe build FILE [--kernel K] [--config BM=128,...] [--shape M=16,N=..] [--tune-cache PATH] [--arch sm_80|sm_90a] [--mma wgmma|sync] [--copy cp.async|tma] [--persistent P] [--ws|--no-ws] [--pingpong] [--dequant wgmma|auto] [--pdl] [--target cuda|wgsl] [--emit ir,cu,h,ptx,cubin,wgsl,json] [-o DIR]";

export async function buildCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    kernel: { type: "string" }, config: { type: "string" }, arch: { type: "string" }, mma: { type: "string" }, copy: { type: "string" }, persistent: { type: "string" }, ws: { type: "boolean" }, "no-ws": { type: "boolean" }, pingpong: { type: "boolean" }, dequant: { type: "string" }, pdl: { type: "boolean" },
    target: { type: "string" }, emit: { type: "string" }, o: { type: "string", short: "o" },
    shape: { type: "string" }, "tune-cache": { type: "string" },
  }, BUILD_USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one FILE\nusage: ${BUILD_USAGE}`);
  const backend = (values.target as string | undefined) ?? "cuda";
  if (backend !== "cuda" && backend !== "wgsl") throw new UsageError(`--target must be cuda or wgsl, got '${backend}'`);
  if (backend === "wgsl") refuseCudaOnly(values, "--target wgsl");
  const emit = parseEmit((values.emit as string | undefined) ?? (backend === "wgsl" ? "wgsl" : "cu,h"), backend);
  // --shape and --tune-cache pick a tuned CUDA config; with --config (or for WGSL) nothing would use them.
  const tuneFlags = ["shape", "tune-cache"].filter((f) => values[f] !== undefined).map((f) => `--${f}`);
  if (tuneFlags.length && values.config !== undefined) throw new UsageError(`${tuneFlags.join(" and ")} ${tuneFlags.length > 1 ? "pick" : "picks"} the tuned config; --config names one: drop one or the other`);
  // An absent default cache is normal (nothing tuned yet); an absent named one is a typo that
  // would silently build the default config.
  const tc = values["tune-cache"] as string | undefined;
  if (tc !== undefined && !existsSync(tc)) throw new UsageError(`--tune-cache ${tc}: no such file (a cache written by tilemoe tune, or an export such as bench/tuned.json)`);
  if (tuneFlags.length && backend === "wgsl") throw new UsageError(`${tuneFlags.join(" and ")} ${tuneFlags.length > 1 ? "pick" : "picks"} a tuned CUDA config; a --target wgsl build takes --config`);
  const opts: BuildOptions = {
    kernel: values.kernel as string | undefined,
    config: values.config ? parseAssignments(values.config as string, "--config") : {},
    arch: parseArch(values.arch as string | undefined),
    cores: parseCores(values.mma),
    copy: parseCopy(values.copy),
    persistent: parsePersistent(values.persistent),
    ws: checkWarpSpecialize(values.ws as boolean | undefined, values["no-ws"] as boolean | undefined, backend === "wgsl" ? "wgsl" : parseArch(values.arch as string | undefined), parseCores(values.mma), parseCopy(values.copy)),
    dequantWgmma: parseDequant(values.dequant, backend === "wgsl" ? "wgsl" : parseArch(values.arch as string | undefined)),
    pdl: parsePdl(values.pdl as boolean | undefined, backend === "wgsl" ? "wgsl" : parseArch(values.arch as string | undefined)),
    backend, emit, outDir: (values.o as string | undefined) ?? "generated", showStages: emit.has("ir"),
    ...(values.config ? {} : { tuned: { cachePath: values["tune-cache"] as string | undefined, shape: values.shape ? parseShape(values.shape as string) : undefined } }),
  };
  opts.pingpong = checkPingpong(values.pingpong as boolean | undefined, opts.ws === true && backend === "cuda", opts.persistent);
  const rows = await buildFile(requireFile(positionals[0]!), opts);
  printTable(rows, COLUMNS);
  return rows.some((r) => r.status !== "ok") ? 1 : 0;
}

export async function buildAllCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { o: { type: "string", short: "o" }, arch: { type: "string" } }, "tilemoe build-all [-o DIR] [--arch sm_80|sm_90a]");
  if (positionals.length) throw new UsageError(`build-all compiles every kernel of dsl-examples/ and takes no FILE (got ${positionals.join(" ")}); for one file: tilemoe build ${positionals[0]}`);
  const dir = "dsl-examples";
  const files = readdirSync(dir).filter((f) => f.endsWith(".ts")).sort();
  const haveNvcc = await nvccAvailable();
  if (!haveNvcc) console.warn("tilemoe: nvcc not found on PATH: writing CUDA sources only (no cubin, no ptxas report)");
  const rows: BuildRow[] = [];
  const arch = parseArch(values.arch as string | undefined);
  const outDir = (values.o as string | undefined) ?? "generated";
  ensureOutDir(outDir, "-o");
  for (const f of files) {
    const file = join(dir, f);
    let kernels: Kernel[];
    try {
      kernels = parseKernels(file);
    } catch (e) {
      rows.push(failedRow(f, "-", "-", e));
      continue;
    }
    const cuda: BuildOptions = { config: {}, arch, backend: "cuda", emit: new Set<Emit>(haveNvcc ? ["cu", "h", "cubin"] : ["cu", "h"]), outDir, showStages: false };
    const wgsl: BuildOptions = { ...cuda, backend: "wgsl", emit: new Set<Emit>(["wgsl"]) };
    for (const opts of [cuda, wgsl])
      for (const k of kernels) {
        try {
          rows.push(await buildKernel(file, k, opts));
        } catch (e) {
          rows.push(failedRow(f, k.name, opts.backend === "wgsl" ? "wgsl" : arch, e));
        }
      }
  }
  printTable(rows, COLUMNS);
  const bad = rows.filter((r) => r.status.startsWith("error")).length;
  const skipped = rows.filter((r) => r.status.startsWith("skipped")).length;
  console.log(`\n${rows.length - bad - skipped} built, ${skipped} skipped (not expressible on that target yet), ${bad} failed -> ${outDir}/`);
  return bad ? 1 : 0;
}

/** A summary row for a kernel that did not build. A CompileError from the WGSL emitter
 *  means the kernel uses something WGSL has no expansion for yet: a gap of the target,
 *  shown as skipped with its reason, not a failed build. */
function failedRow(file: string, kernel: string, target: string, e: unknown): BuildRow {
  const first = (e as Error).message.split("\n")[0]!.replace(/^error: /, "");
  const gap = target === "wgsl" && e instanceof CompileError;
  return { file, kernel, config: "-", target, threads: 0, smem: 0, status: `${gap ? "skipped" : "error"}: ${first}` };
}

export async function buildFile(file: string, opts: BuildOptions): Promise<BuildRow[]> {
  let kernels = parseKernels(file);
  if (!kernels.length) throw new UsageError(noKernels(file));
  if (opts.kernel) {
    kernels = kernels.filter((k) => k.name === opts.kernel);
    if (!kernels.length) throw new UsageError(`${file}: no kernel named '${opts.kernel}' (kernels: ${parseKernels(file).map((k) => k.name).join(", ")})`);
  }
  if (opts.tuned?.shape) unknownDims(opts.tuned.shape, kernels.map((k) => k.dims));
  ensureOutDir(opts.outDir, "-o");
  const rows: BuildRow[] = [];
  for (const k of kernels) rows.push(await buildKernel(file, k, opts));
  return rows;
}

async function buildKernel(file: string, k: Kernel, opts: BuildOptions): Promise<BuildRow> {
  const target: Target = opts.backend === "wgsl" ? WGSL : { ...cudaTarget(opts.arch, opts.cores, opts.copy, opts.persistent, opts.ws, { pdl: opts.pdl, pingpong: opts.pingpong }), ...(opts.dequantWgmma ? { dequantWgmma: true } : {}) };
  const stages: string[] = [];
  let config = opts.config;
  if (opts.tuned && opts.backend === "cuda" && !Object.keys(config).length) {
    const t = tunedConfig(k, opts.arch, { ...opts.tuned, warn: (w) => console.warn(`tilemoe: warning: ${w}`) });
    if (t) { config = t.config; console.log(`tilemoe: ${t.note}`); }
  }
  const low = lower(k, config, target, (name, ir) => {
    if (opts.emit.has("ir")) stages.push(`// ---- after ${name}\n${printKernel(ir)}`);
  });
  // A block the GPU refuses to launch is a failed build, not an "ok" row (the WGSL limit is the
  // device's own, checked by `check --backend webgpu`).
  const tooBig = opts.backend === "cuda" ? hardLimit({ threads: Number((low.launch.threads as { v?: number }).v ?? 0), smemDynamic: low.smemBytes ?? 0 }, ARCH_LIMITS[opts.arch]) : undefined;
  if (tooBig) throw userError(`${k.name} (${configText(low.config) || "no tunables"}) cannot launch on ${opts.arch}: ${tooBig}; pick a config with smaller tiles or fewer stages`);
  const paths = artifactPaths(join(opts.outDir, k.name), opts);
  // Every file this kernel's build writes, checked before the first is.
  claimArtifacts(Object.values(paths).filter((p): p is string => p !== undefined));
  if (paths.ir) {
    const text = stages.join("\n");
    writeArtifact(paths.ir, text);
    if (opts.showStages) console.log(text);
  }
  const row: BuildRow = {
    file: basename(file), kernel: k.name, config: configText(low.config),
    target: opts.backend === "wgsl" ? "wgsl" : opts.arch,
    threads: Number((low.launch.threads as { v?: number }).v ?? 0), smem: low.smemBytes ?? 0, status: "ok",
  };
  if (opts.backend === "wgsl") {
    const w = emitWgsl(low, { f16: true, subgroups: false });
    if (paths.wgsl) writeArtifact(paths.wgsl, w.wgsl);
    // The browser page's input (runtime/webgpu/page/): shader + bindings + shapes + grid.
    if (paths.json) writeArtifact(paths.json, JSON.stringify(wgslBundle(low, w), null, 1));
    return row;
  }
  const out = emitCuda(low);
  if (paths.cu) writeArtifact(paths.cu, out.cu);
  if (paths.h) writeArtifact(paths.h, out.h);
  if (paths.cubin || paths.ptx) {
    const outputs = [...(paths.cubin ? ["cubin" as const] : []), ...(paths.ptx ? ["ptx" as const] : [])];
    const res = await compileCuda(out.cu, { arch: opts.arch, outputs });
    if (res.cubin && paths.cubin) writeArtifact(paths.cubin, res.cubin);
    if (res.ptx && paths.ptx) writeArtifact(paths.ptx, res.ptx);
    const r = res.resources[out.kernelSymbol];
    if (r) { row.registers = r.registers; row.spills = r.spillStores + r.spillLoads; }
  }
  return row;
}

/** The files a kernel's build writes for `--emit` (the .cu also when a binary is asked for:
 *  nvcc's input is kept beside it). */
function artifactPaths(base: string, opts: BuildOptions): Partial<Record<"ir" | "wgsl" | "json" | "cu" | "h" | "cubin" | "ptx", string>> {
  const e = opts.emit;
  const on = (want: boolean, path: string) => (want ? path : undefined);
  if (opts.backend === "wgsl") return { ir: on(e.has("ir"), `${base}.wgsl.ir.txt`), wgsl: on(e.has("wgsl"), `${base}.wgsl`), json: on(e.has("json"), `${base}.wgsl.json`) };
  return {
    ir: on(e.has("ir"), `${base}.ir.txt`), cu: on(e.has("cu") || e.has("cubin") || e.has("ptx"), `${base}.cu`), h: on(e.has("h") || e.has("cu"), `${base}.h`),
    cubin: on(e.has("cubin"), `${base}.${opts.arch}.cubin`), ptx: on(e.has("ptx"), `${base}.${opts.arch}.ptx`),
  };
}

function configText(c: Record<string, TunableValue>): string {
  return Object.entries(c).map(([k, v]) => `${k}=${v}`).join(",");
}

function parseArch(a: string | undefined): "sm_80" | "sm_90a" {
  const arch = a ?? "sm_90a";
  if (arch !== "sm_80" && arch !== "sm_90a") throw new UsageError(`--arch must be sm_80 or sm_90a, got '${arch}'`);
  return arch;
}

/** What each target can write: an artifact of the other target was silently not written. */
const EMITS_OF: Record<"cuda" | "wgsl", readonly Emit[]> = { cuda: ["ir", "cu", "h", "ptx", "cubin"], wgsl: ["ir", "wgsl", "json"] };

function parseEmit(text: string, backend: "cuda" | "wgsl"): Set<Emit> {
  const out = new Set<Emit>();
  for (const e of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(EMITS as readonly string[]).includes(e)) throw new UsageError(`--emit: unknown artifact '${e}' (choose from ${EMITS.join(", ")})`);
    if (!EMITS_OF[backend].includes(e as Emit))
      throw new UsageError(`--emit ${e} is not an artifact of --target ${backend} (it writes ${EMITS_OF[backend].join(", ")})${backend === "cuda" ? "; add --target wgsl" : "; drop --target wgsl for CUDA"}`);
    out.add(e as Emit);
  }
  if (!out.size) throw new UsageError(`--emit names no artifact, so nothing would be written; give some of ${EMITS_OF[backend].join(", ")}`);
  return out;
}
