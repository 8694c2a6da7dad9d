// pingPong (Target.pingpong, `--pingpong`; needs --ws and --persistent): two consumer
// warpgroups that take alternate tiles of a warp-specialized persistent block, so that one
// warpgroup's epilogue (convert, stage, store C) overlaps the other's main loop; CUTLASS calls
// this schedule "ping-pong". With one cooperative consumer set, the tensor cores idle through
// every tile's epilogue (Qwen3's down projection, 12 K tiles a tile, spends about as long in
// its fill and epilogue as in its main loop: bench/RESULTS.md).
//
// It runs after warpSpecialize, on the split that pass made for a kernel of T = 128 threads
// (one warpgroup: the tile's accumulator is that of `warps: 4`):
//
//   launch ... threads 256 {
//     allocs
//     if (tx >= 128) { setmaxnreg.dec; var pipe; barrier 2, 256; for tile_it { lets;
//                        if (...) { if (tx == 128) { loads }; pipe = pipe + n } } }
//     else { setmaxnreg.inc; var pipe; if (tx == 0) { inits }; barrier 2, 256;
//            for tile_it { TILE (lets, fill, MAIN: the statement holding the K loop, epilogue) } }
//   }
// ->
//   launch ... threads 384 {
//     allocs, alloc order: shared i64[2], a second copy of each consumer-private shared tile
//     if (tx >= 256) { the producer, its elected thread tx == 256, barrier 2, 384 }
//     else { setmaxnreg.inc; var pipe; if (tx == 0) { inits; mbar.init order[0..1] count 128 }
//            barrier 2, 384
//            if (tx < 128) { for tile_it { if (tile_it % 2 == 0) TILE_0 else SKIP } }
//            else          { for tile_it { if (tile_it % 2 == 1) TILE_1 else SKIP } } }
//   }
//
// TILE_c is the tile code with tx -> tx - 128 c (the thread's index in its warpgroup), every
// consumer barrier `barrier 1, 128` -> `barrier 3 + c, 128` (each warpgroup syncs alone), the
// private shared tiles renamed for consumer 1 (the epilogue's staging tile: both warpgroups
// run their epilogues at once), and MAIN ordered:
//   var signalled = 0
//   if (tile_it > 0) mbar.wait order[c] parity (tile_it - 1) / 2 & 1    the other's main loop
//   MAIN, its TMA K loop followed by                                      of tile_it - 1 is done
//     if (tile_it + 1 < tiles) mbar.arrive order[1 - c]; signalled = 1  (all 128 threads)
//   if (signalled == 0 && tile_it + 1 < tiles) mbar.arrive order[1 - c]  (fallback, skipped loop)
// SKIP is the producer's slice of the tile without its loads: the other consumer's tile still
// advances `pipe` by that tile's trip count (zero for a tile that skips the K loop), so both
// consumers index the one ring of stages the producer fills in tile order.
//
// Why the main loops are ordered (not only for speed: CUTLASS orders them so that one
// warpgroup issues wgmma at a time): a consumer waits on "full" barriers by phase parity,
// which tells phases apart only one phase ahead. Unordered, consumer 1 would wait on stage
// (n + k) % S for phase (n + k) / S while the producer is still filling consumer 0's tile, and
// a parity of an earlier phase of the same stage would let it through on consumer 0's data.
// Ordered, every earlier phase of every stage has completed (consumer 0 waited on them) when
// consumer 1 starts. The order also serialises the cp.async fallback (tensor maps unusable at
// run time), in which both consumers would otherwise fill the same stage tiles.
import { type Buffer, type Expr, type Kernel, type Stmt, bin, byteSize, int, v } from "../ir/ir.ts";
import { bufferMentions, evalConst, fold, freshNamer, mapStmts, substitute, walkStmts } from "../ir/expr.ts";
import { userError } from "../util/user-error.ts";
import type { PassOptions } from "./types.ts";
import { CONSUMER_BARRIER, ROLE_BARRIER } from "./warp-specialize.ts";

/** Threads of one consumer warpgroup: the tile code is lowered for one. */
export const PINGPONG_CONSUMER_THREADS = 128;
/** Named barrier of consumer c: PINGPONG_BARRIER + c (1 and 2 are warpSpecialize's). */
export const PINGPONG_BARRIER = 3;

type If = Extract<Stmt, { k: "if" }>;
type For = Extract<Stmt, { k: "for" }>;

export function pingPong(k: Kernel, opts: PassOptions): Kernel {
  if (!opts.target.pingpong) return k;
  const where = `ping-pong (--pingpong) of '${k.name}'`;
  if (!opts.target.warpSpecialize || opts.target.persistentBlocks === undefined)
    throw userError(`${where} alternates the tiles of warp-specialized persistent blocks; add --ws and --persistent P (e.g. 132), or drop --pingpong`);
  const L = k.launch;
  const tx = L.threadVar;
  const threads = evalConst(L.threads);
  if (L.level !== "thread" || !tx || threads === undefined) throw new Error("pingPong runs on thread-level kernels (after warpSpecialize)");
  const split = L.body.find((s): s is If => s.k === "if" && s.then[0]?.k === "setmaxnreg" && s.then[0].op === "dec");
  if (!split) throw userError(`${where} needs a warp-specialized TMA pipeline (a pipelined loop ending in a wgmma gemm whose operand tiles TMA loads, sm_90a); none was lowered so; build without --pingpong`);
  const T = threads - 128;
  if (T !== PINGPONG_CONSUMER_THREADS)
    throw userError(`${where}: each consumer warpgroup runs a whole tile, so the tile code is lowered for 128 threads; the kernel has ${T} (warps = ${T / 32}); use warps = 4 (two consumer warpgroups of 128 threads plus the producer), or drop --pingpong`);

  const cons = split.else;
  // The running counters of the setup (one per running pipeline, lower-pipeline-tma.ts).
  const pipes = cons.filter((s): s is Extract<Stmt, { k: "let" }> => s.k === "let" && s.mutable === true && assigned(cons, s.name));
  if (pipes.length > 1)
    throw userError(`${where}: the tile code runs ${pipes.length} pipelined K loops; ping-pong orders one main loop a tile; build without --pingpong`);
  const pipe = pipes[0];
  const loops = cons.filter((s): s is For => s.k === "for" && pipe !== undefined && assigned(s.body, pipe.name));
  if (!pipe || loops.length !== 1)
    throw userError(`${where} needs the running pipeline of persistent blocks (the producer streaming every tile's K tiles through one ring); '${k.name}' keeps a pipeline per tile (a buffer laid over a stage tile, or a stage tile used outside its loop); build without --pingpong`);
  const loop = loops[0]!;
  const prodLoop = split.then.find((s): s is For => s.k === "for" && s.vars[0] === loop.vars[0]);
  if (!prodLoop) throw new Error("pingPong: the producer has no tile loop");
  const mains = loop.body.filter((s) => assigned([s], pipe.name));
  if (mains.length !== 1)
    throw userError(`${where}: the tile code has ${mains.length} pipelined K loops at its top level; ping-pong orders one main loop a tile; build without --pingpong`);
  const main = mains[0]!;

  const fresh = freshNamer(k);
  const isLeader = (e: Expr) => e.k === "bin" && e.op === "==" && e.a.k === "var" && e.a.name === tx && evalConst(e.b) === T;
  // The producer: its elected thread is now the first of threads 256 .. 383.
  const role = (ss: Stmt[]) => mapStmts(ss, (s) =>
    s.k === "named_barrier" && s.id === ROLE_BARRIER ? { ...s, count: 2 * T + 128 } : undefined);
  const producer = mapStmts(role(split.then), (s) => s.k === "if" && isLeader(s.cond) ? { ...s, cond: bin("==", v(tx), int(2 * T)) } : undefined);
  // What a consumer runs for the other consumer's tile: the producer's slice less its loads.
  const skip = mapStmts(prodLoop.body, (s) => s.k === "if" && isLeader(s.cond) ? [] : undefined);

  // Shared tiles the tile code touches outside its main loop are each consumer's own.
  const allocs = new Map<string, Buffer>();
  for (const s of L.body) if (s.k === "alloc" && s.buf.scope === "shared") allocs.set(s.buf.name, s.buf);
  const priv = [...new Set(bufferMentions(loop.body.filter((s) => s !== main)))].filter((b) => allocs.has(b));
  const copies = new Map(priv.map((b) => [b, fresh(`${b}_1`)]));
  const order = fresh("order");
  const it = v(loop.vars[0]!);
  const tiles = loop.extents[0]!;

  const signalled = fresh("signalled");
  // The TMA path's K loop (its body starts with the wait on "full"): the other consumer may
  // start right after the loop's last wgmma is issued, while this one drains it (CUTLASS's
  // order too: its waits on "full" are all behind). Elsewhere (the cp.async fallback, whose
  // stage tiles the other would refill; a tile that skips the loop) the signal follows MAIN.
  const isTmaLoop = (s: Stmt) => s.k === "for" && s.body[0]?.k === "mbar_wait" && s.body[0].bar.buf !== order;
  const tileCode = (c: number): Stmt[] => {
    const signal: Stmt = { k: "mbar_arrive", bar: { buf: order, idx: [int(1 - c)] } };
    const hasNext = bin("<", bin("+", it, int(1)), tiles);
    const wait: Stmt = { k: "if", cond: bin(">", it, int(0)), then: [{ k: "mbar_wait", bar: { buf: order, idx: [int(c)] }, parity: fold(bin("&", bin("/", bin("-", it, int(1)), int(2)), int(1))) }], else: [] };
    let early = 0;
    const mainSignalled = mapStmts([main], (s) => {
      if (!isTmaLoop(s)) return undefined;
      early++;
      return [s, { k: "if", cond: hasNext, then: [signal], else: [] }, { k: "assign", name: signalled, value: int(1) }];
    });
    const ordered: Stmt[] = early === 0 ? [wait, main, { k: "if", cond: hasNext, then: [signal], else: [] }] : [
      { k: "let", name: signalled, dtype: "i32", value: int(0), mutable: true },
      wait,
      ...mainSignalled,
      { k: "if", cond: bin("&&", bin("==", v(signalled), int(0)), hasNext), then: [signal], else: [] },
    ];
    let body = loop.body.flatMap((s) => (s === main ? ordered : [s]));
    body = mapStmts(body, (s) => s.k === "named_barrier" && s.id === CONSUMER_BARRIER ? { ...s, id: PINGPONG_BARRIER + c } : undefined);
    if (c === 0) return body;
    return renameBuffers(substitute(body, new Map([[tx, bin("-", v(tx), int(T))]])), copies);
  };
  const consumerLoop = (c: number): Stmt => ({
    ...loop,
    body: [{ k: "if", cond: bin("==", bin("%", it, int(2)), int(c)), then: tileCode(c), else: skip }],
  });

  // The consumers' setup: the order barriers' inits join the pipeline's (before its fence).
  let inits = 0;
  const setup = role(cons.slice(0, cons.indexOf(loop))).map((s): Stmt => {
    if (s.k !== "if" || !s.then.some((x) => x.k === "mbar_fence_init")) return s;
    inits++;
    const mine: Stmt[] = [0, 1].map((c) => ({ k: "mbar_init", bar: { buf: order, idx: [int(c)] }, count: T }));
    const f = s.then.findIndex((x) => x.k === "mbar_fence_init");
    return { ...s, then: [...s.then.slice(0, f), ...mine, ...s.then.slice(f)] };
  });
  if (inits !== 1) throw new Error("pingPong: the consumers' setup has no mbarrier inits");
  const rest = cons.slice(cons.indexOf(loop) + 1);
  const consumers: Stmt[] = [...setup, { k: "if", cond: bin("<", v(tx), int(T)), then: [consumerLoop(0)], else: [consumerLoop(1)] }, ...rest];

  const orderBuf: Buffer = { name: order, scope: "shared", dtype: "i64", shape: [int(2)] };
  const extra: Stmt[] = [{ k: "alloc", buf: orderBuf }, ...priv.map((b): Stmt => ({ k: "alloc", buf: { ...allocs.get(b)!, name: copies.get(b)! } }))];
  const bytes = (b: Buffer) => Math.ceil((b.shape.reduce((a, d) => a * (evalConst(d) ?? NaN), 1) * byteSize(b.dtype)) / 128) * 128;
  const smem = k.smemBytes === undefined ? {} : { smemBytes: k.smemBytes + bytes(orderBuf) + priv.reduce((a, b) => a + bytes(allocs.get(b)!), 0) };
  const top = L.body.indexOf(split);
  const body = [...L.body.slice(0, top), ...extra, { ...split, cond: bin(">=", v(tx), int(2 * T)), then: producer, else: consumers }, ...L.body.slice(top + 1)];
  return { ...k, ...smem, launch: { ...L, threads: int(2 * T + 128), body } };
}

/** Does any statement (nested bodies included) assign `name`? */
function assigned(ss: Stmt[], name: string): boolean {
  let found = false;
  walkStmts(ss, (s) => { if (s.k === "assign" && s.name === name) found = true; });
  return found;
}

/** The statements with every mention of a buffer in `names` (a `buf` or `rows` field, an
 *  overlay's `over`) renamed. */
function renameBuffers(ss: Stmt[], names: Map<string, string>): Stmt[] {
  const visit = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(visit);
    if (!x || typeof x !== "object") return x;
    const out: Record<string, unknown> = {};
    for (const [key, val] of Object.entries(x))
      out[key] = (key === "buf" || key === "rows" || key === "over") && typeof val === "string" ? names.get(val) ?? val : visit(val);
    return out;
  };
  return visit(ss) as Stmt[];
}
