// T.dequant(src, dst, { format, order?, scales, zeros?, group, at, K }): packed weight words
// -> a bf16/f16 tile, as a tile-level parallel loop over the words around the `dequant`
// statement (one word in, 4 or 8 values out). The front end expands it so that every pass
// already knows the result: the loop is cooperative over the block's threads, its shared
// stores get the tile's swizzle and pipeline stage, and the barriers that order it
// against the gemm come from the ordinary shared-write rules.
import { Node, type CallExpression } from "ts-morph";
import { type Buffer, type DType, type Expr, type Stmt, bin, int, flt, v } from "../ir/ir.ts";
import { evalConst } from "../ir/expr.ts";
import { dequantColumn } from "../quant/column.ts";
import { type QFormat, type QOrder, QFORMATS, QORDERS, orderProblem, slotOrder, valuesPerWord } from "../quant/format.ts";
import type { Ctx } from "./ctx.ts";
import { quote } from "./diag.ts";
import { bufferOf, intExpr } from "./expr.ts";
import { exprList, region } from "./ops.ts";

const counters = new WeakMap<Ctx, number>();
function prefix(ctx: Ctx): string {
  const n = counters.get(ctx) ?? 0;
  counters.set(ctx, n + 1);
  return `dq${n}_`;
}

interface Options {
  format: QFormat; order: QOrder; scales?: Buffer; zeros?: Buffer | number; group: number; at: Expr[]; K: Expr;
}

function stringOpt<T extends string>(node: Node, allowed: readonly T[], what: string, ctx: Ctx): T {
  const s = Node.isStringLiteral(node) || Node.isNoSubstitutionTemplateLiteral(node) ? node.getLiteralValue() : undefined;
  if (s === undefined || !(allowed as readonly string[]).includes(s))
    ctx.fail(node, `${what} must be one of ${allowed.map((x) => `"${x}"`).join(", ")}, got '${quote(node)}'`);
  return s as T;
}

function options(node: Node, ctx: Ctx): Options {
  if (!Node.isObjectLiteralExpression(node))
    return ctx.fail(node, `dequant options must be an object literal like { format: "u4", scales: S, group: 128, at: [n0, k0], K }`);
  const got = new Map<string, Node>();
  for (const p of node.getProperties()) {
    if (Node.isShorthandPropertyAssignment(p)) { got.set(p.getName(), p.getNameNode()); continue; }
    if (!Node.isPropertyAssignment(p)) ctx.fail(p, `unsupported dequant option '${quote(p)}'`);
    got.set(p.getName(), p.getInitializerOrThrow());
  }
  const known = ["format", "order", "scales", "zeros", "group", "at", "K"];
  for (const [name, n] of got) if (!known.includes(name)) ctx.fail(n, `unknown dequant option '${name}'; the options are ${known.join(", ")}`);
  for (const need of ["format", "at", "K"])
    if (!got.has(need)) ctx.fail(node, `dequant needs the option '${need}'`);
  const format = stringOpt(got.get("format")!, QFORMATS, "format", ctx);
  const order = got.has("order") ? stringOpt(got.get("order")!, QORDERS, "order", ctx) : "linear";
  // Without scales the tile holds round(q - zero): the unscaled weights, for a kernel that
  // applies the group scale itself to f32 partial sums (docs/QUANT.md, "Group scales on partial sums").
  let scales: Buffer | undefined;
  const sn = got.get("scales");
  if (sn) {
    scales = bufferOf(sn, ctx);
    if (scales.scope !== "global" || scales.shape.length !== 2) ctx.fail(sn, `scales must be a 2-d tensor [N, groups]`);
  }
  let zeros: Buffer | number | undefined;
  const zn = got.get("zeros");
  if (zn) {
    if (Node.isNumericLiteral(zn)) zeros = Number(zn.getText());
    else {
      zeros = bufferOf(zn, ctx);
      if (zeros.scope !== "global" || zeros.shape.length !== 2) ctx.fail(zn, `zeros must be a number or a 2-d tensor ([N, groups] floats, or [N, cdiv(groups, 8)] u32 of packed u4)`);
    }
  }
  const bad = orderProblem(format, order);
  if (bad) ctx.fail(got.get("order")!, `${bad}; use "interleaved" for 8-bit words`);
  const gn = got.get("group");
  const zerosTensor = zeros !== undefined && typeof zeros !== "number";
  if (!gn && (scales || zerosTensor)) ctx.fail(node, `dequant needs the option 'group' (the values of K that share one ${scales ? "scale" : "zero point"})`);
  let group = 0;
  // An mma-order word spans a 32-value block (docs/QUANT.md): one group per word needs groups of whole blocks.
  const unit = order === "mma" ? 32 : valuesPerWord(format);
  const what = order === "mma" ? `32 (an mma-order word spans 32 values of K)` : `${unit} (values per word)`;
  if (!gn) group = 0;
  else if (Node.isStringLiteral(gn) && gn.getLiteralValue() === "channel") group = 0;
  else if (Node.isNumericLiteral(gn) && Number(gn.getText()) > 0 && Number(gn.getText()) % unit === 0) group = Number(gn.getText());
  else ctx.fail(gn, `group must be "channel" or a positive literal multiple of ${what}, got '${quote(gn)}'`);
  const at = exprList(got.get("at")!, ctx, "a dequant origin", 2, "at");
  const K = intExpr(got.get("K")!, ctx, "the column count K");
  return { format, order, scales, zeros, group, at, K };
}

/** A read of a global element, 0 outside the tensor (element reads are not masked). */
function maskedRead(name: string, buf: Buffer, idx: Expr[], as: DType, value: (e: Expr) => Expr, out: Stmt[]): Expr {
  let inside: Expr | undefined;
  idx.forEach((i, d) => {
    const c = bin("&&", bin(">=", i, int(0)), bin("<", i, buf.shape[d]!));
    inside = inside ? bin("&&", inside, c) : c;
  });
  const zero = as === "u32" ? int(0, "u32") : flt(0);
  out.push({ k: "let", name, dtype: as, value: zero, mutable: true });
  out.push({ k: "if", cond: inside!, then: [{ k: "assign", name, value: value({ k: "load", buf: buf.name, idx }) }], else: [] });
  return v(name);
}

export function dequantOp(node: CallExpression, ctx: Ctx): Stmt {
  const args = node.getArguments();
  if (args.length !== 3) ctx.fail(node, `${ctx.tName}.dequant takes 3 arguments (src, dst, options), got ${args.length}`);
  const src = region(args[0]!, ctx), dst = region(args[1]!, ctx);
  const o = options(args[2]!, ctx);
  const per = valuesPerWord(o.format);
  if (src.dtype !== "u32") ctx.fail(args[0]!, `dequant reads packed 32-bit words: '${quote(args[0]!)}' is ${src.dtype}, it must be u32`);
  if (dst.dtype !== "bf16" && dst.dtype !== "f16") ctx.fail(args[1]!, `dequant writes bf16 or f16, '${quote(args[1]!)}' is ${dst.dtype}`);
  if (dst.buf.scope === "fragment" || dst.buf.scope === "global") ctx.fail(args[1]!, `dequant writes a shared or local tile, '${quote(args[1]!)}' is ${dst.buf.scope}`);
  if (src.region.extents.length !== 2 || dst.region.extents.length !== 2) ctx.fail(node, `dequant works on 2-d tiles ([rows, words] -> [rows, words * ${per}])`);
  const [R, W] = src.region.extents as [Expr, Expr];
  const wc = evalConst(W);
  if (o.order === "mma" && wc !== undefined && wc % 4 !== 0)
    ctx.fail(args[0]!, `an mma-order tile holds whole 32-value blocks of 4 words per row: '${quote(args[0]!)}' has ${wc} words per row (make its K extent a multiple of 32)`);
  const p = prefix(ctx);
  const r = `${p}r`, w = `${p}w`, n = `${p}n`, kk = `${p}k`, g = `${p}g`, tmp = `${p}v`;
  const body: Stmt[] = [{ k: "alloc", buf: { name: tmp, scope: "local", dtype: dst.dtype, shape: [int(per)] } }];
  body.push({ k: "let", name: n, dtype: "i32", value: bin("+", o.at[0]!, v(r)), mutable: false });
  body.push({ k: "let", name: kk, dtype: "i32", value: bin("+", o.at[1]!, bin("*", v(w), int(per))), mutable: false });
  body.push({ k: "let", name: g, dtype: "i32", value: o.group ? bin("/", v(kk), int(o.group)) : int(0), mutable: false });
  const toF32 = (e: Expr): Expr => (o.scales?.dtype === "f32" ? e : { k: "cast", dtype: "f32", a: e });
  // No scales: a literal 1, which the CUDA and WGSL statements skip (x * 1 is exact).
  const scale = o.scales ? maskedRead(`${p}s`, o.scales, [v(n), v(g)], "f32", toF32, body) : flt(1);
  let zero: Expr = flt(0);
  if (typeof o.zeros === "number") zero = flt(o.zeros);
  else if (o.zeros && o.zeros.dtype === "u32") {
    const shift: Expr = { k: "cast", dtype: "u32", a: bin("*", bin("%", v(g), int(8)), int(4)) };
    zero = maskedRead(`${p}z`, o.zeros, [v(n), bin("/", v(g), int(8))], "f32",
      (e) => ({ k: "cast", dtype: "f32", a: bin("&", bin(">>", e, shift), int(15, "u32")) }), body);
  } else if (o.zeros) {
    const zb = o.zeros;
    zero = maskedRead(`${p}z`, zb, [v(n), v(g)], "f32", (e) => (zb.dtype === "f32" ? e : { k: "cast", dtype: "f32", a: e }), body);
  }
  const sIdx = [bin("+", src.region.offsets[0]!, v(r)), bin("+", src.region.offsets[1]!, v(w))];
  const word = src.buf.scope === "global"
    ? maskedRead(`${p}q`, src.buf, sIdx, "u32", (e) => e, body)
    : { k: "load", buf: src.buf.name, idx: sIdx } as Expr;
  // The word's slots are the interleaved ones for the mma order too; only its k positions differ (col below).
  body.push({ k: "dequant", format: o.format, order: slotOrder(o.order), dst: { buf: tmp, idx: [int(0)] }, word, scale, zero, loc: ctx.loc(node) });
  // The stores as one loop over the word's values: the register-fused dequant-gemm
  // (src/passes/fuse-dequant-gemm.ts) reuses its body for the two values a thread needs.
  const j = `${p}j`;
  const zeroOut: Expr = flt(0, dst.dtype);
  const col = dequantColumn(o.order, per, v(w), v(j));
  // kq (the word's first k for the group) is k0 + w * per in both orders: an mma word's values
  // lie in the 32-block of k0 + 32 (w >> 2), of the same group when k0 and group are multiples of 32.
  const kOfValue = o.order === "mma" ? bin("+", o.at[1]!, col) : bin("+", v(kk), v(j));
  const val: Expr = { k: "select", cond: bin("<", kOfValue, o.K), a: { k: "load", buf: tmp, idx: [v(j)] }, b: zeroOut };
  body.push({ k: "for", vars: [j], starts: [int(0)], extents: [int(per)], kind: "serial", body: [
    { k: "store", buf: dst.buf.name, idx: [bin("+", dst.region.offsets[0]!, v(r)), bin("+", dst.region.offsets[1]!, col)], value: val },
  ] });
  return { k: "for", vars: [r, w], starts: [int(0), int(0)], extents: [R, W], kind: "parallel", body, loc: ctx.loc(node) };
}
