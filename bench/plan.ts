// The bench's shapes and configs, and the one runner plan that measures them all: cuBLAS
// per shape first (the reference every kernel output is compared with), the copy ceiling,
// then our kernel for each config.
import { type PlanCase, tensorMapArgs } from "../src/runtime/plan.ts";
import type { TensorMap } from "../src/ir/ir.ts";

export interface BenchShape {
  label: string;
  M: number;
  N: number;
  K: number;
  /** Decode-like: bound by the bytes of B (the weights), so GB/s is reported. */
  skinny: boolean;
}

export interface GemmConfig {
  BM: number; BN: number; BK: number; stages: number; warps: number; GROUP_M?: number;
  /** K-split blocks per output tile (gemm_w4a16's decode tunable). */
  splitK?: number;
  /** Blocks an SM to keep resident (the decode kernels' tunable: __launch_bounds__'s second
   *  argument, nvcc's register cap). */
  minBlocks?: number;
  /** Tensor-core instruction on sm_90a (not a tunable of the kernel: a lowering choice). */
  cores?: "mma" | "wgmma";
  /** How wgmma operand tiles reach shared memory (a lowering choice; default cp.async). */
  copy?: "cp.async" | "tma";
  /** Persistent blocks looping over the tiles (a lowering choice; absent: one block a tile). */
  persistent?: number;
  /** Warp-specialized TMA pipeline (a lowering choice, `--ws`). */
  ws?: boolean;
  /** Ping-pong consumers (a lowering choice, `--pingpong`; with ws and persistent, warps 4:
   *  two consumer warpgroups of 128 threads, each with its own BM x BN tile). */
  pingpong?: boolean;
  /** Dequant-gemms under 64 rows take the register-A wgmma (a lowering choice, `--dequant wgmma`). */
  dequant?: "wgmma";
}

export const configText = (c: GemmConfig) =>
  `${c.cores ? `${c.cores === "mma" ? "mma.sync" : "wgmma"}${c.copy === "tma" ? "+tma" : ""} ` : ""}BM=${c.BM} BN=${c.BN} BK=${c.BK} st=${c.stages} w=${c.warps}${c.GROUP_M ? ` G=${c.GROUP_M}` : ""}${c.splitK ? ` sk=${c.splitK}` : ""}${c.minBlocks ? ` mb=${c.minBlocks}` : ""}${c.persistent ? ` persistent=${c.persistent}` : ""}${c.ws ? " ws" : ""}${c.pingpong ? " pingpong" : ""}${c.dequant ? ` dequant=${c.dequant}` : ""}`;

export const SHAPES: BenchShape[] = [
  ...[1024, 4096, 8192].map((s) => ({ label: `${s}^3`, M: s, N: s, K: s, skinny: false })),
  ...[1, 16, 64].map((m) => ({ label: `M=${m} N=14336 K=4096`, M: m, N: 14336, K: 4096, skinny: true })),
];

// From gemm.ts's tune space, (BM + BN) * BK * 2 * stages <= 160 KiB.
export const SQUARE_CONFIGS: GemmConfig[] = [
  { BM: 128, BN: 128, BK: 32, stages: 3, warps: 8, GROUP_M: 8 },
  { BM: 128, BN: 128, BK: 64, stages: 3, warps: 8, GROUP_M: 8 },
  { BM: 128, BN: 256, BK: 32, stages: 3, warps: 8, GROUP_M: 8 },
  { BM: 128, BN: 256, BK: 64, stages: 3, warps: 8, GROUP_M: 8 },
  { BM: 128, BN: 128, BK: 32, stages: 4, warps: 4, GROUP_M: 8 },
];
export const SKINNY_CONFIGS: GemmConfig[] = [
  { BM: 64, BN: 64, BK: 64, stages: 4, warps: 4, GROUP_M: 1 },
  { BM: 64, BN: 128, BK: 64, stages: 4, warps: 4, GROUP_M: 1 },
  { BM: 64, BN: 64, BK: 32, stages: 4, warps: 4, GROUP_M: 1 },
];

// The TMA path (--copy tma): S - 1 tiles in flight instead of S - 2, so deeper and wider
// tiles than the cp.async set.
export const TMA_CONFIGS: GemmConfig[] = [
  { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma" },
  { BM: 128, BN: 256, BK: 64, stages: 3, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma" },
  { BM: 128, BN: 256, BK: 32, stages: 4, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma" },
  { BM: 128, BN: 128, BK: 32, stages: 4, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma" },
  { BM: 128, BN: 128, BK: 64, stages: 4, warps: 4, GROUP_M: 8, cores: "wgmma", copy: "tma" },
  // Persistent (132 blocks: the SM count of an H100 SXM and of an H200).
  { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma", persistent: 132 },
  { BM: 128, BN: 256, BK: 64, stages: 3, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma", persistent: 132 },
  // Warp-specialized (--ws): the kernel's warps compute, an added producer warpgroup loads
  // (threads = warps * 32 + 128) and keeps all S stages in flight.
  { BM: 128, BN: 256, BK: 64, stages: 3, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma", ws: true },
  { BM: 128, BN: 128, BK: 64, stages: 4, warps: 4, GROUP_M: 8, cores: "wgmma", copy: "tma", ws: true },
  { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma", ws: true },
  // Warp-specialized and persistent: the producer runs ahead across tiles (docs/HOPPER.md).
  { BM: 128, BN: 256, BK: 64, stages: 3, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma", ws: true, persistent: 132 },
  { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, GROUP_M: 8, cores: "wgmma", copy: "tma", ws: true, persistent: 132 },
  // Ping-pong (--pingpong): two consumer warpgroups of 4 warps, each a whole 128x128 tile
  // (alternate tiles; one's epilogue under the other's main loop). 4 stages + two staging tiles:
  // 192 KB; consumers at 232 registers.
  { BM: 128, BN: 128, BK: 64, stages: 4, warps: 4, GROUP_M: 8, cores: "wgmma", copy: "tma", ws: true, persistent: 132, pingpong: true },
];

/** A config compiled to a module the runner can load (or why it could not be). */
export interface CompiledConfig {
  config: GemmConfig;
  /** Module file, relative to the plan's folder. */
  module?: string;
  kernel?: string;
  threads?: number;
  smem?: number;
  /** Order of the i32 dim arguments after the tensors (e.g. ["M", "K", "N"]). */
  dims?: string[];
  grid?: (dims: Record<string, number>) => number[];
  /** Outputs the launcher clears before every launch (src/ir/zero-init.ts). */
  zeroInit?: string[];
  /** The launcher's zero kernel for them (sm_90a): the runner clears with it and launches the
   *  kernel with PDL (clearKernel), as the launcher does; absent where the launcher memsets. */
  zeroKernel?: string;
  registers?: number;
  spills?: number;
  /** TMA tensor maps the kernel takes after its dims. */
  tensorMaps?: TensorMap[];
  error?: string;
}

/** A tuned winner timed by the bench: where and for what it was tuned (src/tune/winners.ts). */
export interface TunedFrom {
  gpu: string;
  /** The tuned shape, e.g. "M=16,N=14336,K=4096". */
  at: string;
  /** Tuned for this very shape's bucket (otherwise the nearest tuned shape's winner). */
  exact: boolean;
  staleSpace: boolean;
}

export interface CaseMeta {
  name: string;
  kind: "ours" | "cublas" | "copy";
  /** Set on our kernel's cases that time a tune-cache winner rather than a fixed config. */
  tuned?: TunedFrom;
  shape?: BenchShape;
  config?: GemmConfig;
  registers?: number;
  spills?: number;
}

export interface BenchPlanOptions {
  warmup?: number;
  reps?: number;
  copyBytes?: number;
  rtol?: number;
  atol?: number;
  tuned?: (s: BenchShape) => { compiled: CompiledConfig; from: TunedFrom }[];
}

export const cublasName = (s: BenchShape) => `cublas ${s.label}`;
export const oursName = (s: BenchShape, c: GemmConfig) => `ours ${s.label} ${configText(c)}`;
export const tunedName = (s: BenchShape, c: GemmConfig, t: TunedFrom) => `tuned ${s.label} ${configText(c)} (${t.gpu})`;
export const COPY_NAME = "copy";

/**
 * One plan for everything. `compiled(shape)` gives the configs to try on that shape; those
 * that failed to compile are left out of the plan (the report lists them from `skipped`).
 * `opts.tuned(shape)` gives the tune cache's winners for it, timed as their own cases.
 */
export function benchPlan(shapes: BenchShape[], compiled: (s: BenchShape) => CompiledConfig[], opts: BenchPlanOptions = {}):
  { cases: PlanCase[]; meta: CaseMeta[]; skipped: { shape: BenchShape; config: GemmConfig; error: string }[] } {
  const time = { warmup: opts.warmup ?? 5, reps: opts.reps ?? 30, rotate: "auto" as const };
  const cases: PlanCase[] = [];
  const meta: CaseMeta[] = [];
  const skipped: { shape: BenchShape; config: GemmConfig; error: string }[] = [];
  const A = { random: { seed: 1, lo: -1, hi: 1 } }, B = { random: { seed: 2, lo: -1, hi: 1 } };
  for (const s of shapes) {
    cases.push({ name: cublasName(s), cublas: { m: s.M, n: s.N, k: s.K, dtype: "bf16", transB: true, a: A, b: B }, time });
    meta.push({ name: cublasName(s), kind: "cublas", shape: s });
  }
  cases.push({ name: COPY_NAME, copy: { bytes: opts.copyBytes ?? 1 << 30 }, time });
  meta.push({ name: COPY_NAME, kind: "copy" });
  for (const s of shapes) {
    const fixed = compiled(s).map((c) => ({ c, from: undefined as TunedFrom | undefined }));
    const tuned = (opts.tuned?.(s) ?? []).map((t) => ({ c: t.compiled, from: t.from as TunedFrom | undefined }));
    for (const { c, from } of [...fixed, ...tuned]) {
      if (c.error || !c.module || !c.kernel || !c.grid || !c.dims || !c.threads) {
        skipped.push({ shape: s, config: c.config, error: c.error ?? "not compiled" });
        continue;
      }
      const dimValues: Record<string, number> = { M: s.M, N: s.N, K: s.K };
      const missing = c.dims.filter((d) => !(d in dimValues));
      if (missing.length) throw new Error(`bench: the kernel has dims ${c.dims.join(", ")}; unknown: ${missing.join(", ")}`);
      const name = from ? tunedName(s, c.config, from) : oursName(s, c.config);
      cases.push({
        name, module: c.module, kernel: c.kernel, grid: c.grid(dimValues), block: [c.threads], smem: c.smem ?? 0,
        args: [
          { tensor: "A", dtype: "bf16", shape: [s.M, s.K], init: A },
          { tensor: "B", dtype: "bf16", shape: [s.N, s.K], init: B },
          { tensor: "C", dtype: "bf16", shape: [s.M, s.N], init: { zeros: true } },
          ...c.dims.map((d) => ({ i32: dimValues[d]! })),
          ...tensorMapArgs(c.tensorMaps),
        ],
        time,
        compare: { tensor: "C", with: cublasName(s), withTensor: "C", rtol: opts.rtol ?? 0.02, atol: opts.atol ?? 0.02 },
        flops: 2 * s.M * s.N * s.K,
        bytes: 2 * (s.M * s.K + s.N * s.K + s.M * s.N),
      });
      meta.push({ name, kind: "ours", shape: s, config: c.config, registers: c.registers, spills: c.spills, ...(from ? { tuned: from } : {}) });
    }
  }
  return { cases, meta, skipped };
}
