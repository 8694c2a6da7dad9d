// Thread-level lowering of a tile gemm: the tensor-core path (lower-gemm-mma.ts) when
// layout inference gave the accumulator an mma_acc layout, otherwise a scalar fallback
// where each thread computes its own accumulator slots from shared memory.
import { type DType, type Expr, type Stmt, bin, int, v } from "../ir/ir.ts";
import { TRUE } from "../ir/expr.ts";
import { lowerGemmMma } from "./lower-gemm-mma.ts";
import { lowerGemmWgmma } from "./lower-gemm-wgmma.ts";
import { dequantBOperand } from "./fuse-dequant-gemm.ts";
import { lowerDequantWgmma } from "./dequant-wgmma.ts";
import { type Ctx, addr, constExtents, countedLoop, slotLoop, fail, fragLayout, fragShape, guard, info, letI32, slotsOf, stageBase } from "./lower-ctx.ts";
import { fragCoordExpr } from "./frag-coord.ts";
import { wholeBuffer } from "./infer-layouts.ts";

type Gemm = Extract<Stmt, { k: "gemm" }>;

export function lowerGemm(c: Ctx, g: Gemm): Stmt[] {
  const a = info(c, g.a.buf), b = info(c, g.b.buf), acc = info(c, g.c.buf);
  if (acc.buf.scope !== "fragment") fail(g.loc, `gemm accumulates into '${g.c.buf}', which is ${acc.buf.scope}; it must be a fragment`);
  for (const x of [a, b])
    if (x.buf.scope !== "shared") fail(g.loc, `gemm operand '${x.buf.name}' is ${x.buf.scope} memory; copy it to a shared tile first`);
  const layout = fragLayout(acc);
  if (layout.kind === "wgmma_acc") {
    const regA = c.dequantGemms.get(g);
    if (regA) return lowerDequantWgmma(c, g, regA);
    const op = (x: typeof a) => ({ buf: x.buf.name, base: stageBase(c, x.buf.name), rows: x.shape[0]!, cols: x.shape[1]! });
    return lowerGemmWgmma({ a: op(a), b: op(b), c: { buf: acc.buf.name, rows: acc.shape[0]!, cols: acc.shape[1]!, layout },
      atype: a.buf.dtype as "bf16" | "f16", threads: c.threads, tx: c.tx, fresh: c.fresh, loc: g.loc, inPipeline: c.wgmmaInPipeline });
  }
  if (layout.kind === "mma_acc") {
    if (!c.target.mma) throw new Error("lowerToThreads: mma_acc layout on a target without mma");
    const op = (x: typeof a) => ({ buf: x.buf.name, base: stageBase(c, x.buf.name), rows: x.shape[0]!, cols: x.shape[1]!, layout: x.buf.layout });
    const fused = c.dequantGemms.get(g);
    const operand = fused ? dequantBOperand(c, fused) : undefined;
    const r = lowerGemmMma({
      a: op(a), b: op(b), transA: g.transA, transB: g.transB,
      c: { buf: acc.buf.name, rows: acc.shape[0]!, cols: acc.shape[1]!, warpsM: layout.warpsM, warpsN: layout.warpsN },
      atype: a.buf.dtype as "bf16" | "f16", threads: c.threads, tx: c.tx, fresh: c.fresh,
      ...(operand ? { bLoader: operand.bLoader, ...(operand.rowBias !== undefined ? { rowBias: operand.rowBias } : {}) } : {}),
    });
    c.hoisted.push(...r.allocs);
    return r.body;
  }
  return scalarGemm(c, g);
}

function scalarGemm(c: Ctx, g: Gemm): Stmt[] {
  const a = info(c, g.a.buf), b = info(c, g.b.buf), acc = info(c, g.c.buf);
  const [ae, ce] = [constExtents(g.a), constExtents(g.c)];
  const K = g.transA ? ae[0]! : ae[1]!;
  const prod: DType = a.buf.dtype === "f64" && b.buf.dtype === "f64" ? "f64" : "f32";
  const f = (e: Expr, t: DType): Expr => (t === prod ? e : { k: "cast", dtype: prod, a: e });
  const ld = (name: string, idx: Expr[]): Expr => { const r = addr(c, name, idx); return { k: "load", buf: r.buf, idx: r.idx }; };
  const off = (r: typeof g.a, d: number, x: Expr) => bin("+", r.offsets[d]!, x);
  const slots = int(slotsOf(c, acc));
  const slotPos = (slot: Expr, pre: Stmt[]) => {
    const co = fragCoordExpr(layout(acc), fragShape(c, acc), c.tx, slot);
    const row = letI32(c, "r", co.row, pre), col = letI32(c, "c", co.col, pre);
    // Position inside the c region (the gemm may update a sub-tile of the fragment).
    const i = letI32(c, "i", bin("-", row, g.c.offsets[0]!), pre), j = letI32(c, "j", bin("-", col, g.c.offsets[1]!), pre);
    const inside = wholeBuffer(g.c, acc.buf) ? TRUE : bin("&&", bin("&&", bin(">=", i, int(0)), bin("<", i, int(ce[0]!))), bin("&&", bin(">=", j, int(0)), bin("<", j, int(ce[1]!))));
    return { i, j, ok: bin("&&", co.valid ?? TRUE, inside) };
  };
  const product = (i: Expr, j: Expr, kk: Expr): Expr => {
    const av = ld(a.buf.name, g.transA ? [off(g.a, 0, kk), off(g.a, 1, i)] : [off(g.a, 0, i), off(g.a, 1, kk)]);
    const bv = ld(b.buf.name, g.transB ? [off(g.b, 0, j), off(g.b, 1, kk)] : [off(g.b, 0, kk), off(g.b, 1, j)]);
    return bin("*", f(av, a.buf.dtype), f(bv, b.buf.dtype));
  };
  if (acc.buf.dtype === prod) {
    // k outermost: every slot's accumulator stays in a register across the k loop, and the
    // operand element a slot shares with its neighbours (same row or column) is loaded once
    // per k by common-subexpression elimination.
    return countedLoop(c, "kk", int(K), (kk) => slotLoop(c, slots, (slot) => {
      const pre: Stmt[] = [];
      const { i, j, ok } = slotPos(slot, pre);
      const accv: Expr = { k: "load", buf: acc.buf.name, idx: [slot] };
      return [...pre, ...guard(ok, [{ k: "store", buf: acc.buf.name, idx: [slot], value: bin("+", accv, product(i, j, kk)) }])];
    }), 16);
  }
  // A narrower accumulator: sum in the product type, round once per gemm.
  return slotLoop(c, slots, (slot) => {
    const pre: Stmt[] = [];
    const { i, j, ok } = slotPos(slot, pre);
    const sum = c.fresh("sum");
    const body = countedLoop(c, "kk", int(K), (kk) => [{ k: "assign", name: sum, value: bin("+", v(sum), product(i, j, kk)) }], 64);
    const accv: Expr = { k: "load", buf: acc.buf.name, idx: [slot] };
    const upd: Stmt[] = [
      { k: "let", name: sum, dtype: prod, value: f(accv, acc.buf.dtype), mutable: true },
      ...body,
      { k: "store", buf: acc.buf.name, idx: [slot], value: { k: "cast", dtype: acc.buf.dtype, a: v(sum) } },
    ];
    return [...pre, ...guard(ok, upd)];
  });
}

const layout = fragLayout;
