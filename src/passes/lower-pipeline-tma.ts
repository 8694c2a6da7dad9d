// A pipelined loop ending in a wgmma gemm, with its operand tiles brought in by TMA
// (cp.async.bulk.tensor, sm_90a) instead of cp.async, when the target asks for it
// (Target.tma: `--copy tma`). One thread issues each tile's copies; they complete on an
// mbarrier per stage ("full"), and every warpgroup releases a stage through a second mbarrier
// ("empty") once the wgmma that read it has retired, before the stage is refilled:
//
//   alloc bars: shared i64[2S]          full[s] = bars[s], empty[s] = bars[S + s]
//   if tx == 0: init full[s] count 1, empty[s] count W (warpgroups); fence.mbarrier_init
//   barrier                             the inits are visible before anyone waits
//   if tx == 0: tiles 0 .. S-2: arrive.expect_tx full[t] (box bytes); tma.load -> stage t
//   wgmma.wait 0                        (as in lower-pipeline-wgmma.ts: pins the fill)
//   iteration j:
//     mbar.wait full[j % S] parity (j / S) & 1      tile j has landed
//     wgmma of tile j (stage j % S), commit, wgmma.wait 1  -> tile j-1's group retired
//     if j > 0 and tx % 128 == 0: arrive empty[(j-1) % S]  one arrival per warpgroup
//     if tx == 0 and t = j+S-1 < n:                 refill the stage tile j-1 used
//       if t >= S: mbar.wait empty[t % S] parity (t / S - 1) & 1   (tile t-S released)
//       arrive.expect_tx full[t % S]; tma.load tile t -> stage t % S
//   wgmma.wait 0; barrier
// so S - 1 tiles are in flight ahead of the wgmma (cp.async keeps S - 2: its group counting
// cannot tell a stage free before the barrier of the next iteration).
//
// TMA needs the global's row pitch to be a multiple of 16 bytes and every dim positive
// (cuTensorMapEncodeTiled refuses others): when that does not hold at run time the loop runs
// the cp.async pipeline instead, and the host passes a zeroed tensor map (never read). Ragged
// tiles at the tensor's edges are zero-filled by the TMA unit itself, and still count their
// whole box towards the barrier's transaction bytes (PTX ISA, cp.async.bulk.tensor).
import { type Expr, type Stmt, type TensorMap, bin, byteSize, int, v } from "../ir/ir.ts";
import { TRUE, bufferMentions, evalConst, fold, substitute } from "../ir/expr.ts";
import { printExpr } from "../ir/print.ts";
import { wgmmaSwizzle } from "../layout/wgmma.ts";
import { type Ctx, constExtents, guard, info } from "./lower-ctx.ts";
import { wholeBuffer } from "./infer-layouts.ts";
import { lowerWgmmaPipeline } from "./lower-pipeline-wgmma.ts";
import { maxnregCounts } from "./warp-specialize.ts";

type For = Extract<Stmt, { k: "for" }>;
type Copy = Extract<Stmt, { k: "copy" }>;

interface TmaCopy { cp: Copy; map: TensorMap; bytes: number }

/** The tensor map each pipelined copy would use, or why a copy cannot go through TMA. */
export function tmaCopies(c: Ctx, copies: Copy[]): TmaCopy[] | string {
  const out: TmaCopy[] = [];
  for (const cp of copies) {
    const src = info(c, cp.src.buf), dst = info(c, cp.dst.buf);
    if (cp.rows !== undefined) return `TMA boxes are rectangles; the copy into '${cp.dst.buf}' gathers rows through '${cp.rows}'`;
    if (src.buf.shape.length !== 2 || dst.shape.length !== 2) return `TMA copies here are 2-d; '${cp.src.buf}' -> '${cp.dst.buf}' is not`;
    if (src.buf.dtype !== dst.buf.dtype) return `TMA cannot convert ${src.buf.dtype} to ${dst.buf.dtype}`;
    if (!wholeBuffer(cp.dst, dst.buf)) return `TMA fills whole tiles; the copy into '${cp.dst.buf}' writes part of it`;
    const ext = constExtents(cp.src);
    if (ext[0] !== dst.shape[0] || ext[1] !== dst.shape[1]) return `the copy into '${cp.dst.buf}' reads [${ext.join(", ")}], the tile is [${dst.shape.join(", ")}]`;
    const [rows, cols] = dst.shape as [number, number];
    if (rows > 256 || cols > 256) return `a TMA box holds at most 256 elements per dim; '${cp.dst.buf}' is [${rows}, ${cols}]`;
    const sw = byteSize(dst.buf.dtype) === 2 ? wgmmaSwizzle(cols) : undefined;
    const layout = dst.buf.layout;
    let swizzle: TensorMap["swizzle"];
    if (sw && layout && JSON.stringify(layout) === JSON.stringify(sw.layout)) swizzle = sw.swizzle;
    else if (!layout) { swizzle = 0; if ((cols * byteSize(dst.buf.dtype)) % 16 !== 0) return `a TMA box row must be a multiple of 16 bytes; '${cp.dst.buf}' rows are ${cols * byteSize(dst.buf.dtype)}`; }
    else return `tile '${cp.dst.buf}' has a layout no TMA swizzle produces`;
    const found = c.tensorMaps.find((m) => m.tensor === src.buf.name && m.swizzle === swizzle && m.box.join() === [rows, cols].join());
    const map = found ?? { name: c.fresh(`tmap_${src.buf.name}`), tensor: src.buf.name, box: [rows, cols], swizzle };
    out.push({ cp, map, bytes: rows * cols * byteSize(dst.buf.dtype) });
  }
  return out;
}

/** Run-time condition under which the tensor maps are valid (the host uses the same rule). */
function tmaUsable(c: Ctx, copies: TmaCopy[]): Expr {
  const terms = new Map<string, Expr>();
  for (const t of new Set(copies.map((x) => x.map.tensor))) {
    const g = info(c, t).buf;
    const lanes = 16 / byteSize(g.dtype);
    for (const d of g.shape) terms.set(printExpr(d) + ">0", bin(">", d, int(0)));
    const last = g.shape[g.shape.length - 1]!;
    terms.set(printExpr(last) + "%" + lanes, bin("==", bin("%", last, int(lanes)), int(0)));
  }
  return fold([...terms.values()].reduce((a, e) => bin("&&", a, e), TRUE));
}

export function lowerTmaPipeline(c: Ctx, loop: For, copies: Copy[], S: number, tma: TmaCopy[]): Stmt[] {
  for (const t of tma) if (!c.tensorMaps.includes(t.map)) c.tensorMaps.push(t.map);
  const kv = loop.vars[0]!, start = loop.starts[0]!, n = loop.extents[0]!;
  const compute = loop.body.slice(copies.length);
  const bars = c.fresh("bars");
  c.bufs.set(bars, { buf: { name: bars, scope: "shared", dtype: "i64", shape: [int(2 * S)] }, shape: [2 * S], size: 2 * S, stages: 1 });
  const full = (s: Expr): Expr[] => [fold(s)];
  const empty = (s: Expr): Expr[] => [fold(bin("+", int(S), s))];
  const tx = c.tx;
  const groups = c.threads / 128;
  const txBytes = tma.reduce((a, t) => a + t.bytes, 0);

  // Copies of tile `it` (counted from the loop's start) into stage `st`, completing on full[st].
  const load = (it: Expr, st: Expr): Stmt[] => {
    const m = new Map([[kv, fold(bin("+", start, it))]]);
    const out: Stmt[] = [{ k: "mbar_arrive", bar: { buf: bars, idx: full(st) }, tx: txBytes }];
    for (const t of tma) {
      const size = info(c, t.cp.dst.buf).size;
      out.push({
        k: "tma_load", map: t.map.name, bar: { buf: bars, idx: full(st) },
        dst: { buf: t.cp.dst.buf, idx: [fold(bin("*", st, int(size)))] },
        coords: t.cp.src.offsets.map((o) => fold(substitute(o, m))),
      });
    }
    return out;
  };
  const isLeader = bin("==", tx, int(0));
  const init: Stmt[] = [];
  for (let s = 0; s < S; s++) init.push({ k: "mbar_init", bar: { buf: bars, idx: full(int(s)) }, count: 1 });
  for (let s = 0; s < S; s++) init.push({ k: "mbar_init", bar: { buf: bars, idx: empty(int(s)) }, count: groups });
  init.push({ k: "mbar_fence_init" });

  const p = c.fresh("p");
  const prologue: Stmt = {
    k: "for", vars: [p], starts: [int(0)], extents: [int(S - 1)], kind: "unroll",
    body: guard(bin("<", v(p), n), load(v(p), v(p))),
  };
  const j = fold(bin("-", v(kv), start));
  // Warp-specialized persistent blocks stream their tiles through one pipeline: tile j of this
  // loop is the block's tile pipe + j (see specializedPath).
  const running = c.target.warpSpecialize === true && c.target.persistentBlocks !== undefined && stagesPrivate(c, loop, tma);
  const pipe = running ? c.fresh("pipe") : undefined;
  const r = pipe ? fold(bin("+", v(pipe), j)) : j;
  const saved = new Map(c.stage);
  for (const t of tma) c.stage.set(t.cp.dst.buf, fold(bin("%", r, int(S))));
  const prev = c.wgmmaInPipeline;
  c.wgmmaInPipeline = true;
  const computeLow = c.lowerBody(c, compute);
  c.wgmmaInPipeline = prev;
  c.stage = saved;
  const t = fold(bin("+", j, int(S - 1)));
  const tStage = fold(bin("%", t, int(S)));
  // Wait for tile j, compute on it, and (once its wgmma retired) release tile j-1's stage.
  const consumeTile: Stmt[] = [
    { k: "mbar_wait", bar: { buf: bars, idx: full(bin("%", r, int(S))) }, parity: fold(bin("&", bin("/", r, int(S)), int(1))) },
    ...computeLow,
    ...guard(bin("&&", bin(">", j, int(0)), bin("==", bin("%", tx, int(128)), int(0))),
      [{ k: "mbar_arrive", bar: { buf: bars, idx: empty(bin("%", bin("-", r, int(1)), int(S))) } }]),
  ];
  const body: Stmt[] = [
    ...consumeTile,
    ...guard(bin("&&", isLeader, bin("<", t, n)), [
      ...guard(bin(">=", j, int(1)), [{ k: "mbar_wait", bar: { buf: bars, idx: empty(tStage) }, parity: fold(bin("&", bin("-", bin("/", t, int(S)), int(1)), int(1))) }]),
      ...load(t, tStage),
    ]),
  ];
  const tmaPath: Stmt[] = c.target.warpSpecialize ? specializedPath(pipe) : [
    ...guard(isLeader, init),
    { k: "barrier" },
    ...guard(isLeader, [prologue]),
    { k: "wgmma_wait", n: 0 },
    { k: "for", vars: [kv], starts: [start], extents: [n], kind: "serial", body, loc: loop.loc },
    { k: "wgmma_wait", n: 0 },
    ...(evalConst(n) === 0 ? [] : [{ k: "barrier" } as Stmt]),
  ];
  // Warp specialization (Target.warpSpecialize): the role split that warpSpecialize turns into
  // a producer warpgroup (threads T .. T+127, added by that pass) and the consumers (0 .. T-1).
  //   if tx == 0: inits;  barrier             (block-wide: the producer takes it too)
  //   if (tx >= T) { setmaxnreg.dec P; if (tx == T) for j: [j >= S: wait empty]; load tile j }
  //   else { setmaxnreg.inc C; the loop above without its loads }
  //   barrier                                 (consumers only, after warpSpecialize)
  // The consumers never wait on "empty" nor issue a copy; the producer runs up to S tiles ahead.
  //
  // In persistent blocks (`pipe` given) the producer runs ahead across tiles. The mbarriers
  // live as long as the block (allocated and initialised in the launch's setup, which
  // persistentGrid keeps in front of its tile loop) and both roles count the tiles the block
  // has streamed in `pipe`, so the running index pipe + j picks the stage and the phase:
  //   setup: alloc bars; var pipe = 0; if tx == 0: inits; barrier   (both roles, once a block)
  //   if (tx >= T) { if (tx == T) for j: [pipe + j >= S: wait empty[(pipe + j) % S] parity
  //                    ((pipe + j) / S - 1) & 1]; load tile j -> stage (pipe + j) % S
  //                  pipe = pipe + n }
  //   else { the consumer loop on stages (pipe + j) % S; wgmma.wait 0;
  //          release the stage of the tile's last k tile too (n > 0); pipe = pipe + n }
  //   barrier                                 (consumers only, after warpSpecialize)
  // The consumers release every stage they read, so the producer, which takes no barrier
  // after the setup, fills the next tile's stages while the consumers run this tile's
  // epilogue. A tile that skips the loop (an unused MoE routing block's `if (e >= 0)`) leaves
  // pipe unchanged in both roles: the producer's slice evaluates the same condition.
  function specializedPath(pipe?: string): Stmt[] {
    const T = c.threads;
    // Ping-pong (ping-pong.ts) runs this tile code in two consumer warpgroups: the register
    // split is that of both.
    const { producer, consumer } = maxnregCounts(c.target.pingpong ? 2 * T : T, c.wsPerSM ?? 1);
    const jp = c.fresh("j");
    // Tile j's index in the block's stream of tiles.
    const rp = pipe ? fold(bin("+", v(pipe), v(jp))) : v(jp);
    const produce: Stmt = {
      k: "for", vars: [jp], starts: [int(0)], extents: [n], kind: "serial",
      body: [
        ...guard(bin(">=", rp, int(S)), [{ k: "mbar_wait", bar: { buf: bars, idx: empty(bin("%", rp, int(S))) }, parity: fold(bin("&", bin("-", bin("/", rp, int(S)), int(1)), int(1))) }]),
        ...load(v(jp), fold(bin("%", rp, int(S)))),
      ],
    };
    const advance: Stmt[] = pipe ? [{ k: "assign", name: pipe, value: fold(bin("+", v(pipe), n)) }] : [];
    // The per-tile pipeline re-initialises its barriers; a running one releases the last stage.
    const releaseLast: Stmt[] = pipe ? guard(bin("&&", bin(">", n, int(0)), bin("==", bin("%", tx, int(128)), int(0))),
      [{ k: "mbar_arrive", bar: { buf: bars, idx: empty(bin("%", bin("-", bin("+", v(pipe), n), int(1)), int(S))) } }]) : [];
    const consume: Stmt[] = [
      ...(consumer !== undefined ? [{ k: "setmaxnreg", op: "inc", regs: consumer } as Stmt] : []),
      { k: "wgmma_wait", n: 0 },
      { k: "for", vars: [kv], starts: [start], extents: [n], kind: "serial", body: consumeTile, loc: loop.loc },
      { k: "wgmma_wait", n: 0 },
      ...releaseLast,
      ...advance,
    ];
    const roles: Stmt = { k: "if", cond: bin(">=", tx, int(T)), then: [{ k: "setmaxnreg", op: "dec", regs: producer }, ...guard(bin("==", tx, int(T)), [produce]), ...advance], else: consume };
    const close: Stmt[] = evalConst(n) === 0 ? [] : [{ k: "barrier" }];
    const inits: Stmt[] = [...guard(isLeader, init), { k: "barrier" }];
    if (!pipe) return [...inits, roles, ...close];
    c.setup.push({ k: "alloc", buf: { name: bars, scope: "shared", dtype: "i64", shape: [int(2 * S)] } },
      { k: "let", name: pipe, dtype: "i32", value: int(0), mutable: true }, ...inits);
    return [roles, ...close];
  }
  // The caller checked wgmmaOverlap (S >= 3), so the cp.async fallback exists.
  const fallback = lowerWgmmaPipeline(c, loop, copies, S);
  return [
    ...(pipe ? [] : [{ k: "alloc", buf: { name: bars, scope: "shared", dtype: "i64", shape: [int(2 * S)] } } as Stmt]),
    ...guard(tmaUsable(c, tma), tmaPath, fallback),
  ];
}

/** May the producer fill this loop's stages while the consumers run the rest of a tile? Only
 *  when nothing outside the loop reads or writes the stage tiles, nor lays a buffer `over`
 *  them (such a write would race the next tile's TMA loads; the loop then keeps the per-tile
 *  pipeline, whose block-wide barriers order them). */
function stagesPrivate(c: Ctx, loop: For, tma: TmaCopy[]): boolean {
  const stages = new Set(tma.map((t) => t.cp.dst.buf));
  const outside: Stmt[] = [];
  let overlaid = false;
  const visit = (ss: Stmt[]) => { for (const s of ss) {
    if (s === loop) continue;
    if (s.k === "alloc" && s.buf.over !== undefined && stages.has(s.buf.over)) overlaid = true;
    if (s.k === "for") visit(s.body);
    else if (s.k === "if") { outside.push({ ...s, then: [], else: [] }); visit(s.then); visit(s.else); }
    else outside.push(s);
  } };
  visit(c.k.launch.body);
  return !overlaid && !bufferMentions(outside).some((b) => stages.has(b));
}
