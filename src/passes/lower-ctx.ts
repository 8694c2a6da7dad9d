// Shared state and helpers of the thread-level lowering (lower-threads.ts and the
// per-operation files it calls).
import { nonNegExpr } from "./non-neg.ts";
import type { EpilogueHost } from "./lower-epilogue.ts";
import { fragCoordExpr } from "./frag-coord.ts";
import {
  CompileError, type Buffer, type Expr, type Kernel, type Layout, type Loc, type Ref, type Region, type Stmt, type TensorMap,
  bin, int, v,
} from "../ir/ir.ts";
import { TRUE, evalConst, fold } from "../ir/expr.ts";
import { sharedIndex } from "../layout/swizzle.ts";
import { fragmentSlots } from "../layout/fragment.ts";
import type { Target } from "./types.ts";
import type { DequantGemm } from "./fuse-dequant-gemm.ts";

export interface BufInfo {
  buf: Buffer;           // as declared at tile level
  shape: number[];       // constant shape (non-global); NaN entries for globals
  size: number;          // elements of one stage
  stages: number;        // shared multi-buffering depth (1 when not pipelined)
  align?: number;        // globals: guaranteed byte alignment of the base pointer
}

export interface Ctx {
  k: Kernel;
  /** The kernel's scalar names that may be negative where the code being lowered stands
   *  (non-neg.ts signFacts, less what enclosing tests prove), and those a test can prove. */
  unproven: Set<string>;
  fixed: Set<string>;
  target: Target;
  threads: number;
  tx: Expr;
  fresh: (hint: string) => string;
  bufs: Map<string, BufInfo>;
  /** Stage index of multi-buffered shared buffers in the code being lowered. */
  stage: Map<string, Expr>;
  /** Statements to place at the top of the launch (registers of mma fragments). */
  hoisted: Stmt[];
  /** Block state placed first in the launch, kept out of a persistent tile loop (Launch.setup:
   *  the running TMA pipeline's mbarriers and counter, lower-pipeline-tma.ts). */
  setup: Stmt[];
  /** Lowers a tile-level statement list (lets the per-op files recurse). */
  lowerBody: (c: Ctx, body: Stmt[]) => Stmt[];
  /** Set while lowering the body of a pipelined loop that keeps one wgmma group in flight
   *  (lower-pipeline-wgmma.ts): its gemm neither fences nor waits for its own group. */
  wgmmaInPipeline?: boolean;
  /** Blocks per SM the warp-specialized register counts plan for (warp-specialize.ts
   *  wsBlocksPerSM; lower-pipeline-tma.ts uses it, the launch records it). */
  wsPerSM?: number;
  /** TMA tensor maps the lowered code uses (lower-pipeline-tma.ts); they become kernel params. */
  tensorMaps: TensorMap[];
  /** Gemms whose B tile is dequantized in registers (fuse-dequant-gemm.ts): the T.dequant
   *  loop and the tile's allocation are dropped, the gemm fills its B fragments itself. */
  dequantGemms: Map<Stmt, DequantGemm>;
  /** The T.dequant loops of dequantGemms (lowered as part of their gemm). */
  fusedLoops: Set<Stmt>;
  /** Top-level copies that may stage through a dead shared buffer (lower-epilogue.ts). */
  epilogueHosts?: Map<Stmt, EpilogueHost[]>;
  /** The block's shared bytes so far (each buffer rounded to 128 bytes, stages counted,
   *  overlays free): what lowerToThreads will record as Kernel.smemBytes. */
  sharedBytes?: () => number;
  /** Set while lowering the compute of a cp.async pipelined loop: statements placed at the
   *  top of its body, before the wait for the current tile, so that their global reads
   *  overlap it (fuse-dequant-gemm.ts: the group scales). `bound`: names the body binds,
   *  which such statements must not read. */
  beforeWait?: { stmts: Stmt[]; bound: Set<string> };
}

export function fail(loc: Loc | undefined, message: string): never {
  throw new CompileError([{ loc, message, severity: "error" }]);
}

export function info(c: Ctx, name: string): BufInfo {
  const b = c.bufs.get(name);
  if (!b) throw new Error(`lowerToThreads: unknown buffer '${name}'`);
  return b;
}

/** The fragment's [rows, cols] view: rank 1 is one row. */
export function fragShape(c: Ctx, b: BufInfo): { rows: number; cols: number; threads: number } {
  const s = b.shape;
  if (s.length === 1) return { rows: 1, cols: s[0]!, threads: c.threads };
  if (s.length === 2) return { rows: s[0]!, cols: s[1]!, threads: c.threads };
  fail(undefined, `fragment '${b.buf.name}' has rank ${s.length}; fragments are 1-d or 2-d`);
}

export function fragLayout(b: BufInfo): Layout {
  return b.buf.layout ?? { kind: "cyclic" };
}

export function slotsOf(c: Ctx, b: BufInfo): number {
  return fragmentSlots(fragLayout(b), fragShape(c, b));
}

const rowMajor = (shape: number[], idx: Expr[]): Expr =>
  idx.reduce<Expr>((acc, i, d) => (d === 0 ? i : bin("+", bin("*", acc, int(shape[d]!)), i)), int(0));

/** Thread-level address of element `idx` of a non-fragment buffer. */
export function addr(c: Ctx, name: string, idx: Expr[]): Ref {
  const b = info(c, name);
  switch (b.buf.scope) {
    case "global": return { buf: name, idx };
    case "local": return { buf: name, idx: [fold(rowMajor(b.shape, idx))] };
    case "shared": {
      const flat = idx.length === 2 ? sharedIndex(b.buf.layout, b.shape[1]!, idx[0]!, idx[1]!) : rowMajor(b.shape, idx);
      const st = currentStage(c, name);
      return { buf: name, idx: [fold(st ? bin("+", bin("*", st, int(b.size)), flat) : flat)] };
    }
    case "fragment":
      throw new Error(`addr: fragment '${name}' has no per-element address`);
  }
}

/** Element offset of the current stage of a shared buffer (0 when single-buffered). */
/** Stage index of a shared buffer in the code being lowered. A multi-buffered tile only
 *  has a meaning inside its pipelined loop (which stage holds "the" tile elsewhere?). */
function currentStage(c: Ctx, name: string): Expr | undefined {
  const st = c.stage.get(name);
  if (!st && info(c, name).stages > 1)
    fail(undefined, `shared tile '${name}' is filled by a pipelined loop and used outside it; copy what is needed into another tile inside the loop`);
  return st;
}

export function stageBase(c: Ctx, name: string): Expr {
  const st = currentStage(c, name);
  return st ? fold(bin("*", st, int(info(c, name).size))) : int(0);
}

/** Conservative: true only when e cannot be negative (non-neg.ts: no scalar param, and no name of
 *  the kernel whose values are not all shown non-negative). */
export function nonNeg(c: Ctx, e: Expr): boolean {
  return nonNegExpr(e, c.unproven);
}

/** idx lies inside the global buffer's shape. */
export function inBounds(c: Ctx, name: string, idx: Expr[], skipLast = false): Expr {
  const b = info(c, name);
  if (b.buf.scope !== "global") return TRUE;
  let p: Expr = TRUE;
  idx.forEach((i, d) => {
    if (skipLast && d === idx.length - 1) return;
    if (!nonNeg(c, i)) p = bin("&&", p, bin(">=", i, int(0)));
    p = bin("&&", p, bin("<", i, b.buf.shape[d]!));
  });
  return fold(p);
}

export const constExtents = (r: Region): number[] => r.extents.map((e) => {
  const n = evalConst(e);
  if (n === undefined) throw new Error(`lowerToThreads: extent of '${r.buf}' is not constant (run inferTypes first)`);
  return n;
});

/** Extents with the 1s dropped: the index space a copy iterates ([1] for a single element). */
export function squeezed(r: Region): number[] {
  const s = constExtents(r).filter((n) => n !== 1);
  return s.length ? s : [1];
}

/** Buffer indices of squeezed coordinates q inside region r. */
export function regionIdx(r: Region, q: Expr[]): Expr[] {
  const ext = constExtents(r);
  let j = 0;
  const nonUnit = ext.filter((n) => n !== 1).length;
  return r.offsets.map((o, d) => (ext[d] === 1 || nonUnit === 0 ? o : fold(bin("+", o, q[j++]!))));
}

/** Squeezed coordinates of the flat element index e (row-major over sq). */
export function unflatten(e: Expr, sq: number[]): Expr[] {
  const out: Expr[] = [];
  let stride = 1;
  for (let d = sq.length - 1; d >= 0; d--) {
    const x = stride === 1 ? e : bin("/", e, int(stride));
    out.unshift(fold(d === 0 ? x : bin("%", x, int(sq[d]!))));
    stride *= sq[d]!;
  }
  return out;
}

/** A loop over [0, n) that codegen unrolls when short; the body alone when n is 1. */
export function countedLoop(c: Ctx, hint: string, n: Expr, body: (i: Expr) => Stmt[], unrollMax = 32): Stmt[] {
  const nn = evalConst(n);
  if (nn === 0) return [];
  if (nn === 1) { const b = body(int(0)); if (!declaresNames(b)) return b; }
  const name = c.fresh(hint);
  return [{ k: "for", vars: [name], starts: [int(0)], extents: [n], kind: nn !== undefined && nn <= unrollMax ? "unroll" : "serial", body: body(v(name)) }];
}

/** A loop over a fragment's slots: always unrolled, since a register array indexed by a
 *  run-time value would be demoted to local memory. */
export function slotLoop(c: Ctx, n: Expr, body: (slot: Expr) => Stmt[]): Stmt[] {
  return countedLoop(c, "s", n, body, Infinity);
}

/** A loop over a fragment's slot pairs (2i, 2i + 1), with the even slot's coordinates bound
 *  to lets (`pre`, to put first) and whether the slot holds an element (`valid`, absent:
 *  always). For accumulator layouts the odd slot is the next column (mma_acc, wgmma_acc). */
export function slotPairLoop(c: Ctx, f: BufInfo,
  body: (at: { slot: Expr; row: Expr; col: Expr; valid?: Expr; pre: Stmt[] }) => Stmt[]): Stmt[] {
  return slotLoop(c, int(slotsOf(c, f) / 2), (p) => {
    const pre: Stmt[] = [];
    const slot = fold(bin("*", p, int(2)));
    const co = fragCoordExpr(fragLayout(f), fragShape(c, f), c.tx, slot);
    const row = letI32(c, "r", co.row, pre), col = letI32(c, "c", co.col, pre);
    return body({ slot, row, col, valid: co.valid, pre });
  });
}

/** Does the list bind names at its own level? Such a list cannot be spliced into its
 *  parent block: a sibling could bind the same names (two loops over the same `i`). */
export function declaresNames(body: Stmt[]): boolean {
  return body.some((s) => s.k === "let" || s.k === "alloc" || s.k === "warp_reduce" || (s.k === "atomic" && s.result !== undefined));
}

export function guard(cond: Expr, then: Stmt[], els: Stmt[] = []): Stmt[] {
  const f = fold(cond);
  if (f.k === "int" && f.v !== 0 && !declaresNames(then)) return then;
  if (f.k === "int" && f.v === 0 && !declaresNames(els)) return els;
  return [{ k: "if", cond: f, then, else: els }];
}

export function letI32(c: Ctx, hint: string, value: Expr, out: Stmt[]): Expr {
  const f = fold(value);
  if (f.k === "int" || f.k === "var") return f;
  const name = c.fresh(hint);
  out.push({ k: "let", name, dtype: "i32", value: f, mutable: false });
  return v(name);
}
