// nvcc through execa: compile a .cu to cubin / fatbin / ptx / object for sm_80 or sm_90a, with
// a content-hash cache and the ptxas resource report parsed per kernel.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { type KernelResources, parsePtxasInfo } from "./ptxas.ts";

export type { KernelResources } from "./ptxas.ts";
export { parsePtxasInfo } from "./ptxas.ts";

export type Arch = "sm_80" | "sm_90a";
export type Output = "cubin" | "fatbin" | "ptx" | "obj";

export interface CompileOptions {
  arch: Arch;
  outputs: Output[];
  /** Defaults to <repo>/.cache/nvcc. */
  cacheDir?: string;
  extraFlags?: string[];
  /** The nvcc executable; defaults to `nvcc` looked up on PATH. */
  nvcc?: string;
}

export interface CompileResult {
  cubin?: Buffer;
  /** SASS for the arch plus its PTX, which the driver JIT-compiles for newer GPUs. */
  fatbin?: Buffer;
  ptx?: string;
  /** Path of the object file (`obj` output); the file lives in the cache. */
  objPath?: string;
  /** ptxas report per kernel symbol (from the cubin or obj compile; empty for ptx alone). */
  resources: Record<string, KernelResources>;
  log: string;
  cached: boolean;
  /** Cache entry folder: the .cu, outputs and log are kept there. */
  dir: string;
}

export const NVCC_MISSING = "nvcc not found on PATH; install the CUDA toolkit or pass --emit cu to only write source";

/** nvcc is not installed: the caller can still write the .cu (check `instanceof` or `code`). */
export class NvccNotFoundError extends Error {
  readonly code = "NVCC_NOT_FOUND";
  /** A missing tool is the user's to fix: the CLI prints the message, not a bug report. */
  readonly userFacing = true;
  constructor() { super(NVCC_MISSING); }
}

/** nvcc ran and failed. The message holds its output, the kept .cu and the command to rerun. */
export class NvccError extends Error {
  readonly code = "NVCC_FAILED";
  readonly userFacing = true;
  constructor(readonly stderr: string, readonly cuPath: string, readonly command: string) {
    super(`nvcc failed:\n${stderr.trim()}\nsource kept at: ${cuPath}\nreproduce with:\n  ${command}`);
  }
}

const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const versions = new Map<string, string>();

async function nvccVersion(nvcc: string): Promise<string> {
  const key = `${nvcc}\0${process.env.PATH ?? ""}`;
  const known = versions.get(key);
  if (known !== undefined) return known;
  try {
    const r = await execa(nvcc, ["--version"]);
    versions.set(key, r.stdout);
    return r.stdout;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") throw new NvccNotFoundError();
    throw e;
  }
}

export async function nvccAvailable(nvcc = "nvcc"): Promise<boolean> {
  try {
    await nvccVersion(nvcc);
    return true;
  } catch {
    return false;
  }
}

export function archFlags(arch: Arch): string[] {
  return arch === "sm_90a" ? ["-gencode=arch=compute_90a,code=sm_90a"] : ["-arch=sm_80"];
}

const KIND_FLAG: Record<Output, string> = { cubin: "-cubin", fatbin: "-fatbin", ptx: "-ptx", obj: "-c" };
const FILE: Record<Output, string> = { cubin: "out.cubin", fatbin: "out.fatbin", ptx: "out.ptx", obj: "out.o" };

/** A fatbin carries the PTX too (code=[sm_XX,compute_XX]). */
function outputArchFlags(arch: Arch, o: Output): string[] {
  if (o !== "fatbin") return archFlags(arch);
  const v = arch === "sm_90a" ? "90a" : "80";
  return [`-gencode=arch=compute_${v},code=[sm_${v},compute_${v}]`];
}

/**
 * What the GPU runner loads for an arch: the sm_90a cubin, or for sm_80 a fatbin with the
 * PTX embedded, so that sm_80 builds also run (JIT-compiled) on Hopper cards, where a bare
 * sm_80 cubin fails with CUDA_ERROR_NO_BINARY_FOR_GPU.
 */
export function runnerModule(arch: Arch): "cubin" | "fatbin" {
  return arch === "sm_80" ? "fatbin" : "cubin";
}

/** One nvcc run per primary output; the ptx and cubin of the same compile come from its
 *  `--keep` intermediates (byte-identical to their own runs, checked with nvcc 13), so a
 *  cubin + ptx + obj request costs one front end and one ptxas instead of three of each. A
 *  fatbin has its own gencode (code=[sm, compute]) and always runs alone. */
export function invocations(outputs: Output[]): { primary: Output; kept: Output[] }[] {
  const order: Output[] = ["obj", "cubin", "ptx"];
  const shared = order.filter((o) => outputs.includes(o));
  const runs = shared.length > 0 ? [{ primary: shared[0]!, kept: shared.slice(1) }] : [];
  if (outputs.includes("fatbin")) runs.push({ primary: "fatbin", kept: [] });
  return runs;
}

/** The intermediate nvcc kept for an output: `<base>.ptx`, and the cubin as `<base>.cubin`
 *  (-gencode code=sm_XX) or `<base>.sm_XX.cubin` (-arch=sm_XX, which embeds the PTX too). */
function keptFile(keepDir: string, o: Output): string {
  const ext = o === "ptx" ? ".ptx" : ".cubin";
  const found = readdirSync(keepDir).filter((f) => f.endsWith(ext));
  if (found.length !== 1) throw new Error(`nvcc --keep left ${found.length} ${ext} files in ${keepDir} (${readdirSync(keepDir).join(", ")}); expected one`);
  return join(keepDir, found[0]!);
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export async function compileCuda(cu: string, opts: CompileOptions): Promise<CompileResult> {
  const nvcc = opts.nvcc ?? "nvcc";
  const version = await nvccVersion(nvcc);
  const common = ["-O3", "-std=c++17", "-Xptxas", "-v", ...(opts.extraFlags ?? [])];
  const flags = [...archFlags(opts.arch), ...common];
  const hash = createHash("sha256").update(JSON.stringify({ cu, flags, version })).digest("hex").slice(0, 32);
  const dir = join(resolve(opts.cacheDir ?? join(REPO, ".cache", "nvcc")), hash);
  mkdirSync(dir, { recursive: true });
  const cuPath = join(dir, "kernel.cu");
  if (!existsSync(cuPath)) writeFileSync(cuPath, cu);
  const logPath = join(dir, "ptxas.log");

  const wanted = [...new Set(opts.outputs)];
  const missing = wanted.filter((o) => !existsSync(join(dir, FILE[o])));
  // ptxas runs for cubin/obj only; a cached entry without its log is recompiled.
  const needLog = wanted.some((o) => o !== "ptx") && !existsSync(logPath);
  const toRun = needLog && missing.length === 0 ? [wanted.find((o) => o !== "ptx")!] : missing;
  const logs: string[] = [];
  await Promise.all(invocations(toRun).map(async ({ primary, kept }) => {
    const tmp = `${join(dir, FILE[primary])}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    const keepDir = kept.length > 0 ? `${join(dir, "keep")}-${process.pid}-${randomBytes(4).toString("hex")}` : undefined;
    if (keepDir) mkdirSync(keepDir);
    const keep = keepDir ? ["--keep", "--keep-dir", keepDir] : [];
    const args = [KIND_FLAG[primary], ...outputArchFlags(opts.arch, primary), ...common, ...keep, "-o", tmp, cuPath];
    try {
      const r = await execa(nvcc, args, { reject: false, all: true });
      const shown = args.filter((a, i) => !keepDir || (a !== "--keep" && a !== "--keep-dir" && args[i - 1] !== "--keep-dir"));
      const command = `cd ${quote(dir)} && ${[nvcc, ...shown.map((a) => (a === tmp ? join(dir, FILE[primary]) : a))].map(quote).join(" ")}`;
      if (r.failed) throw new NvccError(r.all ?? `${r.stderr}\n${r.stdout}`, cuPath, command);
      for (const o of kept) renameSync(keptFile(keepDir!, o), join(dir, FILE[o]));
      renameSync(tmp, join(dir, FILE[primary]));
      const out = r.all ?? "";
      logs.push(out);
      if (primary !== "ptx") {
        const tmpLog = `${logPath}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
        writeFileSync(tmpLog, out);
        renameSync(tmpLog, logPath);
      }
    } finally {
      if (keepDir) rmSync(keepDir, { recursive: true, force: true });
    }
  }));

  const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : logs.join("\n");
  const res: CompileResult = {
    resources: parsePtxasInfo(log),
    log,
    cached: toRun.length === 0,
    dir,
  };
  if (wanted.includes("cubin")) res.cubin = readFileSync(join(dir, FILE.cubin));
  if (wanted.includes("fatbin")) res.fatbin = readFileSync(join(dir, FILE.fatbin));
  if (wanted.includes("ptx")) res.ptx = readFileSync(join(dir, FILE.ptx), "utf8");
  if (wanted.includes("obj")) res.objPath = join(dir, FILE.obj);
  return res;
}
