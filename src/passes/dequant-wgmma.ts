// The register-A wgmma for a dequant-gemm pair on sm_90a: `T.dequant(Ws, Bs, ...)` followed by
// `T.gemm(As, Bs, acc, { transB: true })` computes C^T = W A^T, with the dequantized weights
// as wgmma's A operand from registers and the activation tile As as its B operand (K-major,
// by descriptor, swizzled as any wgmma operand). There is no bf16 tile Bs, none of its stores
// and no barrier between them and the gemm, as in the mma.sync fusion (fuse-dequant-gemm.ts),
// but one instruction covers 64 weight rows x the whole M tile x 16 k.
//
// Layout (PTX ISA, wgmma register fragments for matrix A, m64nNk16 .bf16/.f16): warp w of the
// warpgroup holds rows 16w .. 16w + 15 of the 64-row A tile in the mma.m16n8k16 A layout, lane
// (grp = lane / 4, t = lane % 4) element e < 8 at row grp + 8 * ((e >> 1) & 1), k = 2t + (e & 1)
// + 8 * (e >> 2). So each register {a0..a3} is one neighbour pair (2t, 2t + 1) (+ 8h) of one
// row (grp + 8 rh): register 2h + rh is the `dequant ... pair` of one packed word, the same
// lane -> word / pair mapping as the mma.sync B loader, for the two rows grp and grp + 8:
//   u4/s4 (8 per word):       word 2 kk + h, pair t (both words of a row: one 64-bit read)
//   u8/s8/e4m3 (4 per word):  word 4 kk + 2h + (t >> 1), pair t & 1
// Each instance is the front end's T.dequant body (dequant-instance.ts dequantPair), so scales, zero points
// and the K mask are the unfused ones, bit for bit; where the tile lies in whole groups the
// scale and zero point are read once per tile and row (dequant-instance.ts tileScales, the same
// reads hoisted), not once per instance.
//
// The accumulator is the transposed wgmma fragment (wgmma_acc_t(warpgroups, 1)): warpgroup g
// owns weight rows [g * BN / G, (g + 1) * BN / G) (64 * mTiles of them) and all BM columns, BM
// being wgmma's n (8..256), so the same code serves decode (BM 16) and prefill (BM 128/256).
//
// Per k-step kk of the gemm (kk unrolled, kSteps = BK / 16):
//   dequantize kk's fragments into register set kk % 2     (overlaps the wgmma of step kk - 1)
//   wgmma.fence                                            per m-tile mt: A registers written
//   wgmma.m64n{BM}k16 acc[mt] += aq[set, mt], As[kk] ...   -> wgmma (PTX)
//   wgmma.commit; wgmma.wait 1                             step kk - 1 retired: its set is free
// Two register sets: PTX forbids writing the A registers of a wgmma before the wgmma.wait that
// retires its group, and step kk writes the set that step kk - 2 read. With kSteps odd, the
// first step of the next call would write the set of the last step, still in flight: the
// gemm then starts with wgmma.wait 0. In a pipeline (lower-pipeline-wgmma.ts) one group stays in
// flight across iterations, as for the shared-operand gemm: the last step's, reading stage j.
import { type Expr, type Kernel, type Layout, type Stmt, bin, int, v } from "../ir/ir.ts";
import { TRUE, evalConst, fold, substitute, walkStmts } from "../ir/expr.ts";
import { type WgmmaAcc, wgmmaAccProblem, wgmmaSwizzle } from "../layout/wgmma.ts";
import { type Ctx, addr, info, stageBase } from "./lower-ctx.ts";
import { type DequantGemm, findDequantGemms, isTileWord, writesOf } from "./fuse-dequant-gemm.ts";
import { dequantPair, letValues, placeEarly, planTile, tileScales } from "./dequant-instance.ts";
import { wholeBuffer } from "./infer-layouts.ts";
import { mmaMode } from "./lower-gemm-wgmma.ts";
import type { Target } from "./types.ts";

type Gemm = Extract<Stmt, { k: "gemm" }>;

export interface DequantWgmma {
  f: DequantGemm;
  /** The accumulator's layout: wgmma_acc_t(warpgroups, 1). */
  acc: WgmmaAcc;
  /** The activation tile's swizzle (it is wgmma's B operand). */
  aLayout: Extract<Layout, { kind: "xor_swizzle" }>;
}

/**
 * The pairs lowered to register-A wgmma, by gemm. Needs: sm_90a with wgmma, `mma` not
 * "mma_sync"; the activation tile As [BM, BK] bf16/f16 with rows of 32/64/128 bytes (BK 16, 32,
 * 64: the wgmma swizzles); BM a multiple of 8 up to 256 (wgmma's n); BN a multiple of
 * 64 * warpgroups (each warpgroup dequantizes its own rows, none twice).
 * Tiles of fewer than 64 rows (decode) take it only with `mma = "wgmma"` or Target.dequantWgmma
 * (`--dequant wgmma`): there the mma.sync fusion is the default until measured (docs/QUANT.md).
 */
export function dequantWgmmaGemms(k: Kernel, target: Target): Map<Gemm, DequantWgmma> {
  const out = new Map<Gemm, DequantWgmma>();
  const mode = mmaMode(target, k.config);
  const threads = evalConst(k.launch.threads);
  if (!target.wgmma || mode === "mma_sync" || threads === undefined || threads % 128 !== 0) return out;
  const bufs = new Map<string, Extract<Stmt, { k: "alloc" }>["buf"]>();
  walkStmts(k.launch.body, (s) => { if (s.k === "alloc") bufs.set(s.buf.name, s.buf); });
  for (const [g, f] of findDequantGemms(k.launch.body)) {
    const acc = bufs.get(g.c.buf), a = bufs.get(g.a.buf);
    if (!acc || !a || acc.scope !== "fragment" || acc.dtype !== "f32" || a.scope !== "shared" || g.transA) continue;
    if ((a.dtype !== "bf16" && a.dtype !== "f16") || a.shape.length !== 2 || !wholeBuffer(g.a, a) || !wholeBuffer(g.c, acc)) continue;
    const [m, n] = acc.shape.map((d) => evalConst(d));
    const bk = evalConst(a.shape[1]!);
    if (m === undefined || n === undefined || bk === undefined) continue;
    if (m < 64 && mode !== "wgmma" && !target.dequantWgmma) continue;
    const sw = wgmmaSwizzle(bk);
    if (!sw || (a.layout && JSON.stringify(a.layout) !== JSON.stringify(sw.layout))) continue;
    if (f.per !== 8 && f.per !== 4) continue;
    const layout: WgmmaAcc = { kind: "wgmma_acc", wgM: threads / 128, wgN: 1, trans: true };
    if (m % 8 !== 0 || m > 256 || wgmmaAccProblem(layout, { rows: m, cols: n, threads })) continue;
    out.set(g, { f, acc: layout, aLayout: sw.layout });
  }
  return out;
}

const add = (a: Expr, b: Expr | number) => fold(bin("+", a, typeof b === "number" ? int(b) : b));
/** An instance with the dequant loop's row variable bound first (dequantPair leaves it to the caller). */
const withRow = (c: Ctx, r: string, row: Expr, inst: { stmts: Stmt[]; values: [string, string] }) =>
  ({ stmts: [...c.lowerBody(c, [{ k: "let", name: r, dtype: "i32", value: row, mutable: false }]), ...inst.stmts], values: inst.values });
const mul = (a: Expr, b: number) => fold(bin("*", a, int(b)));

/** The gemm's thread-level code (see the top of the file). */
export function lowerDequantWgmma(c: Ctx, g: Gemm, f: DequantGemm): Stmt[] {
  const a = info(c, g.a.buf), acc = info(c, g.c.buf);
  const [m, n] = acc.shape as [number, number];
  const bk = a.shape[1]!;
  const sw = wgmmaSwizzle(bk);
  if (!sw) throw new Error(`lowerDequantWgmma: activation rows of ${bk} elements have no wgmma swizzle`);
  const atype = a.buf.dtype as "bf16" | "f16";
  const groups = c.threads / 128, groupRows = n / groups, mTiles = groupRows / 64, kSteps = bk / 16;
  const inPipeline = c.wgmmaInPipeline === true;

  // Two sets of mTiles x 8 elements (the 4 registers of each m-tile), at the top of the kernel.
  const aq = c.fresh("aq"), setSize = mTiles * 8;
  c.hoisted.push({ k: "alloc", buf: { name: aq, scope: "local", dtype: atype, shape: [int(2 * setSize)] } });
  c.bufs.set(aq, { buf: { name: aq, scope: "local", dtype: atype, shape: [int(2 * setSize)] }, shape: [2 * setSize], size: 2 * setSize, stages: 1 });

  const body: Stmt[] = inPipeline ? [] : [{ k: "fence_async" }, { k: "barrier" }];
  if (inPipeline && kSteps % 2 === 1) body.push({ k: "wgmma_wait", n: 0 });
  const grp = c.fresh("grp"), t = c.fresh("t"), row0 = c.fresh("wrow");
  const lane = fold(bin("%", c.tx, int(32)));
  body.push(
    { k: "let", name: grp, dtype: "i32", value: fold(bin("/", lane, int(4))), mutable: false },
    { k: "let", name: t, dtype: "i32", value: fold(bin("%", lane, int(4))), mutable: false },
    // Row (in the weight tile) of the lane's first register: warpgroup, warp, group.
    { k: "let", name: row0, dtype: "i32", mutable: false, value: fold(bin("+", bin("+",
      bin("*", bin("/", c.tx, int(128)), int(groupRows)), bin("*", bin("/", bin("%", c.tx, int(128)), int(32)), int(16))), v(grp))) },
  );
  // The group scale (and zero point) once per tile where the tile lies in whole groups
  // (dequant-instance.ts, as the mma.sync decode loop): the lane's 2 * mTiles rows (row0 +
  // 64 mt + 8 rh, index 2 mt + rh), read before the pipeline's wait where it allows; else the
  // front end's reads per instance.
  const plan = planTile(c, f, writesOf(c.k.launch.body));
  const lanes = letValues(body);
  const rowOf = (i: Expr) => add(add(v(row0), fold(bin("*", bin("/", i, int(2)), int(64)))), fold(bin("*", bin("%", i, int(2)), int(8))));
  const scales = plan.perTileScales ? tileScales(c, plan, 2 * mTiles, (i) => substitute(rowOf(i), lanes)) : undefined;
  if (scales) placeEarly(c, scales.block, body);
  const wordsPerStep = 16 / f.per;
  const src = f.dequant.word.k === "load" ? f.dequant.word.buf : "";
  // The mma order (src/quant/format.ts): the lane's word 4 (kk >> 1) + t holds its pairs of
  // k-steps kk and kk + 1 (pair 2 (kk & 1) + h, constant); the body's own read of the tile.
  const mmaOrder = f.columns === "mma";
  const wordPair = !mmaOrder && f.per === 8 && isTileWord(f) && c.bufs.get(src)?.buf.scope === "shared";
  const asBase = stageBase(c, a.buf.name);

  // A loop of one trip is its body (no name to bind: its lets sit in the loop around it).
  const unroll = (hint: string, trips: number, body: (i: Expr) => Stmt[]): Stmt[] => {
    if (trips === 1) return body(int(0));
    const nm = c.fresh(hint);
    return [{ k: "for", vars: [nm], starts: [int(0)], extents: [int(trips)], kind: "unroll", body: body(v(nm)) }];
  };
  body.push(...unroll("kk", kSteps, (kk) => {
    const set = mul(fold(bin("%", kk, int(2))), setSize);
    const fill = unroll("mt", mTiles, (mt) => unroll("rh", 2, (rh) => {
      const row = add(add(v(row0), fold(bin("*", mt, int(64)))), fold(bin("*", rh, int(8))));
      const pre: Stmt[] = [];
      let wq: string | undefined;
      if (wordPair) {
        // Words 2 kk and 2 kk + 1 of the row: one 64-bit shared read (see fuse-dequant-gemm.ts).
        wq = c.fresh("wq");
        c.bufs.set(wq, { buf: { name: wq, scope: "local", dtype: "u32", shape: [int(2)] }, shape: [2], size: 2, stages: 1 });
        pre.push({ k: "alloc", buf: { name: wq, scope: "local", dtype: "u32", shape: [int(2)] } },
          { k: "vcopy", dst: { buf: wq, idx: [int(0)] }, src: addr(c, src, [row, fold(bin("*", kk, int(2)))]), lanes: 2, pred: TRUE });
      }
      return [...pre, ...unroll("h", 2, (h) => {
        const block = mul(fold(bin(">>", kk, int(1))), 4);
        const word = mmaOrder ? add(block, v(t)) : f.per === 8 ? add(fold(bin("*", kk, int(2))), h) : add(add(fold(bin("*", kk, int(4))), fold(bin("*", h, int(2)))), fold(bin(">>", v(t), int(1))));
        const pair = mmaOrder ? add(mul(fold(bin("&", kk, int(1))), 2), h) : f.per === 8 ? v(t) : fold(bin("&", v(t), int(1)));
        const wordValue: Expr | undefined = wq ? { k: "load", buf: wq, idx: [h] } : undefined;
        // The k-step's first word picks the scale slice (mma order: its block's).
        const step = mmaOrder ? block : mul(kk, wordsPerStep);
        const inst = withRow(c, plan.r, row, dequantPair(c, plan, {
          w: word, word: wordValue, pair, inWord: mmaOrder ? mul(pair, 2) : f.per === 8 ? mul(v(t), 2) : mul(fold(bin("&", v(t), int(1))), 2), masked: true,
          ...(scales ? { scale: scales.scale(add(mul(mt, 2), rh), step), zero: scales.zero?.(add(mul(mt, 2), rh), step) } : {}),
        }));
        // Element 4h + 2rh + i of the m-tile's 8 (register 2h + rh).
        const at = add(add(set, fold(bin("*", mt, int(8)))), add(fold(bin("*", h, int(4))), fold(bin("*", rh, int(2)))));
        return [...inst.stmts, ...inst.values.map((val, i): Stmt => ({ k: "store", buf: aq, idx: [add(at, i)], value: v(val) }))];
      })];
    }));
    // A fence before each wgmma (not one for all m-tiles): the CUDA emitter puts it into the
    // wgmma's asm statement, which has the registers as inputs, so they are formed before it.
    const issue = unroll("mt", mTiles, (mt) => [{ k: "wgmma_fence" }, {
      k: "wgmma", atype, n: m, scaleD: true,
      d: { buf: acc.buf.name, idx: [fold(bin("*", mt, int(m / 2)))] },
      a: { ref: { buf: aq, idx: [add(set, fold(bin("*", mt, int(8))))] }, regs: true },
      b: { ref: { buf: a.buf.name, idx: [add(asBase, fold(bin("*", kk, int(16))))] }, swizzle: sw.swizzle, lbo: 16, sbo: sw.sbo },
    }]);
    return [...fill, ...issue, { k: "wgmma_commit" }, { k: "wgmma_wait", n: 1 }];
  }));
  if (!inPipeline) body.push({ k: "wgmma_wait", n: 0 });
  return body;
}
