// Module-level functions that kernel code calls: `function mainLoop(...) { ... }` declared in
// the kernel file. They are inlined where they are called (nothing is a run-time call): a
// call statement splices the function's statements in, a call in an expression is replaced
// by the function's `return` expression, and a destructured call (`const [b, r0] = f(...)`)
// splices the statements in and binds each name to one element of the final `return [...]`.
// Their body sees module constants and their own parameters only, as in TypeScript.
// Arguments are bound by value: a name passes what it names (a tensor, buffer, tile view,
// tunable, dim, scalar, read-only inside, or another helper, e.g. an activation function),
// any other expression is evaluated once at the call.
import { Node, type CallExpression, type FunctionDeclaration, type Statement } from "ts-morph";
import { helperHomes } from "./modules.ts";
import type { Stmt } from "../ir/ir.ts";
import { walkExpr } from "../ir/expr.ts";
import type { Ctx } from "./ctx.ts";
import { quote } from "./diag.ts";
import { type Typed, coerce, translateExpr, unwrapParens } from "./expr.ts";
import { region } from "./ops.ts";
import type { Sym } from "./scope.ts";
import { bindingType, define } from "./stmt.ts";

/** The helper a call statement or expression names; undefined when it names none. */
export function helperOf(call: CallExpression, ctx: Ctx): FunctionDeclaration | undefined {
  const callee = call.getExpression();
  if (!Node.isIdentifier(callee)) return undefined;
  // A local name hides a module-level function of the same name, as in TypeScript; a
  // parameter may itself stand for a helper (passed by name, e.g. an activation).
  const sym = ctx.scope.lookup(callee.getText());
  if (sym) return sym.kind === "helper" ? sym.fn : undefined;
  return helperNamed(callee.getText(), call, ctx);
}

/** The helper `name` stands for in the current module; a located error for an import that
 *  cannot be used. */
function helperNamed(name: string, at: Node, ctx: Ctx): FunctionDeclaration | undefined {
  const r = ctx.helpers.lookup(name);
  if (r && "error" in r) return ctx.fail(at, r.error);
  return r?.fn;
}

/** Inlines a helper called as a statement: its statements, translated by `translate`. */
export function inlineStatements<R>(call: CallExpression, fn: FunctionDeclaration, ctx: Ctx,
  translate: (stmts: Statement[], prologue: Stmt[]) => R): R {
  const body = checkedBody(call, fn, ctx);
  const stmts = body.getStatements();
  for (const s of stmts) {
    if (Node.isReturnStatement(s))
      ctx.fail(s, `'${fn.getName()}' is called as a statement, so it cannot return; a helper that returns is one 'return expr;' used inside an expression`);
  }
  return withHelperScope(call, fn, ctx, "statement", (prologue) => translate(stmts, prologue));
}

/** Inlines a helper called inside an expression: `const` bindings, then `return expr;`. */
export function inlineExpression(call: CallExpression, fn: FunctionDeclaration, ctx: Ctx): Typed {
  const body = checkedBody(call, fn, ctx);
  const stmts = body.getStatements();
  const last = stmts[stmts.length - 1];
  if (!last || !Node.isReturnStatement(last) || !last.getExpression())
    return ctx.fail(call, `'${fn.getName()}' is used as a value, so its body must end with 'return expr;' (it may only bind consts before that)`);
  return withHelperScope(call, fn, ctx, "expression", () => {
    for (const s of stmts.slice(0, -1)) {
      if (!Node.isVariableStatement(s) || s.getDeclarationKind() !== "const")
        ctx.fail(s, `a helper used as a value may only bind consts before its return; '${quote(s)}' is a statement (call '${fn.getName()}' as a statement instead)`);
      for (const d of s.getDeclarations()) {
        const nm = d.getNameNode();
        const init = d.getInitializer();
        if (!Node.isIdentifier(nm) || !init) return ctx.fail(d, `write 'const name = expr' here`);
        const r = translateExpr(init, ctx);
        define(nm.getText(), { kind: "value", expr: r.e, dtype: r.t, what: "const" }, nm, ctx);
      }
    }
    return translateExpr(last.getExpressionOrThrow(), ctx);
  });
}

/** Inlines a helper whose values are destructured (`const [x, y] = f(...)`): its statements but
 *  the last, translated by `translate`, then the elements of its final `return [a, b, ...];`,
 *  translated in its scope (a name it bound stays valid: inlined statements share the block). */
export function inlineTuple(call: CallExpression, fn: FunctionDeclaration, names: number, ctx: Ctx,
  translate: (stmts: Statement[], prologue: Stmt[]) => void): Typed[] {
  const body = checkedBody(call, fn, ctx);
  const stmts = body.getStatements();
  const last = stmts[stmts.length - 1];
  const value = last && Node.isReturnStatement(last) ? last.getExpression() : undefined;
  // `return [a, b] as const` types the names in TypeScript; the IR is the same.
  const bare = value && Node.isAsExpression(value) && value.getTypeNode()?.getText() === "const" ? value.getExpression() : value;
  const list = bare ? unwrapParens(bare) : undefined;
  if (!list || !Node.isArrayLiteralExpression(list))
    return ctx.fail(call, `'${fn.getName()}' is destructured, so its body must end with 'return [a, b, ...];'`);
  for (const s of stmts.slice(0, -1)) {
    const early = Node.isReturnStatement(s) ? s : s.getFirstDescendant((d) => Node.isReturnStatement(d));
    if (early) ctx.fail(early, `'${fn.getName()}' is destructured, so only its last statement may return`);
  }
  const elems = list.getElements();
  if (elems.some((e) => Node.isSpreadElement(e) || Node.isOmittedExpression(e)))
    ctx.fail(list, `'${fn.getName()}' must return a list of plain values: return [a, b, ...]`);
  if (names > elems.length)
    ctx.fail(call, `${names} names are destructured from '${fn.getName()}', which returns ${elems.length} value${elems.length === 1 ? "" : "s"}`);
  return withHelperScope(call, fn, ctx, "statement", (prologue) => {
    translate(stmts.slice(0, -1), prologue);
    return elems.map((e) => translateExpr(e, ctx));
  });
}

function checkedBody(call: CallExpression, fn: FunctionDeclaration, ctx: Ctx) {
  const name = fn.getName()!;
  if (ctx.inlining.includes(name))
    ctx.fail(call, `recursion is not supported: '${name}' is already being inlined (${[...ctx.inlining, name].join(" -> ")})`);
  if (fn.isAsync() || fn.isGenerator()) ctx.fail(fn, `helper '${name}' cannot be async or a generator`);
  if (fn.getTypeParameters().length) ctx.fail(fn.getTypeParameters()[0]!, `helper '${name}': type parameters are not supported; pass dtypes through the tensors (T.shared(shape, A.dtype))`);
  const body = fn.getBody();
  if (!body || !Node.isBlock(body)) return ctx.fail(fn, `helper '${name}' needs a body`);
  const params = fn.getParameters();
  const args = call.getArguments();
  if (args.length !== params.length)
    ctx.fail(call, `'${name}' takes ${params.length} argument${params.length === 1 ? "" : "s"}, got ${args.length}`);
  for (const p of params) {
    if (!Node.isIdentifier(p.getNameNode()) || p.getDotDotDotToken() || p.hasQuestionToken() || p.getInitializer())
      ctx.fail(p, `helper '${name}': parameters are plain names (no destructuring, rest, optional or default)`);
  }
  return body;
}

/** Binds the parameters in a scope that sees only module constants, runs `f`, restores. */
function withHelperScope<R>(call: CallExpression, fn: FunctionDeclaration, ctx: Ctx, how: "statement" | "expression",
  f: (prologue: Stmt[]) => R): R {
  const prologue: Stmt[] = [];
  // Arguments are translated in the caller's scope, before switching.
  const bound = fn.getParameters().map((p, i) => ({ p, sym: argument(call.getArguments()[i]!, p.getName(), how, ctx, prologue) }));
  const saved = { scope: ctx.scope, file: ctx.file, tName: ctx.tName, moduleScope: ctx.moduleScope, helpers: ctx.helpers };
  // The body is translated at home: its module's constants, T name and helpers, its file in errors.
  const home = helperHomes.get(fn);
  if (home) Object.assign(ctx, { file: home.file, tName: home.tName, moduleScope: home.moduleScope, helpers: home.helpers });
  ctx.scope = saved.scope.helperBody(ctx.moduleScope);
  ctx.inlining.push(fn.getName()!);
  try {
    for (const { p, sym } of bound) define(p.getName(), sym, p.getNameNode(), ctx);
    return f(prologue);
  } finally {
    ctx.inlining.pop();
    Object.assign(ctx, saved);
  }
}

/** What a parameter stands for inside the helper. */
function argument(arg: Node, param: string, how: "statement" | "expression", ctx: Ctx, prologue: Stmt[]): Sym {
  const a = unwrapParens(arg);
  if (Node.isIdentifier(a)) {
    const sym = ctx.scope.lookup(a.getText());
    if (sym?.kind === "var" && sym.mutable) return { ...sym, mutable: false, what: "helper parameter" };
    if (sym) return sym;
    const fn = helperNamed(a.getText(), a, ctx);
    if (fn) return { kind: "helper", fn };
  }
  if (Node.isCallExpression(a) && Node.isPropertyAccessExpression(a.getExpression()) && a.getExpression().getText().endsWith(".tile")) {
    const r = region(a, ctx);
    return { kind: "tile", region: r.region, dtype: r.dtype };
  }
  const r = translateExpr(a, ctx);
  if (how === "expression" || !readsMemory(r.e)) return { kind: "value", expr: r.e, dtype: r.t, what: "helper parameter" };
  // A value read from memory is taken once, at the call, as a call by value would.
  const dtype = bindingType(r.t);
  const name = ctx.irName(param, dtype);
  prologue.push({ k: "let", name, dtype, value: coerce(r, dtype, arg, ctx).e, mutable: false, loc: ctx.loc(arg) });
  return { kind: "var", name, dtype, mutable: false, what: "helper parameter" };
}

function readsMemory(e: import("../ir/ir.ts").Expr): boolean {
  let loads = false;
  walkExpr(e, (x) => { if (x.k === "load") loads = true; });
  return loads;
}
