// The kernel function's parameters: tensors (`Tensor<"M, K", "bf16">`), scalars (`T.f32`)
// and the destructured tunables (`{ BM, BN }: T.Config`), plus the symbolic dims the
// tensor shapes introduce.
import { Node, type ParameterDeclaration } from "ts-morph";
import { type DType, type Param, type TunableValue, DTYPES, v } from "../ir/ir.ts";
import { parseShape, shapeVars } from "../ir/shape.ts";
import type { Ctx } from "./ctx.ts";
import { quote } from "./diag.ts";
import { define } from "./stmt.ts";

export interface Names {
  tName: string;
  tensorName: string;
  /** The functions kernel code may call: the file's own and its imports' (modules.ts). */
  helpers?: import("./modules.ts").HelperTable;
}

export function translateParams(
  params: ParameterDeclaration[], tunables: Record<string, TunableValue[]>, names: Names, ctx: Ctx,
): { params: Param[]; dims: string[] } {
  const out: Param[] = [];
  // Where each dim first shows up, for messages about dims that are never bare.
  const seen = new Map<string, { bare: boolean; node: Node; text: string; col: number }>();
  const dims: string[] = [];
  let configSeen = false;
  for (const p of params) {
    const typeNode = p.getTypeNode();
    const nameNode = p.getNameNode();
    if (configSeen) ctx.fail(p, `the ${names.tName}.Config parameter must be the last one`);
    if (p.getDotDotDotToken()) ctx.fail(p, "rest parameters are not supported in kernels");
    if (p.hasQuestionToken() || p.getInitializer()) ctx.fail(p, "kernel parameters cannot be optional or have defaults; use tune for compile-time options");
    if (!typeNode) ctx.fail(p, `parameter '${quote(p)}' needs a type: Tensor<"M, K", "bf16">, ${names.tName}.f32 or ${names.tName}.Config`);
    const typeText = typeNode.getText();
    if (typeText === `${names.tName}.Config`) {
      configParam(nameNode, tunables, ctx);
      configSeen = true;
      continue;
    }
    if (!Node.isIdentifier(nameNode)) ctx.fail(nameNode, "only the T.Config parameter may be destructured");
    const name = nameNode.getText();
    if (Node.isTypeReference(typeNode) && typeNode.getTypeName().getText() === names.tensorName) {
      const param = tensorParam(name, typeNode, ctx, (dim, bare, node, text, col) => {
        const prev = seen.get(dim);
        if (!prev) { seen.set(dim, { bare, node, text, col }); dims.push(dim); }
        else if (bare) prev.bare = true;
      });
      define(name, { kind: "buffer", buf: { name, scope: "global", dtype: param.dtype, shape: param.shape! } }, nameNode, ctx);
      out.push(param);
      continue;
    }
    const m = new RegExp(`^${names.tName}\\.(\\w+)$`).exec(typeText);
    if (m && (DTYPES as readonly string[]).includes(m[1]!)) {
      const dtype = m[1] as DType;
      define(name, { kind: "var", name, dtype, mutable: false, what: "scalar param" }, nameNode, ctx);
      out.push({ name, kind: "scalar", dtype });
      continue;
    }
    if (typeText === "number") ctx.fail(typeNode, `'number' does not say which dtype; write ${names.tName}.f32 or ${names.tName}.i32`);
    ctx.fail(typeNode, `unsupported parameter type '${typeText}'; expected Tensor<"shape", "dtype">, ${names.tName}.<dtype> or ${names.tName}.Config`);
  }
  for (const [dim, s] of seen) {
    if (!s.bare)
      ctx.fail(s.node, `dim '${dim}' appears only inside an expression ("${s.text}" at column ${s.col}); some tensor must have '${dim}' as a whole dim so its value is known at launch`);
    const clash = ctx.scope.lookup(dim);
    if (clash) ctx.fail(s.node, `dim '${dim}' has the same name as a parameter or tunable; rename one of them`);
  }
  return { params: out, dims };
}

function tensorParam(
  name: string, typeNode: import("ts-morph").TypeReferenceNode, ctx: Ctx,
  note: (dim: string, bare: boolean, node: Node, text: string, col: number) => void,
): Param {
  const args = typeNode.getTypeArguments();
  if (args.length !== 2) ctx.fail(typeNode, `Tensor takes 2 type arguments, a shape and a dtype: Tensor<"M, K", "bf16">`);
  const [shapeNode, dtypeNode] = [stringLit(args[0]!, "shape", ctx), stringLit(args[1]!, "dtype", ctx)];
  const text = shapeNode.getLiteralText();
  const at = ctx.loc(shapeNode);
  const shape = parseShape(text, { ...at, col: at.col + 1 });
  shape.forEach((d) => {
    for (const dim of shapeVars(d)) {
      const m = new RegExp(`\\b${dim}\\b`).exec(text);
      note(dim, d.k === "var", shapeNode, text, at.col + 1 + (m?.index ?? 0));
    }
  });
  const dt = dtypeNode.getLiteralText();
  if (!(DTYPES as readonly string[]).includes(dt))
    ctx.fail(dtypeNode, `unknown dtype "${dt}"; expected one of ${DTYPES.join(", ")}`);
  return { name, kind: "tensor", dtype: dt as DType, shape, shapeText: text };
}

function stringLit(node: Node, what: string, ctx: Ctx): import("ts-morph").StringLiteral {
  const lit = Node.isLiteralTypeNode(node) ? node.getLiteral() : undefined;
  if (!lit || !Node.isStringLiteral(lit)) return ctx.fail(node, `the Tensor ${what} must be a string literal, got '${quote(node)}'`);
  return lit;
}

/** `{ BM, BN: bn }: T.Config`: each name becomes the tunable's IR variable. */
function configParam(nameNode: Node, tunables: Record<string, TunableValue[]>, ctx: Ctx): void {
  if (!Node.isObjectBindingPattern(nameNode))
    ctx.fail(nameNode, "destructure the tunables you use: { BM, BN }: T.Config");
  for (const el of nameNode.getElements()) {
    if (el.getDotDotDotToken()) ctx.fail(el, "rest elements are not supported in the config parameter");
    if (el.getInitializer()) ctx.fail(el, "tunables get their default from tune (the first value), not from a default here");
    const local = el.getNameNode();
    if (!Node.isIdentifier(local)) ctx.fail(el, "nested destructuring is not supported in the config parameter");
    const tunable = el.getPropertyNameNode()?.getText() ?? local.getText();
    const values = tunables[tunable];
    if (!values) {
      const known = Object.keys(tunables);
      ctx.fail(el, `'${tunable}' is not a tunable of this kernel; declare it in tune${known.length ? ` (tunables: ${known.join(", ")})` : ""}`);
    }
    define(local.getText(), tunableSym(tunable, values), local, ctx);
  }
}

export function tunableSym(name: string, values: TunableValue[]): import("./scope.ts").Sym {
  if (values.every((x) => typeof x === "boolean")) return { kind: "value", expr: v(name), dtype: "bool", what: "tunable" };
  if (values.every((x) => typeof x === "number"))
    return { kind: "value", expr: v(name), dtype: values.every(Number.isInteger) ? "i32" : "f32", what: "tunable" };
  return { kind: "bad", reason: `tunable '${name}' has string values, which kernel code cannot use yet` };
}
