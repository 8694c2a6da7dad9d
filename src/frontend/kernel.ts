// One `T.kernel(opts, fn)` call -> one tile-level Kernel.
import { Node, SyntaxKind, VariableDeclarationKind, type CallExpression } from "ts-morph";
import { type Expr, type Kernel, type Launch, type TunableValue } from "../ir/ir.ts";
import { Ctx } from "./ctx.ts";
import { quote } from "./diag.ts";
import { condition, intExpr, translateExpr, unwrapParens } from "./expr.ts";
import { exprList } from "./ops.ts";
import type { Scope } from "./scope.ts";
import { type Names, translateParams, tunableSym } from "./signature.ts";
import { UNSUPPORTED, define, shapeAliases, translateBlock } from "./stmt.ts";
import { helperOf, inlineStatements } from "./helpers.ts";

export function translateKernel(call: CallExpression, exportName: string, file: string, names: Names, moduleScope: Scope): Kernel {
  const args = call.getArguments();
  const fnNode = args[1] && unwrapParens(args[1]);
  const selfNames = new Set([exportName]);
  if (fnNode && Node.isFunctionExpression(fnNode) && fnNode.getName()) selfNames.add(fnNode.getName()!);
  const ctx = new Ctx(file, names.tName, selfNames, moduleScope.child(), moduleScope);
  ctx.helpers = names.helpers ?? ctx.helpers;
  if (args.length !== 2) ctx.fail(call, `${names.tName}.kernel takes 2 arguments (options, function), got ${args.length}`);
  const { tunables, whereNode } = options(args[0]!, ctx);
  if (!fnNode || !(Node.isFunctionExpression(fnNode) || Node.isArrowFunction(fnNode)))
    return ctx.fail(args[1]!, `the second argument of ${names.tName}.kernel must be a function`);
  if (fnNode.isAsync()) ctx.fail(fnNode, "kernels cannot be async");
  if (Node.isFunctionExpression(fnNode) && fnNode.isGenerator()) ctx.fail(fnNode, "kernels cannot be generators");

  const where = whereNode && whereExpr(whereNode, tunables, ctx, moduleScope);
  const { params, dims } = translateParams(fnNode.getParameters(), tunables, names, ctx);
  ctx.reserve([...params.map((p) => p.name), ...dims, ...Object.keys(tunables)]);
  const body = fnNode.getBody();
  if (!Node.isBlock(body)) return ctx.fail(body, "the kernel function needs a block body { ... } containing T.launch");
  const launch = kernelBody(body, fnNode, ctx);
  for (const p of params) if (ctx.written.has(p.name)) p.output = true;
  const k: Kernel = { name: exportName, params, dims, tunables, config: {}, launch, loc: ctx.loc(call) };
  if (where) k.where = where;
  return k;
}

function options(node: Node, ctx: Ctx): { tunables: Record<string, TunableValue[]>; whereNode?: Node } {
  const n = sharedConst(node, "kernel options", ctx);
  if (!Node.isObjectLiteralExpression(n)) return ctx.fail(node, "kernel options must be an object literal: { tune: {...}, where: (...) => ... }");
  const tunables: Record<string, TunableValue[]> = {};
  let whereNode: Node | undefined;
  for (const p of n.getProperties()) {
    const name = Node.isPropertyAssignment(p) || Node.isMethodDeclaration(p) || Node.isShorthandPropertyAssignment(p) ? p.getName() : undefined;
    // `{ tune, where }` names consts of the same names.
    const value = Node.isPropertyAssignment(p) ? p.getInitializerOrThrow() : Node.isShorthandPropertyAssignment(p) ? p.getNameNode() : undefined;
    if (name === "tune" && value) tuneSpace(value, tunables, ctx);
    else if (name === "where" && value) whereNode = sharedConst(value, "where", ctx);
    else ctx.fail(p, `unknown kernel option '${quote(p, 20)}'; the options are tune and where`);
  }
  return { tunables, whereNode };
}

/** A kernel option written as the name of a module-level const of this file (a tune space or a
 *  `where` that several kernels share): that const's initializer. Anything else as written. */
function sharedConst(node: Node, what: string, ctx: Ctx): Node {
  const n = unwrapParens(node);
  if (!Node.isIdentifier(n)) return n;
  const d = n.getSourceFile().getVariableDeclaration(n.getText());
  const list = d?.getParent();
  if (!d || !Node.isVariableDeclarationList(list) || !Node.isSourceFile(list.getParent()?.getParent()))
    return ctx.fail(n, `${what} '${n.getText()}' must be written here or be a const declared at the top level of this file (imports are not followed)`);
  if (list.getDeclarationKind() !== VariableDeclarationKind.Const) return ctx.fail(n, `${what} '${n.getText()}' must be declared with const, not ${list.getDeclarationKind()}`);
  const init = d.getInitializer();
  if (!init) return ctx.fail(n, `${what} '${n.getText()}' has no initializer`);
  let v = unwrapParens(init);
  while (Node.isAsExpression(v) || Node.isSatisfiesExpression(v)) v = unwrapParens(v.getExpression());
  return v;
}

function tuneSpace(node: Node, out: Record<string, TunableValue[]>, ctx: Ctx): void {
  const n = sharedConst(node, "tune", ctx);
  if (!Node.isObjectLiteralExpression(n)) ctx.fail(node, "tune must be an object literal: { BM: [64, 128], ... }");
  for (const p of n.getProperties()) {
    if (!Node.isPropertyAssignment(p)) return ctx.fail(p, "tune entries are written name: [values]");
    const values = unwrapParens(p.getInitializerOrThrow());
    if (!Node.isArrayLiteralExpression(values) || values.getElements().length === 0)
      ctx.fail(values, `tunable '${p.getName()}' needs a non-empty array of values; the first is the default`);
    out[p.getName()] = values.getElements().map((e) => tunableValue(e, ctx));
    const kinds = new Set(out[p.getName()]!.map((x) => typeof x));
    if (kinds.size > 1) ctx.fail(values, `tunable '${p.getName()}' mixes ${[...kinds].join(" and ")} values`);
  }
}

function tunableValue(node: Node, ctx: Ctx): TunableValue {
  const n = unwrapParens(node);
  if (Node.isNumericLiteral(n)) return Number(n.getText().replace(/_/g, ""));
  if (Node.isPrefixUnaryExpression(n) && n.getOperatorToken() === SyntaxKind.MinusToken && Node.isNumericLiteral(n.getOperand()))
    return -Number(n.getOperand().getText().replace(/_/g, ""));
  if (Node.isStringLiteral(n)) return n.getLiteralText();
  if (Node.isTrueLiteral(n)) return true;
  if (Node.isFalseLiteral(n)) return false;
  return ctx.fail(node, `tunable values must be literals (numbers, strings or booleans), got '${quote(node)}'`);
}

/** `where: ({ BM, BN }) => ...` -> an Expr over tunables. */
function whereExpr(node: Node, tunables: Record<string, TunableValue[]>, outer: Ctx, moduleScope: Scope): Expr {
  const fn = unwrapParens(node);
  if (!Node.isArrowFunction(fn) && !Node.isFunctionExpression(fn))
    return outer.fail(node, "where must be a function of the tunables: ({ BM, BN }) => ...");
  const ctx = new Ctx(outer.file, outer.tName, outer.selfNames, moduleScope.child(), moduleScope);
  ctx.helpers = outer.helpers;
  const ps = fn.getParameters();
  if (ps.length > 1) ctx.fail(fn, `where takes one parameter (the tunables), got ${ps.length}`);
  const pattern = ps[0]?.getNameNode();
  if (pattern && !Node.isObjectBindingPattern(pattern))
    return ctx.fail(pattern, "destructure the tunables where uses: ({ BM, BN }) => ...");
  for (const el of pattern ? pattern.getElements() : []) {
    const tunable = el.getPropertyNameNode()?.getText() ?? el.getNameNode().getText();
    const values = tunables[tunable];
    if (!values) ctx.fail(el, `where uses '${tunable}', which is not declared in tune`);
    define(el.getNameNode().getText(), tunableSym(tunable, values), el, ctx);
  }
  let body: Node = fn.getBody()!;
  if (Node.isBlock(body)) {
    const stmts = body.getStatements();
    const ret = stmts[0];
    if (stmts.length !== 1 || !Node.isReturnStatement(ret) || !ret.getExpression())
      return ctx.fail(body, "where must be a single expression: ({ BM, BN }) => BM * BN <= 16384");
    body = ret.getExpressionOrThrow();
  }
  return condition(body, ctx).e;
}

/** Outside the launch only constants may be bound; the launch is the whole kernel body. */
function kernelBody(body: import("ts-morph").Block, fn: Node, ctx: Ctx): Launch {
  const found: { launch?: Launch } = {};
  kernelStatements(body.getStatements(), found, ctx);
  if (!found.launch) return ctx.fail(fn, `the kernel has no ${ctx.tName}.launch(grid, { threads }, (bx, by) => { ... })`);
  return found.launch;
}

/** Kernel-level statements; a helper called here (e.g. one holding the launch) is inlined. */
function kernelStatements(stmts: import("ts-morph").Statement[], found: { launch?: Launch }, ctx: Ctx): void {
  for (const s of stmts) {
    if (Node.isExpressionStatement(s)) {
      const e = unwrapParens(s.getExpression());
      const callee = Node.isCallExpression(e) ? e.getExpression() : undefined;
      if (Node.isCallExpression(e) && Node.isPropertyAccessExpression(callee)
          && callee.getExpression().getText() === ctx.tName && callee.getName() === "launch") {
        if (found.launch) ctx.fail(e, `a kernel has exactly one ${ctx.tName}.launch; this is the second`);
        found.launch = translateLaunch(e, ctx);
        continue;
      }
      const helper = Node.isCallExpression(e) ? helperOf(e, ctx) : undefined;
      if (helper && Node.isCallExpression(e)) {
        if (found.launch) ctx.fail(s, `statements after ${ctx.tName}.launch are not supported; move them into the launch body`);
        inlineStatements(e, helper, ctx, (inner, prologue) => {
          if (prologue.length) ctx.fail(e, `outside the launch body, helper arguments cannot read tensor elements`);
          kernelStatements(inner, found, ctx);
        });
        continue;
      }
    }
    if (found.launch && !Node.isEmptyStatement(s))
      ctx.fail(s, `statements after ${ctx.tName}.launch are not supported; move them into the launch body`);
    if (Node.isVariableStatement(s)) { topLevelConsts(s, ctx); continue; }
    if (Node.isEmptyStatement(s)) continue;
    const why = UNSUPPORTED[s.getKind()];
    ctx.fail(s, why ?? `only const bindings and ${ctx.tName}.launch may appear outside the launch body ('${quote(s)}')`);
  }
}

function topLevelConsts(s: import("ts-morph").VariableStatement, ctx: Ctx): void {
  if (s.getDeclarationKind() !== VariableDeclarationKind.Const)
    ctx.fail(s, `only const bindings may appear outside the launch body; move '${quote(s)}' into the launch body`);
  for (const d of s.getDeclarations()) {
    const init = d.getInitializer();
    if (!init) return ctx.fail(d, `'${quote(d)}' needs an initial value`);
    const nameNode = d.getNameNode();
    if (Node.isArrayBindingPattern(nameNode)) { shapeAliases(nameNode, init, ctx); continue; }
    if (!Node.isIdentifier(nameNode)) return ctx.fail(nameNode, "object destructuring is not supported here");
    const inner = unwrapParens(init);
    if (Node.isCallExpression(inner) && /^(shared|fragment|local)$/.test(inner.getExpression().getText().split(".").pop()!))
      ctx.fail(inner, "allocate buffers inside the T.launch body");
    const value = translateExpr(init, ctx);
    define(nameNode.getText(), { kind: "value", expr: value.e, dtype: value.t, what: "const" }, nameNode, ctx);
  }
}

const BLOCK_NAMES = ["bx", "by", "bz"];

function translateLaunch(call: CallExpression, ctx: Ctx): Launch {
  const args = call.getArguments();
  const name = `${ctx.tName}.launch`;
  if (args.length !== 3) ctx.fail(call, `${name} takes 3 arguments (grid, { threads }, (bx, by) => { ... }), got ${args.length}`);
  const grid = exprList(args[0]!, ctx, "a grid dim", undefined, "the grid");
  if (grid.length < 1 || grid.length > 3) ctx.fail(args[0]!, `the grid has 1 to 3 dims, got ${grid.length}`);
  const { threads, minBlocks } = launchOptions(args[1]!, ctx);
  const fn = unwrapParens(args[2]!);
  if (!Node.isArrowFunction(fn) && !Node.isFunctionExpression(fn))
    return ctx.fail(args[2]!, `the last argument of ${name} must be a function (bx, by) => { ... }`);
  if (fn.isAsync()) ctx.fail(fn, "the launch body cannot be async");
  const ps = fn.getParameters();
  if (ps.length > grid.length) ctx.fail(ps[grid.length]!, `the grid has ${grid.length} dim${grid.length === 1 ? "" : "s"} but the launch body takes ${ps.length} block indices`);
  const body = fn.getBody();
  if (!Node.isBlock(body)) return ctx.fail(body, "the launch body must be a block { ... }");
  return ctx.nested(() => {
    const blockVars = grid.map((_, i) => {
      const p = ps[i];
      if (!p) {
        // Unnamed block indices still get a reserved name, so user names cannot clash with them.
        const name = ctx.irName(unusedBlockName(i, ctx), "i32");
        ctx.scope.define(name, { kind: "var", name, dtype: "i32", mutable: false, what: "block index" });
        return name;
      }
      const nm = p.getNameNode();
      if (!Node.isIdentifier(nm) || p.getTypeNode() && !/^(number|\w+\.i32)$/.test(p.getTypeNode()!.getText()))
        ctx.fail(p, "block indices are plain names: (bx, by) => ...");
      const ir = ctx.irName(nm.getText(), "i32");
      define(nm.getText(), { kind: "var", name: ir, dtype: "i32", mutable: false, what: "block index" }, nm, ctx);
      return ir;
    });
    const stmts = translateBlock(body.getStatements(), ctx);
    return { grid, threads, ...(minBlocks ? { minBlocks } : {}), blockVars, level: "tile" as const, body: stmts };
  });
}

function unusedBlockName(i: number, ctx: Ctx): string {
  let name = BLOCK_NAMES[i]!;
  while (ctx.scope.lookup(name)) name = `_${name}`;
  return name;
}

/** `{ threads, minBlocks? }`: threads per block, and blocks per SM to keep resident (the
 *  register cap nvcc gets through __launch_bounds__; Launch.minBlocks). */
function launchOptions(node: Node, ctx: Ctx): { threads: Expr; minBlocks?: Expr } {
  const n = unwrapParens(node);
  if (!Node.isObjectLiteralExpression(n)) return ctx.fail(node, "launch options must be an object literal: { threads: 128 }");
  let threads: Expr | undefined, minBlocks: Expr | undefined;
  for (const p of n.getProperties()) {
    // `threads: expr`, or the shorthand `threads` naming a value of that name.
    const value = Node.isPropertyAssignment(p) ? p.getInitializerOrThrow() : Node.isShorthandPropertyAssignment(p) ? p.getNameNode() : undefined;
    const name = value && (Node.isPropertyAssignment(p) || Node.isShorthandPropertyAssignment(p)) ? p.getName() : undefined;
    if (value && name === "threads") threads = intExpr(value, ctx, "threads");
    else if (value && name === "minBlocks") minBlocks = intExpr(value, ctx, "minBlocks");
    else ctx.fail(p, `unknown launch option '${quote(p, 20)}'; the options are threads and minBlocks`);
  }
  if (!threads) return ctx.fail(node, "launch options need threads: { threads: 128 }");
  // minBlocks 1 asks for nothing: left out, so the kernel's IR (and its tune cache key) is the
  // one it has without the option.
  return { threads, ...(minBlocks && !(minBlocks.k === "int" && minBlocks.v === 1) ? { minBlocks } : {}) };
}
