// Row addresses that each ldmatrix of a lowered gemm gives, per warp, found by evaluating the
// lowering's statements lane by lane (lets, unrolled loops). Used for the bank-conflict check;
// execution itself is the interpreter's job.
import type { Expr, Stmt } from "../../src/ir/ir.ts";
import { evalConst } from "../../src/ir/expr.ts";

export interface LdmatrixTrace { buf: string; num: number; trans: boolean; rowAddrs: number[] }

export function traceLdmatrix(body: Stmt[], threads: number, tx = "tx"): LdmatrixTrace[] {
  const out: LdmatrixTrace[] = [];
  const envs = Array.from({ length: threads }, (_, t) => new Map([[tx, t]]));
  const ev = (e: Expr, env: Map<string, number>): number => {
    const x = evalConst(e, env);
    if (x === undefined) throw new Error(`trace: cannot evaluate ${JSON.stringify(e)}`);
    return x;
  };
  const walk = (ss: Stmt[]): void => {
    for (const s of ss) {
      if (s.k === "let") for (const env of envs) env.set(s.name, ev(s.value, env));
      else if (s.k === "for") {
        const n = ev(s.extents[0]!, envs[0]!), start = ev(s.starts[0]!, envs[0]!);
        for (let i = start; i < start + n; i++) {
          for (const env of envs) env.set(s.vars[0]!, i);
          walk(s.body);
        }
      } else if (s.k === "if") {
        // Conditions here are warp-uniform (k-step bounds): thread 0 decides for all.
        walk(ev(s.cond, envs[0]!) ? s.then : s.else);
      } else if (s.k === "ldmatrix") {
        for (let w = 0; w < threads; w += 32)
          out.push({ buf: s.addr.buf, num: s.num, trans: s.trans,
            rowAddrs: Array.from({ length: 8 * s.num }, (_, l) => ev(s.addr.idx[0]!, envs[w + l]!)) });
      }
    }
  };
  walk(body);
  return out;
}
