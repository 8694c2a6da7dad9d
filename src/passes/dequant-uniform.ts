// What of a T.dequant loop body (src/frontend/dequant.ts) does not change across the words of
// one packed tile, so that the register-fused dequant-gemm (fuse-dequant-gemm.ts) can compute
// it once per k tile instead of once per word and lane:
//  - the scale and zero-point reads, when the group index `kq / group` is the same for every
//    word of the tile: kq = k0 + w * per with k0 a multiple of d, and d >= per * (W - 1) + 1
//    where d = gcd(multiple of k0, group) (for group 128: BK 64 or 128 tiles, whose k0 is a
//    multiple of BK; group "channel" has no kq at all);
//  - the K mask `select(kq + j < K, v, 0)`: kq + j grows with w and j, so it holds for every
//    value of the tile iff it holds for the last one (w = W - 1, j = per - 1); a tile entirely
//    below K takes code without the selects.
// Everything here is decided statically from the IR; when a fact cannot be shown the caller
// keeps the general per-word code.
import { type Expr, type Stmt, bin, int } from "../ir/ir.ts";
import { evalConst, fold, freeVars, substitute } from "../ir/expr.ts";

/** 0: does not depend on the word w; 1: depends on it but is the same for every word of the
 *  tile; 2: may differ between words. */
export type Dep = 0 | 1 | 2;

export interface TileFacts {
  /** Immutable lets of the body, their values with earlier lets substituted. */
  lets: Map<string, Expr>;
  /** Dependence of the mutable lets (the masked scale / zero reads) on w. */
  vars: Map<string, Dep>;
  /** Dependence of an expression of the body on w. */
  dep: (e: Expr) => Dep;
}

const gcd = (a: number, b: number): number => (b === 0 ? Math.abs(a) : gcd(b, a % b));

/** A number m with e = 0 mod m whatever the variables are (1 when nothing is known). */
function multipleOf(e: Expr): number {
  switch (e.k) {
    case "int": return Math.abs(e.v);
    case "bin":
      if (e.op === "*") return multipleOf(e.a) * multipleOf(e.b);
      if (e.op === "+" || e.op === "-") return gcd(multipleOf(e.a), multipleOf(e.b));
      return 1;
    default: return 1;
  }
}

/** The terms of a sum. */
function terms(e: Expr): Expr[] {
  return e.k === "bin" && e.op === "+" ? [...terms(e.a), ...terms(e.b)] : [e];
}

const mentions = (e: Expr, names: string[]) => { const f = freeVars(e); return names.some((n) => f.has(n)); };

/** Coefficient c >= 0 when the term is x, x * c or c * x (x one of names); undefined otherwise. */
function linearTerm(t: Expr, names: string[]): number | undefined {
  if (t.k === "var" && names.includes(t.name)) return 1;
  if (t.k === "bin" && t.op === "*") {
    const [x, c] = t.a.k === "int" ? [t.b, t.a] : [t.a, t.b];
    if (x.k === "var" && names.includes(x.name) && c.k === "int" && c.v >= 0) return c.v;
  }
  return undefined;
}

/**
 * Facts of the loop body `body` (its statements before the dequant), w ranging over
 * [0, W) words of `per` values each. With `slice` < W, "the same for every word" means for
 * every word of one slice [s * slice, (s + 1) * slice) (a group smaller than the tile: one
 * scale per slice). Undefined when the body has statements other than lets, mutable lets
 * and ifs assigning them.
 */
export function tileFacts(body: Stmt[], w: string, W: number, readOnly: (buf: string) => boolean, slice = W): TileFacts | undefined {
  const lets = new Map<string, Expr>();
  const vars = new Map<string, Dep>();
  const inline = (e: Expr) => fold(substitute(e, lets));
  const dep = (e0: Expr): Dep => {
    const go = (e: Expr): Dep => {
      switch (e.k) {
        case "var": return e.name === w ? 2 : vars.get(e.name) ?? 0;
        case "int": case "float": return 0;
        case "load": return readOnly(e.buf) ? (Math.max(0, ...e.idx.map(go)) as Dep) : 2;
        case "bin": {
          const a = go(e.a), b = go(e.b);
          if (e.op === "/" && e.b.k === "int" && e.b.v > 0 && a === 2 && b === 0 && sameGroup(e.a, e.b.v)) return 1;
          return Math.max(a, b) as Dep;
        }
        case "un": case "cast": return go(e.a);
        case "call": return Math.max(0, ...e.args.map(go)) as Dep;
        case "select": return Math.max(go(e.cond), go(e.a), go(e.b)) as Dep;
      }
    };
    return go(inline(e0));
  };
  // a / G is the same for every word: a = B + c * w with B a multiple of d = gcd(m(B), G)
  // and c * (W - 1) < d, so a / G = B / G for all of them. Per slice, w = s * slice + w'
  // adds c * slice to B's terms and bounds w' by slice.
  const sameGroup = (a: Expr, G: number): boolean => {
    let c = 0, m = 0;
    for (const t of terms(a)) {
      const lin = linearTerm(t, [w]);
      if (lin !== undefined) { c += lin; continue; }
      if (mentions(t, [w, ...[...vars.keys()]])) return false;
      m = gcd(m, multipleOf(t));
    }
    const d = gcd(slice < W ? gcd(m, c * slice) : m, G);
    return d > 0 && c * (slice - 1) < d;
  };
  const walk = (list: Stmt[], ambient: Dep): boolean => {
    for (const s of list) {
      if (s.k === "let" && !s.mutable && ambient === 0) { lets.set(s.name, inline(s.value)); continue; }
      if (s.k === "let" && s.mutable) { vars.set(s.name, Math.max(ambient, dep(s.value)) as Dep); continue; }
      if (s.k === "assign" && vars.has(s.name)) { vars.set(s.name, Math.max(vars.get(s.name)!, ambient, dep(s.value)) as Dep); continue; }
      if (s.k === "if") {
        const d = Math.max(ambient, dep(s.cond)) as Dep;
        if (!walk(s.then, d) || !walk(s.else, d)) return false;
        continue;
      }
      return false;
    }
    return true;
  };
  return walk(body, 0) ? { lets, vars, dep } : undefined;
}

/**
 * The condition under which `select(cond, ...)` of the store loop holds for every value of
 * the tile (w < W, j < per), as an expression of the names outside the body; undefined when
 * cond is not `a < b` with b free of w and j, and a a sum of terms free of them, terms linear
 * in them with non-negative coefficients (largest at the last value), or terms of w and j
 * alone (largest found by trying every w < W, j < per).
 */
export function wholeTileCond(f: TileFacts, cond: Expr, w: string, W: number, j: string, per: number): Expr | undefined {
  if (cond.k !== "bin" || cond.op !== "<") return undefined;
  const a = fold(substitute(cond.a, f.lets)), b = fold(substitute(cond.b, f.lets));
  const mutable = [...f.vars.keys()];
  if (mentions(b, [w, j, ...mutable]) || mentions(a, mutable)) return undefined;
  const ts = terms(a);
  if (ts.every((t) => !mentions(t, [w, j]) || linearTerm(t, [w, j]) !== undefined)) {
    const last = new Map<string, Expr>([[w, int(W - 1)], [j, int(per - 1)]]);
    return fold(bin("<", substitute(a, last), b));
  }
  // Terms of w and j alone that are not linear (the mma order's column, frontend/dequant.ts
  // dequantColumn): their sum's largest value over the tile, by trying every (w, j).
  const inWJ = ts.filter((t) => mentions(t, [w, j]));
  const wj = new Set([w, j]);
  if (inWJ.some((t) => [...freeVars(t)].some((x) => !wj.has(x)))) return undefined;
  let max: number | undefined;
  for (let wi = 0; wi < W; wi++)
    for (let ji = 0; ji < per; ji++) {
      const at = new Map<string, Expr>([[w, int(wi)], [j, int(ji)]]);
      const x = inWJ.reduce<number | undefined>((s, t) => { const c = evalConst(substitute(t, at)); return s === undefined || c === undefined ? undefined : s + c; }, 0);
      if (x === undefined) return undefined;
      max = max === undefined ? x : Math.max(max, x);
    }
  const rest = ts.filter((t) => !mentions(t, [w, j]));
  return fold(bin("<", rest.reduce((s, t) => bin("+", s, t), int(max ?? 0) as Expr), b));
}
