// TypeScript expressions -> typed IR expressions. JavaScript has one number type; the IR
// has ints and floats, so every translated expression carries a dtype: literals with `.` or
// an exponent are floats, dims/tunables/loop and block indices are i32, loads have their
// buffer's dtype. Ints meeting floats are converted explicitly (literals become float
// literals, other ints get a cast) so that later stages never guess.
import { Node, SyntaxKind } from "ts-morph";
import {
  type BinOp, type DType, type Expr, type MathFn, DTYPES, bin, flt, int, isFloat, v,
} from "../ir/ir.ts";
import type { Ctx } from "./ctx.ts";
import { quote } from "./diag.ts";
import { describe } from "./scope.ts";
import { helperOf, inlineExpression } from "./helpers.ts";

export interface Typed { e: Expr; t: DType }

export type Cls = "int" | "float" | "bool";
export const cls = (t: DType): Cls => (t === "bool" ? "bool" : isFloat(t) ? "float" : "int");

const BOOL_TRUE: Typed = { e: int(1, "bool"), t: "bool" };
const BOOL_FALSE: Typed = { e: int(0, "bool"), t: "bool" };

export function translateExpr(node: Node, ctx: Ctx): Typed {
  if (Node.isParenthesizedExpression(node) || Node.isAsExpression(node) || Node.isNonNullExpression(node))
    return translateExpr(node.getExpression(), ctx);
  if (Node.isNumericLiteral(node)) return numericLiteral(node, ctx);
  if (Node.isTrueLiteral(node)) return BOOL_TRUE;
  if (Node.isFalseLiteral(node)) return BOOL_FALSE;
  if (Node.isIdentifier(node)) return identifier(node, ctx);
  if (Node.isPrefixUnaryExpression(node)) return prefixUnary(node, ctx);
  if (Node.isBinaryExpression(node)) return binary(node, ctx);
  if (Node.isConditionalExpression(node)) {
    const c = condition(node.getCondition(), ctx);
    const [a, b] = unify(translateExpr(node.getWhenTrue(), ctx), translateExpr(node.getWhenFalse(), ctx), node, ctx);
    return { e: { k: "select", cond: c.e, a: a.e, b: b.e }, t: a.t };
  }
  if (Node.isCallExpression(node)) return call(node, ctx);
  if (Node.isElementAccessExpression(node)) return elementAccess(node, ctx);
  if (Node.isPropertyAccessExpression(node)) return propertyAccess(node, ctx);
  if (Node.isStringLiteral(node) || Node.isNoSubstitutionTemplateLiteral(node) || Node.isTemplateExpression(node))
    return ctx.fail(node, `strings are not supported in kernel code (${quote(node)}); kernels compute on numbers only`);
  if (Node.isArrowFunction(node) || Node.isFunctionExpression(node))
    return ctx.fail(node, "closures are not supported in kernel code; only the T.launch body may be a function");
  if (Node.isAwaitExpression(node)) return ctx.fail(node, "await is not supported: kernels are synchronous");
  if (Node.isPostfixUnaryExpression(node))
    return ctx.fail(node, `'${quote(node)}' inside an expression is not supported; write it as its own statement`);
  if (Node.isArrayLiteralExpression(node))
    return ctx.fail(node, "an array literal is not a scalar; arrays are only allowed as shapes, grids and tile offsets");
  if (Node.isObjectLiteralExpression(node)) return ctx.fail(node, "object literals are not supported in kernel code");
  if (Node.isNewExpression(node) || Node.isClassExpression(node))
    return ctx.fail(node, `'${quote(node)}' is not supported: kernels cannot create objects`);
  return ctx.fail(node, `unsupported expression '${quote(node)}' (${node.getKindName()})`);
}

/** An expression that must be an integer (indices, extents, grid dims). */
export function intExpr(node: Node, ctx: Ctx, what: string): Expr {
  const r = translateExpr(node, ctx);
  if (cls(r.t) !== "int")
    ctx.fail(node, `${what} must be an integer, but '${quote(node)}' is ${r.t}; convert with T.cast(x, "i32")`);
  return r.e;
}

/** An expression that must be a boolean (if, ternary and loop conditions). */
export function condition(node: Node, ctx: Ctx): Typed {
  const r = translateExpr(node, ctx);
  if (r.t !== "bool")
    ctx.fail(node, `condition '${quote(node)}' is ${r.t}, not a boolean; compare explicitly (e.g. x != 0)`);
  return r;
}

/** Converts a value for storing into / binding as dtype `t`; only int -> float is implicit. */
export function coerce(r: Typed, t: DType, node: Node, ctx: Ctx): Typed {
  const from = cls(r.t), to = cls(t);
  if (from === to) return r;
  if (from === "int" && to === "float") return toFloat(r, t);
  return ctx.fail(node, `cannot use ${r.t} value '${quote(node)}' as ${t}; convert with T.cast(x, "${t}")`);
}

function toFloat(r: Typed, t: DType = "f32"): Typed {
  const ft: DType = t === "f64" ? "f64" : "f32";
  if (r.e.k === "int") return { e: flt(r.e.v), t: ft };
  return { e: { k: "cast", dtype: ft, a: r.e }, t: ft };
}

function numericLiteral(node: Node & { getText(): string }, ctx: Ctx): Typed {
  const text = node.getText().replace(/_/g, "");
  const value = Number(text);
  const isHex = /^0[xXbBoO]/.test(text);
  if (!isHex && /[.eE]/.test(text)) return { e: flt(value), t: "f32" };
  if (value <= 0x7fffffff) return { e: int(value), t: "i32" };
  if (value <= 0xffffffff) return { e: int(value, "u32"), t: "u32" };
  return ctx.fail(node, `integer literal ${text} does not fit in 32 bits`);
}

function identifier(node: Node, ctx: Ctx): Typed {
  const name = node.getText();
  const sym = ctx.scope.lookup(name);
  if (!sym) {
    if (name === "Infinity") return { e: flt(Infinity), t: "f32" };
    if (name === "NaN") return { e: flt(NaN), t: "f32" };
    if (name === ctx.tName || name === "Math")
      return ctx.fail(node, `'${name}' is a namespace, not a value; call one of its functions`);
    return ctx.fail(node, `unknown identifier '${name}'`);
  }
  switch (sym.kind) {
    case "value": return { e: sym.expr, t: sym.dtype };
    case "var": return { e: v(sym.name), t: sym.dtype };
    case "bad": return ctx.fail(node, sym.reason);
    default:
      return ctx.fail(node, `'${name}' is a ${describe(sym)}, not a scalar; index its elements (${name}[i]) or pass it to a tile op`);
  }
}

function prefixUnary(node: import("ts-morph").PrefixUnaryExpression, ctx: Ctx): Typed {
  const op = node.getOperatorToken();
  const operand = node.getOperand();
  switch (op) {
    case SyntaxKind.MinusToken: {
      const a = translateExpr(operand, ctx);
      if (a.t === "bool") ctx.fail(node, "cannot negate a boolean");
      if (a.e.k === "int" || a.e.k === "float") return { e: { ...a.e, v: -a.e.v }, t: a.t };
      return { e: { k: "un", op: "neg", a: a.e }, t: a.t };
    }
    case SyntaxKind.ExclamationToken: {
      const a = condition(operand, ctx);
      return { e: { k: "un", op: "not", a: a.e }, t: "bool" };
    }
    case SyntaxKind.TildeToken: {
      const a = translateExpr(operand, ctx);
      if (cls(a.t) !== "int") ctx.fail(node, `'~' needs an integer operand, got ${a.t}`);
      return { e: { k: "un", op: "bitnot", a: a.e }, t: a.t };
    }
    case SyntaxKind.PlusToken:
      return ctx.fail(node, "unary '+' is not supported; numbers need no conversion, use T.cast for dtypes");
    default:
      return ctx.fail(node, `'${quote(node)}' inside an expression is not supported; write it as its own statement`);
  }
}

const ARITH: Partial<Record<SyntaxKind, BinOp>> = {
  [SyntaxKind.PlusToken]: "+", [SyntaxKind.MinusToken]: "-", [SyntaxKind.AsteriskToken]: "*",
  [SyntaxKind.SlashToken]: "/", [SyntaxKind.PercentToken]: "%",
};
const COMPARE: Partial<Record<SyntaxKind, BinOp>> = {
  [SyntaxKind.LessThanToken]: "<", [SyntaxKind.LessThanEqualsToken]: "<=",
  [SyntaxKind.GreaterThanToken]: ">", [SyntaxKind.GreaterThanEqualsToken]: ">=",
  [SyntaxKind.EqualsEqualsEqualsToken]: "==", [SyntaxKind.ExclamationEqualsEqualsToken]: "!=",
  [SyntaxKind.EqualsEqualsToken]: "==", [SyntaxKind.ExclamationEqualsToken]: "!=",
};
const BITWISE: Partial<Record<SyntaxKind, BinOp>> = {
  [SyntaxKind.AmpersandToken]: "&", [SyntaxKind.BarToken]: "|", [SyntaxKind.CaretToken]: "^",
  [SyntaxKind.LessThanLessThanToken]: "<<", [SyntaxKind.GreaterThanGreaterThanToken]: ">>",
};
const LOGICAL: Partial<Record<SyntaxKind, BinOp>> = {
  [SyntaxKind.AmpersandAmpersandToken]: "&&", [SyntaxKind.BarBarToken]: "||",
};

function binary(node: import("ts-morph").BinaryExpression, ctx: Ctx): Typed {
  const kind = node.getOperatorToken().getKind();
  const left = node.getLeft(), right = node.getRight();
  if (kind >= SyntaxKind.FirstAssignment && kind <= SyntaxKind.LastAssignment)
    return ctx.fail(node, `assignment inside an expression is not supported ('${quote(node)}'); make it its own statement`);
  const arith = ARITH[kind];
  if (arith) return arithmetic(arith, translateExpr(left, ctx), translateExpr(right, ctx), node, ctx);
  if (kind === SyntaxKind.AsteriskAsteriskToken) {
    const [a, b] = [toFloatArg(left, ctx), toFloatArg(right, ctx)];
    return { e: { k: "call", fn: "pow", args: [a.e, b.e] }, t: a.t };
  }
  const cmp = COMPARE[kind];
  if (cmp) {
    const [a, b] = unify(translateExpr(left, ctx), translateExpr(right, ctx), node, ctx);
    return { e: bin(cmp, a.e, b.e), t: "bool" };
  }
  const logical = LOGICAL[kind];
  if (logical) return { e: bin(logical, condition(left, ctx).e, condition(right, ctx).e), t: "bool" };
  const bit = BITWISE[kind];
  if (bit) {
    const a = translateExpr(left, ctx), b = translateExpr(right, ctx);
    if (cls(a.t) !== "int" || cls(b.t) !== "int")
      ctx.fail(node, `'${bit}' needs integer operands, got ${a.t} and ${b.t}`);
    return { e: bin(bit, a.e, b.e), t: a.t === b.t ? a.t : "i32" };
  }
  if (kind === SyntaxKind.GreaterThanGreaterThanGreaterThanToken)
    return ctx.fail(node, "'>>>' is not supported; '>>' on a u32 value shifts in zeros (T.cast(x, \"u32\") >> n)");
  return ctx.fail(node, `operator '${node.getOperatorToken().getText()}' is not supported in kernel code`);
}

/** Brings two operands to one class: ints meeting floats become floats. */
export function unify(a: Typed, b: Typed, node: Node, ctx: Ctx): [Typed, Typed] {
  const ca = cls(a.t), cb = cls(b.t);
  if (ca === cb) return [a, b];
  if (ca === "bool" || cb === "bool")
    return ctx.fail(node, `cannot mix a boolean and a number in '${quote(node)}'`);
  return ca === "int" ? [toFloat(a, b.t), b] : [a, toFloat(b, a.t)];
}

function arithmetic(op: BinOp, a0: Typed, b0: Typed, node: Node, ctx: Ctx): Typed {
  if (a0.t === "bool" || b0.t === "bool") ctx.fail(node, `arithmetic on a boolean in '${quote(node)}'`);
  const [a, b] = unify(a0, b0, node, ctx);
  if (cls(a.t) === "int") {
    if (op === "/")
      ctx.fail(node, `'${quote(node)}' divides integers; write T.cdiv(a, b) to round up or Math.floor(a / b) to round down`);
    return { e: bin(op, a.e, b.e), t: a.t === b.t ? a.t : "i32" };
  }
  return { e: bin(op, a.e, b.e), t: a.t === "f64" || b.t === "f64" ? "f64" : "f32" };
}

function toFloatArg(node: Node, ctx: Ctx): Typed {
  const r = translateExpr(node, ctx);
  if (r.t === "bool") ctx.fail(node, `expected a number, got a boolean '${quote(node)}'`);
  return cls(r.t) === "float" ? { e: r.e, t: r.t === "f64" ? "f64" : "f32" } : toFloat(r);
}

// ---------------------------------------------------------------- calls

/** Math.* functions of one float argument and their IR names. */
const MATH_UNARY: Record<string, MathFn> = {
  exp: "exp", log: "log", log2: "log2", sqrt: "sqrt", tanh: "tanh", sin: "sin", cos: "cos",
};
const MATH_CONSTS: Record<string, number> = {
  PI: Math.PI, E: Math.E, LN2: Math.LN2, LN10: Math.LN10, LOG2E: Math.LOG2E, LOG10E: Math.LOG10E,
  SQRT2: Math.SQRT2, SQRT1_2: Math.SQRT1_2,
};
/** T.* math the Math object lacks: name -> [IR fn, arity]. */
const T_MATH: Record<string, [MathFn, number]> = {
  exp2: ["exp2", 1], rsqrt: ["rsqrt", 1], erf: ["erf", 1], sigmoid: ["sigmoid", 1], fma: ["fma", 3],
};
/** T.* names that are statements, for a better message when used as values. */
export const T_STATEMENTS = new Set([
  "copy", "gemm", "clear", "fill", "launch", "shared", "fragment", "local",
  "serial", "unroll", "pipelined", "parallel", "kernel", "reduce", "topk", "cumsum",
]);

function arity(node: import("ts-morph").CallExpression, name: string, n: number, ctx: Ctx): Node[] {
  const args = node.getArguments();
  if (args.length !== n) ctx.fail(node, `${name} takes ${n} argument${n === 1 ? "" : "s"}, got ${args.length}`);
  return args;
}

function call(node: import("ts-morph").CallExpression, ctx: Ctx): Typed {
  const callee = node.getExpression();
  if (Node.isIdentifier(callee)) {
    const name = callee.getText();
    if (ctx.selfNames.has(name)) return ctx.fail(node, `recursion is not supported ('${name}' calls itself)`);
    const helper = helperOf(node, ctx);
    if (helper) return inlineExpression(node, helper, ctx);
    return ctx.fail(node, `calling '${name}' is not supported; kernel code may call T.* and Math.* functions and the file's top-level functions`);
  }
  if (!Node.isPropertyAccessExpression(callee) || !Node.isIdentifier(callee.getExpression()))
    return ctx.fail(node, `unsupported call '${quote(node)}'; kernel code may call only T.* and Math.* functions`);
  const ns = callee.getExpression().getText();
  const fn = callee.getName();
  if (ns === "Math") return mathCall(node, fn, ctx);
  if (ns === ctx.tName) return tCall(node, fn, ctx);
  const sym = ctx.scope.lookup(ns);
  if (sym && fn === "tile")
    return ctx.fail(node, "a tile view is not a scalar; pass it to T.copy, T.gemm, T.fill or T.clear");
  return ctx.fail(node, `unsupported call '${quote(node)}'; kernel code may call only T.* and Math.* functions`);
}

function mathCall(node: import("ts-morph").CallExpression, fn: string, ctx: Ctx): Typed {
  const name = `Math.${fn}`;
  const unary = MATH_UNARY[fn];
  if (unary) {
    const [a] = arity(node, name, 1, ctx).map((x) => toFloatArg(x, ctx));
    return { e: { k: "call", fn: unary, args: [a!.e] }, t: a!.t };
  }
  switch (fn) {
    case "abs": {
      const a = translateExpr(arity(node, name, 1, ctx)[0]!, ctx);
      if (a.t === "bool") ctx.fail(node, "Math.abs of a boolean");
      return { e: { k: "call", fn: "abs", args: [a.e] }, t: a.t };
    }
    case "floor": case "ceil": case "round": {
      const arg = arity(node, name, 1, ctx)[0]!;
      const inner = unwrapParens(arg);
      // Math.floor(a / b) on integers is how a kernel asks for integer division: the floor, as in
      // TypeScript, for any signs (lowerIntDivision makes it C's `/` where that is the same).
      if (fn === "floor" && Node.isBinaryExpression(inner) && inner.getOperatorToken().getKind() === SyntaxKind.SlashToken) {
        const a = translateExpr(inner.getLeft(), ctx), b = translateExpr(inner.getRight(), ctx);
        if (cls(a.t) === "int" && cls(b.t) === "int") return { e: bin("floordiv", a.e, b.e), t: a.t === b.t ? a.t : "i32" };
      }
      const a = translateExpr(arg, ctx);
      if (cls(a.t) === "int") return a;
      if (a.t === "bool") ctx.fail(node, `${name} of a boolean`);
      return { e: { k: "call", fn: fn as MathFn, args: [a.e] }, t: a.t };
    }
    case "pow": {
      const [a, b] = arity(node, name, 2, ctx).map((x) => toFloatArg(x, ctx));
      return { e: { k: "call", fn: "pow", args: [a!.e, b!.e] }, t: a!.t };
    }
    case "max": case "min": {
      const args = node.getArguments();
      if (args.length < 2) ctx.fail(node, `${name} needs at least 2 arguments, got ${args.length}`);
      let acc = translateExpr(args[0]!, ctx);
      for (const arg of args.slice(1)) {
        const [a, b] = unify(acc, translateExpr(arg, ctx), node, ctx);
        if (a.t === "bool") ctx.fail(node, `${name} of booleans`);
        acc = { e: bin(fn, a.e, b.e), t: a.t === b.t ? a.t : cls(a.t) === "float" ? "f32" : "i32" };
      }
      return acc;
    }
  }
  if (fn in MATH_CONSTS) return ctx.fail(node, `Math.${fn} is a constant, not a function`);
  return ctx.fail(node, `Math.${fn} is not supported; kernels may use Math.${[...Object.keys(MATH_UNARY), "abs", "floor", "ceil", "round", "pow", "max", "min"].join("/")}`);
}

function tCall(node: import("ts-morph").CallExpression, fn: string, ctx: Ctx): Typed {
  const name = `${ctx.tName}.${fn}`;
  switch (fn) {
    case "cdiv": {
      const [a, b] = arity(node, name, 2, ctx).map((x) => translateExpr(x, ctx));
      if (cls(a!.t) !== "int" || cls(b!.t) !== "int") ctx.fail(node, `${name} needs integer operands, got ${a!.t} and ${b!.t}`);
      return { e: bin("cdiv", a!.e, b!.e), t: "i32" };
    }
    case "min": case "max": {
      const [x, y] = arity(node, name, 2, ctx);
      const [a, b] = unify(translateExpr(x!, ctx), translateExpr(y!, ctx), node, ctx);
      if (a.t === "bool") ctx.fail(node, `${name} of booleans`);
      return { e: bin(fn, a.e, b.e), t: a.t === b.t ? a.t : cls(a.t) === "float" ? "f32" : "i32" };
    }
    case "cast": {
      const [x, d] = arity(node, name, 2, ctx);
      const dtype = dtypeLiteral(d!, ctx);
      return { e: { k: "cast", dtype, a: translateExpr(x!, ctx).e }, t: dtype };
    }
  }
  const math = T_MATH[fn];
  if (math) {
    const args = arity(node, name, math[1], ctx).map((x) => toFloatArg(x, ctx));
    return { e: { k: "call", fn: math[0], args: args.map((a) => a.e) }, t: args[0]!.t };
  }
  if (T_STATEMENTS.has(fn)) return ctx.fail(node, `${name}(...) is a statement, not a value`);
  return ctx.fail(node, `unknown function ${name}`);
}

/** A dtype given as a string literal ("bf16"), checked against the IR's dtypes. */
/** A dtype: a string like "bf16", or `X.dtype` of a tensor, buffer or tile view X. */
export function dtypeLiteral(node: Node, ctx: Ctx): DType {
  const n = unwrapParens(node);
  if (Node.isPropertyAccessExpression(n) && n.getName() === "dtype" && Node.isIdentifier(n.getExpression())) {
    const sym = ctx.scope.lookup(n.getExpression().getText());
    if (sym?.kind === "buffer") return sym.buf.dtype;
    if (sym?.kind === "tile") return sym.dtype;
    return ctx.fail(n, `'${n.getExpression().getText()}' is ${sym ? `a ${describe(sym)}` : "not defined"}; .dtype is read from a tensor, a buffer or a tile view`);
  }
  if (!Node.isStringLiteral(node) && !Node.isNoSubstitutionTemplateLiteral(node))
    return ctx.fail(node, `expected a dtype string like "bf16" or X.dtype, got '${quote(node)}'`);
  const text = node.getLiteralText();
  if (!(DTYPES as readonly string[]).includes(text))
    return ctx.fail(node, `unknown dtype "${text}"; expected one of ${DTYPES.join(", ")}`);
  return text as DType;
}

export function unwrapParens(node: Node): Node {
  while (Node.isParenthesizedExpression(node)) node = node.getExpression();
  return node;
}

// ---------------------------------------------------------------- element and property access

function elementAccess(node: import("ts-morph").ElementAccessExpression, ctx: Ctx): Typed {
  const { base, indices } = accessChain(node);
  const inner = unwrapParens(base);
  // A.shape[i]: one dim of a tensor, usable like the destructured name.
  if (Node.isPropertyAccessExpression(inner) && inner.getName() === "shape" && indices.length === 1) {
    const buf = bufferOf(inner.getExpression(), ctx);
    const i = unwrapParens(indices[0]!);
    if (!Node.isNumericLiteral(i) || !Number.isInteger(Number(i.getText())))
      return ctx.fail(indices[0]!, `${quote(base)} must be indexed by an integer literal`);
    const dim = buf.shape[Number(i.getText())];
    if (!dim) return ctx.fail(indices[0]!, `'${buf.name}' has rank ${buf.shape.length}; ${quote(node)} is out of range`);
    return { e: dim, t: "i32" };
  }
  const buf = bufferOf(inner, ctx);
  return { e: { k: "load", buf: buf.name, idx: indexList(buf, indices, node, ctx) }, t: buf.dtype };
}

/** `a[i][j]` -> base `a` and indices [i, j]. */
export function accessChain(node: import("ts-morph").ElementAccessExpression): { base: Node; indices: Node[] } {
  const indices: Node[] = [];
  let cur: Node = node;
  while (Node.isElementAccessExpression(cur)) {
    indices.unshift(cur.getArgumentExpressionOrThrow());
    cur = unwrapParens(cur.getExpression());
  }
  return { base: cur, indices };
}

export function indexList(buf: import("../ir/ir.ts").Buffer, indices: Node[], node: Node, ctx: Ctx): Expr[] {
  if (indices.length !== buf.shape.length)
    ctx.fail(node, `'${buf.name}' has rank ${buf.shape.length} but is indexed with ${indices.length} index${indices.length === 1 ? "" : "es"}; write ${buf.name}${buf.shape.map((_, i) => `[i${i}]`).join("")}`);
  return indices.map((ix) => intExpr(ix, ctx, "an index"));
}

export function bufferOf(node: Node, ctx: Ctx): import("../ir/ir.ts").Buffer {
  const n = unwrapParens(node);
  if (!Node.isIdentifier(n)) return ctx.fail(node, `expected a tensor or buffer name, got '${quote(node)}'`);
  const sym = ctx.scope.lookup(n.getText());
  if (!sym) return ctx.fail(node, `unknown identifier '${n.getText()}'`);
  if (sym.kind !== "buffer") return ctx.fail(node, `'${n.getText()}' is a ${describe(sym)}, not a tensor or buffer`);
  return sym.buf;
}

function propertyAccess(node: import("ts-morph").PropertyAccessExpression, ctx: Ctx): Typed {
  const obj = node.getExpression().getText();
  const name = node.getName();
  if (obj === "Math" && name in MATH_CONSTS) return { e: flt(MATH_CONSTS[name]!), t: "f32" };
  if (name === "shape") return ctx.fail(node, `'${quote(node)}' is a tuple; destructure it (const [M, K] = ${obj}.shape) or index it (${obj}.shape[0])`);
  if (name === "length") return ctx.fail(node, `'.length' is not supported; use ${obj}.shape`);
  return ctx.fail(node, `unsupported property access '${quote(node)}'`);
}
