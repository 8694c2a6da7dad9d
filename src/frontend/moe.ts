// The MoE vocabulary of the DSL: T.reduce, T.topk, T.cumsum (tile ops on shared or
// fragment tiles) and T.atomicAdd / T.atomicMax / T.atomicMin on one element of a global
// tensor or shared tile, as a statement or as `const old = T.atomicAdd(x[i], v)`.
import { Node, type CallExpression } from "ts-morph";
import type { AtomicOp, DType, Expr, ReduceOp, Stmt } from "../ir/ir.ts";
import type { Ctx } from "./ctx.ts";
import { quote } from "./diag.ts";
import { accessChain, bufferOf, coerce, indexList, intExpr, translateExpr, unwrapParens } from "./expr.ts";
import { region } from "./ops.ts";

const ATOMICS: Record<string, AtomicOp> = { atomicAdd: "add", atomicMax: "max", atomicMin: "min" };
export const MOE_OPS = new Set(["reduce", "topk", "cumsum", ...Object.keys(ATOMICS)]);

type Opt = { kind: "string"; text: string } | { kind: "number"; value: number } | { kind: "bool"; value: boolean };

/** `{ op: "max", axis: 1 }` -> name -> literal; only literals are allowed (they are compile-time). */
function options(node: Node | undefined, allowed: string[], what: string, ctx: Ctx): Map<string, Opt & { node: Node }> {
  const out = new Map<string, Opt & { node: Node }>();
  if (!node) return out;
  const n = unwrapParens(node);
  if (!Node.isObjectLiteralExpression(n)) return ctx.fail(node, `${what} options must be an object literal like { ${allowed[0]}: ... }`);
  for (const p of n.getProperties()) {
    if (!Node.isPropertyAssignment(p) || !allowed.includes(p.getName()))
      ctx.fail(p, `unknown ${what} option '${quote(p)}'; the options are ${allowed.join(", ")}`);
    const init = unwrapParens(p.getInitializerOrThrow());
    let o: Opt;
    if (Node.isStringLiteral(init) || Node.isNoSubstitutionTemplateLiteral(init)) o = { kind: "string", text: init.getLiteralText() };
    else if (Node.isNumericLiteral(init)) o = { kind: "number", value: Number(init.getText()) };
    else if (Node.isTrueLiteral(init) || Node.isFalseLiteral(init)) o = { kind: "bool", value: Node.isTrueLiteral(init) };
    else return ctx.fail(init, `${what} option ${p.getName()} must be a literal`);
    out.set(p.getName(), { ...o, node: init });
  }
  return out;
}

function flag(opts: Map<string, Opt & { node: Node }>, name: string, ctx: Ctx): boolean {
  const o = opts.get(name);
  if (!o) return false;
  if (o.kind !== "bool") ctx.fail(o.node, `option ${name} must be true or false`);
  return (o as { value: boolean }).value;
}

/** The element an atomic updates and the value, as IR, and the element's dtype. */
function atomicStmt(node: CallExpression, fn: string, ctx: Ctx, result?: string): { s: Stmt; dtype: DType } {
  const args = node.getArguments();
  const name = `${ctx.tName}.${fn}`;
  if (args.length !== 2) ctx.fail(node, `${name} takes 2 arguments (an element like x[i][j], and a value), got ${args.length}`);
  const target = unwrapParens(args[0]!);
  if (!Node.isElementAccessExpression(target)) return ctx.fail(args[0]!, `${name} updates one element: write ${name}(x[i], value)`);
  const { base, indices } = accessChain(target);
  const buf = bufferOf(base, ctx);
  if (buf.scope !== "global" && buf.scope !== "shared")
    ctx.fail(args[0]!, `${name} works on global tensors and shared tiles; '${buf.name}' is ${buf.scope}`);
  const idx = indexList(buf, indices, target, ctx);
  const value = coerce(translateExpr(args[1]!, ctx), buf.dtype, args[1]!, ctx).e;
  if (buf.scope === "global") ctx.written.add(buf.name);
  const s: Stmt = { k: "atomic", op: ATOMICS[fn]!, buf: buf.name, idx, value, ...(result !== undefined ? { result } : {}), loc: ctx.loc(node) };
  return { s, dtype: buf.dtype };
}

/** `const old = T.atomicAdd(x[i], v)`: the atomic and the dtype of `old`; undefined if `init` is not one. */
export function atomicBinding(name: string, init: Node, ctx: Ctx): { s: Stmt; dtype: DType; result: string } | undefined {
  const n = unwrapParens(init);
  if (!Node.isCallExpression(n)) return undefined;
  const callee = n.getExpression();
  if (!Node.isPropertyAccessExpression(callee) || callee.getExpression().getText() !== ctx.tName || !(callee.getName() in ATOMICS))
    return undefined;
  const result = ctx.irName(name);
  return { ...atomicStmt(n, callee.getName(), ctx, result), result };
}

/** A MoE op in statement position; undefined when `fn` is not one. */
export function moeOp(node: CallExpression, fn: string, ctx: Ctx): Stmt | undefined {
  const loc = ctx.loc(node);
  const args = node.getArguments();
  const name = `${ctx.tName}.${fn}`;
  const need = (lo: number, hi: number) => {
    if (args.length < lo || args.length > hi)
      ctx.fail(node, `${name} takes ${lo === hi ? lo : `${lo} or ${hi}`} arguments, got ${args.length}`);
  };
  if (fn in ATOMICS) return atomicStmt(node, fn, ctx).s;
  switch (fn) {
    case "reduce": {
      need(3, 3);
      const src = region(args[0]!, ctx), dst = region(args[1]!, ctx);
      const o = options(args[2], ["op", "axis", "accumulate"], name, ctx);
      const op = o.get("op");
      if (!op || op.kind !== "string" || !["sum", "max", "min"].includes(op.text))
        ctx.fail(args[2]!, `${name} needs op: "sum", "max" or "min"`);
      const ax = o.get("axis");
      const rank = src.region.extents.length;
      let axis = rank - 1;
      if (ax) {
        if (ax.kind !== "number" || !Number.isInteger(ax.value)) ctx.fail(ax.node, `${name}: axis must be an integer literal`);
        axis = (ax as { value: number }).value;
        if (axis < 0) axis += rank;
        if (axis < 0 || axis >= rank) ctx.fail(ax.node, `${name}: axis ${(ax as { value: number }).value} is not an axis of a rank-${rank} tile`);
      }
      return { k: "reduce", op: (op as { text: string }).text as ReduceOp, src: src.region, dst: dst.region, axis, accumulate: flag(o, "accumulate", ctx), loc };
    }
    case "topk": {
      need(4, 4);
      const src = region(args[0]!, ctx), values = region(args[1]!, ctx), indices = region(args[2]!, ctx);
      for (const [r, a] of [[src, args[0]!], [values, args[1]!], [indices, args[2]!]] as const)
        if (r.region.extents.length !== 2) ctx.fail(a, `${name} works on 2-d tiles (rows, elements); '${quote(a)}' has rank ${r.region.extents.length}`);
      if (indices.dtype.startsWith("f") || indices.dtype === "bool") ctx.fail(args[2]!, `${name}: the indices tile must be an integer tile, '${quote(args[2]!)}' is ${indices.dtype}`);
      const count: Expr = intExpr(args[3]!, ctx, `the count of ${name}`);
      return { k: "topk", src: src.region, values: values.region, indices: indices.region, count, loc };
    }
    case "cumsum": {
      need(2, 3);
      const src = region(args[0]!, ctx), dst = region(args[1]!, ctx);
      const o = options(args[2], ["exclusive"], name, ctx);
      return { k: "scan", op: "sum", src: src.region, dst: dst.region, exclusive: flag(o, "exclusive", ctx), loc };
    }
  }
  return undefined;
}
