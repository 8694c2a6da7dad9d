// inferLayouts: decides which thread holds which fragment element, and how shared gemm
// operands are placed. A fragment becomes mma_acc when every gemm accumulating into it can
// run on tensor cores; the shared operands of those gemms get the XOR swizzle. Everything
// else is cyclic. Fragments used elementwise together with an mma_acc fragment of the same
// shape (in one parallel loop) take the same layout, so the loop maps both with one slot.
import { CompileError, type Buffer, type DType, type Kernel, type Layout, type Region, type Stmt } from "../ir/ir.ts";
import { evalConst, mapStmts, walkExpr, walkStmts, stmtExprs } from "../ir/expr.ts";
import { mmaAccProblem } from "../layout/fragment.ts";
import { swizzleFor } from "../layout/swizzle.ts";
import { mmaProblem, mmaWarpArrangements } from "./lower-gemm-mma.ts";
import type { PassOptions } from "./types.ts";
import { mmaMode, wgmmaChoice } from "./lower-gemm-wgmma.ts";
import { fusedDequantGemms } from "./fuse-dequant-gemm.ts";
import { dequantWgmmaGemms } from "./dequant-wgmma.ts";

export const shapeOf = (b: Buffer): number[] => b.shape.map((d) => evalConst(d) ?? NaN);

/** Does the region cover its whole (constant-shaped) buffer? */
export function wholeBuffer(r: Region, b: Buffer): boolean {
  const shape = shapeOf(b);
  return r.offsets.every((o) => evalConst(o) === 0) && r.extents.every((e, i) => evalConst(e) === shape[i]);
}

/** warpsM x warpsN = warps with warp tiles as square as possible. */
export function chooseWarps(m: number, n: number, threads: number): { warpsM: number; warpsN: number } | undefined {
  let best: { warpsM: number; warpsN: number } | undefined, bestScore = Infinity;
  for (const w of mmaWarpArrangements(m, n, threads)) {
    if (mmaAccProblem(w, { rows: m, cols: n, threads })) continue;
    const r = m / w.warpsM, c = n / w.warpsN;
    const score = Math.max(r / c, c / r);
    if (score < bestScore) { best = w; bestScore = score; }
  }
  return best;
}

const is16 = (t: DType) => t === "bf16" || t === "f16";

export function inferLayouts(k: Kernel, opts: PassOptions): Kernel {
  const threads = evalConst(k.launch.threads);
  if (threads === undefined) throw new Error("inferLayouts: threads must be constant (run specialize first)");
  const bufs = new Map<string, Buffer>();
  walkStmts(k.launch.body, (s) => { if (s.k === "alloc") bufs.set(s.buf.name, s.buf); });

  // Gemms whose B is dequantized in registers take mma.sync (fuse-dequant-gemm.ts says when),
  // and their bf16 B tile, which will not exist, gets no swizzle.
  const fused = fusedDequantGemms(k, opts.target);
  // Those whose weights are wgmma's register A operand (dequant-wgmma.ts) come first: the
  // transposed accumulator, the activation tile swizzled as wgmma's B.
  const regA = dequantWgmmaGemms(k, opts.target);
  const acc = new Map<string, Layout | null>(); // null: some gemm into it cannot use mma
  const swz = new Map<string, Layout>();
  walkStmts(k.launch.body, (s) => {
    if (s.k !== "gemm") return;
    const a = bufs.get(s.a.buf), b = bufs.get(s.b.buf), c = bufs.get(s.c.buf);
    if (!c || c.scope !== "fragment") return;
    const prev = acc.get(c.name);
    if (prev === null) return;
    const ra = regA.get(s);
    if (ra && (prev === undefined || JSON.stringify(prev) === JSON.stringify(ra.acc))) {
      acc.set(c.name, ra.acc);
      if (a && !a.layout) swz.set(a.name, ra.aLayout);
      return;
    }
    const ok = opts.target.mma && a && b && a.scope === "shared" && b.scope === "shared" && is16(a.dtype) && is16(b.dtype)
      && a.shape.length === 2 && b.shape.length === 2 && c.shape.length === 2
      && wholeBuffer(s.c, c) && wholeBuffer(s.a, a) && wholeBuffer(s.b, b) && c.dtype === "f32";
    if (!ok) { acc.set(c.name, null); return; }
    const [m, n] = shapeOf(c) as [number, number];
    const kk = s.transA ? evalConst(s.a.extents[0]!)! : evalConst(s.a.extents[1]!)!;
    const mode = mmaMode(opts.target, k.config);
    if (mode !== "mma_sync" && !fused.has(s)) {
      const w = wgmmaChoice({ m, n, k: kk, threads, atype: a.dtype, btype: b.dtype, transA: s.transA, transB: s.transB,
        aCols: shapeOf(a)[1]!, bCols: shapeOf(b)[1]!, aLayout: a.layout ?? swz.get(a.name), bLayout: b.layout ?? swz.get(b.name), whole: true });
      const prevOk = prev === undefined || prev.kind === "wgmma_acc";
      if (typeof w !== "string" && prevOk) {
        acc.set(c.name, w.acc);
        if (!a.layout) swz.set(a.name, w.aLayout);
        if (!b.layout) swz.set(b.name, w.bLayout);
        return;
      }
      if (mode === "wgmma")
        throw new CompileError([{ loc: s.loc, severity: "error", message: `mma = "wgmma": this gemm cannot use wgmma: ${typeof w === "string" ? w : "another gemm into the same accumulator does not"}` }]);
    }
    const w = mmaProblem({ m, n, k: kk, atype: a.dtype, btype: b.dtype, threads }) ? undefined : chooseWarps(m, n, threads);
    if (!w) { acc.set(c.name, null); return; }
    acc.set(c.name, { kind: "mma_acc", ...w });
    // Operand tiles are addressed through sharedIndex everywhere, so any swizzle is correct;
    // it only pays off (and ldmatrix needs 16-byte rows) when the gemm reads whole tiles.
    for (const [r, buf] of fused.has(s) ? [[s.a, a] as const] : [[s.a, a], [s.b, b]] as const) {
      const sw = wholeBuffer(r, buf) ? swizzleFor(shapeOf(buf)[1]!) : undefined;
      if (sw && !buf.layout) swz.set(buf.name, sw);
    }
  });

  // Elementwise companions: fragments indexed in one parallel loop share the first mma_acc layout.
  const layout = new Map<string, Layout>();
  for (const [n, l] of acc) if (l) layout.set(n, l);
  walkStmts(k.launch.body, (s) => {
    if (s.k === "copy") {
      // Fragment-to-fragment copies move slot to slot: both ends need one layout.
      const [x, y] = [s.src.buf, s.dst.buf];
      if (bufs.get(x)?.scope !== "fragment" || bufs.get(y)?.scope !== "fragment") return;
      if (shapeOf(bufs.get(x)!).join(",") !== shapeOf(bufs.get(y)!).join(",")) return;
      if (layout.has(x) && !layout.has(y)) layout.set(y, layout.get(x)!);
      else if (layout.has(y) && !layout.has(x)) layout.set(x, layout.get(y)!);
      return;
    }
    if (s.k !== "for" || s.kind !== "parallel") return;
    const frags = new Set<string>();
    walkStmts(s.body, (t) => {
      if (t.k === "store" && bufs.get(t.buf)?.scope === "fragment") frags.add(t.buf);
      for (const e of stmtExprs(t)) walkExpr(e, (x) => { if (x.k === "load" && bufs.get(x.buf)?.scope === "fragment") frags.add(x.buf); });
    });
    const lead = [...frags].find((f) => layout.get(f)?.kind === "mma_acc" || layout.get(f)?.kind === "wgmma_acc");
    if (!lead) return;
    const shape = shapeOf(bufs.get(lead)!).join(",");
    for (const f of frags) if (!layout.has(f) && shapeOf(bufs.get(f)!).join(",") === shape) layout.set(f, layout.get(lead)!);
  });

  const body = mapStmts(k.launch.body, (s): Stmt | undefined => {
    if (s.k !== "alloc") return undefined;
    const b = s.buf;
    if (b.scope === "fragment" && !b.layout) return { ...s, buf: { ...b, layout: layout.get(b.name) ?? { kind: "cyclic" } } };
    if (b.scope === "shared" && !b.layout && swz.has(b.name)) return { ...s, buf: { ...b, layout: swz.get(b.name)! } };
    return undefined;
  });
  return { ...k, launch: { ...k.launch, body } };
}
