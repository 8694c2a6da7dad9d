// The GPU runner's plan and results, as TypeScript types. runtime/cuda/plan.h reads the
// plan (and is the authority on what it accepts); runtime/cuda/runner.cpp writes results.
import type { DType } from "../ir/ir.ts";

export type Init =
  | { random: { seed: number; lo?: number; hi?: number } }
  | { file: string }
  | { zeros: true };

export interface TensorArg {
  tensor: string;
  dtype: DType;
  shape: number[];
  /** Default: random in [-1, 1] with seed = 1 + the argument's position. */
  init?: Init;
  /** Read back after the first launch (also implied by save or compare). */
  output?: boolean;
  /** Raw little-endian file, relative to the plan's folder. */
  save?: string;
  /** Zeroed on the stream before every launch, inside the timed region: the generated
   *  launcher's cudaMemsetAsync of an output written only by atomic adds (split-K). */
  clearBeforeLaunch?: boolean;
  /** Or zeroed before every launch by this zero kernel of the case's module (a generated sm_90a
   *  launcher's NAME_zero(unsigned* P, int n) over the tensor's 4-byte words), launched plainly, with the case's kernel
   *  then launched with programmatic dependent launch behind it, as that launcher does; timed
   *  (docs/QUANT.md, "Clearing by a zero kernel"). Not with clearBeforeLaunch. */
  clearKernel?: string;
}

export type ScalarArg =
  | { i32: number } | { u32: number } | { i64: number } | { u64: number } | { f32: number } | { f64: number };

/** A TMA descriptor over one of this case's tensors, built by the runner with
 *  cuTensorMapEncodeTiled and passed by value (a `const __grid_constant__ CUtensorMap` param).
 *  box: extents outermost first; swizzle: bytes (0 = none); elements outside read as zero.
 *  A tensor with an empty dim or a row pitch not a multiple of 16 bytes gets a zeroed map. */
export interface TensorMapArg { tensorMap: { tensor: string; box: number[]; swizzle?: 0 | 32 | 64 | 128 } }

export type Arg = TensorArg | ScalarArg | TensorMapArg;

export interface Timing {
  warmup?: number;
  reps?: number;
  /** Copies of the inputs cycled between timed launches; "auto" exceeds twice the L2. */
  rotate?: "auto" | number;
  /** Overwrite twice the L2 before each launch, untimed (inputs too big to rotate start cold). */
  flush_l2?: boolean;
}

export interface Compare {
  tensor: string;
  /** An earlier case's name; its tensor `withTensor` (default: the same name; cuBLAS: "C"). */
  with?: string;
  withTensor?: string;
  /** Or a raw reference file (relative to the plan's folder) of this dtype. */
  file?: string;
  dtype?: DType;
  rtol?: number;
  atol?: number;
}

interface CaseBase {
  name: string;
  /** Without it the case runs once, untimed. */
  time?: Timing;
  compare?: Compare;
  /** Work per launch, for the TFLOP/s and GB/s columns. */
  flops?: number;
  bytes?: number;
}

export interface KernelCase extends CaseBase {
  /** cubin or PTX file, relative to the plan's folder. */
  module: string;
  kernel: string;
  grid: number[];
  block: number[];
  smem?: number;
  args: Arg[];
}

export interface CublasCase extends CaseBase {
  /** Row-major C[m,n] = A[m,k] * (transB ? B[n,k]^T : B[k,n]); f32 compute; tensors A, B, C. */
  cublas: { m: number; n: number; k: number; dtype: "bf16" | "f16"; transB?: boolean; a?: Init; b?: Init; save?: string };
}

export interface CopyCase extends CaseBase {
  /** cuMemcpyDtoD of `bytes`; bandwidth counts bytes read + written. */
  copy: { bytes: number };
}

/** A slice of a layer's workspace saved after the checked call (raw bytes, relative to the plan's folder). */
export interface WorkspaceSlice { name: string; offset: number; bytes: number; save: string }

export interface LayerCase extends CaseBase {
  /** A generated MoE layer built as a shared library (relative to the plan's folder), called
   *  as <symbol>_buffers(args' pointers, tokens, workspace of <symbol>_workspace_bytes(tokens)). */
  layer: { library: string; symbol: string; tokens: number; workspace?: WorkspaceSlice[] };
  /** The layer's buffers in its launcher's order (tensors only). */
  args: TensorArg[];
}

export type PlanCase = KernelCase | CublasCase | CopyCase | LayerCase;

export interface Plan {
  device?: number;
  cases: PlanCase[];
}

export interface DeviceInfo {
  name: string;
  cc: string;
  sms: number;
  l2_bytes: number;
  smem_optin_bytes: number;
  memory_bytes: number;
  driver_version: number;
}

export interface CompareResult {
  with: string;
  count?: number;
  max_abs?: number;
  max_rel?: number;
  mismatches?: number;
  rtol?: number;
  atol?: number;
  pass: boolean;
  first_mismatch?: { index: number; got: number; want: number };
  error?: string;
}

export interface CaseResult {
  name: string;
  status: "ok" | "mismatch" | "error" | "skipped";
  error?: string;
  median_ms?: number;
  min_ms?: number;
  max_ms?: number;
  reps?: number;
  rotate?: number;
  tflops?: number;
  gbps?: number;
  regs?: number;
  local_bytes?: number;
  static_smem?: number;
  compare?: CompareResult;
  saved?: string[];
  context_lost?: boolean;
  cublas?: string;
  /** Layer cases: the workspace the layer asked for; whether launches ran after an L2 flush. */
  workspace_bytes?: number;
  flush_l2?: boolean;
}

export interface Results {
  device?: DeviceInfo;
  /** Why nothing ran (no driver, no device). */
  error?: string;
  /** Names of the cases that lost the CUDA context (each run stops there). */
  context_lost?: string[];
  cases: CaseResult[];
}

export const isKernelCase = (c: PlanCase): c is KernelCase => "kernel" in c;
export const isLayerCase = (c: PlanCase): c is LayerCase => "layer" in c;
export const isCublasCase = (c: PlanCase): c is CublasCase => "cublas" in c;
export const isCopyCase = (c: PlanCase): c is CopyCase => "copy" in c;
export const isTensorArg = (a: Arg): a is TensorArg => "tensor" in a;
export const isTensorMapArg = (a: Arg): a is TensorMapArg => "tensorMap" in a;

/** The runner args for a lowered kernel's TMA tensor maps (they follow the dims). */
export const tensorMapArgs = (maps: readonly { tensor: string; box: number[]; swizzle: 0 | 32 | 64 | 128 }[] | undefined): TensorMapArg[] =>
  (maps ?? []).map((m) => ({ tensorMap: { tensor: m.tensor, box: [...m.box], swizzle: m.swizzle } }));
