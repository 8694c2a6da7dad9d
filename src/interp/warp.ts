// Warp-collective matrix instructions, written from the PTX ISA's descriptions
// ("ldmatrix", "Matrix Fragments for mma.m16n8k16 with floating point type"), independently
// of layout/fragment.ts so that the two can check each other.
//
// Notation: lane l, groupID g = l >> 2, threadID_in_group t = l & 3.
//  ldmatrix .m8n8 .b16: lanes 8j..8j+7 give the row addresses of matrix j; lane l receives
//    from each matrix j the elements (row g, cols 2t, 2t+1), or with .trans (rows 2t, 2t+1, col g).
//  mma m16n8k16 (A row-major 16x16, B "col" 16x8 as K x N, C/D f32 16x8):
//    a_i (i < 8): row g + 8 * ((i >> 1) & 1), col 2t + (i & 1) + 8 * (i >> 2)
//    b_i (i < 4): row(k) 2t + (i & 1) + 8 * (i >> 1), col(n) g
//    c_i (i < 4): row g + 8 * (i >> 1), col 2t + (i & 1)
// Exact agreement with an H200 on these layouts is tested in test/interp/warp-gpu.test.ts.
import type { Stmt } from "../ir/ir.ts";
import { byteSize } from "../ir/ir.ts";
import { fromBits, toBits } from "../numeric/dtype.ts";
import { Fault } from "./fault.ts";
import type { RtBuf, SharedChecker } from "./memory.ts";

export interface LdmatrixArrival { sid: number; dst: RtBuf; dOff: number; src: RtBuf; addr: number }
export interface MmaArrival {
  sid: number;
  d: RtBuf; dOff: number; a: RtBuf; aOff: number; b: RtBuf; bOff: number; c: RtBuf; cOff: number;
}


/** Same 16 bits, read as another 16-bit type (b16 moves bits, not values). */
function reinterpret16(v: number, from: RtBuf, to: RtBuf): number {
  if (from.dtype === to.dtype) return v;
  return fromBits(to.dtype, toBits(from.dtype, v));
}

export function ldmatrix(s: Stmt & { k: "ldmatrix" }, lanes: LdmatrixArrival[], warpBase: number, chk: SharedChecker): void {
  const site = lanes[0]!.sid;
  const src = lanes[0]!.src;
  if (!(src.scope === "shared" && byteSize(src.dtype) === 2)) throw new Fault(`ldmatrix reads ${src.scope} ${src.dtype} ${src.name}; it needs a 16-bit shared buffer`, site);
  const rows: number[][][] = [];
  for (let j = 0; j < s.num; j++) {
    const mat: number[][] = [];
    for (let r = 0; r < 8; r++) {
      const L = 8 * j + r;
      const { addr, src: sb } = lanes[L]!;
      if (!(sb === src)) throw new Fault(`ldmatrix lanes address different buffers (${src.name}, ${sb.name})`, site);
      if (!(addr % 8 === 0)) throw new Fault(`ldmatrix: lane ${L} (thread ${warpBase + L}) row address ${src.name}[${addr}] is not 16-byte aligned`, site);
      if (!(addr >= 0 && addr + 8 <= src.size)) throw new Fault(`ldmatrix: lane ${L} row ${src.name}[${addr} .. ${addr + 7}] is out of bounds (${src.size})`, site);
      const row: number[] = [];
      for (let c = 0; c < 8; c++) {
        if (src.track) chk.read(src, addr + c, warpBase + L, site);
        row.push(src.data[addr + c]!);
      }
      mat.push(row);
    }
    rows.push(mat);
  }
  for (let l = 0; l < 32; l++) {
    const { dst, dOff } = lanes[l]!;
    if (!(byteSize(dst.dtype) === 2 && dst.scope !== "shared" && dst.scope !== "global")) throw new Fault(`ldmatrix destination ${dst.name} must be a local 16-bit buffer`, site);
    if (!(dOff >= 0 && dOff + 2 * s.num <= dst.size)) throw new Fault(`ldmatrix: lane ${l} writes ${dst.name}[${dOff} .. ${dOff + 2 * s.num - 1}], out of bounds (${dst.size})`, site);
    const g = l >> 2, t = l & 3;
    for (let j = 0; j < s.num; j++)
      for (let e = 0; e < 2; e++) {
        const v = s.trans ? rows[j]![2 * t + e]![g]! : rows[j]![g]![2 * t + e]!;
        dst.data[dOff + 2 * j + e] = reinterpret16(v, src, dst);
      }
  }
}

const F32 = new Float32Array(1), U32 = new Uint32Array(F32.buffer);

/** x rounded to f32 toward zero (truncated). */
export function f32TowardZero(x: number): number {
  const y = Math.fround(x);
  if (y === x || Number.isNaN(x) || Math.abs(y) < Math.abs(x)) return y;
  F32[0] = y;
  U32[0] = U32[0]! - 1; // one step toward zero (also Inf -> largest finite)
  return F32[0]!;
}

function checkOperand(s: Stmt & { k: "mma" }, l: number, site: number, b: RtBuf, off: number, n: number, dtype: string, role: string): void {
  if (!(b.dtype === dtype)) throw new Fault(`mma.${s.atype}: operand ${role} ${b.name} is ${b.dtype}, expected ${dtype}`, site);
  if (!(b.scope !== "shared" && b.scope !== "global")) throw new Fault(`mma operand ${role} ${b.name} must be a local buffer`, site);
  if (!(off >= 0 && off + n <= b.size)) throw new Fault(`mma: lane ${l} operand ${role} ${b.name}[${off} .. ${off + n - 1}] is out of bounds (${b.size})`, site);
}

// Where lane l's fragment element i sits: row-major A[16][16], B^T[8][16] (n-major, so the
// inner product runs over contiguous k), C/D[16][8]. Built once from the formulas above.
const A_AT = new Int32Array(32 * 8), BT_AT = new Int32Array(32 * 4), C_AT = new Int32Array(32 * 4);
for (let l = 0; l < 32; l++) {
  const g = l >> 2, t = l & 3;
  for (let i = 0; i < 8; i++) A_AT[l * 8 + i] = (g + 8 * ((i >> 1) & 1)) * 16 + 2 * t + (i & 1) + 8 * (i >> 2);
  for (let i = 0; i < 4; i++) BT_AT[l * 4 + i] = g * 16 + 2 * t + (i & 1) + 8 * (i >> 1);
  for (let i = 0; i < 4; i++) C_AT[l * 4 + i] = (g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1);
}
const A = new Float64Array(256), BT = new Float64Array(128), C = new Float64Array(128);

export function mma(s: Stmt & { k: "mma" }, lanes: MmaArrival[], towardZero = false): void {
  const site = lanes[0]!.sid;
  for (let l = 0; l < 32; l++) {
    const x = lanes[l]!;
    checkOperand(s, l, site, x.a, x.aOff, 8, s.atype, "a"); checkOperand(s, l, site, x.b, x.bOff, 4, s.atype, "b");
    checkOperand(s, l, site, x.c, x.cOff, 4, "f32", "c"); checkOperand(s, l, site, x.d, x.dOff, 4, "f32", "d");
    const a = x.a.data, b = x.b.data, c = x.c.data;
    for (let i = 0; i < 8; i++) A[A_AT[l * 8 + i]!] = a[x.aOff + i]!;
    for (let i = 0; i < 4; i++) BT[BT_AT[l * 4 + i]!] = b[x.bOff + i]!;
    for (let i = 0; i < 4; i++) C[C_AT[l * 4 + i]!] = c[x.cOff + i]!;
  }
  // Products are exact in float64 and summed there, then ONE rounding to f32: to nearest by
  // default (unbiased, the ideal the checks compare against), or toward zero, which
  // reproduced 127 of 128 random bf16 results of an H200 bit for bit (nearest: 116; all
  // within 2 ulp), see test/interp/warp-gpu.test.ts. D overwrites C in the scratch array:
  // every C element is read before its own D is written, and d may alias c.
  for (let m = 0; m < 16; m++)
    for (let n = 0; n < 8; n++) {
      let acc = C[m * 8 + n]!;
      for (let k = 0; k < 16; k++) acc += A[m * 16 + k]! * BT[n * 16 + k]!;
      C[m * 8 + n] = towardZero ? f32TowardZero(acc) : Math.fround(acc);
    }
  for (let l = 0; l < 32; l++) {
    const x = lanes[l]!;
    const d = x.d.data;
    for (let i = 0; i < 4; i++) d[x.dOff + i] = C[C_AT[l * 4 + i]!]!;
  }
}

export interface WarpReduceArrival { sid: number; x: number; width: number; f: (x: number, y: number) => number }

/** warp_reduce over one warp's 32 lanes, groups of `width`: the butterfly of ir.ts, step m
 *  combines (own, partner t ^ m) in that order, every lane from the previous step's values. */
export function warpReduce(lanes: WarpReduceArrival[]): void {
  const { width, f, sid } = lanes[0]!;
  if (lanes.some((l) => l.width !== width)) throw new Fault(`warp_reduce lanes disagree on the width`, sid);
  let x = lanes.map((l) => l.x);
  for (let m = 1; m < width; m <<= 1) {
    const y = x;
    x = y.map((v, l) => f(v, y[l ^ m]!));
  }
  lanes.forEach((l, i) => { l.x = x[i]!; });
}
