// Warpgroup MMA (sm_90a) in the interpreter, written from the PTX ISA's wgmma sections
// independently of layout/wgmma.ts and the lowering, so that each checks the other:
//  - shared operands: K-major canonical layouts addressed through the descriptor fields. For
//    element (r, k) of a tile (r < 64 for A, < n for B; k < 16), the byte offset from the start
//    address is, without swizzle, (r % 8) * 16 + (r / 8) * sbo + (k % 8) * 2 + (k / 8) * lbo
//    (8x8 core matrices of 16-byte rows); with a W-byte swizzle (W = 32, 64, 128), rows of W
//    bytes: (r % 8) * W + (r / 8) * sbo + 2k, and then address bits [4, 4 + log2(W / 16)) are
//    XORed with bits [7, ...) of the shared address. Buffers are taken to start at an address
//    aligned to 1024 bytes (the CUDA emitter places wgmma operand tiles so).
//  - D fragment of m64nNk16, f32: thread t of the warpgroup (warp w = t / 32, lane l) holds
//    d[i], i < n/2, at row 16w + l/4 + 8 * ((i >> 1) & 1), col 8 * (i >> 2) + 2 * (l % 4) + (i & 1).
//  - asynchrony: a wgmma only records its operands when issued; its commit group runs (reads
//    shared memory and d, writes d) when a wgmma.wait retires the group. So shared memory
//    overwritten, or the accumulator touched, before the wait shows up as wrong results, and a
//    pending cp.async or an unsynchronised writer of an operand as a fault from the checker.
//  - proxies: wgmma reads through the async proxy; each operand element's last generic-proxy
//    write (st.shared, cp.async landing) must be followed by a fence.proxy.async of the writing
//    thread (memory.ts readAsync), else a fault names the writer.
import type { Stmt } from "../ir/ir.ts";
import { f32TowardZero } from "./warp.ts";
import { Fault } from "./fault.ts";
import type { RtBuf, SharedChecker } from "./memory.ts";

export interface WgmmaArrival { sid: number; d: RtBuf; dOff: number; a: RtBuf; aOff: number; b: RtBuf; bOff: number }

interface Issued {
  s: Stmt & { k: "wgmma" }; sid: number; base: number;
  a: RtBuf; aOff: number; b: RtBuf; bOff: number;
  d: { buf: RtBuf; off: number }[]; // per thread of the warpgroup
}

/** Issued and committed wgmma of one warpgroup. */
export interface WarpgroupState { open: Issued[]; groups: Issued[][] }

export const newWarpgroupState = (): WarpgroupState => ({ open: [], groups: [] });

/** Element index, in buf, of (r, k) of the K-major operand starting at element `start`. */
function elementAt(o: { swizzle: number; lbo: number; sbo: number }, buf: RtBuf, start: number, r: number, k: number, site: number, what: string): number {
  let off: number;
  if (o.swizzle === 0) off = (r % 8) * 16 + Math.floor(r / 8) * o.sbo + (k % 8) * 2 + Math.floor(k / 8) * o.lbo;
  else off = (r % 8) * o.swizzle + Math.floor(r / 8) * o.sbo + 2 * k;
  let addr = start * 2 + off;
  if (o.swizzle !== 0) {
    const mask = o.swizzle / 16 - 1;
    addr ^= ((addr >> 7) & mask) << 4;
  }
  const e = addr / 2;
  if (!(e >= 0 && e < buf.size)) throw new Fault(`wgmma: ${what} element (${r}, ${k}) lies at ${buf.name}[${e}], outside the buffer (${buf.size})`, site);
  return e;
}

export function wgmmaIssue(s: Stmt & { k: "wgmma" }, lanes: WgmmaArrival[], base: number, st: WarpgroupState): void {
  const x = lanes[0]!, site = x.sid;
  for (let t = 0; t < 128; t++) {
    const y = lanes[t]!;
    if (y.a !== x.a || y.aOff !== x.aOff || y.b !== x.b || y.bOff !== x.bOff)
      throw new Fault(`wgmma: thread ${base + t} gives operand addresses ${y.a.name}[${y.aOff}], ${y.b.name}[${y.bOff}], thread ${base} ${x.a.name}[${x.aOff}], ${x.b.name}[${x.bOff}]; they must be uniform across the warpgroup`, site);
    if (!(y.d.scope === "local" || y.d.scope === "fragment") || y.d.dtype !== "f32") throw new Fault(`wgmma d ${y.d.name} must be a local f32 buffer`, site);
    if (!(y.dOff >= 0 && y.dOff + s.n / 2 <= y.d.size)) throw new Fault(`wgmma: thread ${base + t} d ${y.d.name}[${y.dOff} .. ${y.dOff + s.n / 2 - 1}] is out of bounds (${y.d.size})`, site);
  }
  for (const [buf, off, what] of [[x.a, x.aOff, "a"], [x.b, x.bOff, "b"]] as const) {
    if (buf.scope !== "shared") throw new Fault(`wgmma ${what} ${buf.name} is ${buf.scope}; wgmma reads operands from shared memory`, site);
    if (buf.dtype !== s.atype) throw new Fault(`wgmma.${s.atype}: operand ${what} ${buf.name} is ${buf.dtype}`, site);
    if ((off * 2) % 16 !== 0) throw new Fault(`wgmma ${what} starts at ${buf.name}[${off}], not 16-byte aligned`, site);
  }
  st.open.push({ s, sid: site, base, a: x.a, aOff: x.aOff, b: x.b, bOff: x.bOff, d: lanes.map((y) => ({ buf: y.d, off: y.dOff })) });
}

export function wgmmaCommit(st: WarpgroupState): void {
  st.groups.push(st.open);
  st.open = [];
}

export function wgmmaWait(st: WarpgroupState, n: number, chk: SharedChecker, towardZero: boolean): void {
  while (st.groups.length > n) for (const op of st.groups.shift()!) execute(op, chk, towardZero);
}

/** Does an issued, not yet retired wgmma of this warpgroup read elements [lo, hi) of buf?
 *  (An operand spans its 8-row groups: rows / 8 * sbo bytes from its start.) */
export function wgmmaReads(st: WarpgroupState, buf: RtBuf, lo: number, hi: number): boolean {
  for (const op of [...st.open, ...st.groups.flat()]) {
    for (const [b, off, rows, o] of [[op.a, op.aOff, 64, op.s.a], [op.b, op.bOff, op.s.n, op.s.b]] as const) {
      if (b !== buf) continue;
      const end = off + (Math.ceil(rows / 8) * Math.max(o.sbo, 128)) / 2;
      if (off < hi && lo < end) return true;
    }
  }
  return false;
}

/** Issued or committed wgmma left at the end of the kernel: their results would be lost. */
export function wgmmaLeft(st: WarpgroupState): number {
  return st.open.length + st.groups.reduce((a, g) => a + g.length, 0);
}

function execute(op: Issued, chk: SharedChecker, towardZero: boolean): void {
  const { s, sid } = op, n = s.n;
  const read = (buf: RtBuf, start: number, o: { swizzle: number; lbo: number; sbo: number }, rows: number, what: string) => {
    const m = new Float64Array(rows * 16);
    for (let r = 0; r < rows; r++)
      for (let k = 0; k < 16; k++) {
        const e = elementAt(o, buf, start, r, k, sid, what);
        if (buf.track) chk.readAsync(buf, e, op.base, sid);
        m[r * 16 + k] = buf.data[e]!;
      }
    return m;
  };
  const A = read(op.a, op.aOff, s.a, 64, "a"), B = read(op.b, op.bOff, s.b, n, "b");
  for (let t = 0; t < 128; t++) {
    const w = t >> 5, l = t & 31, { buf, off } = op.d[t]!;
    for (let i = 0; i < n / 2; i++) {
      const row = 16 * w + (l >> 2) + 8 * ((i >> 1) & 1), col = 8 * (i >> 2) + 2 * (l & 3) + (i & 1);
      let acc = s.scaleD ? buf.data[off + i]! : 0;
      for (let k = 0; k < 16; k++) acc += A[row * 16 + k]! * B[col * 16 + k]!;
      buf.data[off + i] = towardZero ? f32TowardZero(acc) : Math.fround(acc);
    }
  }
}
