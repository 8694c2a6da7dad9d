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
//  - A from registers: thread t (warp w = t / 32, lane l) supplies element e < 8 of its 8
//    16-bit registers as A's (row 16w + l/4 + 8 * ((e >> 1) & 1), col 2 * (l % 4) + (e & 1)
//    + 8 * (e >> 2)). The registers are read when the group retires; PTX forbids writing them
//    before that (reported at the write) and wants a wgmma.fence between their last write and
//    the wgmma (reported at the issue).
//  - proxies: wgmma reads through the async proxy; each operand element's last generic-proxy
//    write (st.shared, cp.async landing) must be followed by a fence.proxy.async of the writing
//    thread (memory.ts readAsync), else a fault names the writer.
import { type Stmt, type WgmmaOperand, isWgmmaRegs } from "../ir/ir.ts";
import { f32TowardZero } from "./warp.ts";
import { Fault } from "./fault.ts";
import type { RtBuf, SharedChecker } from "./memory.ts";

export interface WgmmaArrival { sid: number; d: RtBuf; dOff: number; a: RtBuf; aOff: number; b: RtBuf; bOff: number }

interface Issued {
  s: Stmt & { k: "wgmma" }; sid: number; base: number;
  a: RtBuf; aOff: number; b: RtBuf; bOff: number;
  /** A from registers: each thread's buffer and offset. */
  aRegs?: { buf: RtBuf; off: number }[];
  d: { buf: RtBuf; off: number }[]; // per thread of the warpgroup
}

/** Issued and committed wgmma of one warpgroup. */
export interface WarpgroupState { open: Issued[]; groups: Issued[][]; fenced: number }

export const newWarpgroupState = (): WarpgroupState => ({ open: [], groups: [], fenced: -1 });

/** wgmma.fence: register writes before it are ordered before later wgmma. */
export function wgmmaFence(st: WarpgroupState, chk: SharedChecker): void {
  st.fenced = ++chk.clock;
}

/** A thread writes element i of a local buffer that wgmma reads as register A operand. */
export function regWrite(b: RtBuf, i: number, chk: SharedChecker, site: number): void {
  const r = (b.reg ??= { w: new Float64Array(b.size).fill(-1), busy: new Int32Array(b.size) });
  if (r.busy[i]! > 0)
    throw new Fault(`${b.name}[${i}] is written while a wgmma that reads it as register operand A is in flight: wait for its group (wgmma.wait) before reusing the registers`, site);
  r.w[i] = ++chk.clock;
}

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
  const x = lanes[0]!, site = x.sid, regs = isWgmmaRegs(s.a);
  for (let t = 0; t < 128; t++) {
    const y = lanes[t]!;
    if ((!regs && (y.a !== x.a || y.aOff !== x.aOff)) || y.b !== x.b || y.bOff !== x.bOff)
      throw new Fault(`wgmma: thread ${base + t} gives operand addresses ${y.a.name}[${y.aOff}], ${y.b.name}[${y.bOff}], thread ${base} ${x.a.name}[${x.aOff}], ${x.b.name}[${x.bOff}]; they must be uniform across the warpgroup`, site);
    if (!(y.d.scope === "local" || y.d.scope === "fragment") || y.d.dtype !== "f32") throw new Fault(`wgmma d ${y.d.name} must be a local f32 buffer`, site);
    if (!(y.dOff >= 0 && y.dOff + s.n / 2 <= y.d.size)) throw new Fault(`wgmma: thread ${base + t} d ${y.d.name}[${y.dOff} .. ${y.dOff + s.n / 2 - 1}] is out of bounds (${y.d.size})`, site);
    if (regs) {
      const a = y.a;
      if (a.scope !== "local" || a.dtype !== s.atype) throw new Fault(`wgmma a from registers: ${a.name} must be a local ${s.atype} buffer, it is ${a.scope} ${a.dtype}`, site);
      if (!(y.aOff >= 0 && y.aOff + 8 <= a.size)) throw new Fault(`wgmma: thread ${base + t} a registers ${a.name}[${y.aOff} .. ${y.aOff + 7}] are out of bounds (${a.size})`, site);
      for (let e = y.aOff; e < y.aOff + 8; e++) {
        const w = a.reg?.w[e] ?? -1;
        if (w > st.fenced)
          throw new Fault(`wgmma reads register operand ${a.name}[${e}] of thread ${base + t}, written after the warpgroup's last wgmma.fence: missing wgmma.fence between writing the A registers and the wgmma`, site);
      }
    }
  }
  const shared = regs ? [[x.b, x.bOff, "b"]] as const : [[x.a, x.aOff, "a"], [x.b, x.bOff, "b"]] as const;
  for (const [buf, off, what] of shared) {
    if (buf.scope !== "shared") throw new Fault(`wgmma ${what} ${buf.name} is ${buf.scope}; wgmma reads operands from shared memory`, site);
    if (buf.dtype !== s.atype) throw new Fault(`wgmma.${s.atype}: operand ${what} ${buf.name} is ${buf.dtype}`, site);
    if ((off * 2) % 16 !== 0) throw new Fault(`wgmma ${what} starts at ${buf.name}[${off}], not 16-byte aligned`, site);
  }
  let aRegs: Issued["aRegs"];
  if (regs) {
    aRegs = lanes.map((y) => ({ buf: y.a, off: y.aOff }));
    for (const { buf, off } of aRegs) {
      const r = (buf.reg ??= { w: new Float64Array(buf.size).fill(-1), busy: new Int32Array(buf.size) });
      for (let e = off; e < off + 8; e++) r.busy[e]!++;
    }
  }
  st.open.push({ s, sid: site, base, a: x.a, aOff: x.aOff, b: x.b, bOff: x.bOff, aRegs, d: lanes.map((y) => ({ buf: y.d, off: y.dOff })) });
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
      if (b !== buf || isWgmmaRegs(o)) continue;
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
  const A = op.aRegs ? fromRegisters(op.aRegs) : read(op.a, op.aOff, s.a as WgmmaOperand, 64, "a");
  const B = read(op.b, op.bOff, s.b, n, "b");
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

/** The 64 x 16 A tile from the 128 threads' registers (see the top of the file); releases them. */
function fromRegisters(regs: { buf: RtBuf; off: number }[]): Float64Array {
  const m = new Float64Array(64 * 16);
  for (let t = 0; t < 128; t++) {
    const w = t >> 5, l = t & 31, { buf, off } = regs[t]!;
    for (let e = 0; e < 8; e++) {
      const row = 16 * w + (l >> 2) + 8 * ((e >> 1) & 1), col = 2 * (l & 3) + (e & 1) + 8 * (e >> 2);
      m[row * 16 + col] = buf.data[off + e]!;
      buf.reg!.busy[off + e]!--;
    }
  }
  return m;
}
