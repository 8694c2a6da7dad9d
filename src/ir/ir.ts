// The tile IR: the one data structure every stage of tilemoe reads or writes.
//
// It is structured (loops and ifs nest; no SSA). The same node types serve two levels:
//   - tile level: what the front end produces. Buffers keep their n-d shapes, tile ops
//     (copy, fill, gemm) work on whole regions, `parallel` loops are elementwise over a tile.
//   - thread level: what lowering produces (Launch.level === "thread"). Every statement is
//     executed by each thread of a block; `threadVar` names threadIdx.x; shared and local
//     buffers are 1-d; tile ops are gone, replaced by scalar code and the intrinsic
//     statements at the bottom of this file (cp.async, ldmatrix, mma, barriers).
// The textual form (ir/text) prints and parses every node here; the interpreter (interp/)
// executes both levels; codegen/ reads only thread level.

export type DType =
  | "bool" | "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64"
  | "f16" | "bf16" | "f32" | "f64"
  | "fp8e4m3" | "fp8e5m2";

export const DTYPES: readonly DType[] = [
  "bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64",
  "f16", "bf16", "f32", "f64", "fp8e4m3", "fp8e5m2",
];

export function isFloat(t: DType): boolean {
  return t === "f16" || t === "bf16" || t === "f32" || t === "f64" || t === "fp8e4m3" || t === "fp8e5m2";
}
export function isInt(t: DType): boolean {
  return !isFloat(t) && t !== "bool";
}
export function byteSize(t: DType): number {
  switch (t) {
    case "bool": case "i8": case "u8": case "fp8e4m3": case "fp8e5m2": return 1;
    case "i16": case "u16": case "f16": case "bf16": return 2;
    case "i32": case "u32": case "f32": return 4;
    case "i64": case "f64": return 8;
  }
}

/** Where a source construct came from; every diagnostic about user code carries one. */
export interface Loc { file: string; line: number; col: number }

// ---------------------------------------------------------------- expressions

export type BinOp =
  | "+" | "-" | "*"
  | "/"   // ints: truncating division (C semantics); floats: IEEE division
  | "%"   // ints: C remainder; floats: fmod
  | "<" | "<=" | ">" | ">=" | "==" | "!="
  | "&&" | "||"
  | "&" | "|" | "^" | "<<" | ">>"   // ints only; >> is arithmetic for signed, logical for unsigned
  | "min" | "max"
  | "cdiv"  // ints only: ceil(a / b) at any signs (T.cdiv); emitted as (a + b - 1) / b, which lowerIntDivision
            // leaves only where a >= 0 and b > 0
  | "floordiv";  // ints only: floor(a / b) at any signs (the DSL's Math.floor(a / b)); lowerIntDivision removes it

export type UnOp = "neg" | "not" | "bitnot";

/** Math functions a kernel may call on float scalars (Math.* in the DSL). */
export type MathFn =
  | "exp" | "exp2" | "log" | "log2" | "sqrt" | "rsqrt" | "abs" | "tanh" | "sin" | "cos"
  | "floor" | "ceil" | "round" | "erf" | "sigmoid" | "pow" | "fma";

export type Expr =
  /** Integer literal. dtype defaults to i32. */
  | { k: "int"; v: number; dtype?: DType }
  /** Float literal. dtype defaults to f32. */
  | { k: "float"; v: number; dtype?: DType }
  /** A scalar variable: symbolic dim, scalar param, tunable (before specialization),
   *  loop variable, let/const binding, block index var, or the thread var. */
  | { k: "var"; name: string }
  | { k: "bin"; op: BinOp; a: Expr; b: Expr }
  | { k: "un"; op: UnOp; a: Expr }
  | { k: "call"; fn: MathFn; args: Expr[] }
  | { k: "select"; cond: Expr; a: Expr; b: Expr }
  /** Element read. Index count = buffer rank (1 at thread level for shared/local). */
  | { k: "load"; buf: string; idx: Expr[] }
  | { k: "cast"; dtype: DType; a: Expr };

// ---------------------------------------------------------------- buffers and regions

export type Scope = "global" | "shared" | "fragment" | "local";

/**
 * Layout of a fragment buffer: which thread holds which element. Chosen by the
 * layout-inference pass; absent before it. Both kinds are pure functions
 * (thread, slot) <-> (row, col) defined in layout/fragment.ts.
 *  - "mma_acc": accumulator of m16n8k16 tiles. The block's warps are arranged
 *    warpsM x warpsN; warp w covers rows [(w / warpsN) * (rows/warpsM), ...) and cols
 *    [(w % warpsN) * (cols/warpsN), ...); inside a warp the PTX m16n8 C-fragment layout,
 *    tiles ordered m-major then n. Slots per thread = rows*cols / threads.
 *  - "cyclic": element e of the row-major flattened tile lives in thread e % threads,
 *    slot floor(e / threads). Used by the scalar fallback and for elementwise fragments.
 */
export type Layout =
  | { kind: "mma_acc"; warpsM: number; warpsN: number }
  | { kind: "cyclic" }
  /** Shared memory only, 2-d tiles of 16-bit elements whose row is a multiple of 16 bytes:
   *  element (r, c) of an [R, C] tile is stored at
   *  r * C + ((floor(c / 8) ^ ((r >> shift) & mask)) * 8) + c % 8,
   *  i.e. 16-byte chunks of a row are XOR-permuted so that ldmatrix and 16-byte copies
   *  touch all banks once. Chosen by layout inference for gemm operands. */
  | { kind: "xor_swizzle"; mask: number; shift: number }
  /** Accumulator of wgmma.m64nNk16 (sm_90a). The block's warpgroups (128 threads each) are
   *  arranged wgM x wgN; warpgroup g covers rows [(g / wgN) * (rows/wgM), ...) and cols
   *  [(g % wgN) * N, ...) with N = cols / wgN. Inside a warpgroup the rows are m64 tiles,
   *  each in the PTX m64nNk16 D-fragment layout (warp w of the group owns rows 16w..16w+15 of
   *  the tile; lane l holds d[i] at row l/4 + 8*((i>>1)&1), col 8*(i>>2) + 2*(l%4) + (i&1)).
   *  Slot of d[i] of m-tile t: t * N/2 + i. Slots per thread = rows*cols / threads.
   *  trans (text: wgmma_acc_t): the fragment is held as its transpose, computed as
   *  C^T = B A^T (for a few rows, e.g. decode: the rows become the wgmma n); all of the above
   *  then describes the [cols, rows] transpose, and fragment element (r, c) is its (c, r). */
  | { kind: "wgmma_acc"; wgM: number; wgN: number; trans?: boolean };

export interface Buffer {
  name: string;
  scope: Scope;
  dtype: DType;
  /** Row-major shape. Globals: expressions over symbolic dims. Others: must fold to
   *  integer constants after specialization. */
  shape: Expr[];
  layout?: Layout;
  /** Byte alignment the launcher guarantees for a global (checked at launch). */
  align?: number;
  /** A shared buffer placed over the first bytes of another shared buffer, dead by the time
   *  this one is used (an epilogue's staging tile over the main loop's operand tiles:
   *  lower-epilogue.ts). Same dtype, no larger than its host. */
  over?: string;
}

/** A rectangular window of a buffer: `buf[off0 : +ext0, off1 : +ext1]`.
 *  Extents fold to constants after specialization. Reads outside the buffer's shape
 *  yield 0; writes outside it are dropped (ragged edges are masked, never UB). */
export interface Region {
  buf: string;
  offsets: Expr[];
  extents: Expr[];
}

// ---------------------------------------------------------------- statements

export type ReduceOp = "sum" | "max" | "min";
export type AtomicOp = "add" | "max" | "min";

export type LoopKind = "serial" | "unroll" | "parallel" | "pipelined";

/** A reference to one element position of a buffer at thread level (an address). */
export interface Ref { buf: string; idx: Expr[] }

export type Stmt =
  // ---- both levels
  | { k: "alloc"; buf: Buffer; loc?: Loc }
  /** `const` (mutable=false) or `let` (mutable=true) scalar binding, visible to the
   *  end of the enclosing block. */
  | { k: "let"; name: string; dtype: DType; value: Expr; mutable: boolean; loc?: Loc }
  | { k: "assign"; name: string; value: Expr; loc?: Loc }
  | { k: "store"; buf: string; idx: Expr[]; value: Expr; loc?: Loc }
  /** for var in [start, start + extent). `parallel` at tile level: iterations are
   *  independent elementwise work over a tile (vars = one per dim, extents per dim).
   *  `pipelined`: stages = software-pipeline depth for the copies in the body.
   *  stagesExpr: the depth as the front end found it when it is not a literal (usually a
   *  tunable, `T.pipelined(n, stages)`); specialization folds it into `stages` and drops it. */
  | { k: "for"; vars: string[]; starts: Expr[]; extents: Expr[]; kind: LoopKind;
      stages?: number; stagesExpr?: Expr; body: Stmt[]; loc?: Loc }
  | { k: "if"; cond: Expr; then: Stmt[]; else: Stmt[]; loc?: Loc }
  // ---- tile level only
  /** dst = src, elementwise over the regions' (squeezed) extents. With `rows` (a row gather,
   *  text `copy X[0 : +R, c : +W] rows idx -> dst`): src is a 2-d global whose region has
   *  row offset 0, `rows` names a rank-1 i32 shared or local buffer of at least R elements,
   *  and row i of the region is row idx[i] of src (rows outside [0, rows of src) read 0).
   *  With `dstRows` (a row scatter, text `copy src -> Y[0 : +R, c : +W] rows idx`), the mirror
   *  image: dst is a 2-d global region at row offset 0, and row i of src goes to row idx[i] of
   *  dst (rows outside [0, rows of dst), e.g. -1, are dropped). A copy has one of the two at most. */
  | { k: "copy"; src: Region; dst: Region; rows?: string; dstRows?: string; loc?: Loc }
  | { k: "fill"; dst: Region; value: Expr; loc?: Loc }
  /** c[M,N] += op(a)[M,K] * op(b)[K,N]; a is [M,K] (or [K,M] if transA),
   *  b is [K,N] (or [N,K] if transB). Products in f32 (or f64 for f64 inputs). */
  | { k: "gemm"; a: Region; b: Region; c: Region; transA: boolean; transB: boolean; loc?: Loc }
  /** dst = op over `axis` of src (all other axes kept, in order: dst's non-unit extents are
   *  src's extents without `axis`); with `accumulate`, dst = op(dst, that). The extent along
   *  `axis` may be a run-time value (0 gives the identity: 0, -inf, +inf); the others are
   *  constant. src and dst are shared or fragment tiles. Floats: NaN handling follows the
   *  backend's max/min; the order of a sum is unspecified (tolerance applies). */
  | { k: "reduce"; op: ReduceOp; src: Region; dst: Region; axis: number; accumulate: boolean; loc?: Loc }
  /** Top-k along the last axis of a 2-d src [R, N]: for each row r and j < count,
   *  values[r, j] / indices[r, j] = the j-th element in the order "larger value first,
   *  equal values: lower index first" (NaNs are never picked). Picks beyond the row's
   *  elements give -inf and index -1. count <= the last extent of values/indices, which
   *  are [R, count-capacity]; N and count may be run-time values, R is constant. */
  | { k: "topk"; src: Region; values: Region; indices: Region; count: Expr; loc?: Loc }
  /** Prefix sum along the last axis: dst[.., j] = sum of src[.., 0..j] (inclusive) or of
   *  src[.., 0..j-1] (exclusive, dst[.., 0] = 0). src may equal dst (in place). The last
   *  extent may be a run-time value. */
  | { k: "scan"; op: "sum"; src: Region; dst: Region; exclusive: boolean; loc?: Loc }
  // ---- both levels
  /** Atomic read-modify-write of one element of a global or shared buffer:
   *  buf[idx] = op(buf[idx], value). With `result`, a new const of the buffer's dtype
   *  named `result` holds the value before the update (visible to the end of the block). */
  | { k: "atomic"; op: AtomicOp; buf: string; idx: Expr[]; value: Expr; result?: string; loc?: Loc }
  // ---- both levels (a per-thread scalar statement, like store)
  /** Dequantizes one 32-bit word of packed weights (src/quant/format.ts is the definition):
   *  for i in [0, n), n = 8 for u4/s4 and 4 for u8/s8/e4m3, q_i = value i of `word` (u32) in
   *  `format` and slot `order`, and dst[dst.idx[0] + i] = round(round(q_i - zero) * scale),
   *  all in dst's dtype (bf16 or f16; dst is a local buffer), zero and scale first rounded
   *  to it. Backends expand it to several-values-per-instruction bit tricks.
   *  With `pair` (an i32 p in [0, n/2)): only values 2p and 2p+1, into dst[idx] and
   *  dst[idx + 1] (the register-fused dequant-gemm feeds mma fragments pair by pair). */
  | { k: "dequant"; format: "u4" | "s4" | "u8" | "s8" | "e4m3"; order: "linear" | "interleaved";
      dst: Ref; word: Expr; scale: Expr; zero: Expr; pair?: Expr; loc?: Loc }
  // ---- thread level only
  /** __syncthreads(): every thread of the block waits here. */
  | { k: "barrier"; loc?: Loc }
  /** bar.sync id, count: a named barrier (id 1..15; 0 is __syncthreads') that releases once
   *  `count` threads (a multiple of 32, whole warps) have arrived; the others never wait for it.
   *  Warp specialization (warp-specialize.ts) syncs the consumer warpgroups with it. */
  | { k: "named_barrier"; id: number; count: number; loc?: Loc }
  /** setmaxnreg.{inc,dec}.sync.aligned.u32 regs (sm_90a): the executing warpgroup's per-thread
   *  register limit becomes `regs` (a multiple of 8 in [24, 256]); dec releases registers to the
   *  block's pool, inc blocks until the pool has them. All 128 threads of the warpgroup execute it. */
  | { k: "setmaxnreg"; op: "inc" | "dec"; regs: number; loc?: Loc }
  /** Copy `lanes` consecutive elements (one vector access) from src to dst.
   *  If pred is false: dst elements are set to zero when dst is not global, and
   *  nothing is written when dst is global. */
  /** `lanes` consecutive elements as one vector. Without `convert`, the same bits (the dtypes
   *  may differ, e.g. words viewed as halves); with it, each element converted (round to
   *  nearest even) to the destination dtype: f32 pairs into one bf16x2/half2 store. */
  | { k: "vcopy"; dst: Ref; src: Ref; lanes: number; pred: Expr; convert?: boolean; loc?: Loc }
  /** cp.async of `bytes` (4, 8 or 16) from global src to shared dst, zero-filled when
   *  pred is false. Completes at a later cp_wait. */
  | { k: "cp_async"; dst: Ref; src: Ref; bytes: number; pred: Expr; loc?: Loc }
  | { k: "cp_commit"; loc?: Loc }
  /** Wait until at most n committed cp.async groups are still pending. */
  | { k: "cp_wait"; n: number; loc?: Loc }
  /** ldmatrix.sync.aligned.m8n8.x{num}[.trans].shared.b16. Warp-collective.
   *  Lane l supplies `addr` (a shared Ref) = start of row (l % 8) of matrix floor(l / 8),
   *  for l < 8 * num. Writes 2 * num 16-bit elements to dst (a local buffer of 16-bit
   *  dtype) at dst.idx[0] ... dst.idx[0] + 2*num - 1, in PTX fragment order. */
  | { k: "ldmatrix"; dst: Ref; addr: Ref; num: 1 | 2 | 4; trans: boolean; loc?: Loc }
  /** mma.sync.aligned.m16n8k16.row.col.f32.{atype}.{atype}.f32. Warp-collective.
   *  Per lane: a = 8 elements at a.idx[0]..+7, b = 4 elements, c and d = 4 f32 elements,
   *  all in the PTX fragment layouts. d may equal c. */
  | { k: "mma"; atype: "bf16" | "f16"; d: Ref; a: Ref; b: Ref; c: Ref; loc?: Loc }
  /** wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{atype}.{atype} (sm_90a). Warpgroup-collective:
   *  the 128 threads of a warpgroup (threads 128g .. 128g+127) issue it together.
   *  d: n/2 f32 elements per thread at d.idx[0]..+n/2-1, in the m64nNk16 D-fragment order
   *  (see Layout wgmma_acc). a (64 x 16) and b (n x 16) are K-major tiles in shared memory,
   *  described as by a matrix descriptor (WgmmaOperand), or a from registers (WgmmaRegs).
   *  scaleD false: d = a * b^T, else d += a * b^T. Asynchronous: operands and d are read, and
   *  d written, at some point between the issue and the wgmma_wait that retires its commit
   *  group; register operands must not be written until then, and a wgmma.fence must come
   *  between their last write and the wgmma. */
  | { k: "wgmma"; atype: "bf16" | "f16"; n: number; d: Ref; a: WgmmaOperand | WgmmaRegs; b: WgmmaOperand; scaleD: boolean; loc?: Loc }
  /** wgmma.fence.sync.aligned: orders register accesses of the accumulator before later wgmma. */
  | { k: "wgmma_fence"; loc?: Loc }
  /** wgmma.commit_group.sync.aligned: closes a group of the warpgroup's issued wgmma. */
  | { k: "wgmma_commit"; loc?: Loc }
  /** wgmma.wait_group.sync.aligned n: waits until at most n groups are pending. */
  | { k: "wgmma_wait"; n: number; loc?: Loc }
  /** Butterfly reduction across each group of `width` consecutive threads (thread t is in
   *  group floor(t / width); width is 2, 4, 8, 16 or 32, so a group never spans two warps).
   *  Every thread gets, as a new const `result` of `dtype` (f32, i32 or u32), the combination
   *  of `value` over its group in this order: x = value; for m = 1, 2, .., width / 2:
   *  x = op(x, x of thread t ^ m). The order is part of the contract, so a float sum is the
   *  same bits in the interpreter, CUDA (__shfl_xor_sync) and WGSL (subgroupShuffleXor or
   *  workgroup memory). Block-collective: every thread of the block reaches it (never under
   *  an `if`), and the block's threads are a multiple of 32. */
  | { k: "warp_reduce"; op: ReduceOp; dtype: DType; value: Expr; width: number; result: string; loc?: Loc }
  /** fence.proxy.async.shared::cta: makes this thread's earlier generic-proxy writes to shared
   *  memory (st.shared, cp.async) visible to the async proxy (wgmma operand reads). */
  | { k: "fence_async"; loc?: Loc }
  // ---- TMA and mbarriers (sm_90a; lower-pipeline-tma.ts). An mbarrier is one i64 element of a
  // shared buffer. Its phase completes when all `count` expected arrivals have arrived and the
  // transaction bytes announced by arrive.expect_tx have been delivered by TMA copies.
  /** mbarrier.init.shared::cta.b64 bar, count. */
  | { k: "mbar_init"; bar: Ref; count: number; loc?: Loc }
  /** fence.mbarrier_init.release.cluster: earlier inits become visible to the async proxy (TMA). */
  | { k: "mbar_fence_init"; loc?: Loc }
  /** mbarrier.arrive[.expect_tx].shared::cta.b64: one arrival; with tx, the current phase also
   *  waits for `tx` more bytes of TMA transactions. */
  | { k: "mbar_arrive"; bar: Ref; tx?: number; loc?: Loc }
  /** Loops on mbarrier.try_wait.parity.shared::cta.b64 until the phase of parity `parity` (0/1)
   *  has completed. */
  | { k: "mbar_wait"; bar: Ref; parity: Expr; loc?: Loc }
  /** cp.async.bulk.tensor.{rank}d.shared::cluster.global.mbarrier::complete_tx::bytes: the box of
   *  tensor map `map` (Kernel.tensorMaps) at element coordinates `coords` (outermost first, as
   *  the tensor is indexed) lands at shared `dst` (swizzled as the map says); elements outside
   *  the tensor are zero; the box's bytes complete on `bar`. Issued by one thread. */
  | { k: "tma_load"; dst: Ref; map: string; coords: Expr[]; bar: Ref; loc?: Loc }
  // ---- Programmatic dependent launch (sm_90; programmatic-launch.ts, docs/LAYER.md).
  /** griddepcontrol.wait: this thread waits until the grids this one was launched to depend on
   *  (the previous kernel of the stream, under PDL) have completed and their memory operations
   *  are visible; returns at once when there are none (a plain launch, the interpreter).
   *  griddepcontrol.launch_dependents: once every block of this grid has issued it (or exited),
   *  the next kernel of the stream, launched with PDL, may start; it says nothing about memory.
   *  Every thread of the block reaches both (never under an `if`). */
  | { k: "griddep"; op: "wait" | "launch_dependents"; loc?: Loc };

/** A TMA tensor map over a global tensor param, built by the host (cuTensorMapEncodeTiled) and
 *  passed by value as a kernel parameter (after the dims). box: extents, outermost first;
 *  swizzle: bytes of the swizzle span (0 = none), matching the shared tile's layout. Elements
 *  outside the tensor read as zero. */
export interface TensorMap { name: string; tensor: string; box: number[]; swizzle: 0 | 32 | 64 | 128 }

/** A shared-memory wgmma operand, the fields of its matrix descriptor: the tile starts at
 *  `ref` (16-byte aligned); K-major canonical layout with the given swizzle (bytes per
 *  swizzled row: 0 = none, 32, 64, 128). Byte offsets: sbo = between 8-row groups along M/N;
 *  lbo = between the two 8-column core matrices along K (used without swizzle only).
 *  The swizzle XORs address bits [4, 4+log2(swizzle/16)) with bits 7.. of the absolute shared
 *  address, so swizzled tiles must sit at multiples of 8 * swizzle bytes. */
export interface WgmmaOperand { ref: Ref; swizzle: 0 | 32 | 64 | 128; lbo: number; sbo: number }

/** wgmma's A operand from registers (text: the bare ref, no descriptor fields): 8 16-bit
 *  elements of a local buffer at ref.idx[0]..+7, the PTX registers {a0, a1, a2, a3} two
 *  elements each. Element e of thread (warp w, lane l) of the warpgroup is A's
 *  (row 16w + l/4 + 8 * ((e >> 1) & 1), col 2 * (l % 4) + (e & 1) + 8 * (e >> 2)): per warp
 *  the mma.m16n8k16 A fragment layout (PTX ISA, wgmma register fragments for matrix A). */
export interface WgmmaRegs { ref: Ref; regs: true }

export const isWgmmaRegs = (o: WgmmaOperand | WgmmaRegs): o is WgmmaRegs => "regs" in o;

/** The kernel body is one launch. */
export interface Launch {
  /** Grid dims (x, y, z), expressions over symbolic dims and constants. */
  grid: Expr[];
  /** Threads per block (x only). Constant after specialization. */
  threads: Expr;
  /** Blocks per SM the author asks to keep resident (`min_blocks` in IR text; the DSL's launch
   *  option `minBlocks`, often a tunable): the CUDA emitter's __launch_bounds__ second argument,
   *  so nvcc holds registers to 64K / (threads * minBlocks). Constant after specialization;
   *  absent or 1: no request. */
  minBlocks?: Expr;
  /** Names bound to blockIdx.x, .y, .z (as many as grid dims). */
  blockVars: string[];
  level: "tile" | "thread";
  /** Name bound to threadIdx.x at thread level. */
  threadVar?: string;
  /** Blocks per SM that the kernel's register budget is planned for (warp specialization's
   *  setmaxnreg counts; the CUDA emitter's __launch_bounds__). Absent: one. */
  perSM?: number;
  /** The first `setup` statements of a thread-level body are block state that lives across a
   *  persistent block's tiles (a warp-specialized TMA pipeline's mbarriers, their inits and its
   *  running stage counter; lower-pipeline-tma.ts): persistentGrid keeps them in front of its
   *  tile loop and drops the count. `setup N` in the IR text. */
  setup?: number;
  body: Stmt[];
}

export interface Param {
  name: string;
  /** Tensors are global buffers; scalars have kind "scalar". */
  kind: "tensor" | "scalar";
  dtype: DType;
  /** Tensors only: shape expressions over symbolic dims (from the shape string). */
  shape?: Expr[];
  /** The shape string as the author wrote it (diagnostics, headers). */
  shapeText?: string;
  /** Written by the kernel? (inferred; output tensors). */
  output?: boolean;
  /** Tensors only: byte alignment the launcher guarantees (checked at launch); `align N` in IR text. */
  align?: number;
}

export type TunableValue = number | string | boolean;

export interface Kernel {
  name: string;
  params: Param[];
  /** Symbolic dims in first-appearance order; each is a run-time i32 kernel argument. */
  dims: string[];
  /** Tunable space: name -> allowed values (first value = default). */
  tunables: Record<string, TunableValue[]>;
  /** Constraint over tunables (vars name tunables); true = allowed. */
  where?: Expr;
  /** Values bound by specialization; empty before it. */
  config: Record<string, TunableValue>;
  launch: Launch;
  loc?: Loc;
  /** Dynamic shared memory bytes (filled by lowering). */
  smemBytes?: number;
  /** TMA tensor maps the thread-level body uses (filled by lowering). */
  tensorMaps?: TensorMap[];
}

/** A problem reported about user input or IR. Never thrown raw to the user. */
export interface Diagnostic {
  loc?: Loc;
  message: string;
  severity: "error" | "warning";
}

/** Thrown inside the compiler to abort with located diagnostics; the CLI prints them. */
export class CompileError extends Error {
  constructor(public readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join("\n"));
  }
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.loc ? `${d.loc.file}:${d.loc.line}:${d.loc.col}: ` : "";
  return `${where}${d.severity}: ${d.message}`;
}

// ---------------------------------------------------------------- small constructors

export const int = (v: number, dtype?: DType): Expr => (dtype ? { k: "int", v, dtype } : { k: "int", v });
export const flt = (v: number, dtype?: DType): Expr => (dtype ? { k: "float", v, dtype } : { k: "float", v });
export const v = (name: string): Expr => ({ k: "var", name });
export const bin = (op: BinOp, a: Expr, b: Expr): Expr => ({ k: "bin", op, a, b });
export const add = (a: Expr, b: Expr) => bin("+", a, b);
export const mul = (a: Expr, b: Expr) => bin("*", a, b);
export const load = (buf: string, ...idx: Expr[]): Expr => ({ k: "load", buf, idx });
