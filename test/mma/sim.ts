// A tiny lockstep executor of the thread-level IR subset the mma lowering and its test
// harness produce. Stand-in until src/interp/ lands; it reads the PTX fragment layouts on
// its own (not through src/layout/) so that it can disagree with the lowering.
import type { Expr, Kernel, Stmt } from "../../src/ir/ir.ts";

type Env = Map<string, number>;

export interface SimResult { globals: Map<string, Float64Array>; trace: LdmatrixTrace[] }
/** Row addresses (element indices into `buf`) the lanes gave to one ldmatrix, per warp. */
export interface LdmatrixTrace { buf: string; num: number; trans: boolean; rowAddrs: number[] }

export function simulate(k: Kernel, inputs: Record<string, Float64Array>): SimResult {
  const threads = evalConst(k.launch.threads);
  const tv = k.launch.threadVar ?? "tx";
  const globals = new Map<string, Float64Array>();
  for (const p of k.params) {
    if (p.kind !== "tensor") continue;
    const size = (p.shape ?? []).reduce((s, e) => s * evalConst(e), 1);
    globals.set(p.name, inputs[p.name] ? Float64Array.from(inputs[p.name]!) : new Float64Array(size));
  }
  const shared = new Map<string, Float64Array>();
  const locals: Map<string, Float64Array>[] = Array.from({ length: threads }, () => new Map());
  const envs: Env[] = Array.from({ length: threads }, (_, t) => new Map([[tv, t]]));
  const trace: LdmatrixTrace[] = [];

  const mem = (t: number, buf: string): Float64Array => {
    const b = locals[t]!.get(buf) ?? shared.get(buf) ?? globals.get(buf);
    if (!b) throw new Error(`sim: unknown buffer ${buf}`);
    return b;
  };
  const ev = (t: number, e: Expr): number => {
    switch (e.k) {
      case "int": case "float": return e.v;
      case "var": {
        const x = envs[t]!.get(e.name);
        if (x === undefined) throw new Error(`sim: unbound ${e.name}`);
        return x;
      }
      case "bin": return binop(e.op, ev(t, e.a), ev(t, e.b));
      case "load": {
        const b = mem(t, e.buf);
        const i = flat(t, e.buf, e.idx);
        if (i < 0 || i >= b.length) throw new Error(`sim: ${e.buf}[${i}] out of bounds (${b.length})`);
        return b[i]!;
      }
      case "cast": return ev(t, e.a);
      default: throw new Error(`sim: unsupported expr ${e.k}`);
    }
  };
  const flat = (t: number, buf: string, idx: Expr[]): number => {
    if (idx.length === 1) return ev(t, idx[0]!);
    const p = k.params.find((q) => q.name === buf);
    const shape = (p?.shape ?? []).map(evalConst);
    return idx.reduce((s, e, d) => s * shape[d]! + ev(t, e), 0);
  };

  const exec = (body: Stmt[], active: number[]): void => {
    for (const s of body) {
      switch (s.k) {
        case "alloc": {
          const size = s.buf.shape.reduce((a, e) => a * evalConst(e), 1);
          if (s.buf.scope === "shared") shared.set(s.buf.name, new Float64Array(size));
          else for (const t of active) locals[t]!.set(s.buf.name, new Float64Array(size));
          break;
        }
        case "let": case "assign":
          for (const t of active) envs[t]!.set(s.name, ev(t, s.value));
          break;
        case "store":
          for (const t of active) mem(t, s.buf)[flat(t, s.buf, s.idx)] = ev(t, s.value);
          break;
        case "for": {
          if (s.vars.length !== 1) throw new Error("sim: multi-var loops unsupported");
          const t0 = active[0]!;
          const start = ev(t0, s.starts[0]!), n = ev(t0, s.extents[0]!);
          for (let i = start; i < start + n; i++) {
            for (const t of active) envs[t]!.set(s.vars[0]!, i);
            exec(s.body, active);
          }
          break;
        }
        case "if": {
          const yes = active.filter((t) => ev(t, s.cond) !== 0);
          const no = active.filter((t) => ev(t, s.cond) === 0);
          if (yes.length) exec(s.then, yes);
          if (no.length) exec(s.else, no);
          break;
        }
        case "barrier": break;
        case "ldmatrix": for (const w of warps(active)) ldmatrix(s, w); break;
        case "mma": for (const w of warps(active)) mma(s, w); break;
        default: throw new Error(`sim: unsupported stmt ${s.k}`);
      }
    }
  };
  const warps = (active: number[]): number[][] => {
    if (active.length % 32 !== 0) throw new Error("sim: warp-collective op under divergence");
    const out: number[][] = [];
    for (let i = 0; i < active.length; i += 32) {
      const w = active.slice(i, i + 32);
      if (w[0]! % 32 !== 0 || w[31] !== w[0]! + 31) throw new Error("sim: partial warp in collective op");
      out.push(w);
    }
    return out;
  };
  // ldmatrix: lane l of the warp gives row l%8 of matrix l/8; each lane gets, per matrix,
  // elements (l/4, 2(l%4)+j) -- or (2(l%4)+j, l/4) with .trans.
  const ldmatrix = (s: Extract<Stmt, { k: "ldmatrix" }>, w: number[]): void => {
    const rows = w.map((t) => (w.indexOf(t) < 8 * s.num ? ev(t, s.addr.idx[0]!) : -1));
    trace.push({ buf: s.addr.buf, num: s.num, trans: s.trans, rowAddrs: rows.slice(0, 8 * s.num) });
    const src = mem(w[0]!, s.addr.buf);
    for (const a of rows.slice(0, 8 * s.num)) if (a % 8 !== 0) throw new Error(`sim: ldmatrix row ${a} not 16-byte aligned`);
    w.forEach((t, l) => {
      const dst = mem(t, s.dst.buf), d0 = ev(t, s.dst.idx[0]!);
      for (let q = 0; q < s.num; q++)
        for (let j = 0; j < 2; j++) {
          const [r, c] = s.trans ? [2 * (l % 4) + j, l >> 2] : [l >> 2, 2 * (l % 4) + j];
          dst[d0 + 2 * q + j] = src[rows[8 * q + r]! + c]!;
        }
    });
  };
  const mma = (s: Extract<Stmt, { k: "mma" }>, w: number[]): void => {
    const A = new Float64Array(256), B = new Float64Array(128), C = new Float64Array(128);
    const at = (t: number, r: { buf: string; idx: Expr[] }, e: number) => mem(t, r.buf)[ev(t, r.idx[0]!) + e]!;
    w.forEach((t, l) => {
      const gq = l >> 2, tq = l % 4;
      for (let e = 0; e < 8; e++) A[(gq + 8 * ((e >> 1) & 1)) * 16 + 2 * tq + (e & 1) + 8 * (e >> 2)] = at(t, s.a, e);
      for (let e = 0; e < 4; e++) B[(2 * tq + (e & 1) + 8 * (e >> 1)) * 8 + gq] = at(t, s.b, e);
      for (let e = 0; e < 4; e++) C[(gq + 8 * (e >> 1)) * 8 + 2 * tq + (e & 1)] = at(t, s.c, e);
    });
    w.forEach((t, l) => {
      const gq = l >> 2, tq = l % 4, d = mem(t, s.d.buf), d0 = ev(t, s.d.idx[0]!);
      for (let e = 0; e < 4; e++) {
        const r = gq + 8 * (e >> 1), c = 2 * tq + (e & 1);
        let acc = C[r * 8 + c]!;
        for (let kk = 0; kk < 16; kk++) acc += A[r * 16 + kk]! * B[kk * 8 + c]!;
        d[d0 + e] = acc;
      }
    });
  };

  exec(k.launch.body, Array.from({ length: threads }, (_, t) => t));
  return { globals, trace };
}

function evalConst(e: Expr): number {
  if (e.k === "int") return e.v;
  if (e.k === "bin") return binop(e.op, evalConst(e.a), evalConst(e.b));
  throw new Error(`sim: not a constant: ${JSON.stringify(e)}`);
}

function binop(op: string, a: number, b: number): number {
  switch (op) {
    case "+": return a + b;
    case "-": return a - b;
    case "*": return a * b;
    case "/": return Math.trunc(a / b);
    case "%": return a % b;
    case "<": return +(a < b);
    case "<=": return +(a <= b);
    case ">": return +(a > b);
    case ">=": return +(a >= b);
    case "==": return +(a === b);
    case "!=": return +(a !== b);
    case "&": return a & b;
    case "|": return a | b;
    case "^": return a ^ b;
    case "<<": return a << b;
    case ">>": return a >> b;
    case "min": return Math.min(a, b);
    case "max": return Math.max(a, b);
    case "cdiv": return Math.ceil(a / b);
    default: throw new Error(`sim: unsupported op ${op}`);
  }
}
