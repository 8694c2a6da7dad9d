// Integer evaluation of IR expressions whose variables are all known at emit time
// (thread counts, shared/local shapes after specialization).
import type { Expr } from "../../ir/ir.ts";

export type Env = Record<string, number | string | boolean>;

/** The integer value of e under env, or undefined when e depends on anything unknown. */
export function evalInt(e: Expr, env: Env): number | undefined {
  switch (e.k) {
    case "int": return e.v;
    case "var": {
      const x = env[e.name];
      if (typeof x === "number") return x;
      if (typeof x === "boolean") return x ? 1 : 0;
      return undefined;
    }
    case "un": {
      const a = evalInt(e.a, env);
      if (a === undefined) return undefined;
      return e.op === "neg" ? -a : e.op === "not" ? (a ? 0 : 1) : ~a;
    }
    case "bin": {
      const a = evalInt(e.a, env);
      const b = evalInt(e.b, env);
      if (a === undefined || b === undefined) return undefined;
      switch (e.op) {
        case "+": return a + b;
        case "-": return a - b;
        case "*": return a * b;
        case "/": return b === 0 ? undefined : Math.trunc(a / b);
        case "%": return b === 0 ? undefined : a % b;
        case "cdiv": return b === 0 ? undefined : Math.ceil(a / b);
        case "floordiv": return b === 0 ? undefined : Math.floor(a / b);
        case "min": return Math.min(a, b);
        case "max": return Math.max(a, b);
        case "<": return +(a < b);
        case "<=": return +(a <= b);
        case ">": return +(a > b);
        case ">=": return +(a >= b);
        case "==": return +(a === b);
        case "!=": return +(a !== b);
        case "&&": return +(a !== 0 && b !== 0);
        case "||": return +(a !== 0 || b !== 0);
        case "&": return a & b;
        case "|": return a | b;
        case "^": return a ^ b;
        case "<<": return a << b;
        case ">>": return a >> b;
      }
      return undefined;
    }
    case "select": {
      const c = evalInt(e.cond, env);
      return c === undefined ? undefined : evalInt(c ? e.a : e.b, env);
    }
    default: return undefined;
  }
}

/** Like evalInt, but a value is required: internal error otherwise (specialization's job). */
export function constInt(e: Expr, env: Env, what: string): number {
  const x = evalInt(e, env);
  if (x === undefined) throw new Error(`${what} does not fold to an integer constant at thread level`);
  return x;
}
