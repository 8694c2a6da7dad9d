// padPackedTiles: rows of a 4-bit packed weight tile read by the register-fused dequant-gemm
// (fuse-dequant-gemm.ts) get 4 words (16 bytes) of padding where that spreads them over the
// banks. There, each group of 4 lanes reads 16 bytes of one row (its 4 words of two k-steps;
// one ld.shared.v4; with the mma order of src/quant/format.ts each of the 4 lanes reads its own
// one of 4 consecutive words), so a warp reads 16 bytes from each of 8 consecutive rows. With rows of
// W words that is one read per 16-byte bank group (128 bytes: every bank once) iff the row
// stride in 16-byte units, W / 4, is odd; BK 64 (W 8) and BK 128 (W 16) give 2 and 4, i.e.
// 2- and 4-way conflicts. Padding to W + 4 makes the stride odd (3 and 5). The copy into the
// tile keeps its region [0 : R, 0 : W] (cp.async rows stay 16-byte aligned); the tile costs
// 16 * R bytes more per stage. Runs on the tile level after inferLayouts, so --emit ir shows
// the padded shape.
import { type Kernel, type Stmt, int } from "../ir/ir.ts";
import { evalConst, mapStmts, walkStmts } from "../ir/expr.ts";
import { fusedDequantGemms, isTileWord } from "./fuse-dequant-gemm.ts";
import type { PassOptions } from "./types.ts";

/** Words of padding per row that make a [R, W] tile's 16-byte row stride odd (0 if it is). */
export function packedRowPad(W: number): number {
  return W % 4 === 0 && (W / 4) % 2 === 0 ? 4 : 0;
}

export function padPackedTiles(k: Kernel, opts: PassOptions): Kernel {
  if (k.launch.level !== "tile") return k;
  const allocs = new Map<string, Extract<Stmt, { k: "alloc" }>>();
  walkStmts(k.launch.body, (s) => { if (s.k === "alloc") allocs.set(s.buf.name, s); });
  const pad = new Map<string, number>();
  for (const [g, f] of fusedDequantGemms(k, opts.target)) {
    if (allocs.get(g.c.buf)?.buf.layout?.kind !== "mma_acc") continue; // the rule lowerToThreads applies
    if (f.per !== 8 || !isTileWord(f) || f.dequant.word.k !== "load") continue;
    const src = allocs.get(f.dequant.word.buf);
    const W = evalConst(f.loop.extents[1]!);
    if (!src || src.buf.scope !== "shared" || src.buf.shape.length !== 2 || W === undefined || evalConst(src.buf.shape[1]!) !== W) continue;
    // The 128-bit reads need an even k-step count per tile (W / 2 k-steps): W % 4 == 0.
    if (W % 4 !== 0 || !onlyCopiedAndDequantized(k, src.buf.name, W)) continue;
    const p = packedRowPad(W);
    if (p > 0) pad.set(src.buf.name, p);
  }
  if (pad.size === 0) return k;
  const body = mapStmts(k.launch.body, (s) => {
    if (s.k !== "alloc" || !pad.has(s.buf.name)) return undefined;
    const [R, W] = s.buf.shape as [typeof s.buf.shape[0], typeof s.buf.shape[0]];
    return { ...s, buf: { ...s.buf, shape: [R, int(evalConst(W)! + pad.get(s.buf.name)!)] } };
  });
  return { ...k, launch: { ...k.launch, body } };
}

/** The tile is written only by copies into its columns [0, W) and read only by loads (the
 *  dequant's words): nothing else sees its padding or its row stride. */
function onlyCopiedAndDequantized(k: Kernel, name: string, W: number): boolean {
  let ok = true;
  walkStmts(k.launch.body, (s) => {
    if (s.k === "copy" && s.src.buf === name) ok = false;
    if (s.k === "copy" && s.dst.buf === name) {
      const off = evalConst(s.dst.offsets[1]!), ext = evalConst(s.dst.extents[1]!);
      if (off !== 0 || ext !== W) ok = false;
    }
    if ((s.k === "store" || s.k === "atomic") && s.buf === name) ok = false;
    if ((s.k === "gemm" && (s.a.buf === name || s.b.buf === name)) || ((s.k === "fill" || s.k === "reduce" || s.k === "scan") && s.dst.buf === name)) ok = false;
  });
  return ok;
}
