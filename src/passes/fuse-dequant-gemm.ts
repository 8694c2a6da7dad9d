// The register-fused dequant-gemm: `T.dequant(Ws, Bs, ...)` followed by
// `T.gemm(As, Bs, acc, { transB: true })`, where Bs is used by nothing else, lowers to
// mma.sync whose B fragments are dequantized in registers straight from the packed words:
// no bf16 tile Bs in shared memory, none of its stores, and no barrier between them and the
// gemm's ldmatrix.
//
// mma.m16n8k16 B fragment (PTX ISA, "Matrix Fragments for mma.m16n8k16", .bf16/.f16 B):
// lane (group = lane / 4, t = lane % 4) holds 4 values of column n = group, at
// k = 2t + (e & 1) + 8 * (e >> 1), e = 0..3 — two pairs of neighbours (2t, 2t+1) and
// (2t+8, 2t+9). A packed word holds `per` consecutive k values, and the interleaved order
// puts each neighbour pair (2p, 2p+1) in slots a lop3 extracts together (docs/QUANT.md).
// So each B register is one `dequant ... pair p` of one word:
//   u4/s4 (per 8):       pair h (h = 0, 1) is word 2 kk + h, pair p = t
//   u8/s8/e4m3 (per 4):  word 4 kk + 2h + (t >> 1), pair p = t & 1
// The four lanes of a group read the same word (a shared-memory broadcast, no conflict).
//
// Why from the pipelined shared tile and not global -> registers: the packed tile already
// arrives by multi-stage cp.async (the latency is hidden by the pipeline and the copy is
// 16-byte coalesced); reading words from global per thread would need per-thread prefetch
// registers across k tiles, and every word is read by 4 lanes (2 for 8-bit), which costs
// nothing in shared memory but 4x the L1 traffic from global.
//
// The front end's expansion (src/frontend/dequant.ts) is reused: the parallel loop's body
// is instantiated once per (n-tile, pair) with its loop variables bound to the lane's word,
// its dequant narrowed to the pair, and its store loop (which masks k >= K to 0) retargeted
// to the two fragment elements. Where dequant-uniform.ts shows them the same for every word
// of the tile, the scale / zero-point reads run once per k tile (the body at w = 0, before
// the pipeline's wait) and the K mask once per tile (a copy of the k-step loop without it):
// the same expressions, so the numerics stay those of the unfused path (two roundings).
//
// A dequant without scales (the kernel applies the group scale to f32 partial sums itself,
// docs/QUANT.md) of u4 into bf16 with a literal zero point z is fed biased: the lop3's
// 128 + q as it is, exact, and the gemm takes (128 + z) * rowsum(A) off once per row after
// its k-steps, the row sums from one more mma per k-step against ones (dequantBOperand,
// dequant-instance.ts biasFold, lower-gemm-mma.ts rowBias). That is no packed bf16 math per
// pair; the f32 cancellation it adds is bounded in the docs and tested.
//
// On sm_90a the same choice is made (inferLayouts gives the accumulator mma_acc): the
// decode shapes this path is for are bound by the weight bytes, not by tensor-core issue,
// and wgmma would need the bf16 tile in shared memory again. mma = "wgmma" keeps the
// unfused wgmma path.
import { type Buffer, type Expr, type Kernel, type Stmt, bin, flt, int, v } from "../ir/ir.ts";
import { TRUE, bufferMentions, evalConst, fold, substitute, walkExpr, walkStmts, stmtExprs } from "../ir/expr.ts";
import { printExpr } from "../ir/print.ts";
import { valuesPerWord } from "../quant/format.ts";
import { dequantColumn } from "../quant/column.ts";
import { type Ctx, addr, guard } from "./lower-ctx.ts";
import type { Loader, Plan, VersionedLoader, WarpPos } from "./lower-gemm-mma.ts";
import { type TilePlan, biasFold, dequantPair, letValues, localArray, onesPair, placeEarly, planTile, tileScales, unscaled } from "./dequant-instance.ts";
import { chooseWarps, wholeBuffer } from "./infer-layouts.ts";
import { mmaMode } from "./lower-gemm-wgmma.ts";
import type { Target } from "./types.ts";

type For = Extract<Stmt, { k: "for" }>;
type Gemm = Extract<Stmt, { k: "gemm" }>;
type Dequant = Extract<Stmt, { k: "dequant" }>;

/** One fusable pair, as the front end expanded T.dequant. */
export interface DequantGemm {
  loop: For;        // parallel over (row r, word w) of the packed tile
  dequant: Dequant; // its one dequant statement (into `tmp`)
  tmp: string;      // the local buffer of one word's values
  stores: For;      // serial over the word's values j: tile[r][w * per + j] = (masked) tmp[j]
  tile: string;     // the dequantized shared tile, read only by the gemm
  per: number;
  /** Which k element j of word w holds (frontend/dequant.ts dequantColumn): "consecutive"
   *  (w * per + j: the linear and interleaved orders) or "mma" (the 4-bit lane-owned words). */
  columns: "consecutive" | "mma";
}

/**
 * The pairs lowered register-fused, by gemm. The choice, per gemm:
 *  - mma.sync needed (never on WGSL); mma = "wgmma" keeps the shared tile (all wgmma reads).
 *  - one warp along M (warpsM = 1): every warp dequantizes the B fragments of its own
 *    columns, so with warpsM > 1 each weight would be decoded warpsM times per block (the
 *    shared tile decodes it once) and the extra registers spill (moe_gemm_up_w4a16 at
 *    BM = 64, 8 warps: 255 registers and 16 spills fused, 230 and none unfused, sm_80).
 *  - on sm_90a in auto mode, only tiles of fewer than 64 rows: those are the decode shapes,
 *    bound by weight bytes, which wgmma's m64 instructions would mostly waste; from 64 rows
 *    on, the register-A wgmma of dequant-wgmma.ts takes the pair where it fits (it is asked
 *    first), else wgmma reads the shared tile.
 */
export function fusedDequantGemms(k: Kernel, target: Target): Map<Gemm, DequantGemm> {
  const out = new Map<Gemm, DequantGemm>();
  const mode = mmaMode(target, k.config);
  const threads = evalConst(k.launch.threads);
  if (!target.mma || mode === "wgmma" || threads === undefined) return out;
  const bufs = new Map<string, Buffer>();
  walkStmts(k.launch.body, (s) => { if (s.k === "alloc") bufs.set(s.buf.name, s.buf); });
  for (const [g, f] of findDequantGemms(k.launch.body)) {
    const acc = bufs.get(g.c.buf);
    const [m, n] = (acc?.shape ?? []).map((d) => evalConst(d));
    if (!acc || acc.scope !== "fragment" || m === undefined || n === undefined) continue;
    if (target.wgmma && mode === "auto" && m >= 64) continue;
    if (chooseWarps(m, n, threads)?.warpsM !== 1) continue;
    out.set(g, f);
  }
  return out;
}

const same = (a: Expr, b: Expr) => printExpr(fold(a)) === printExpr(fold(b));

/** The front end's T.dequant loop writing `tile`, or why it is not one. */
function matchLoop(s: Stmt, bufs: Map<string, Buffer>): Omit<DequantGemm, "loop"> & { loop: For } | undefined {
  if (s.k !== "for" || s.kind !== "parallel" || s.vars.length !== 2) return undefined;
  const dqs = s.body.filter((x): x is Dequant => x.k === "dequant");
  const last = s.body.at(-1);
  if (dqs.length !== 1 || dqs[0]!.pair || !last || last.k !== "for" || last.kind !== "serial" || last.vars.length !== 1) return undefined;
  const dq = dqs[0]!, per = valuesPerWord(dq.format);
  if (evalConst(last.extents[0]!) !== per || last.body.length !== 1 || last.body[0]!.k !== "store") return undefined;
  const st = last.body[0]!;
  const [r, w] = s.vars as [string, string], j = last.vars[0]!;
  const tile = bufs.get(st.buf), tmp = dq.dst.buf;
  if (!tile || tile.scope !== "shared" || bufs.get(tmp)?.scope !== "local" || evalConst(dq.dst.idx[0]!) !== 0) return undefined;
  if (!same(st.idx[0]!, v(r))) return undefined;
  const columns = same(st.idx[1]!, dequantColumn("linear", per, v(w), v(j))) ? "consecutive"
    : per === 8 && same(st.idx[1]!, dequantColumn("mma", per, v(w), v(j))) ? "mma" : undefined;
  if (!columns) return undefined;
  // The value reads tmp only at j; nothing else in the body writes memory.
  let ok = true;
  walkExpr(st.value, (x) => { if (x.k === "load" && x.buf === tmp && !same(x.idx[0]!, v(j))) ok = false; });
  walkStmts(s.body.slice(0, -1), (x) => { if (x.k === "store" || x.k === "atomic") ok = false; });
  return ok ? { loop: s, dequant: dq, tmp, stores: last, tile: tile.name, per, columns } : undefined;
}

function readsOf(stmts: Stmt[]): Set<string> {
  const out = new Set<string>();
  walkStmts(stmts, (s) => { for (const e of stmtExprs(s)) walkExpr(e, (x) => { if (x.k === "load") out.add(x.buf); }); });
  return out;
}

export function writesOf(stmts: Stmt[]): Set<string> {
  const out = new Set<string>();
  walkStmts(stmts, (s) => {
    switch (s.k) {
      case "store": case "atomic": out.add(s.buf); break;
      case "copy": case "fill": case "reduce": case "scan": out.add(s.dst.buf); break;
      case "topk": out.add(s.values.buf); out.add(s.indices.buf); break;
      case "gemm": out.add(s.c.buf); break;
      case "dequant": out.add(s.dst.buf); break;
      default: break;
    }
  });
  return out;
}

/** The fusable [dequant loop, gemm] pairs of a tile-level body, by gemm statement. */
export function findDequantGemms(body: Stmt[]): Map<Gemm, DequantGemm> {
  const bufs = new Map<string, Buffer>();
  walkStmts(body, (s) => { if (s.k === "alloc") bufs.set(s.buf.name, s.buf); });
  const out = new Map<Gemm, DequantGemm>();
  const visit = (list: Stmt[]) => {
    list.forEach((s, i) => {
      if (s.k === "for") visit(s.body);
      if (s.k === "if") { visit(s.then); visit(s.else); }
      const m = matchLoop(s, bufs);
      if (!m) return;
      // Its gemm comes later in the same list; what runs in between (another dequant, the
      // other gemm of a gate/up pair) must not write what the loop reads.
      const gi = list.findIndex((x, xi) => xi > i && x.k === "gemm" && x.b.buf === m.tile);
      const g = list[gi];
      if (!g || g.k !== "gemm" || !g.transB || g.a.buf === m.tile) return;
      const reads = readsOf([m.loop]);
      if ([...writesOf(list.slice(i + 1, gi))].some((b) => reads.has(b))) return;
      const tile = bufs.get(m.tile)!, a = bufs.get(g.a.buf);
      if (!a || a.dtype !== tile.dtype || !wholeBuffer(g.b, tile)) return;
      const [R, W] = m.loop.extents.map((e) => evalConst(e));
      const shape = tile.shape.map((d) => evalConst(d));
      if (R !== shape[0] || W === undefined || W * m.per !== shape[1] || m.loop.starts.some((x) => evalConst(x) !== 0)) return;
      // One store (the loop's) and one read (the gemm's): nothing else sees the tile.
      if (bufferMentions(body).filter((b) => b === m.tile).length !== 2) return;
      out.set(g, m);
    });
  };
  visit(body);
  return out;
}

/** The dequant reads the packed tile's element [r, w] (the loop's own word). */
export function isTileWord(f: DequantGemm): boolean {
  const wd = f.dequant.word;
  const [r, w] = f.loop.vars as [string, string];
  return wd.k === "load" && wd.idx.length === 2 && same(wd.idx[0]!, v(r)) && same(wd.idx[1]!, v(w));
}

/**
 * B fragments of k-step kk, dequantized from the packed words (see the top of the file):
 * per n-tile j and half h, one instance of the T.dequant loop body for the lane's word
 * (dequant-instance.ts: dequantPair).
 *
 * What does not change across the tile's words is done once per k tile (dequant-uniform.ts
 * decides it statically, otherwise the per-word code stays):
 *  - scale and zero point (the body's masked global reads, at w = 0), per lane and n-tile,
 *    rounded to the tile's type in a local array; at the top of the pipelined loop's body,
 *    before the wait for the tile, so their latency overlaps it;
 *  - the K mask: a tile wholly below K runs a copy of the k-step loop without the selects.
 * 4-bit words are read 128 bits at a time (the lane's 4 words of two k-steps) where the
 * k-step count is even; 8-bit ones a word at a time.
 */
export function dequantBOperand(c: Ctx, f: DequantGemm): { bLoader: ReturnType<typeof dequantBLoader>; rowBias?: number } {
  const plan = planTile(c, f, writesOf(c.k.launch.body));
  const rowBias = biasFold(plan);
  return { bLoader: dequantBLoader(c, f, plan, rowBias), ...(rowBias !== undefined ? { rowBias } : {}) };
}

/** With `rowBias` (biasFold: T.dequant without scales, u4, literal zero z) the pairs are fed
 *  as 128 + q (the dequant instantiated with zero -128: the lop3 alone), and each k-step also
 *  fills n-tile slot nTiles with the ones of the row sums (onesPair); lower-gemm-mma.ts takes
 *  rowBias * rowsum(A) off the accumulator after the k-steps. */
export function dequantBLoader(c: Ctx, f: DequantGemm, plan: TilePlan, rowBias?: number) {
  return (p: Plan, bf: string, w: WarpPos, pre: Stmt[]): Loader | VersionedLoader => {
    const lane = w.lane;
    const group = c.fresh("grp"), t = c.fresh("t");
    pre.push({ k: "let", name: group, dtype: "i32", value: bin("/", lane, int(4)), mutable: false });
    pre.push({ k: "let", name: t, dtype: "i32", value: bin("%", lane, int(4)), mutable: false });
    if (f.per !== 8 && f.per !== 4) throw new Error(`fuse-dequant-gemm: ${f.per} values per word`);
    const { r, W } = plan;
    const wordsPerStep = 16 / f.per;
    const rowOf = (jt: Expr) => fold(bin("+", bin("*", bin("+", w.tn, jt), int(8)), v(group)));
    // Per pair site: the scale and zero point (per-tile registers, or literals for the unscaled
    // and biased forms; undefined: the body's own reads).
    const one = unscaled(plan) && plan.perTileScales ? flt(1) : undefined;
    const biasedZero = rowBias !== undefined ? flt(-128) : undefined;
    // The ones of a k-step (rowBias): pair sites (word, first value) per half h.
    const ones = (masked: boolean, set: Expr, site: (h: Expr) => { w: Expr; inWord: Expr }): Stmt[] => {
      if (rowBias === undefined) return [];
      const h = c.fresh("h");
      const inst = onesPair(c, plan, { ...site(v(h)), masked });
      const body = [...inst.stmts];
      inst.values.forEach((name, i) => body.push({
        k: "store", buf: bf, idx: [fold(bin("+", set, bin("+", int(p.nTiles * 4), bin("+", bin("*", v(h), int(2)), int(i)))))], value: v(name),
      }));
      return [{ k: "for", vars: [h], starts: [int(0)], extents: [int(2)], kind: "unroll", body }];
    };

    let scales: ReturnType<typeof tileScales> | undefined;
    // Unscaled: the per-tile registers are for a zero point read only (their scale of 1 unused).
    if (plan.perTileScales && (!one || plan.zeroRead)) {
      // Lane and warp as the thread index: the block may run before the gemm's own lets.
      const laneLets = new Map([...letValues(pre)]);
      laneLets.set(group, substitute(bin("/", lane, int(4)), laneLets));
      scales = tileScales(c, plan, p.nTiles, (jt) => substitute(rowOf(jt), laneLets));
      placeEarly(c, scales.block, pre);
    }

    // The lane's words. 4-bit: the two of a k-step are neighbours (8-byte aligned, rows of
    // BK / 8 words, BK a multiple of 16), and so are the four of k-steps 2i, 2i + 1: one
    // 128-bit shared read per n-tile every other k-step when the rows are 16-byte multiples
    // and the k-step count is even, else one 64-bit read per k-step. Either needs the word
    // to be the tile's own [r, w] element.
    const src = f.dequant.word.k === "load" ? f.dequant.word.buf : "";
    if (f.columns === "mma") return mmaLoader(c, f, p, bf, w, pre, { t, plan, scales, one, biasedZero, ones, rowOf, shared: isTileWord(f) && c.bufs.get(src)?.buf.scope === "shared" ? src : undefined });
    const tileWord = f.per === 8 && isTileWord(f) && c.bufs.get(src)?.buf.scope === "shared";
    const wide = tileWord && p.kSteps % 2 === 0 && (W * 4) % 16 === 0;
    const wq4 = wide ? localArray(c, "wq", "u32", p.nTiles * 4) : undefined;
    if (wq4) pre.push(wq4.alloc);

    const loader = (masked: boolean): Loader => (kk, set) => {
      const jt = c.fresh("nj"), h = c.fresh("h");
      // The lane's neighbours 2t + 8h, 2t + 8h + 1 (t < 4): value inWord, inWord + 1 of
      // word `word` of the k-step (per divides 8, so h only moves whole words).
      const inWord = f.per === 8 ? bin("*", v(t), int(2)) : bin("*", bin("&", v(t), int(1)), int(2));
      const word = f.per === 8 ? v(h) : bin("+", bin("*", v(h), int(2)), bin(">>", v(t), int(1)));
      const pair = f.per === 8 ? v(t) : bin("&", v(t), int(1));
      const word2 = tileWord && !wide ? localArray(c, "wq", "u32", 2) : undefined;
      const row: Stmt = { k: "let", name: r, dtype: "i32", value: rowOf(v(jt)), mutable: false };
      const wordExpr: Expr | undefined = wq4 ? { k: "load", buf: wq4.name, idx: [fold(bin("+", bin("+", bin("*", v(jt), int(4)), bin("*", bin("%", kk, int(2)), int(2))), v(h)))] }
        : word2 ? { k: "load", buf: word2.name, idx: [v(h)] } : undefined;
      // The k-step's first word picks the scale slice (slices are whole k-steps).
      const step = fold(bin("*", kk, int(wordsPerStep)));
      const inst = dequantPair(c, plan, {
        w: fold(bin("+", step, word)), word: wordExpr, pair, inWord, masked,
        scale: one ?? scales?.scale(v(jt), step), zero: biasedZero ?? scales?.zero?.(v(jt), step),
      });
      const lowered = [...(tileWord ? [] : c.lowerBody(c, [row])), ...inst.stmts];
      // B element e = 2h + i of n-tile jt.
      inst.values.forEach((name, i) => lowered.push({
        k: "store", buf: bf, idx: [fold(bin("+", set, bin("+", bin("*", v(jt), int(4)), bin("+", bin("*", v(h), int(2)), int(i)))))], value: v(name),
      }));
      const hLoop: Stmt = { k: "for", vars: [h], starts: [int(0)], extents: [int(2)], kind: "unroll", body: lowered };
      const perTile: Stmt[] = [hLoop];
      if (word2) {
        // Words 2 kk and 2 kk + 1 of row r (the tile's [r, w] addressing, stage included).
        const from = addr(c, src, [v(r), fold(bin("*", kk, int(2)))]);
        perTile.unshift(...c.lowerBody(c, [row]), word2.alloc, { k: "vcopy", dst: { buf: word2.name, idx: [int(0)] }, src: from, lanes: 2, pred: TRUE });
      }
      if (wq4) perTile.unshift(...c.lowerBody(c, [row]));
      const out: Stmt[] = [];
      if (wq4) {
        // Every other k-step: words 2 kk .. 2 kk + 3 of each n-tile's row.
        const ji = c.fresh("nj");
        const from = addr(c, src, [rowOf(v(ji)), fold(bin("*", kk, int(2)))]);
        const read: Stmt = { k: "for", vars: [ji], starts: [int(0)], extents: [int(p.nTiles)], kind: "unroll", body: [
          { k: "vcopy", dst: { buf: wq4.name, idx: [fold(bin("*", v(ji), int(4)))] }, src: from, lanes: 4, pred: TRUE }] };
        out.push(...guard(bin("==", bin("%", kk, int(2)), int(0)), [read]));
      }
      out.push({ k: "for", vars: [jt], starts: [int(0)], extents: [int(p.nTiles)], kind: "unroll", body: perTile });
      out.push(...ones(masked, set, (hh) => ({
        w: fold(bin("+", step, f.per === 8 ? hh : bin("+", bin("*", hh, int(2)), bin(">>", v(t), int(1))))), inWord })));
      return out;
    };
    return plan.wholeTile && plan.select ? { cond: plan.wholeTile, then: loader(false), else: loader(true) } : loader(true);
  };
}

/**
 * The loader for the mma order (src/quant/format.ts): word 4b + t of a row holds the 8 values
 * lane t needs for k-steps 2b and 2b + 1, register pair p = 2 (kk & 1) + h at slots p, p + 4.
 * So a lane reads its own word (one 32-bit shared read per n-tile every other k-step, the 4
 * lanes of a group on 4 consecutive words: no broadcast, conflict-free with padPackedTiles'
 * odd 16-byte row stride), and the pair is a constant of the unrolled kk and h (a constant
 * shift, no lane-variable one).
 */
function mmaLoader(c: Ctx, f: DequantGemm, p: Plan, bf: string, w: WarpPos, pre: Stmt[], o: {
  t: string; plan: TilePlan; scales?: ReturnType<typeof tileScales>; one?: Expr; biasedZero?: Expr;
  ones: (masked: boolean, set: Expr, site: (h: Expr) => { w: Expr; inWord: Expr }) => Stmt[];
  rowOf: (jt: Expr) => Expr; shared?: string;
}): Loader | VersionedLoader {
  const { t, plan, scales, one, biasedZero, ones, rowOf, shared } = o;
  if (p.kSteps % 2 !== 0) throw new Error(`fuse-dequant-gemm: the mma order needs whole 32-value blocks per tile, got ${p.kSteps} k-steps`);
  const r = plan.r;
  const wm = shared ? localArray(c, "wm", "u32", p.nTiles) : undefined;
  if (wm) pre.push(wm.alloc);
  const loader = (masked: boolean): Loader => (kk, set) => {
    const jt = c.fresh("nj"), h = c.fresh("h");
    const block = fold(bin("*", bin(">>", kk, int(1)), int(4)));
    const pair = fold(bin("+", bin("*", bin("&", kk, int(1)), int(2)), v(h)));
    const row: Stmt = { k: "let", name: r, dtype: "i32", value: rowOf(v(jt)), mutable: false };
    const inst = dequantPair(c, plan, {
      w: fold(bin("+", block, v(t))), word: wm ? { k: "load", buf: wm.name, idx: [v(jt)] } : undefined,
      pair, inWord: fold(bin("*", pair, int(2))), masked,
      // The block's first word picks the scale slice (every word of a block is in one group).
      scale: one ?? scales?.scale(v(jt), block), zero: biasedZero ?? scales?.zero?.(v(jt), block),
    });
    const lowered = [...c.lowerBody(c, [row]), ...inst.stmts];
    inst.values.forEach((name, i) => lowered.push({
      k: "store", buf: bf, idx: [fold(bin("+", set, bin("+", bin("*", v(jt), int(4)), bin("+", bin("*", v(h), int(2)), int(i)))))], value: v(name),
    }));
    const out: Stmt[] = [];
    if (wm) {
      // Every other k-step: the lane's word of the block, per n-tile.
      const ji = c.fresh("nj");
      const from = addr(c, shared!, [rowOf(v(ji)), fold(bin("+", block, v(t)))]);
      const read: Stmt = { k: "for", vars: [ji], starts: [int(0)], extents: [int(p.nTiles)], kind: "unroll", body: [
        { k: "store", buf: wm.name, idx: [v(ji)], value: { k: "load", buf: from.buf, idx: from.idx } }] };
      out.push(...guard(bin("==", bin("&", kk, int(1)), int(0)), [read]));
    }
    out.push({ k: "for", vars: [jt], starts: [int(0)], extents: [int(p.nTiles)], kind: "unroll", body: [
      { k: "for", vars: [h], starts: [int(0)], extents: [int(2)], kind: "unroll", body: lowered }] });
    out.push(...ones(masked, set, (hh) => {
      const pr = fold(bin("+", bin("*", bin("&", kk, int(1)), int(2)), hh));
      return { w: fold(bin("+", block, v(t))), inWord: fold(bin("*", pr, int(2))) };
    }));
    return out;
  };
  return plan.wholeTile && plan.select ? { cond: plan.wholeTile, then: loader(false), else: loader(true) } : loader(true);
}
