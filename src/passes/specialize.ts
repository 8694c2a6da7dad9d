// specialize: binds the kernel's tunables to one configuration and folds them away, so
// that every later pass sees constant tile shapes.
import { CompileError, type Diagnostic, type Expr, type Kernel, type Stmt, type TunableValue } from "../ir/ir.ts";
import { type TypeEnv, boolLit, evalConst, fold, litBool, mapAllExprs, mapStmts, substitute, typeEnvOf } from "../ir/expr.ts";
import type { PassOptions } from "./types.ts";

const show = (x: TunableValue) => (typeof x === "string" ? JSON.stringify(x) : String(x));

/** Validated configuration: requested values, defaults (first allowed value) for the rest. */
export function resolveConfig(k: Kernel, requested: Record<string, TunableValue>): Record<string, TunableValue> {
  const diags: Diagnostic[] = [];
  const config: Record<string, TunableValue> = {};
  for (const [name, value] of Object.entries(requested)) {
    const allowed = k.tunables[name];
    if (!allowed) {
      const known = Object.keys(k.tunables);
      diags.push({ loc: k.loc, severity: "error", message:
        `kernel '${k.name}' has no tunable '${name}'` + (known.length ? ` (tunables: ${known.join(", ")})` : " (it has no tunables)") });
    } else if (!allowed.some((a) => a === value)) {
      diags.push({ loc: k.loc, severity: "error", message:
        `tunable '${name}' = ${show(value)} is not allowed for kernel '${k.name}'; allowed values: ${allowed.map(show).join(", ")}` });
    }
  }
  if (diags.length) throw new CompileError(diags);
  // In declaration order, so that printed configs and cache keys do not depend on the caller.
  for (const [name, allowed] of Object.entries(k.tunables)) config[name] = name in requested ? requested[name]! : allowed[0]!;
  if (k.where) {
    const numeric = Object.fromEntries(Object.entries(config).filter((e): e is [string, number | boolean] => typeof e[1] !== "string"));
    const ok = evalConst(k.where, numeric);
    if (ok === undefined)
      throw new CompileError([{ loc: k.loc, severity: "error", message: `the 'where' constraint of kernel '${k.name}' does not evaluate to a constant under config ${showConfig(config)}` }]);
    if (ok === 0)
      throw new CompileError([{ loc: k.loc, severity: "error", message: `config ${showConfig(config)} violates the 'where' constraint of kernel '${k.name}'` }]);
  }
  return config;
}

const showConfig = (c: Record<string, TunableValue>) => `{ ${Object.entries(c).map(([n, x]) => `${n}: ${show(x)}`).join(", ")} }`;

function literal(x: TunableValue): Expr | undefined {
  if (typeof x === "boolean") return boolLit(x);
  if (typeof x === "number") return Number.isInteger(x) ? { k: "int", v: x } : { k: "float", v: x };
  return undefined; // string tunables have no expression form; the front end resolves them
}

/** Folds every expression and drops branches of `if`s whose condition became constant. */
export function foldStmts(body: Stmt[], env?: TypeEnv): Stmt[] {
  // With the kernel's types, identities that are wrong for floats (x * 0, reassociation,
  // nested division) apply to integer expressions only; without them, vars count as ints.
  const folded = mapAllExprs(body, (e) => fold(e, env));
  return mapStmts(folded, (s) => {
    if (s.k === "for" && s.stagesExpr) {
      const n = evalConst(s.stagesExpr);
      if (n === undefined) return undefined; // still symbolic: inferTypes reports it
      const { stagesExpr: _, ...rest } = s;
      return { ...rest, stages: n };
    }
    if (s.k !== "if") return undefined;
    const c = litBool(s.cond);
    if (c === undefined) return undefined;
    const kept = c ? s.then : s.else;
    // A branch that binds names keeps its block (siblings may bind the same names).
    return kept.some((x) => x.k === "let" || x.k === "alloc" || x.k === "warp_reduce" || (x.k === "atomic" && x.result !== undefined))
      ? { ...s, cond: boolLit(true), then: kept, else: [] } : kept;
  });
}

export function specialize(k: Kernel, opts: PassOptions): Kernel {
  const config = resolveConfig(k, opts.config);
  const m = new Map<string, Expr>();
  for (const [n, x] of Object.entries(config)) { const l = literal(x); if (l) m.set(n, l); }
  const sub = (e: Expr) => fold(substitute(e, m));
  const body = mapStmts(k.launch.body, (s) => (s.k === "for" && s.stagesExpr ? { ...s, stagesExpr: sub(s.stagesExpr) } : undefined));
  const { minBlocks, ...launch } = k.launch;
  return {
    ...k,
    config,
    params: k.params.map((p) => (p.shape ? { ...p, shape: p.shape.map(sub) } : p)),
    launch: {
      ...launch,
      grid: k.launch.grid.map(sub),
      threads: sub(k.launch.threads),
      // minBlocks 1 asks for nothing: dropped, so a kernel tuned to 1 prints and emits as one without it.
      ...(minBlocks && evalConst(sub(minBlocks)) !== 1 ? { minBlocks: sub(minBlocks) } : {}),
      body: foldStmts(substitute(body, m), typeEnvOf(k)),
    },
  };
}
