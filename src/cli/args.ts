// Command-line parsing for every tilemoe command. Bad flags are a UsageError with the
// command's usage line, never a stack trace.
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import type { TunableValue } from "../ir/ir.ts";

export class UsageError extends Error {}

export interface Flag { type: "string" | "boolean"; short?: string; multiple?: boolean }

export function parse(argv: string[], flags: Record<string, Flag>, usage: string) {
  try {
    const r = parseArgs({ args: argv, options: flags, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (e) {
    // Node calls a value that starts with '-' ambiguous: `--cases -1` (a negative number) or
    // `-o --kernel k` (a forgotten value). Say which, not Node's '--cases=-XYZ' advice.
    const amb = /^Option '(-[\w-]+)' argument is ambiguous/.exec((e as Error).message);
    if (amb) {
      const at = argv.indexOf(amb[1]!);
      const given = at >= 0 ? argv[at + 1] : undefined;
      const flag = amb[1]!;
      throw new UsageError((given !== undefined && /^-\d/.test(given)
        ? `${flag} ${given}: a negative number is not a valid value here`
        : `${flag} has no value: '${given}' after it is a flag (give ${flag} VALUE)`) + `\nusage: ${usage}`);
    }
    throw new UsageError(`${(e as Error).message}\nusage: ${usage}`);
  }
}

/** `BM=128,BN=64,act=silu,swz=true` -> record; numbers and booleans typed. */
export function parseAssignments(text: string, what: string): Record<string, TunableValue> {
  const out: Record<string, TunableValue> = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(part);
    if (!m) throw new UsageError(`bad ${what} entry '${part}': expected NAME=VALUE, e.g. BM=128`);
    const raw = m[2]!;
    if (m[1]! in out) throw new UsageError(`${what} gives ${m[1]} twice (${m[1]}=${out[m[1]!]} and ${part}); give it once`);
    out[m[1]!] = raw === "true" ? true : raw === "false" ? false : /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  }
  return out;
}

/** `M=16,N=14336,K=4096` -> integer dims. */
export function parseShape(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, val] of Object.entries(parseAssignments(text, "--shape"))) {
    if (typeof val !== "number" || !Number.isInteger(val) || val < 0)
      throw new UsageError(`shape entry ${k}=${val} must be a non-negative integer`);
    out[k] = val;
  }
  return out;
}

/** A whole-number flag: digits only (not '', '1e3', '0x10', '1.5'), at least `min` (a count of 0
 *  that would make the command do nothing, e.g. `--cases 0`, is refused rather than "passing"). */
export function intFlag(v: unknown, name: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} takes a whole number${min > 0 ? ` of at least ${min}` : " (0 or more)"}, got '${v}'`);
  return n;
}

/** The message for a kernel file with no kernels (an empty file, or kernels not exported). */
export function noKernels(file: string): string {
  return `${file}: no kernels (a kernel file exports each one as \`export const NAME = T.kernel(...)\`, with T imported from "tilemoe"; see docs/DSL.md)`;
}

/** A --shape naming a dim none of the kernels has (a typo: it would be silently unused). */
export function unknownDims(shape: Record<string, number>, dimsOf: readonly (readonly string[])[]): void {
  const known = new Set(dimsOf.flat());
  const bad = Object.keys(shape).filter((d) => !known.has(d));
  if (bad.length) throw new UsageError(`--shape names ${bad.join(", ")}, not a dim of the kernel${dimsOf.length > 1 ? "s" : ""} (dims: ${[...known].join(", ")})`);
}

/** Flags that only choose how a CUDA build lowers: a WGSL build or check would silently ignore them. */
export function refuseCudaOnly(values: Record<string, unknown>, where: string): void {
  const given = ["arch", "mma", "copy", "persistent", "ws", "no-ws", "pingpong", "dequant"].filter((f) => values[f] !== undefined).map((f) => `--${f}`);
  if (given.length) throw new UsageError(`${given.join(", ")} ${given.length > 1 ? "choose" : "chooses"} how a CUDA kernel is built; ${where} ignores ${given.length > 1 ? "them" : "it"}: drop ${given.length > 1 ? "them" : "it"}`);
}

/** The kernel file named on the command line, or a UsageError saying what is wrong with it. */
export function requireFile(path: string): string {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`${path}: no such file (give the path of a kernel .ts file, e.g. dsl-examples/gemm.ts)`);
  }
  if (!st.isFile()) throw new UsageError(`${path}: not a file (give the path of a kernel .ts file)`);
  return path;
}

/** `--copy cp.async|tma`: how pipelined wgmma operand tiles reach shared memory on sm_90a. */
/** `--copy`: undefined when not given (sm_90a builds then use TMA where it applies). */
export function parseCopy(v: unknown): "cp.async" | "tma" | undefined {
  if (v === undefined) return undefined;
  if (v === "tma") return "tma";
  if (v === "cp.async" || v === "cp_async") return "cp.async";
  throw new UsageError(`--copy takes cp.async or tma, got '${v}'`);
}

/** `--persistent P`: a 1-d grid becomes P persistent blocks looping over the tiles (absent: off). */
export function parsePersistent(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 1 << 20) throw new UsageError(`--persistent takes a block count (e.g. the GPU's SM count, 132 on an H100 SXM), got '${v}'`);
  return n;
}

/** `--ws` / `--no-ws`: warp specialization of the TMA pipelines (a producer warpgroup issues the
 *  loads). On by default where it applies (sm_90a, wgmma, TMA copies): measured on an H200 it beat
 *  the plain TMA pipeline at every bench config (bench/RESULTS.md). `defaultOn` false keeps it off
 *  unless asked for (the interpreter backend, whose default lowering is the portable one). An
 *  explicit `--ws` where it cannot apply is an error; the default just does not apply there. */
export function checkWarpSpecialize(ws: boolean | undefined, noWs: boolean | undefined, arch: string, cores: string | undefined,
  copy: string | undefined, defaultOn = true): boolean {
  if (ws && noWs) throw new UsageError("--ws and --no-ws contradict each other; give one");
  if (noWs) return false;
  if (ws) {
    if (arch !== "sm_90a") throw new UsageError(`--ws (warp specialization) is for --arch sm_90a, got ${arch}`);
    if (cores === "mma") throw new UsageError("--ws specializes the wgmma TMA pipeline; drop --mma sync");
    if (copy === "cp.async") throw new UsageError("--ws specializes the TMA pipeline; use --copy tma (the sm_90a default), not cp.async");
    return true;
  }
  return defaultOn && arch === "sm_90a" && cores !== "mma" && copy !== "cp.async";
}

/** `--pingpong`: two consumer warpgroups alternate the tiles of a persistent block
 *  (passes/ping-pong.ts). Only where the blocks are warp-specialized and persistent. */
export function checkPingpong(pingpong: boolean | undefined, ws: boolean, persistent: number | undefined): boolean {
  if (!pingpong) return false;
  if (!ws) throw new UsageError("--pingpong alternates tiles between the consumer warpgroups of warp-specialized blocks; add --ws (sm_90a, wgmma, TMA copies)");
  if (persistent === undefined) throw new UsageError("--pingpong alternates the tiles of persistent blocks; add --persistent P (e.g. 132, the SM count of an H100 SXM or H200)");
  return true;
}

/** `--dequant wgmma|auto`: whether dequant-gemm pairs of fewer than 64 rows take the register-A
 *  wgmma on sm_90a (passes/dequant-wgmma.ts) instead of the mma.sync fusion (auto). */
export function parseDequant(v: unknown, arch: string): boolean {
  if (v === undefined || v === "auto") return false;
  if (v !== "wgmma") throw new UsageError(`--dequant takes wgmma or auto, got '${v}'`);
  if (arch !== "sm_90a") throw new UsageError(`--dequant wgmma is for --arch sm_90a, got ${arch}`);
  return true;
}

/** `--mma wgmma|sync`: which tensor-core instruction sm_90a gemms use (default wgmma). */
export function parseCores(v: unknown): "wgmma" | "mma" {
  if (v === undefined || v === "wgmma") return "wgmma";
  if (v === "sync") return "mma";
  throw new UsageError(`--mma takes wgmma or sync, got '${v}'`);
}

/** `--pdl`: programmatic dependent launch, sm_90a only (griddepcontrol is a PTX sm_90
 *  instruction; an sm_80 build must contain none, docs/LAYER.md). */
export function parsePdl(v: boolean | undefined, arch: string): boolean {
  if (!v) return false;
  if (arch !== "sm_90a")
    throw new UsageError(`--pdl (programmatic dependent launch) needs --arch sm_90a: griddepcontrol is an sm_90 instruction, got ${arch === "wgsl" ? "--target wgsl" : `--arch ${arch}`}; drop --pdl`);
  return true;
}
