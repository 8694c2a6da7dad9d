// Layout facts of the sm_90a warpgroup MMA (PTX ISA, "Asynchronous Warpgroup Level Matrix
// Multiply-Accumulate": register fragments, shared memory matrix layouts, matrix descriptor).
// The lowering (passes/lower-gemm-wgmma.ts) and codegen read these; the interpreter
// (interp/wgmma.ts) has its own decoding of descriptors and fragments so that the two check
// each other.
import { type Expr, type Layout, bin, int } from "../ir/ir.ts";
import { fold } from "../ir/expr.ts";

export type WgmmaAcc = Extract<Layout, { kind: "wgmma_acc" }>;
export interface FragShape { rows: number; cols: number; threads: number }

/** n of m64nNk16 for bf16/f16 inputs: multiples of 8 up to 256. */
export const validWgmmaN = (n: number) => Number.isInteger(n) && n >= 8 && n <= 256 && n % 8 === 0;

/** Why a wgmma_acc layout does not tile this fragment (undefined when it does). */
export function wgmmaAccProblem(l: { wgM: number; wgN: number; trans?: boolean }, s0: FragShape): string | undefined {
  const s = l.trans ? { rows: s0.cols, cols: s0.rows, threads: s0.threads } : s0;
  const groups = s.threads / 128;
  if (!Number.isInteger(groups) || l.wgM * l.wgN !== groups)
    return `wgmma_acc(${l.wgM}, ${l.wgN}) needs ${l.wgM * l.wgN * 128} threads, the block has ${s.threads}`;
  if (s.rows % (64 * l.wgM) !== 0) return `rows ${s.rows} are not a multiple of 64 * wgM = ${64 * l.wgM}`;
  if (s.cols % l.wgN !== 0 || !validWgmmaN(s.cols / l.wgN)) return `cols ${s.cols} / wgN ${l.wgN} is not a wgmma n (a multiple of 8 up to 256)`;
  return undefined;
}

/** Warpgroup arrangements that tile an m x n accumulator (held transposed if `trans`). */
export function wgmmaArrangements(m: number, n: number, threads: number, trans = false): WgmmaAcc[] {
  const groups = threads / 128;
  const out: WgmmaAcc[] = [];
  if (!Number.isInteger(groups) || groups < 1) return out;
  for (let wgM = 1; wgM <= groups; wgM++) {
    if (groups % wgM !== 0) continue;
    const l: WgmmaAcc = trans ? { kind: "wgmma_acc", wgM, wgN: groups / wgM, trans } : { kind: "wgmma_acc", wgM, wgN: groups / wgM };
    if (!wgmmaAccProblem(l, { rows: m, cols: n, threads })) out.push(l);
  }
  return out;
}

const b = (op: "+" | "*" | "/" | "%" | "&" | ">>", x: Expr, y: Expr | number) => bin(op, x, typeof y === "number" ? int(y) : y);

/** Row and column of fragment slot `slot` of thread `tx` (slot may be an expression). */
export function wgmmaAccCoord(l: WgmmaAcc, s0: FragShape, tx: Expr, slot: Expr): { row: Expr; col: Expr } {
  if (l.trans) {
    const t = wgmmaAccCoord({ kind: "wgmma_acc", wgM: l.wgM, wgN: l.wgN }, { rows: s0.cols, cols: s0.rows, threads: s0.threads }, tx, slot);
    return { row: t.col, col: t.row };
  }
  const s = s0;
  const groupRows = s.rows / l.wgM, n = s.cols / l.wgN, half = n / 2;
  const g = b("/", tx, 128), w = b("/", b("%", tx, 128), 32), lane = b("%", tx, 32);
  const tile = b("/", slot, half), i = b("%", slot, half);
  const row = b("+", b("+", b("*", b("/", g, l.wgN), groupRows), b("*", tile, 64)),
    b("+", b("+", b("*", w, 16), b("/", lane, 4)), b("*", b("&", b(">>", i, 1), 1), 8)));
  const col = b("+", b("*", b("%", g, l.wgN), n),
    b("+", b("+", b("*", b("/", i, 4), 8), b("*", b("%", lane, 4), 2)), b("%", i, 2)));
  return { row: fold(row), col: fold(col) };
}

/**
 * Swizzle mode for a K-major tile whose rows hold `cols` 16-bit elements, when the tile can be
 * read by wgmma as is: rows of exactly 32, 64 or 128 bytes with the matching address swizzle.
 * The xor_swizzle layout that swizzle.ts chooses for these widths is the same permutation
 * (16-byte chunk c of row r goes to c ^ ((r >> shift) & mask)) as the hardware's XOR of
 * address bits 4.. with bits 7.. once the tile starts at a multiple of 8 rows' bytes.
 */
export function wgmmaSwizzle(cols: number): { swizzle: 32 | 64 | 128; sbo: number; layout: Extract<Layout, { kind: "xor_swizzle" }> } | undefined {
  const bytes = cols * 2;
  if (bytes === 128) return { swizzle: 128, sbo: 1024, layout: { kind: "xor_swizzle", mask: 7, shift: 0 } };
  if (bytes === 64) return { swizzle: 64, sbo: 512, layout: { kind: "xor_swizzle", mask: 3, shift: 1 } };
  if (bytes === 32) return { swizzle: 32, sbo: 256, layout: { kind: "xor_swizzle", mask: 1, shift: 2 } };
  return undefined;
}

/** Descriptor bits 62-63 per swizzle width. */
export const SWIZZLE_CODE: Record<0 | 32 | 64 | 128, number> = { 0: 0, 128: 1, 64: 2, 32: 3 };

/**
 * The 64-bit matrix descriptor: start address >> 4 in bits 0-13, leading byte offset >> 4 in
 * 16-29, stride byte offset >> 4 in 32-45, base offset 0 (bits 49-51; tiles sit on swizzle
 * boundaries), swizzle mode in 62-63. As a bigint so that tests can check it bit by bit.
 */
export function wgmmaDescriptor(addr: number, swizzle: 0 | 32 | 64 | 128, lbo: number, sbo: number): bigint {
  const f = (x: number) => BigInt((x & 0x3ffff) >> 4);
  return f(addr) | (f(lbo) << 16n) | (f(sbo) << 32n) | (BigInt(SWIZZLE_CODE[swizzle]) << 62n);
}
