// Tile operations and allocations: T.copy / T.gemm / T.fill / T.clear and
// T.shared / T.fragment / T.local.
import { Node, type CallExpression } from "ts-morph";
import { type Buffer, type DType, type Expr, type Region, type Scope, type Stmt, int, flt } from "../ir/ir.ts";
import type { Ctx } from "./ctx.ts";
import { quote } from "./diag.ts";
import { bufferOf, cls, coerce, dtypeLiteral, intExpr, translateExpr, unwrapParens } from "./expr.ts";
import { describe } from "./scope.ts";
import { MOE_OPS, moeOp } from "./moe.ts";
import { dequantOp } from "./dequant.ts";

/** `X.tile([..], [..])`, a tile-view name, or a whole buffer/tensor -> a Region. */
export function region(node: Node, ctx: Ctx): { region: Region; dtype: DType; buf: Buffer } {
  const n = unwrapParens(node);
  if (Node.isCallExpression(n)) {
    const callee = n.getExpression();
    if (Node.isPropertyAccessExpression(callee) && callee.getName() === "tile") {
      const buf = bufferOf(callee.getExpression(), ctx);
      const args = n.getArguments();
      if (args.length !== 2) ctx.fail(n, `${buf.name}.tile takes 2 arguments (offsets, extents), got ${args.length}`);
      const offsets = exprList(args[0]!, ctx, "a tile offset", buf.shape.length, `${buf.name}.tile offsets`);
      const extents = exprList(args[1]!, ctx, "a tile extent", buf.shape.length, `${buf.name}.tile extents`);
      return { region: { buf: buf.name, offsets, extents }, dtype: buf.dtype, buf };
    }
  }
  if (Node.isIdentifier(n)) {
    const sym = ctx.scope.lookup(n.getText());
    if (sym?.kind === "tile") {
      const buf = (ctx.scope.lookup(sym.region.buf) as { kind: "buffer"; buf: Buffer }).buf;
      return { region: sym.region, dtype: sym.dtype, buf };
    }
    if (sym?.kind === "buffer") {
      const buf = sym.buf;
      return { region: { buf: buf.name, offsets: buf.shape.map(() => int(0)), extents: buf.shape }, dtype: buf.dtype, buf };
    }
    if (sym) ctx.fail(n, `'${n.getText()}' is a ${describe(sym)}; a tile op needs a tensor, a buffer or X.tile(offsets, extents)`);
    ctx.fail(n, `unknown identifier '${n.getText()}'`);
  }
  return ctx.fail(node, `expected a tensor, a buffer or X.tile(offsets, extents), got '${quote(node)}'`);
}

/** `X.rows(idx, col, width)`: the rows of a copy's source (a gather) or destination (a scatter)
 *  (docs/DSL.md): rows idx[0..R) of the 2-d tensor X, columns [col, col + width); R is idx's length. */
function rowsView(node: Node, ctx: Ctx): { region: Region; rows: string; buf: Buffer } | undefined {
  const n = unwrapParens(node);
  if (!Node.isCallExpression(n)) return undefined;
  const callee = n.getExpression();
  if (!Node.isPropertyAccessExpression(callee) || callee.getName() !== "rows") return undefined;
  const buf = bufferOf(callee.getExpression(), ctx);
  const args = n.getArguments();
  if (args.length !== 3) ctx.fail(n, `${buf.name}.rows takes 3 arguments (row indices, first column, width), got ${args.length}`);
  if (buf.scope !== "global" || buf.shape.length !== 2) ctx.fail(n, `${buf.name}.rows names rows of a 2-d tensor param; '${buf.name}' is a ${buf.shape.length}-d ${buf.scope} buffer`);
  const idx = bufferOf(args[0]!, ctx);
  if ((idx.scope !== "shared" && idx.scope !== "local") || idx.shape.length !== 1 || idx.dtype !== "i32")
    ctx.fail(args[0]!, `the row indices of ${buf.name}.rows must be a 1-d i32 T.shared or T.local buffer; '${idx.name}' is a ${idx.shape.length}-d ${idx.dtype} ${idx.scope} buffer`);
  const col = intExpr(args[1]!, ctx, "a column offset"), width = intExpr(args[2]!, ctx, "a tile width");
  return { region: { buf: buf.name, offsets: [int(0), col], extents: [idx.shape[0]!, width] }, rows: idx.name, buf };
}

/** An array literal of integer expressions of a given length. */
export function exprList(node: Node, ctx: Ctx, what: string, len: number | undefined, name: string): Expr[] {
  const n = unwrapParens(node);
  if (!Node.isArrayLiteralExpression(n)) return ctx.fail(node, `${name} must be an array literal like [a, b]`);
  const elems = n.getElements();
  if (len !== undefined && elems.length !== len)
    ctx.fail(node, `${name} need ${len} entr${len === 1 ? "y" : "ies"} (one per dim), got ${elems.length}`);
  return elems.map((e) => intExpr(e, ctx, what));
}

function markWritten(buf: Buffer, ctx: Ctx): void {
  if (buf.scope === "global") ctx.written.add(buf.name);
}

/** A T.* call in statement position. Returns undefined for names that are not tile ops. */
export function tileOp(node: CallExpression, fn: string, ctx: Ctx): Stmt | undefined {
  const loc = ctx.loc(node);
  const args = node.getArguments();
  const name = `${ctx.tName}.${fn}`;
  const need = (lo: number, hi = lo) => {
    if (args.length < lo || args.length > hi)
      ctx.fail(node, `${name} takes ${lo === hi ? lo : `${lo} or ${hi}`} arguments, got ${args.length}`);
  };
  if (MOE_OPS.has(fn)) return moeOp(node, fn, ctx);
  switch (fn) {
    case "copy": {
      need(2);
      const gather = rowsView(args[0]!, ctx);
      const scatter = rowsView(args[1]!, ctx);
      if (gather && scatter) ctx.fail(node, `${name}: a copy gathers rows (source .rows) or scatters them (destination .rows), not both`);
      if (scatter) {
        const src = region(args[0]!, ctx);
        if (src.region.extents.length !== 2) ctx.fail(args[0]!, `${name}: a row scatter writes a 2-d tile, '${quote(args[0]!)}' has rank ${src.region.extents.length}`);
        markWritten(scatter.buf, ctx);
        return { k: "copy", src: src.region, dst: scatter.region, dstRows: scatter.rows, loc };
      }
      if (gather) {
        const dst = region(args[1]!, ctx);
        if (dst.region.extents.length !== 2) ctx.fail(args[1]!, `${name}: a row gather fills a 2-d tile, '${quote(args[1]!)}' has rank ${dst.region.extents.length}`);
        markWritten(dst.buf, ctx);
        return { k: "copy", src: gather.region, dst: dst.region, rows: gather.rows, loc };
      }
      const src = region(args[0]!, ctx), dst = region(args[1]!, ctx);
      if (src.region.extents.length !== dst.region.extents.length)
        ctx.fail(node, `${name}: source has rank ${src.region.extents.length}, destination ${dst.region.extents.length}`);
      markWritten(dst.buf, ctx);
      return { k: "copy", src: src.region, dst: dst.region, loc };
    }
    case "gemm": {
      need(3, 4);
      const [a, b, c] = args.slice(0, 3).map((x) => region(x, ctx));
      for (const [r, x] of [[a!, args[0]!], [b!, args[1]!], [c!, args[2]!]] as const)
        if (r.region.extents.length !== 2) ctx.fail(x, `${name} operands must be 2-d tiles, '${quote(x)}' has rank ${r.region.extents.length}`);
      if (cls(c!.dtype) !== "float") ctx.fail(args[2]!, `${name} accumulates in floats; '${quote(args[2]!)}' is ${c!.dtype}`);
      const flags = args[3] ? gemmFlags(args[3], ctx) : { transA: false, transB: false };
      markWritten(c!.buf, ctx);
      return { k: "gemm", a: a!.region, b: b!.region, c: c!.region, ...flags, loc };
    }
    case "dequant": return dequantOp(node, ctx);
    case "clear": {
      need(1);
      const dst = region(args[0]!, ctx);
      markWritten(dst.buf, ctx);
      return { k: "fill", dst: dst.region, value: cls(dst.dtype) === "float" ? flt(0) : int(0), loc };
    }
    case "fill": {
      need(2);
      const dst = region(args[0]!, ctx);
      const value = coerce(translateExpr(args[1]!, ctx), dst.dtype, args[1]!, ctx);
      markWritten(dst.buf, ctx);
      return { k: "fill", dst: dst.region, value: value.e, loc };
    }
  }
  return undefined;
}

function gemmFlags(node: Node, ctx: Ctx): { transA: boolean; transB: boolean } {
  const n = unwrapParens(node);
  if (!Node.isObjectLiteralExpression(n)) return ctx.fail(node, "gemm options must be an object literal like { transB: true }");
  const flags = { transA: false, transB: false };
  for (const p of n.getProperties()) {
    if (!Node.isPropertyAssignment(p) || !["transA", "transB"].includes(p.getName()))
      ctx.fail(p, `unknown gemm option '${quote(p)}'; the options are transA and transB`);
    const init = unwrapParens(p.getInitializerOrThrow());
    if (!Node.isTrueLiteral(init) && !Node.isFalseLiteral(init))
      ctx.fail(init, `gemm option ${p.getName()} must be the literal true or false`);
    flags[p.getName() as "transA" | "transB"] = Node.isTrueLiteral(init);
  }
  return flags;
}

const ALLOC_SCOPES: Record<string, Scope> = { shared: "shared", fragment: "fragment", local: "local" };

/** `T.shared([BM, BK], "bf16")` etc. bound to `name`; undefined if `init` is not one. */
export function allocation(name: string, init: Node, ctx: Ctx): Buffer | undefined {
  const n = unwrapParens(init);
  if (!Node.isCallExpression(n)) return undefined;
  const callee = n.getExpression();
  if (!Node.isPropertyAccessExpression(callee) || callee.getExpression().getText() !== ctx.tName) return undefined;
  const scope = ALLOC_SCOPES[callee.getName()];
  if (!scope) return undefined;
  const args = n.getArguments();
  if (args.length !== 2) ctx.fail(n, `${ctx.tName}.${callee.getName()} takes 2 arguments (shape, dtype), got ${args.length}`);
  const shape = exprList(args[0]!, ctx, "a buffer dim", undefined, "the shape");
  if (shape.length === 0) ctx.fail(args[0]!, "a buffer needs at least one dim");
  return { name, scope, dtype: dtypeLiteral(args[1]!, ctx), shape };
}
