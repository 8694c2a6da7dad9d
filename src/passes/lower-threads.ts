// lowerToThreads: tile level -> thread level. Every statement becomes code that each
// thread of the block runs: allocations become 1-d, tile ops become per-thread loops
// (see lower-copy.ts, lower-gemm.ts, lower-pipeline.ts), fragment elements become the
// thread's own slots, and barriers guard shared memory between writers and readers.
import { signFacts, underGuard } from "./non-neg.ts";
import { type Buffer, type Expr, type Kernel, type Stmt, bin, byteSize, int, v } from "../ir/ir.ts";
import { TRUE, evalConst, fold, freshNamer, mapExpr, mapStmtExprs, walkExpr, walkStmts, stmtExprs } from "../ir/expr.ts";
import {
  type BufInfo, type Ctx, addr, countedLoop, slotLoop, fail, fragLayout, fragShape, guard, info, letI32, slotsOf, unflatten,
} from "./lower-ctx.ts";
import { lowerCopy, lowerFill, withBarriers } from "./lower-copy.ts";
import { lowerGemm } from "./lower-gemm.ts";
import { lowerPipelined, pipelineCopies, pipelineStages } from "./lower-pipeline.ts";
import { fragCoordExpr } from "./frag-coord.ts";
import { lowerMoeOp } from "./lower-moe.ts";
import type { PassOptions } from "./types.ts";
import { type DequantGemm, fusedDequantGemms } from "./fuse-dequant-gemm.ts";
import { epilogueHosts } from "./lower-epilogue.ts";
import { wsBlocksPerSM } from "./warp-specialize.ts";
import { dequantWgmmaGemms } from "./dequant-wgmma.ts";

type For = Extract<Stmt, { k: "for" }>;

/** Rewrites element accesses of scalar code: shared/local n-d -> 1-d addresses;
 *  fragments only through `slotOf` (inside a parallel loop mapped to slots). */
function rewriteExpr(c: Ctx, e: Expr, slotOf?: (buf: string, idx: Expr[]) => Expr | undefined): Expr {
  return mapExpr(e, (x) => {
    if (x.k !== "load") return undefined;
    const b = c.bufs.get(x.buf);
    if (!b || b.buf.scope === "global") return undefined;
    if (b.buf.scope === "fragment") {
      const s = slotOf?.(x.buf, x.idx);
      if (!s) fail(undefined, `fragment '${x.buf}' is indexed outside a T.parallel loop over its elements (index it with the loop's variables)`);
      return { k: "load", buf: x.buf, idx: [s] };
    }
    const r = addr(c, x.buf, x.idx);
    return { k: "load", buf: r.buf, idx: r.idx };
  });
}

function lowerScalar(c: Ctx, s: Stmt, slotOf?: (buf: string, idx: Expr[]) => Expr | undefined): Stmt {
  const re = (e: Expr) => rewriteExpr(c, e, slotOf);
  if (s.k === "store") {
    const b = info(c, s.buf);
    const value = re(s.value);
    if (b.buf.scope === "fragment") {
      const slot = slotOf?.(s.buf, s.idx);
      if (!slot) fail(s.loc, `fragment '${s.buf}' is written outside a T.parallel loop over its elements (index it with the loop's variables)`);
      return { ...s, idx: [slot], value };
    }
    if (b.buf.scope === "global") return { ...s, idx: s.idx.map(re), value };
    const r = addr(c, s.buf, s.idx.map(re));
    return { ...s, idx: r.idx, value };
  }
  if (s.k === "atomic") {
    const b = info(c, s.buf);
    if (b.buf.scope !== "global" && b.buf.scope !== "shared") fail(s.loc, `atomic on '${s.buf}' (${b.buf.scope}): atomics work on global or shared memory`);
    const idx = s.idx.map(re);
    return { ...s, idx: b.buf.scope === "shared" ? addr(c, s.buf, idx).idx : idx, value: re(s.value) };
  }
  return mapStmtExprs(s, re);
}

function lowerAlloc(c: Ctx, s: Extract<Stmt, { k: "alloc" }>): Stmt {
  const b = info(c, s.buf.name);
  const buf: Buffer = { ...s.buf };
  switch (s.buf.scope) {
    case "shared": buf.shape = [int(b.size * b.stages)]; break;
    case "local": buf.shape = [int(b.size)]; break;
    case "fragment": buf.scope = "local"; buf.shape = [int(slotsOf(c, b))]; buf.layout = fragLayout(b); break;
    default: break;
  }
  return { ...s, buf };
}

function writesShared(c: Ctx, body: Stmt[]): boolean {
  let w = false;
  walkStmts(body, (s) => { if ((s.k === "store" || s.k === "atomic") && c.bufs.get(s.buf)?.buf.scope === "shared") w = true; });
  return w;
}

/** Fragments accessed in a parallel loop body, and whether all accesses use exactly the
 *  loop's variables as indices. */
function fragmentAccesses(c: Ctx, loop: For): { frags: Set<string>; exact: boolean } {
  const frags = new Set<string>();
  let exact = true;
  const check = (buf: string, idx: Expr[]) => {
    if (c.bufs.get(buf)?.buf.scope !== "fragment") return;
    frags.add(buf);
    if (idx.length !== loop.vars.length || idx.some((e, d) => e.k !== "var" || e.name !== loop.vars[d])) exact = false;
  };
  walkStmts(loop.body, (s) => {
    if (s.k === "store") check(s.buf, s.idx);
    for (const e of stmtExprs(s)) walkExpr(e, (x) => { if (x.k === "load") check(x.buf, x.idx); });
  });
  return { frags, exact };
}

function lowerParallel(c: Ctx, loop: For): Stmt[] {
  walkStmts(loop.body, (s) => {
    if (s.k === "copy" || s.k === "fill" || s.k === "gemm" || s.k === "reduce" || s.k === "scan" || s.k === "topk" || (s.k === "for" && s.kind === "pipelined"))
      fail(s.loc ?? loop.loc, `T.${s.k === "for" ? "pipelined" : s.k} inside a T.parallel loop: tile operations involve the whole block; move it out of the loop`);
  });
  const { frags, exact } = fragmentAccesses(c, loop);
  if (frags.size > 0) {
    if (!exact) fail(loop.loc, `fragments in a T.parallel loop must be indexed by the loop's variables (${loop.vars.join(", ")}) in order`);
    const infos = [...frags].map((f) => info(c, f));
    const f0 = infos[0]!;
    const sig = (b: BufInfo) => JSON.stringify([b.shape, fragLayout(b)]);
    if (infos.some((b) => sig(b) !== sig(f0)))
      fail(loop.loc, `fragments ${[...frags].join(", ")} are used together in a T.parallel loop but differ in shape or layout`);
    const ext = loop.extents.map((e) => evalConst(e));
    if (ext.length !== f0.shape.length || ext.some((e, d) => e !== f0.shape[d]) || loop.starts.some((s) => evalConst(s) !== 0))
      fail(loop.loc, `a T.parallel loop over fragment '${f0.buf.name}' must cover its shape [${f0.shape.join(", ")}] from 0`);
    return withBarriers(c, writesShared(c, loop.body), slotLoop(c, int(slotsOf(c, f0)), (slot) => {
      const co = fragCoordExpr(fragLayout(f0), fragShape(c, f0), c.tx, slot);
      const lets: Stmt[] = [];
      const coords = f0.shape.length === 1 ? [co.col] : [co.row, co.col];
      loop.vars.forEach((name, d) => lets.push({ k: "let", name, dtype: "i32", value: coords[d]!, mutable: false }));
      const slotOf = (buf: string) => (frags.has(buf) ? slot : undefined);
      return [...lets, ...guard(co.valid ?? TRUE, lowerList(c, loop.body, slotOf))];
    }));
  }
  // Cyclic over the block's threads.
  const ext = loop.extents;
  const consts = ext.map((e) => evalConst(e));
  const total = ext.reduce<Expr>((a, e) => bin("*", a, e), int(1));
  const iters = fold(bin("cdiv", total, int(c.threads)));
  const body = countedLoop(c, "it", iters, (it) => {
    const pre: Stmt[] = [];
    const e = letI32(c, "e", bin("+", bin("*", it, int(c.threads)), c.tx), pre);
    const q = consts.every((x) => x !== undefined)
      ? unflatten(e, consts as number[])
      : unflattenDyn(e, ext);
    const lets: Stmt[] = loop.vars.map((name, d) => ({ k: "let", name, dtype: "i32", value: fold(bin("+", loop.starts[d]!, q[d]!)), mutable: false }));
    const full = consts.every((x) => x !== undefined) && (consts as number[]).reduce((a, b) => a * b, 1) % c.threads === 0;
    return [...pre, ...guard(full ? TRUE : bin("<", e, total), [...lets, ...lowerList(c, loop.body)])];
  });
  return withBarriers(c, writesShared(c, loop.body), body);
}

function unflattenDyn(e: Expr, ext: Expr[]): Expr[] {
  const out: Expr[] = [];
  let stride: Expr = int(1);
  for (let d = ext.length - 1; d >= 0; d--) {
    const x = bin("/", e, stride);
    out.unshift(fold(d === 0 ? x : bin("%", x, ext[d]!)));
    stride = bin("*", stride, ext[d]!);
  }
  return out;
}

/** A short constant-trip serial loop whose variable indexes a register array (local or
 *  fragment slots): unrolled, or the array would be demoted to local memory. */
function indexesRegisters(c: Ctx, loop: For): boolean {
  if (loop.kind !== "serial" || loop.vars.length !== 1) return false;
  const n = evalConst(loop.extents[0]!);
  if (n === undefined || n > 32) return false;
  const name = loop.vars[0]!;
  const isReg = (b: string) => { const s = c.bufs.get(b)?.buf.scope; return s === "local" || s === "fragment"; };
  const usesVar = (idx: Expr[]) => idx.some((e) => { let u = false; walkExpr(e, (x) => { if (x.k === "var" && x.name === name) u = true; }); return u; });
  let hit = false;
  walkStmts(loop.body, (s) => {
    if (s.k === "store" && isReg(s.buf) && usesVar(s.idx)) hit = true;
    for (const e of stmtExprs(s)) walkExpr(e, (x) => { if (x.k === "load" && isReg(x.buf) && usesVar(x.idx)) hit = true; });
  });
  return hit;
}

function lowerList(c: Ctx, body: Stmt[], slotOf?: (buf: string, idx: Expr[]) => Expr | undefined): Stmt[] {
  const out: Stmt[] = [];
  for (const s of body) {
    switch (s.k) {
      case "alloc":
        if (!fusedTile(c, s.buf.name)) out.push(lowerAlloc(c, s));
        break;
      case "copy": out.push(...lowerCopy(c, s)); break;
      case "fill": out.push(...lowerFill(c, s)); break;
      case "gemm": out.push(...lowerGemm(c, s)); break;
      case "reduce": case "topk": case "scan": out.push(...lowerMoeOp(c, s)); break;
      case "for":
        if (c.fusedLoops.has(s)) break;
        if (s.kind === "parallel") {
          if (slotOf) fail(s.loc, `nested T.parallel loops are not supported`);
          out.push(...lowerParallel(c, s));
        } else if (s.kind === "pipelined") out.push(...lowerPipelined(c, s));
        else {
          const low = { ...(lowerScalar(c, s, slotOf) as For), body: lowerList(c, s.body, slotOf) };
          out.push(indexesRegisters(c, low) ? { ...low, kind: "unroll" } : low);
        }
        break;
      case "if": {
        const x = lowerScalar(c, s, slotOf) as Extract<Stmt, { k: "if" }>;
        // In the then branch the names the test shows non-negative are (their bounds tests drop >= 0).
        const then = underGuard(s.cond, c.unproven, c.fixed, () => lowerList(c, s.then, slotOf));
        out.push({ ...x, then, else: lowerList(c, s.else, slotOf) });
        break;
      }
      default: out.push(lowerScalar(c, s, slotOf));
    }
  }
  return out;
}

/** The bf16 tile of a register-fused dequant-gemm: it never exists. */
function fusedTile(c: Ctx, name: string): boolean {
  for (const f of c.dequantGemms.values()) if (f.tile === name) return true;
  return false;
}

/** Drops barriers before the first shared-memory access: nothing to order yet. */
function dropLeadingBarriers(body: Stmt[], isShared: (b: string) => boolean): Stmt[] {
  const out: Stmt[] = [];
  let seen = false;
  for (const s of body) {
    if (!seen && s.k === "barrier") continue;
    if (!seen) walkStmts([s], (t) => {
      if (t.k === "alloc") return;
      if (((t.k === "store" || t.k === "atomic") && isShared(t.buf)) || t.k === "cp_async" || t.k === "ldmatrix" || t.k === "vcopy" && (isShared(t.dst.buf) || isShared(t.src.buf))) seen = true;
      // mbarriers live in shared memory: the barrier after their init publishes them.
      if (t.k === "mbar_init" || t.k === "mbar_arrive" || t.k === "mbar_wait" || t.k === "tma_load") seen = true;
      for (const e of stmtExprs(t)) walkExpr(e, (x) => { if (x.k === "load" && isShared(x.buf)) seen = true; });
    });
    out.push(s);
  }
  return out;
}

export function lowerToThreads(k: Kernel, opts: PassOptions): Kernel {
  if (k.launch.level !== "tile") throw new Error("lowerToThreads: the kernel is already at thread level");
  const threads = evalConst(k.launch.threads);
  if (threads === undefined) throw new Error("lowerToThreads: threads must be constant");
  const fresh = freshNamer(k);
  const tx = fresh("tx");
  const bufs = new Map<string, BufInfo>();
  for (const p of k.params)
    if (p.kind === "tensor") bufs.set(p.name, { buf: { name: p.name, scope: "global", dtype: p.dtype, shape: p.shape ?? [], align: p.align }, shape: [], size: 0, stages: 1, align: p.align });
  walkStmts(k.launch.body, (s) => {
    if (s.k !== "alloc") return;
    const shape = s.buf.shape.map((d) => evalConst(d) ?? NaN);
    bufs.set(s.buf.name, { buf: s.buf, shape, size: shape.reduce((a, b) => a * b, 1), stages: 1 });
  });
  walkStmts(k.launch.body, (s) => {
    if (s.k !== "for" || s.kind !== "pipelined") return;
    const S = pipelineStages(opts.target, s);
    if (S < 2) return;
    for (const cp of pipelineCopies({ bufs }, s)) { const b = bufs.get(cp.dst.buf)!; b.stages = Math.max(b.stages, S); }
  });
  // Register-fused dequant-gemms: chosen here and in inferLayouts by the same rule, taken
  // only where the accumulator got the mma.sync layout.
  const dequantGemms = new Map<Stmt, DequantGemm>();
  for (const [g, f] of fusedDequantGemms(k, opts.target))
    if (bufs.get(g.c.buf)?.buf.layout?.kind === "mma_acc") dequantGemms.set(g, f);
  for (const [g, r] of dequantWgmmaGemms(k, opts.target))
    if (JSON.stringify(bufs.get(g.c.buf)?.buf.layout) === JSON.stringify(r.acc)) dequantGemms.set(g, r.f);
  const fusedLoops = new Set<Stmt>([...dequantGemms.values()].map((f) => f.loop));
  const c: Ctx = { k, ...signFacts(k), target: opts.target, threads, tx: v(tx), fresh, bufs, stage: new Map(), hoisted: [], setup: [], tensorMaps: [], lowerBody: (cc, b) => lowerList(cc, b), dequantGemms, fusedLoops,
    epilogueHosts: epilogueHosts(k.launch.body) };
  // Each buffer on a 128-byte boundary, as the CUDA emitter carves them (codegen/cuda/smem.ts).
  const sharedBytes = () => {
    let n = 0;
    for (const b of bufs.values())
      if (b.buf.scope === "shared" && !fusedTile(c, b.buf.name) && b.buf.over === undefined) n += Math.ceil((b.size * b.stages * byteSize(b.buf.dtype)) / 128) * 128;
    return n;
  };
  c.sharedBytes = sharedBytes;
  // Warp specialization's register plan: more than one block per SM where the tile is small.
  // Not for register-dequant gemms (their consumers hold two register sets of the weight tile
  // besides the accumulators) nor persistent blocks (one per SM by construction).
  if (opts.target.warpSpecialize && dequantGemms.size === 0 && opts.target.persistentBlocks === undefined) {
    let accRegs = 0;
    for (const b of bufs.values()) if (b.buf.scope === "fragment") accRegs += Math.ceil((b.size * byteSize(b.buf.dtype)) / 4 / threads);
    // The lowering adds its mbarriers (a few hundred bytes) to the tiles counted here.
    c.wsPerSM = wsBlocksPerSM(threads, accRegs, sharedBytes() + 512);
  }
  const lowered = lowerList(c, k.launch.body);
  const isShared = (b: string) => bufs.get(b)?.buf.scope === "shared";
  const body = [...c.setup, ...dropLeadingBarriers([...c.hoisted, ...lowered], isShared)];
  const smem = sharedBytes();
  const maps = c.tensorMaps.length > 0 ? { tensorMaps: c.tensorMaps } : {};
  // Recorded only where setmaxnreg counts were planned for it (the TMA pipeline took the
  // warp-specialized path) and it is not the default one.
  let setsRegs = false;
  walkStmts(body, (s) => { if (s.k === "setmaxnreg") setsRegs = true; });
  const perSM = setsRegs && (c.wsPerSM ?? 1) > 1 ? { perSM: c.wsPerSM } : {};
  const setup = c.setup.length > 0 ? { setup: c.setup.length } : {};
  return { ...k, ...maps, smemBytes: smem, launch: { ...k.launch, ...perSM, ...setup, level: "thread", threadVar: tx, body } };
}
