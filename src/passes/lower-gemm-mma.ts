// Lowers one tile-level gemm (shared A, shared B, register accumulator) to the sm_80
// tensor-core path: ldmatrix from shared memory into 16-bit register fragments, then
// mma.sync.m16n8k16 into the f32 accumulator slots of the mma_acc layout.
//
// Shape of the emitted code, per warp (warp tile = (M / warpsM) x (N / warpsN)):
//   load fragments of k-step 0 into set 0
//   for kk in unroll(K / 16):
//     if kk + 1 < K / 16: load fragments of k-step kk + 1 into set (kk + 1) % 2
//       for i < mTiles:       ldmatrix.x4 A  (one x4 = the whole 16x16 A fragment of m-tile i)
//       for j < nTiles / 2:   ldmatrix.x4 B  (one x4 = the 16x8 B fragments of n-tiles 2j, 2j+1)
//       [ldmatrix.x2 B for a last, odd n-tile]
//     for i, j:             mma c[tile (i, j)] += a[i] * b[j]   (set kk % 2)
// Two fragment sets: the ldmatrix of the next k-step is issued before the mma's of this
// one. The emitted asm statements are volatile (ldmatrix reads memory the compiler cannot
// see), so nvcc keeps their order: without the second set every k-step's mma's waited for
// its own ldmatrix latency (measured on an H100: 128x256x64 tiles at 4096^3 went from
// 364 TFLOP/s to the figure in bench/RESULTS.md).
//
// Register footprint per thread (32-bit registers; 16-bit elements pack two per register):
//   accumulator  mTiles * nTiles * 4          (owned by the caller's c buffer)
//   A fragments  mTiles * 4 * 2               (8 halves per m-tile, two sets)
//   B fragments  nTiles * 2 * 2               (4 halves per n-tile, two sets)
//   addresses    ~6 (lane row/col per operand, warp offsets), k-step independent
// Typical config BM = BN = 128, BK = 32, 8 warps:
//   warps 2x4 -> warp tile 64x32, mTiles 4, nTiles 4: acc 64 + A 16 + B 8 = 88 (+ addresses)
//   warps 4x2 -> warp tile 32x64, mTiles 2, nTiles 8: acc 64 + A 8 + B 16 = 88 (+ addresses)
//   Either way 6 ldmatrix.x4 feed 16 mma per k-step (2 k-steps per BK = 32), and the
//   kernel stays near 128 registers/thread, leaving room for cp.async addresses and two
//   blocks per SM. Measured (test/mma/nvcc.test.ts, nvcc 13.0, sm_80, gemm in a loop):
//   106 registers for 2x4, 110 for 4x2, no spills, 12 ldmatrix.x4 + 32 mma per BK = 32.
//   One warp over 128x128 would need 512 accumulator registers (spills);
//   mmaProblem allows it because it is correct, the tuner prunes it by ptxas spills.
//
// Shared-memory bank conflicts: an ldmatrix phase reads the 8 rows (16 bytes each) of one
// 8x8 matrix; they are conflict-free iff those rows lie in 8 distinct 16-byte bank groups
// (address / 16 mod 8). Rows of a tile are `cols * 2` bytes apart, so for rows of 128 bytes
// or more every row starts in the same group unless the tile is XOR-swizzled
// (layout/swizzle.ts), which permutes the 16-byte chunks of consecutive rows. The lowering
// only ever addresses 8 consecutive rows starting at a multiple of 8 at a chunk-aligned
// column, which is exactly what the swizzle spreads. test/mma/banks.test.ts checks it.
//
// Precondition: `base` of each operand is a multiple of 8 elements (16 bytes), as ldmatrix
// row addresses must be 16-byte aligned. When base is a constant that is not, the fragments
// are read with plain loads instead (correct, slow).
import { type DType, type Expr, type Layout, type Stmt, type Ref, bin, int, v } from "../ir/ir.ts";
import { sharedIndex } from "../layout/swizzle.ts";

export interface MmaOperand { buf: string; base: Expr; rows: number; cols: number; layout?: Layout }
export interface MmaGemm {
  a: MmaOperand; b: MmaOperand; transA: boolean; transB: boolean;
  c: { buf: string; rows: number; cols: number; warpsM: number; warpsN: number };
  atype: "bf16" | "f16"; threads: number; tx: Expr; fresh: (hint: string) => string;
  /** Fills the B fragments itself instead of reading g.b from shared memory (the
   *  register-fused dequant-gemm, fuse-dequant-gemm.ts); g.b then only gives B's shape. */
  bLoader?: (p: Plan, bf: string, w: WarpPos, pre: Stmt[]) => Loader | VersionedLoader;
  /** The loader feeds B + bias instead of B (the unscaled u4 decode of fuse-dequant-gemm.ts:
   *  128 + q straight out of the lop3, for q - z with bias 128 + z), and per k-step one more
   *  fragment, at n-tile slot nTiles, of ones (0 where B is masked to 0). Then per k-step and
   *  m-tile one more mma sums A's rows against the ones (exact products, f32 sums, like the
   *  gemm's own), and after the k-steps c -= bias * rowsum: c gets A * B, once per warp rather
   *  than a subtraction per B pair. */
  rowBias?: number;
}

/** Two B loaders and a uniform condition choosing between them for the whole gemm: the
 *  k-step loop is emitted once with each (fuse-dequant-gemm.ts: K-masked or not). */
export interface VersionedLoader { cond: Expr; then: Loader; else: Loader }

/** Warp arrangements (warpsM x warpsN) that tile an m x n accumulator with m16n8 tiles. */
export function mmaWarpArrangements(m: number, n: number, threads: number): { warpsM: number; warpsN: number }[] {
  const warps = threads / 32;
  const out: { warpsM: number; warpsN: number }[] = [];
  if (!Number.isInteger(warps) || warps < 1) return out;
  for (let warpsM = 1; warpsM <= warps; warpsM++) {
    if (warps % warpsM !== 0) continue;
    const warpsN = warps / warpsM;
    if (m % (16 * warpsM) === 0 && n % (8 * warpsN) === 0) out.push({ warpsM, warpsN });
  }
  return out;
}

/** Why this gemm cannot use mma (undefined when it can). */
export function mmaProblem(g: { m: number; n: number; k: number; atype: DType; btype: DType; threads: number }): string | undefined {
  if (g.atype !== g.btype) return `mma needs both operands of one type, got ${g.atype} and ${g.btype} (dequantize to a common 16-bit type first)`;
  if (g.atype !== "bf16" && g.atype !== "f16") return `mma.m16n8k16 takes bf16 or f16 operands, got ${g.atype}`;
  if (g.threads % 32 !== 0 || g.threads < 32) return `mma is warp-collective: the block's ${g.threads} threads are not whole warps`;
  if (g.k % 16 !== 0) return `gemm k = ${g.k} is not a multiple of 16 (the mma k-step)`;
  if (g.m % 16 !== 0) return `gemm m = ${g.m} is not a multiple of 16 (the mma tile height)`;
  if (g.n % 8 !== 0) return `gemm n = ${g.n} is not a multiple of 8 (the mma tile width)`;
  if (mmaWarpArrangements(g.m, g.n, g.threads).length === 0)
    return `no arrangement of ${g.threads / 32} warps tiles a ${g.m}x${g.n} accumulator with 16x8 mma tiles`;
  return undefined;
}

// ---------------------------------------------------------------- folding expression builders
// The addresses are rebuilt per unrolled iteration; folding keeps the printed IR readable and
// leaves nvcc nothing to rediscover.

const isInt = (e: Expr, n?: number): e is { k: "int"; v: number } =>
  e.k === "int" && e.dtype === undefined && (n === undefined || e.v === n);

function add(a: Expr, b: Expr): Expr {
  if (isInt(a) && isInt(b)) return int(a.v + b.v);
  if (isInt(a, 0)) return b;
  if (isInt(b, 0)) return a;
  return bin("+", a, b);
}
function mul(a: Expr, b: Expr): Expr {
  if (isInt(a) && isInt(b)) return int(a.v * b.v);
  if (isInt(b) && a.k === "bin" && a.op === "*" && isInt(a.b)) return mul(a.a, int(a.b.v * b.v));
  if (isInt(a, 0) || isInt(b, 0)) return int(0);
  if (isInt(a, 1)) return b;
  if (isInt(b, 1)) return a;
  return bin("*", a, b);
}
function div(a: Expr, n: number): Expr {
  if (n === 1) return a;
  if (isInt(a)) return int(Math.trunc(a.v / n));
  return bin("/", a, int(n));
}
function mod(a: Expr, n: number): Expr {
  if (n === 1) return int(0);
  if (isInt(a)) return int(a.v % n);
  return bin("%", a, int(n));
}

/** Residue of e modulo m when it is fixed whatever the variables are. */
function knownResidue(e: Expr, m: number): number | undefined {
  switch (e.k) {
    case "int": return ((e.v % m) + m) % m;
    case "bin": {
      const a = knownResidue(e.a, m), b = knownResidue(e.b, m);
      if (e.op === "+" && a !== undefined && b !== undefined) return (a + b) % m;
      if (e.op === "-" && a !== undefined && b !== undefined) return (((a - b) % m) + m) % m;
      if (e.op === "*") {
        if (a === 0 || b === 0) return 0;
        if (a !== undefined && b !== undefined) return (a * b) % m;
      }
      return undefined;
    }
    default: return undefined;
  }
}

// ---------------------------------------------------------------- the lowering

export interface Plan {
  m: number; n: number; k: number;
  warpRows: number; warpCols: number; mTiles: number; nTiles: number; kSteps: number;
}

function plan(g: MmaGemm): Plan {
  const m = g.transA ? g.a.cols : g.a.rows;
  const k = g.transA ? g.a.rows : g.a.cols;
  const kb = g.transB ? g.b.cols : g.b.rows;
  const n = g.transB ? g.b.rows : g.b.cols;
  if (k !== kb) throw new Error(`lowerGemmMma: A has k = ${k}, B has k = ${kb}`);
  if (g.c.rows !== m || g.c.cols !== n) throw new Error(`lowerGemmMma: c is ${g.c.rows}x${g.c.cols}, a*b is ${m}x${n}`);
  if (g.c.warpsM * g.c.warpsN * 32 !== g.threads)
    throw new Error(`lowerGemmMma: ${g.c.warpsM}x${g.c.warpsN} warps for ${g.threads} threads`);
  const problem = mmaProblem({ m, n, k, atype: g.atype, btype: g.atype, threads: g.threads });
  if (problem) throw new Error(`lowerGemmMma: ${problem}`);
  for (const op of g.bLoader ? [g.a] : [g.a, g.b])
    if (op.layout?.kind === "xor_swizzle" && (op.cols % 8 !== 0 || (op.cols / 8) % (op.layout.mask + 1) !== 0))
      throw new Error(`lowerGemmMma: xor_swizzle(${op.layout.mask}, ${op.layout.shift}) does not permute the chunks of ${op.cols}-element rows of ${op.buf}`);
  const warpRows = m / g.c.warpsM, warpCols = n / g.c.warpsN;
  if (warpRows % 16 !== 0 || warpCols % 8 !== 0)
    throw new Error(`lowerGemmMma: warp tile ${warpRows}x${warpCols} is not made of 16x8 mma tiles`);
  return { m, n, k, warpRows, warpCols, mTiles: warpRows / 16, nTiles: warpCols / 8, kSteps: k / 16 };
}

/** An unrolled loop, or its body alone when it runs once. */
function unroll(g: MmaGemm, hint: string, trips: number, body: (iv: Expr) => Stmt[]): Stmt[] {
  if (trips <= 0) return [];
  if (trips === 1) return body(int(0));
  const name = g.fresh(hint);
  return [{ k: "for", vars: [name], starts: [int(0)], extents: [int(trips)], kind: "unroll", body: body(v(name)) }];
}

function letI32(g: MmaGemm, hint: string, value: Expr, out: Stmt[]): Expr {
  if (value.k === "int" || value.k === "var") return value;
  const name = g.fresh(hint);
  out.push({ k: "let", name, dtype: "i32", value, mutable: false });
  return v(name);
}

/** Shared element address of stored (row, col) of an operand. */
function at(op: MmaOperand, row: Expr, col: Expr): Ref {
  return { buf: op.buf, idx: [add(op.base, sharedIndex(op.layout, op.cols, row, col))] };
}

export function lowerGemmMma(g: MmaGemm): { allocs: Stmt[]; body: Stmt[] } {
  const p = plan(g);
  const af = g.fresh("af"), bf = g.fresh("bf");
  const sets = p.kSteps > 1 ? 2 : 1;
  if (g.rowBias !== undefined && !g.bLoader) throw new Error("lowerGemmMma: rowBias needs the B loader that feeds the bias and the ones");
  // B fragments per set: the n-tiles', and the ones of the row sums with rowBias.
  const bTiles = p.nTiles + (g.rowBias !== undefined ? 1 : 0);
  const allocs: Stmt[] = [
    { k: "alloc", buf: { name: af, scope: "local", dtype: g.atype, shape: [int(p.mTiles * 8 * sets)] } },
    { k: "alloc", buf: { name: bf, scope: "local", dtype: g.atype, shape: [int(bTiles * 4 * sets)] } },
  ];
  const body: Stmt[] = [];
  // Row sums of A (m16n8 accumulators: element e of m-tile i is row group + 8 (e >> 1), its
  // two columns equal), per m-tile; cleared per gemm.
  const rs = g.rowBias !== undefined ? g.fresh("rsum") : undefined;
  if (rs) {
    allocs.push({ k: "alloc", buf: { name: rs, scope: "local", dtype: "f32", shape: [int(p.mTiles * 4)] } });
    body.push(...unroll(g, "e", p.mTiles * 4, (e) => [{ k: "store", buf: rs, idx: [e], value: { k: "float", v: 0 } }]));
  }
  const lane = letI32(g, "lane", mod(g.tx, 32), body);
  const warp = letI32(g, "warp", div(g.tx, 32), body);
  // This warp's tile inside the block tile, as (m-tile, n-tile) indices.
  const w: WarpPos = { lane, xors: new Map(), tm: mul(div(warp, g.c.warpsN), int(p.mTiles)), tn: mul(mod(warp, g.c.warpsN), int(p.nTiles)) };

  const aligned = (op: MmaOperand) => (knownResidue(op.base, 8) ?? 0) === 0 && op.cols % 8 === 0;
  const loadA = aligned(g.a) ? ldmatrixA(g, p, af, w, body) : scalarA(g, p, af, w);
  const loadB = g.bLoader ? g.bLoader(p, bf, w, body) : aligned(g.b) ? ldmatrixB(g, p, bf, w, body) : scalarB(g, p, bf, w);

  // Element offset of k-step kk's fragment set in af / bf.
  const aSet = (kk: Expr) => (sets === 2 ? mul(mod(kk, 2), int(p.mTiles * 8)) : int(0));
  const bSet = (kk: Expr) => (sets === 2 ? mul(mod(kk, 2), int(bTiles * 4)) : int(0));
  const steps = (lb: Loader): Stmt[] => {
    const load = (kk: Expr) => [...loadA(kk, aSet(kk)), ...lb(kk, bSet(kk))];
    return [...load(int(0)), ...unroll(g, "kk", p.kSteps, (kk) => {
      const next = add(kk, int(1));
      const prefetch: Stmt[] = sets === 2 ? [{ k: "if", cond: bin("<", next, int(p.kSteps)), then: load(next), else: [] }] : [];
      return [
        ...prefetch,
        ...unroll(g, "i", p.mTiles, (i) => unroll(g, "j", p.nTiles, (j) => {
          const acc: Ref = { buf: g.c.buf, idx: [mul(add(mul(i, int(p.nTiles)), j), int(4))] };
          return [{ k: "mma", atype: g.atype, d: acc, a: { buf: af, idx: [add(aSet(kk), mul(i, int(8)))] },
            b: { buf: bf, idx: [add(bSet(kk), mul(j, int(4)))] }, c: acc }];
        })),
        ...(rs ? unroll(g, "i", p.mTiles, (i): Stmt[] => {
          const sum: Ref = { buf: rs, idx: [mul(i, int(4))] };
          return [{ k: "mma", atype: g.atype, d: sum, a: { buf: af, idx: [add(aSet(kk), mul(i, int(8)))] },
            b: { buf: bf, idx: [add(bSet(kk), int(p.nTiles * 4))] }, c: sum }];
        }) : []),
      ];
    })];
  };
  if (typeof loadB === "function") body.push(...steps(loadB));
  else body.push({ k: "if", cond: loadB.cond, then: steps(loadB.then), else: steps(loadB.else) });
  if (rs) {
    // c -= bias * rowsum, element by element: c's element e of tile (i, j) is on rs's row e.
    body.push(...unroll(g, "i", p.mTiles, (i) => unroll(g, "j", p.nTiles, (j) => unroll(g, "e", 4, (e): Stmt[] => {
      const ci = add(mul(add(mul(i, int(p.nTiles)), j), int(4)), e);
      const load = (b: string, idx: Expr): Expr => ({ k: "load", buf: b, idx: [idx] });
      return [{ k: "store", buf: g.c.buf, idx: [ci], value: bin("-", load(g.c.buf, ci), bin("*", { k: "float", v: g.rowBias! }, load(rs, add(mul(i, int(4)), e)))) }];
    }))));
  }
  return { allocs, body };
}

// Fragment loaders: each takes the k-step index and the element offset of the fragment set
// to fill, and returns that k-step's statements.
export type Loader = (kk: Expr, set: Expr) => Stmt[];
export interface WarpPos { lane: Expr; tm: Expr; tn: Expr; xors: Map<string, Expr> }

/**
 * ldmatrix row addresses, split into a per-lane part computed once and a per-instruction
 * offset that the unrolled loops make constant. The lane gives stored row `row + rowOff` at
 * 16-byte chunk `chunk + chunkOff`; every rowOff is a multiple of 8, and the lane's row is
 * (lane % 8) plus a multiple of 8, so under a swizzle whose XOR reads only the low 3 row
 * bits the XOR term is a per-lane constant too: the address costs an add and an xor.
 */
function laneAddr(g: MmaGemm, op: MmaOperand, hint: string, row: Expr, chunk: Expr, w: WarpPos, pre: Stmt[]) {
  const l = op.layout?.kind === "xor_swizzle" ? op.layout : undefined;
  if (l && (l.mask + 1) << l.shift > 8) {
    // The XOR depends on row bits the offsets change: fold nothing, use the layout as is.
    return (rowOff: Expr, chunkOff: Expr): Ref =>
      at(op, add(row, rowOff), mul(add(chunk, chunkOff), int(8)));
  }
  if (!l) {
    const start = letI32(g, hint, add(mul(row, int(op.cols)), mul(chunk, int(8))), pre);
    return (rowOff: Expr, chunkOff: Expr): Ref =>
      ({ buf: op.buf, idx: [add(op.base, add(start, add(mul(rowOff, int(op.cols)), mul(chunkOff, int(8)))))] });
  }
  const rowStart = letI32(g, `${hint}row`, mul(row, int(op.cols)), pre);
  const ch = letI32(g, `${hint}chunk`, chunk, pre);
  // A and B usually share a swizzle: one per-lane XOR term serves both.
  const key = `${l.mask},${l.shift}`;
  let xor = w.xors.get(key);
  if (!xor) {
    xor = letI32(g, `${hint}xor`, bin("&", bin(">>", mod(w.lane, 8), int(l.shift)), int(l.mask)), pre);
    w.xors.set(key, xor);
  }
  return (rowOff: Expr, chunkOff: Expr): Ref => ({
    buf: op.buf,
    idx: [add(op.base, add(add(rowStart, mul(rowOff, int(op.cols))), mul(bin("^", add(ch, chunkOff), xor), int(8))))],
  });
}

/** A as four 8x8 matrices per m-tile, ordered like the mma A registers:
 *  (m 0-7, k 0-7), (m 8-15, k 0-7), (m 0-7, k 8-15), (m 8-15, k 8-15).
 *  Stored [M, K]: plain ldmatrix gives row-major fragments. Stored [K, M]: the same matrices
 *  read as their transposes, with .trans. */
function ldmatrixA(g: MmaGemm, p: Plan, af: string, w: WarpPos, pre: Stmt[]): Loader {
  // Lane l addresses row l % 8 of matrix q = l / 8; matrix q is m-half q & 1, k-half q >> 1.
  const r = mod(w.lane, 8), q = div(w.lane, 8);
  const mHalf = bin("&", q, int(1)), kHalf = bin(">>", q, int(1));
  const m16 = mul(w.tm, int(2)); // the warp's first m-tile, in 8-element units
  const addr = g.transA
    ? laneAddr(g, g.a, "a", add(r, mul(kHalf, int(8))), add(m16, mHalf), w, pre)
    : laneAddr(g, g.a, "a", add(add(mul(m16, int(8)), r), mul(mHalf, int(8))), kHalf, w, pre);
  return (kk, set) => unroll(g, "i", p.mTiles, (i) => [{
    k: "ldmatrix", dst: { buf: af, idx: [add(set, mul(i, int(8)))] }, num: 4, trans: g.transA,
    addr: g.transA ? addr(mul(kk, int(16)), mul(i, int(2))) : addr(mul(i, int(16)), mul(kk, int(2))),
  }]);
}

/** B per n-tile is two 8x8 matrices (k 0-7, k 8-15) of 8 n-columns, lane (g, t) holding
 *  k = 2t + {0,1} of column g: that is the row-major read of a stored [N, K] tile, or the
 *  .trans read of a stored [K, N] one. x4 covers n-tiles 2j and 2j+1 (matrix q: k-half
 *  q & 1, n-tile q >> 1); an odd last tile takes an x2. */
function ldmatrixB(g: MmaGemm, p: Plan, bf: string, w: WarpPos, pre: Stmt[]): Loader {
  const r = mod(w.lane, 8), q = div(w.lane, 8);
  const lanes = (hint: string, kHalf: Expr, nHalf: Expr) => {
    const addr = g.transB
      ? laneAddr(g, g.b, hint, add(add(mul(w.tn, int(8)), r), mul(nHalf, int(8))), kHalf, w, pre)
      : laneAddr(g, g.b, hint, add(r, mul(kHalf, int(8))), add(w.tn, nHalf), w, pre);
    // n-tile offset nt (in tiles) and k-step kk as (rowOff, chunkOff) of the stored tile.
    return (nt: Expr, kk: Expr) => (g.transB ? addr(mul(nt, int(8)), mul(kk, int(2))) : addr(mul(kk, int(16)), nt));
  };
  const pairs = Math.floor(p.nTiles / 2);
  const x4 = pairs > 0 ? lanes("b", bin("&", q, int(1)), bin(">>", q, int(1))) : undefined;
  // The x2 ignores lanes 16-31, but they still form addresses (and the interpreter checks
  // them): repeat lanes 0-15 there rather than point past the tile.
  const x2 = p.nTiles % 2 === 1 ? lanes("b2", bin("&", q, int(1)), int(0)) : undefined;
  return (kk, set) => {
    const out = unroll(g, "j", pairs, (j): Stmt[] => [{
      k: "ldmatrix", dst: { buf: bf, idx: [add(set, mul(j, int(8)))] }, num: 4, trans: !g.transB, addr: x4!(mul(j, int(2)), kk),
    }]);
    if (x2) out.push({ k: "ldmatrix", dst: { buf: bf, idx: [add(set, int((p.nTiles - 1) * 4))] }, num: 2, trans: !g.transB, addr: x2(int(p.nTiles - 1), kk) });
    return out;
  };
}

// Plain-load fallback, straight from the mma fragment layouts (lane = 4 * group + t):
//   A element e: m = group + 8 * ((e >> 1) & 1), k = 2t + (e & 1) + 8 * (e >> 2)
//   B element e: k = 2t + (e & 1) + 8 * (e >> 1), n = group
function scalarA(g: MmaGemm, p: Plan, af: string, w: WarpPos): Loader {
  const grp = div(w.lane, 4), t2 = mul(mod(w.lane, 4), int(2));
  return (kk, set) => unroll(g, "i", p.mTiles, (i) => Array.from({ length: 8 }, (_, e): Stmt => {
    const m = add(mul(add(w.tm, i), int(16)), add(grp, int(8 * ((e >> 1) & 1))));
    const k = add(mul(kk, int(16)), add(t2, int((e & 1) + 8 * (e >> 2))));
    const ref = g.transA ? at(g.a, k, m) : at(g.a, m, k);
    return { k: "store", buf: af, idx: [add(set, add(mul(i, int(8)), int(e)))], value: { k: "load", buf: ref.buf, idx: ref.idx } };
  }));
}

function scalarB(g: MmaGemm, p: Plan, bf: string, w: WarpPos): Loader {
  const grp = div(w.lane, 4), t2 = mul(mod(w.lane, 4), int(2));
  return (kk, set) => unroll(g, "j", p.nTiles, (j) => Array.from({ length: 4 }, (_, e): Stmt => {
    const n = add(mul(add(w.tn, j), int(8)), grp);
    const k = add(mul(kk, int(16)), add(t2, int((e & 1) + 8 * (e >> 1))));
    const ref = g.transB ? at(g.b, n, k) : at(g.b, k, n);
    return { k: "store", buf: bf, idx: [add(set, add(mul(j, int(4)), int(e)))], value: { k: "load", buf: ref.buf, idx: ref.idx } };
  }));
}
