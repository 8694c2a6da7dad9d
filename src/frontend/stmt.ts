// Statements of the launch body -> IR statements.
import {
  Node, SyntaxKind, VariableDeclarationKind,
  type ForOfStatement, type ForStatement, type Statement, type VariableStatement,
} from "ts-morph";
import { type BinOp, type DType, type Expr, type Stmt, DTYPES, bin, int, v } from "../ir/ir.ts";
import type { Ctx } from "./ctx.ts";
import { quote } from "./diag.ts";
import {
  type Typed, accessChain, bufferOf, cls, coerce, condition, indexList, intExpr, translateExpr, unwrapParens,
} from "./expr.ts";
import { allocation, region, tileOp } from "./ops.ts";
import { atomicBinding } from "./moe.ts";
import { helperOf, inlineStatements, inlineTuple } from "./helpers.ts";
import { type Sym, describe } from "./scope.ts";

/** Constructs outside the subset, with the name users know them by. */
export const UNSUPPORTED: Partial<Record<SyntaxKind, string>> = {
  [SyntaxKind.WhileStatement]: "while loops are not supported; use for (const i of T.serial(n)) with a bound",
  [SyntaxKind.DoStatement]: "do-while loops are not supported; use for (const i of T.serial(n)) with a bound",
  [SyntaxKind.ForInStatement]: "for-in loops are not supported; use for (const i of T.serial(n))",
  [SyntaxKind.SwitchStatement]: "switch is not supported; use if / else",
  [SyntaxKind.TryStatement]: "try/catch is not supported: kernels cannot throw or catch",
  [SyntaxKind.ThrowStatement]: "throw is not supported: kernels cannot throw",
  [SyntaxKind.ClassDeclaration]: "classes are not supported in kernel code",
  [SyntaxKind.FunctionDeclaration]: "nested functions are not supported in kernel code; declare helper functions at the top level of the file (docs/DSL.md, Helper functions)",
  [SyntaxKind.ReturnStatement]: "return is not supported in kernel code; use if / else around the rest",
  [SyntaxKind.BreakStatement]: "break is not supported: loop trip counts must be known on entry",
  [SyntaxKind.ContinueStatement]: "continue is not supported; use if around the rest of the body",
  [SyntaxKind.LabeledStatement]: "labels are not supported in kernel code",
  [SyntaxKind.DebuggerStatement]: "debugger statements are not supported in kernel code",
};

export function translateBlock(stmts: Statement[], ctx: Ctx): Stmt[] {
  const out: Stmt[] = [];
  for (const s of stmts) translateStmt(s, ctx, out);
  return out;
}

function translateStmt(node: Statement, ctx: Ctx, out: Stmt[]): void {
  if (Node.isVariableStatement(node)) return variableStatement(node, ctx, out);
  if (Node.isExpressionStatement(node)) return expressionStatement(node.getExpression(), ctx, out);
  if (Node.isForOfStatement(node)) return void out.push(forOf(node, ctx));
  if (Node.isForStatement(node)) return void out.push(cFor(node, ctx));
  if (Node.isIfStatement(node)) {
    const cond = condition(node.getExpression(), ctx).e;
    const thenS = ctx.nested(() => body(node.getThenStatement(), ctx));
    const elseNode = node.getElseStatement();
    const elseS = elseNode ? ctx.nested(() => body(elseNode, ctx)) : [];
    return void out.push({ k: "if", cond, then: thenS, else: elseS, loc: ctx.loc(node) });
  }
  if (Node.isBlock(node)) return void out.push(...ctx.nested(() => translateBlock(node.getStatements(), ctx)));
  if (Node.isEmptyStatement(node)) return;
  const why = UNSUPPORTED[node.getKind()];
  ctx.fail(node, why ?? `unsupported statement '${quote(node)}' (${node.getKindName()})`);
}

function body(node: Statement, ctx: Ctx): Stmt[] {
  return Node.isBlock(node) ? translateBlock(node.getStatements(), ctx) : translateBlock([node], ctx);
}

// ---------------------------------------------------------------- declarations

export function define(name: string, sym: Sym, at: Node, ctx: Ctx): void {
  const old = ctx.scope.define(name, sym);
  if (old) ctx.fail(at, `'${name}' is already defined (as a ${describe(old)}); pick another name`);
}

/** `T.f32`-style type annotation -> dtype. */
export function annotatedDType(typeNode: Node | undefined, ctx: Ctx): DType | undefined {
  if (!typeNode) return undefined;
  const text = typeNode.getText();
  if (text === "number" || text === "boolean") return undefined;
  const m = new RegExp(`^${ctx.tName}\\.(\\w+)$`).exec(text);
  if (m && (DTYPES as readonly string[]).includes(m[1]!)) return m[1] as DType;
  return ctx.fail(typeNode, `unsupported type '${text}'; scalars are typed ${ctx.tName}.f32, ${ctx.tName}.i32, ...`);
}

/** Register-width type a scalar binding takes from its value. */
export function bindingType(t: DType): DType {
  if (t === "bool" || t === "f64" || t === "i64" || t === "u32") return t;
  return cls(t) === "float" ? "f32" : "i32";
}

function variableStatement(node: VariableStatement, ctx: Ctx, out: Stmt[]): void {
  const kind = node.getDeclarationKind();
  if (kind === VariableDeclarationKind.Var) ctx.fail(node, "'var' is not supported; use const or let");
  for (const decl of node.getDeclarations()) {
    const nameNode = decl.getNameNode();
    const init = decl.getInitializer();
    if (!init) ctx.fail(decl, `'${quote(decl)}' needs an initial value`);
    if (Node.isArrayBindingPattern(nameNode)) {
      const call = unwrapParens(init);
      const helper = Node.isCallExpression(call) ? helperOf(call, ctx) : undefined;
      if (helper && Node.isCallExpression(call)) tupleBinding(nameNode, call, helper, kind, ctx, out);
      else shapeAliases(nameNode, init, ctx);
      continue;
    }
    if (!Node.isIdentifier(nameNode)) ctx.fail(nameNode, "object destructuring is not supported here");
    const name = nameNode.getText();
    const alloc = allocation(name, init, ctx);
    if (alloc) {
      if (kind !== VariableDeclarationKind.Const) ctx.fail(node, `buffer '${name}' must be declared with const`);
      const buf = { ...alloc, name: ctx.irName(name) };
      define(name, { kind: "buffer", buf }, nameNode, ctx);
      out.push({ k: "alloc", buf, loc: ctx.loc(decl) });
      continue;
    }
    const inner = unwrapParens(init);
    if (Node.isCallExpression(inner) && Node.isPropertyAccessExpression(inner.getExpression())
        && inner.getExpression().getText().endsWith(".tile")) {
      if (kind !== VariableDeclarationKind.Const) ctx.fail(node, `tile view '${name}' must be declared with const`);
      const r = region(inner, ctx);
      define(name, { kind: "tile", region: r.region, dtype: r.dtype }, nameNode, ctx);
      continue;
    }
    const atom = atomicBinding(name, init, ctx);
    if (atom) {
      if (kind !== VariableDeclarationKind.Const) ctx.fail(node, `the old value of an atomic is a const: const ${name} = ...`);
      define(name, { kind: "var", name: atom.result, dtype: atom.dtype, mutable: false, what: "const" }, nameNode, ctx);
      out.push(atom.s);
      continue;
    }
    const value = translateExpr(init, ctx);
    scalarBinding(nameNode, value, annotatedDType(decl.getTypeNode(), ctx), kind, init, ctx, out);
  }
}

/** `const x = value` (or let): a scalar name and its IR let. */
function scalarBinding(nameNode: Node, value: Typed, declared: DType | undefined, kind: VariableDeclarationKind,
  at: Node, ctx: Ctx, out: Stmt[]): void {
  const dtype = declared ?? bindingType(value.t);
  const mutable = kind !== VariableDeclarationKind.Const;
  const coerced = coerce(value, dtype, at, ctx);
  const ir = ctx.irName(nameNode.getText(), dtype);
  define(nameNode.getText(), { kind: "var", name: ir, dtype, mutable, what: mutable ? "let variable" : "const" }, nameNode, ctx);
  out.push({ k: "let", name: ir, dtype, value: coerced.e, mutable, loc: ctx.loc(at) });
}

/** `const [b, r0] = f(...)` with f a helper ending in `return [...]`: its statements, then each
 *  name bound to its element as `const b = ...` would be. A const whose element is a name the
 *  helper bound takes that name itself (nothing can assign it once the helper has returned), so
 *  the IR is what the same code written in place gives. */
function tupleBinding(pattern: import("ts-morph").ArrayBindingPattern, call: import("ts-morph").CallExpression,
  helper: import("ts-morph").FunctionDeclaration, kind: VariableDeclarationKind, ctx: Ctx, out: Stmt[]): void {
  const elems = pattern.getElements();
  const start = out.length;
  const values = inlineTuple(call, helper, elems.length, ctx, (stmts, prologue) => {
    out.push(...prologue);
    for (const s of stmts) translateStmt(s, ctx, out);
  });
  const own = new Map<string, DType>();
  for (const s of out.slice(start)) if (s.k === "let") own.set(s.name, s.dtype);
  elems.forEach((el, i) => {
    if (Node.isOmittedExpression(el)) return;
    const nm = el.getNameNode();
    if (!Node.isIdentifier(nm) || el.getDotDotDotToken() || el.getInitializer())
      ctx.fail(el, `destructure '${helper.getName()}' into plain names: const [a, b] = ${helper.getName()}(...)`);
    const v = values[i]!.e;
    const dtype = v.k === "var" ? own.get(v.name) : undefined;
    if (kind === VariableDeclarationKind.Const && v.k === "var" && dtype)
      define(nm.getText(), { kind: "var", name: v.name, dtype, mutable: false, what: "const" }, nm, ctx);
    else scalarBinding(nm, values[i]!, undefined, kind, el, ctx, out);
  });
}

/** `const [M, K] = A.shape` binds each name to the tensor's dim expression. */
export function shapeAliases(pattern: import("ts-morph").ArrayBindingPattern, init: Node, ctx: Ctx): void {
  const n = unwrapParens(init);
  if (!Node.isPropertyAccessExpression(n) || n.getName() !== "shape")
    ctx.fail(pattern, "array destructuring is only supported for shapes (const [M, K] = A.shape) and helpers that return a list (const [b, r0] = f(...) with f ending in 'return [x, y];')");
  const buf = bufferOf(n.getExpression(), ctx);
  const elems = pattern.getElements();
  if (elems.length > buf.shape.length)
    ctx.fail(pattern, `'${buf.name}' has rank ${buf.shape.length}, but ${elems.length} names are destructured from its shape`);
  elems.forEach((el, i) => {
    if (Node.isOmittedExpression(el)) return;
    const nm = el.getNameNode();
    if (!Node.isIdentifier(nm) || el.getDotDotDotToken()) ctx.fail(el, "shape destructuring takes plain names: const [M, K] = A.shape");
    define(nm.getText(), { kind: "value", expr: buf.shape[i]!, dtype: "i32", what: "dim" }, nm, ctx);
  });
}

// ---------------------------------------------------------------- expression statements

const COMPOUND: Partial<Record<SyntaxKind, BinOp>> = {
  [SyntaxKind.PlusEqualsToken]: "+", [SyntaxKind.MinusEqualsToken]: "-", [SyntaxKind.AsteriskEqualsToken]: "*",
  [SyntaxKind.SlashEqualsToken]: "/", [SyntaxKind.PercentEqualsToken]: "%", [SyntaxKind.AmpersandEqualsToken]: "&",
  [SyntaxKind.BarEqualsToken]: "|", [SyntaxKind.CaretEqualsToken]: "^", [SyntaxKind.LessThanLessThanEqualsToken]: "<<",
  [SyntaxKind.GreaterThanGreaterThanEqualsToken]: ">>",
};

function expressionStatement(expr: Node, ctx: Ctx, out: Stmt[]): void {
  const e = unwrapParens(expr);
  if (Node.isCallExpression(e)) {
    const helper = helperOf(e, ctx);
    if (helper) return inlineStatements(e, helper, ctx, (stmts, prologue) => {
      out.push(...prologue);
      for (const s of stmts) translateStmt(s, ctx, out);
    });
    const callee = e.getExpression();
    if (Node.isPropertyAccessExpression(callee) && callee.getExpression().getText() === ctx.tName) {
      const fn = callee.getName();
      if (fn === "launch") ctx.fail(e, `${ctx.tName}.launch inside a launch body: a kernel has exactly one launch`);
      const s = tileOp(e, fn, ctx);
      if (s) return void out.push(s);
    }
    translateExpr(e, ctx); // reports why the call is not allowed here
    return ctx.fail(e, `the value of '${quote(e)}' is unused; a call statement must be a tile op (T.copy, T.gemm, T.fill, T.clear)`);
  }
  if (Node.isBinaryExpression(e)) {
    const op = e.getOperatorToken().getKind();
    if (op === SyntaxKind.EqualsToken) return void out.push(assign(e.getLeft(), e.getRight(), undefined, e, ctx));
    const compound = COMPOUND[op];
    if (compound) return void out.push(assign(e.getLeft(), e.getRight(), compound, e, ctx));
  }
  if (Node.isPostfixUnaryExpression(e) || Node.isPrefixUnaryExpression(e)) {
    const op = e.getOperatorToken();
    if (op === SyntaxKind.PlusPlusToken || op === SyntaxKind.MinusMinusToken)
      return void out.push(assign(e.getOperand(), undefined, op === SyntaxKind.PlusPlusToken ? "+" : "-", e, ctx));
  }
  translateExpr(e, ctx);
  ctx.fail(e, `expression statement '${quote(e)}' has no effect`);
}

/** `target = value`, `target op= value`, or `target++` (value undefined: +1/-1). */
function assign(target: Node, valueNode: Node | undefined, op: BinOp | undefined, stmt: Node, ctx: Ctx): Stmt {
  const t = unwrapParens(target);
  const loc = ctx.loc(stmt);
  const rhs = (cur: Typed, dtype: DType): Expr => {
    const value: Typed = valueNode ? translateExpr(valueNode, ctx) : { e: int(1), t: "i32" };
    if (!op) return coerce(value, dtype, valueNode!, ctx).e;
    // Reuse the expression translator's typing rules for the combined value.
    const combined = combine(op, cur, value, stmt, ctx);
    return coerce(combined, dtype, stmt, ctx).e;
  };
  if (Node.isElementAccessExpression(t)) {
    const { base, indices } = accessChain(t);
    const buf = bufferOf(base, ctx);
    const idx = indexList(buf, indices, t, ctx);
    if (buf.scope === "global") ctx.written.add(buf.name);
    const cur: Typed = { e: { k: "load", buf: buf.name, idx }, t: buf.dtype };
    return { k: "store", buf: buf.name, idx, value: rhs(cur, buf.dtype), loc };
  }
  if (Node.isIdentifier(t)) {
    const name = t.getText();
    const sym = ctx.scope.lookup(name);
    if (!sym) ctx.fail(t, `unknown identifier '${name}'`);
    if (sym.kind !== "var" || !sym.mutable) {
      const fix = sym.kind === "var" && sym.what === "const" ? `; declare it with let` : "";
      ctx.fail(t, `cannot assign to '${name}': it is a ${describe(sym)}${fix}`);
    }
    // The IR name: a helper's local may have been renamed apart from the caller's (x_1).
    return { k: "assign", name: sym.name, value: rhs({ e: v(sym.name), t: sym.dtype }, sym.dtype), loc };
  }
  return ctx.fail(target, `cannot assign to '${quote(target)}'; assign to a let variable or a buffer element`);
}

function combine(op: BinOp, a: Typed, b: Typed, node: Node, ctx: Ctx): Typed {
  if (cls(a.t) === "int" && cls(b.t) === "int" && op === "/")
    ctx.fail(node, `'${quote(node)}' divides integers; write x = T.cdiv(x, b) or x = Math.floor(x / b)`);
  if (cls(a.t) === "bool" || cls(b.t) === "bool") ctx.fail(node, `arithmetic on a boolean in '${quote(node)}'`);
  const bitwise = ["&", "|", "^", "<<", ">>"].includes(op);
  if (bitwise && (cls(a.t) !== "int" || cls(b.t) !== "int"))
    ctx.fail(node, `'${op}' needs integer operands, got ${a.t} and ${b.t}`);
  const floaty = cls(a.t) === "float" || cls(b.t) === "float";
  const toF = (x: Typed): Expr => (cls(x.t) === "float" ? x.e : x.e.k === "int" ? { k: "float", v: x.e.v } : { k: "cast", dtype: "f32", a: x.e });
  if (floaty) return { e: bin(op, toF(a), toF(b)), t: "f32" };
  return { e: bin(op, a.e, b.e), t: a.t };
}

// ---------------------------------------------------------------- loops

const LOOPS = new Set(["serial", "unroll", "pipelined", "parallel"]);

function forOf(node: ForOfStatement, ctx: Ctx): Stmt {
  const loc = ctx.loc(node);
  const iter = unwrapParens(node.getExpression());
  const callee = Node.isCallExpression(iter) ? iter.getExpression() : undefined;
  if (!Node.isCallExpression(iter) || !Node.isPropertyAccessExpression(callee)
      || callee.getExpression().getText() !== ctx.tName || !LOOPS.has(callee.getName()))
    ctx.fail(node.getExpression(), `for-of must iterate ${ctx.tName}.serial, ${ctx.tName}.unroll, ${ctx.tName}.pipelined or ${ctx.tName}.parallel, not '${quote(node.getExpression())}'`);
  const kind = callee.getName() as "serial" | "unroll" | "pipelined" | "parallel";
  const args = iter.getArguments();
  const name = `${ctx.tName}.${kind}`;
  const init = node.getInitializer();
  if (!Node.isVariableDeclarationList(init) || init.getDeclarationKind() !== VariableDeclarationKind.Const
      || init.getDeclarations().length !== 1)
    ctx.fail(init, `declare the loop variable with const: for (const i of ${name}(...))`);
  const nameNode = init.getDeclarations()[0]!.getNameNode();

  let starts: Expr[], extents: Expr[], stages: { stages?: number; stagesExpr?: Expr } = {};
  if (kind === "parallel") {
    if (args.length < 1 || args.length > 3) ctx.fail(iter, `${name} takes 1 to 3 extents, got ${args.length}`);
    extents = args.map((a) => intExpr(a, ctx, "a loop extent"));
    starts = extents.map(() => int(0));
  } else if (kind === "pipelined") {
    if (args.length !== 2) ctx.fail(iter, `${name} takes 2 arguments (count, stages), got ${args.length}`);
    extents = [intExpr(args[0]!, ctx, "a loop count")];
    starts = [int(0)];
    stages = stagesOf(args[1]!, ctx);
  } else {
    if (args.length !== 1 && args.length !== 2) ctx.fail(iter, `${name} takes 1 or 2 arguments (count, or start and end), got ${args.length}`);
    const bounds = args.map((a) => intExpr(a, ctx, "a loop bound"));
    starts = bounds.length === 2 ? [bounds[0]!] : [int(0)];
    extents = bounds.length === 2 ? [span(bounds[0]!, bounds[1]!)] : [bounds[0]!];
  }

  let names: Node[];
  if (kind === "parallel" && args.length > 1) {
    if (!Node.isArrayBindingPattern(nameNode))
      ctx.fail(nameNode, `${name} over ${args.length} dims yields tuples; write for (const [${["i", "j", "k"].slice(0, args.length).join(", ")}] of ${name}(...))`);
    names = nameNode.getElements().map((el) => (Node.isBindingElement(el) ? el.getNameNode() : el));
    if (names.length !== args.length)
      ctx.fail(nameNode, `${name} has ${args.length} dims but ${names.length} loop variables`);
  } else {
    names = [nameNode];
  }
  const sourceVars = names.map((n) => {
    if (!Node.isIdentifier(n)) return ctx.fail(n, "loop variables must be plain names");
    return n.getText();
  });
  const { vars, bodyStmts } = ctx.nested(() => {
    // Declared in the loop's own scope, so that sibling loops may reuse the names.
    const vars = sourceVars.map((n) => ctx.irName(n, "i32"));
    sourceVars.forEach((name, i) => define(name, { kind: "var", name: vars[i]!, dtype: "i32", mutable: false, what: "loop variable" }, names[i]!, ctx));
    return { vars, bodyStmts: body(node.getStatement(), ctx) };
  });
  return { k: "for", vars, starts, extents, kind, ...stages, body: bodyStmts, loc };
}

/** Pipeline depth: a literal goes into `stages`; anything else (a tunable) into `stagesExpr`. */
function stagesOf(node: Node, ctx: Ctx): { stages?: number; stagesExpr?: Expr } {
  const n = unwrapParens(node);
  if (Node.isNumericLiteral(n)) {
    const s = Number(n.getText());
    if (!Number.isInteger(s) || s < 1) ctx.fail(n, `pipeline stages must be a positive integer, got ${n.getText()}`);
    return { stages: s };
  }
  return { stagesExpr: intExpr(node, ctx, "the number of stages") };
}

/** `for (let i = a; i < b; i++)` -> a serial loop over [a, b). */
function cFor(node: ForStatement, ctx: Ctx): Stmt {
  const shape = "for (let i = start; i < end; i++)";
  const init = node.getInitializer();
  if (!Node.isVariableDeclarationList(init) || init.getDeclarations().length !== 1
      || init.getDeclarationKind() !== VariableDeclarationKind.Let)
    return ctx.fail(node, `unsupported for loop; write ${shape}`);
  const decl = init.getDeclarations()[0]!;
  const nameNode = decl.getNameNode();
  if (!Node.isIdentifier(nameNode) || !decl.getInitializer()) return ctx.fail(decl, `unsupported for loop; write ${shape}`);
  const name = nameNode.getText();
  const start = intExpr(decl.getInitializerOrThrow(), ctx, "a loop start");
  const cond = node.getCondition();
  const c = cond && unwrapParens(cond);
  if (!c || !Node.isBinaryExpression(c) || unwrapParens(c.getLeft()).getText() !== name)
    return ctx.fail(cond ?? node, `the loop condition must be '${name} < end' or '${name} <= end'`);
  const op = c.getOperatorToken().getKind();
  if (op !== SyntaxKind.LessThanToken && op !== SyntaxKind.LessThanEqualsToken)
    return ctx.fail(c, `the loop condition must be '${name} < end' or '${name} <= end'`);
  const end = intExpr(c.getRight(), ctx, "a loop bound");
  const inc = node.getIncrementor();
  if (!inc || !isIncrement(inc, name)) return ctx.fail(inc ?? node, `the loop step must be ${name}++ (step 1)`);
  const last = op === SyntaxKind.LessThanEqualsToken ? bin("+", end, int(1)) : end;
  const extent = span(start, last);
  const { ir, bodyStmts } = ctx.nested(() => {
    const ir = ctx.irName(name, "i32");
    define(name, { kind: "var", name: ir, dtype: "i32", mutable: false, what: "loop variable" }, nameNode, ctx);
    return { ir, bodyStmts: body(node.getStatement(), ctx) };
  });
  return { k: "for", vars: [ir], starts: [start], extents: [extent], kind: "serial", body: bodyStmts, loc: ctx.loc(node) };
}

/** end - start, without the `n + 1 - 1` noise that literal starts would leave. */
function span(start: Expr, end: Expr): Expr {
  if (start.k === "int" && start.dtype === undefined) {
    if (start.v === 0) return end;
    if (end.k === "int" && end.dtype === undefined) return int(end.v - start.v);
    if (end.k === "bin" && end.op === "+" && end.b.k === "int" && end.b.dtype === undefined && end.b.v === start.v) return end.a;
  }
  return bin("-", end, start);
}

function isIncrement(inc: Node, name: string): boolean {
  const e = unwrapParens(inc);
  if ((Node.isPostfixUnaryExpression(e) || Node.isPrefixUnaryExpression(e)) && e.getOperatorToken() === SyntaxKind.PlusPlusToken)
    return e.getOperand().getText() === name;
  if (Node.isBinaryExpression(e) && e.getLeft().getText() === name) {
    const op = e.getOperatorToken().getKind();
    const r = unwrapParens(e.getRight()).getText();
    if (op === SyntaxKind.PlusEqualsToken) return r === "1";
    if (op === SyntaxKind.EqualsToken) return r === `${name} + 1` || r === `1 + ${name}`;
  }
  return false;
}
