// The sm_90a tensor-core path for a tile gemm: wgmma.mma_async reading both operands straight
// from shared memory through matrix descriptors, accumulating into the registers of a
// wgmma_acc fragment (layout/wgmma.ts).
//
// When: inferLayouts asks `wgmmaChoice` for every gemm into a fragment; the answer depends on
// the target (Target.wgmma) and on the kernel's optional string tunable `mma`
// ("auto" | "mma_sync" | "wgmma"; absent = "auto"). "auto" takes wgmma whenever the gemm fits
// it and falls back to mma.sync otherwise; "wgmma" makes a gemm that does not fit an error
// (so that a tuner prunes the config); "mma_sync" keeps the sm_80 path on sm_90a.
//
// What fits: 16-bit operands of one type, A stored [M, K] and B stored [N, K] (both K-major,
// i.e. no transA, transB), whole shared tiles whose rows are exactly 32, 64 or 128 bytes
// (BK = 16, 32 or 64): those tiles get the xor_swizzle that equals the hardware's 32/64/128-byte
// swizzle, so the cp.async copies that fill them stay as they are. The block's warpgroups
// (threads / 128) tile the accumulator with m64 rows and an n of 8..256 per warpgroup.
//
// Code, per warpgroup (Mw x N of the accumulator, Mw / 64 m-tiles):
//   fence.proxy.async; barrier     shared writes of the generic proxy (cp.async, stores) become
//                                  visible to wgmma's async-proxy reads, in every thread
//   wgmma.fence                    accumulator registers written before are ordered first
//   for kk < K/16, t < Mw/64:      wgmma.m64nNk16 acc[t * N/2] += A[t-th 64 rows, kk-th 16 cols] *
//                                                                 B[the group's N rows, kk-th 16 cols]^T
//   wgmma.commit; wgmma.wait 0     the accumulator is complete when the gemm statement ends
// The descriptor of a k-step starts kk * 32 bytes into the swizzled rows: the hardware applies
// the swizzle to the final address, so a k-offset inside the 32/64/128-byte row is a plain add.
//
// A gemm on its own waits for 0 groups (the tile-level meaning: the accumulator is final after
// the statement, the operand tiles are free). As the last statement of a cp.async pipeline it
// neither fences nor waits for its own group: lower-pipeline-wgmma.ts keeps one group in flight.
//
// Too few rows for m64 tiles (decode: BM = 16 or 32) but n a multiple of 64: the accumulator is
// held transposed (wgmma_acc_t) and computed as C^T = B A^T, the B tile being wgmma's A operand.
import { CompileError, type Expr, type Layout, type Loc, type Stmt, type TunableValue, bin, int, v } from "../ir/ir.ts";
import { fold } from "../ir/expr.ts";
import { type WgmmaAcc, wgmmaArrangements, wgmmaSwizzle } from "../layout/wgmma.ts";
import type { Target } from "./types.ts";

export type MmaMode = "auto" | "mma_sync" | "wgmma";

/** The gemm path the kernel's config and the target ask for. */
export function mmaMode(target: Target, config: Record<string, TunableValue>): MmaMode {
  const m = config["mma"];
  const mode: MmaMode = m === "mma_sync" || m === "wgmma" ? m : "auto";
  if (!target.wgmma) return "mma_sync";
  return mode;
}

export interface WgmmaCandidate {
  m: number; n: number; k: number; threads: number;
  atype: string; btype: string; transA: boolean; transB: boolean;
  /** Row lengths (elements) of the stored A and B tiles, and any layout they already have. */
  aCols: number; bCols: number; aLayout?: Layout; bLayout?: Layout;
  /** Every operand and the accumulator are whole buffers. */
  whole: boolean;
}

export interface WgmmaChoice {
  acc: WgmmaAcc;
  aLayout: Extract<Layout, { kind: "xor_swizzle" }>;
  bLayout: Extract<Layout, { kind: "xor_swizzle" }>;
}

/** The wgmma layout for this gemm, or why it cannot use wgmma. */
export function wgmmaChoice(g: WgmmaCandidate): WgmmaChoice | string {
  if (g.atype !== g.btype) return `wgmma needs both operands of one type, got ${g.atype} and ${g.btype}`;
  if (g.atype !== "bf16" && g.atype !== "f16") return `wgmma (as lowered here) takes bf16 or f16 operands, got ${g.atype}`;
  if (!g.whole) return "wgmma needs the gemm to read whole shared tiles and update the whole accumulator";
  if (g.transA || !g.transB) return "wgmma (as lowered here) needs K-major operands: A stored [M, K] and B stored [N, K] (transB)";
  if (g.k % 16 !== 0) return `gemm k = ${g.k} is not a multiple of 16 (the wgmma k-step)`;
  const sa = wgmmaSwizzle(g.aCols), sb = wgmmaSwizzle(g.bCols);
  if (!sa || !sb) return `wgmma needs operand rows of 32, 64 or 128 bytes (16, 32 or 64 elements), got ${g.aCols} and ${g.bCols}`;
  const same = (l: Layout | undefined, w: Layout) => !l || JSON.stringify(l) === JSON.stringify(w);
  if (!same(g.aLayout, sa.layout) || !same(g.bLayout, sb.layout)) return "an operand tile already has a layout other than the wgmma swizzle";
  // Too few rows for m64 tiles (decode-sized M): compute the transpose, C^T = B A^T, whose
  // rows are the gemm's n.
  let arr = wgmmaArrangements(g.m, g.n, g.threads);
  if (arr.length === 0) arr = wgmmaArrangements(g.m, g.n, g.threads, true);
  if (arr.length === 0)
    return `no arrangement of ${g.threads / 128} warpgroups tiles a ${g.m}x${g.n} accumulator (or its transpose) with m64nN wgmma tiles (threads must be a multiple of 128, m or n of 64)`;
  // The widest n per instruction: fewest instructions, each B tile read once per warpgroup.
  const acc = arr.reduce((best, l) => (l.wgN < best.wgN ? l : best));
  return { acc, aLayout: sa.layout, bLayout: sb.layout };
}

export interface WgmmaOperandTile { buf: string; base: Expr; rows: number; cols: number }
export interface WgmmaGemm {
  a: WgmmaOperandTile; b: WgmmaOperandTile;
  c: { buf: string; rows: number; cols: number; layout: WgmmaAcc };
  atype: "bf16" | "f16"; threads: number; tx: Expr; fresh: (hint: string) => string; loc?: Loc;
  /** Inside a pipeline that fences its copies and keeps one wgmma group in flight
   *  (lower-pipeline-wgmma.ts): no fence and barrier here, and wait for all but 1 group. */
  inPipeline?: boolean;
}

function add(a: Expr, b: Expr): Expr { return fold(bin("+", a, b)); }
function mul(a: Expr, n: number): Expr { return fold(bin("*", a, int(n))); }

export function lowerGemmWgmma(g0: WgmmaGemm): Stmt[] {
  // A transposed accumulator: the same code for C^T = B A^T, operands swapped.
  const g: WgmmaGemm = g0.c.layout.trans
    ? { ...g0, a: g0.b, b: g0.a, c: { ...g0.c, rows: g0.c.cols, cols: g0.c.rows, layout: { kind: "wgmma_acc", wgM: g0.c.layout.wgM, wgN: g0.c.layout.wgN } } }
    : g0;
  const { wgM, wgN } = g.c.layout;
  const groupRows = g.c.rows / wgM, n = g.c.cols / wgN, mTiles = groupRows / 64;
  const k = g.a.cols;
  if (g.b.cols !== k || g.a.rows !== g.c.rows || g.b.rows !== g.c.cols)
    throw new Error(`lowerGemmWgmma: shapes A ${g.a.rows}x${g.a.cols}, B ${g.b.rows}x${g.b.cols}, C ${g.c.rows}x${g.c.cols} do not match`);
  const sa = wgmmaSwizzle(g.a.cols), sb = wgmmaSwizzle(g.b.cols);
  if (!sa || !sb) throw new Error(`lowerGemmWgmma: operand rows of ${g.a.cols} / ${g.b.cols} elements have no wgmma swizzle`);
  if (!Number.isInteger(mTiles) || mTiles < 1) throw new CompileError([{ loc: g.loc, severity: "error", message: `wgmma: ${groupRows} accumulator rows per warpgroup are not whole m64 tiles` }]);

  const body: Stmt[] = g.inPipeline ? [] : [{ k: "fence_async" }, { k: "barrier" }];
  // Warpgroup position: uniform across the 128 threads that issue each wgmma together.
  const group = fold(bin("/", g.tx, int(128)));
  const gm = wgN === 1 ? group : fold(bin("/", group, int(wgN)));
  const gn = wgN === 1 ? int(0) : fold(bin("%", group, int(wgN)));
  const rowA = (t: Expr) => add(mul(gm, groupRows), mul(t, 64));
  const rowB = mul(gn, n);
  let aRow0: Expr = rowA(int(0)), bRow0: Expr = rowB;
  if (wgM > 1 && aRow0.k !== "int") { const nm = g.fresh("wga"); body.push({ k: "let", name: nm, dtype: "i32", value: add(g.a.base, mul(aRow0, g.a.cols)), mutable: false }); aRow0 = v(nm); }
  else aRow0 = add(g.a.base, mul(aRow0, g.a.cols));
  if (wgN > 1 && bRow0.k !== "int") { const nm = g.fresh("wgb"); body.push({ k: "let", name: nm, dtype: "i32", value: add(g.b.base, mul(bRow0, g.b.cols)), mutable: false }); bRow0 = v(nm); }
  else bRow0 = add(g.b.base, mul(bRow0, g.b.cols));

  body.push({ k: "wgmma_fence" });
  const kSteps = k / 16;
  const loop = (hint: string, trips: number, f: (i: Expr) => Stmt[]): Stmt[] => {
    if (trips === 1) return f(int(0));
    const nm = g.fresh(hint);
    return [{ k: "for", vars: [nm], starts: [int(0)], extents: [int(trips)], kind: "unroll", body: f(v(nm)) }];
  };
  body.push(...loop("kk", kSteps, (kk) => loop("t", mTiles, (t) => [{
    k: "wgmma", atype: g.atype, n, scaleD: true,
    d: { buf: g.c.buf, idx: [mul(t, n / 2)] },
    a: { ref: { buf: g.a.buf, idx: [add(add(aRow0, mul(t, 64 * g.a.cols)), mul(kk, 16))] }, swizzle: sa.swizzle, lbo: 16, sbo: sa.sbo },
    b: { ref: { buf: g.b.buf, idx: [add(bRow0, mul(kk, 16))] }, swizzle: sb.swizzle, lbo: 16, sbo: sb.sbo },
  }])));
  body.push({ k: "wgmma_commit" }, { k: "wgmma_wait", n: g.inPipeline ? 1 : 0 });
  return body;
}
