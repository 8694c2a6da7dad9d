// inferTypes: checks that every expression is well typed and every tile shape constant,
// makes dtype conversions explicit (casts at stores, lets, assigns, fills), and marks the
// tensor params the kernel writes as outputs.
import {
  CompileError, type Buffer, type Diagnostic, type DType, type Expr, type Kernel, type Loc, type Region, type Stmt,
  isFloat,
} from "../ir/ir.ts";
import { type TypeEnv, evalConst, explicitCasts, fold, mapStmts, typeOf, walkExpr, walkStmts } from "../ir/expr.ts";

const BITWISE = new Set(["&", "|", "^", "<<", ">>", "cdiv", "floordiv"]);

class Checker {
  diags: Diagnostic[] = [];
  bufs = new Map<string, Buffer>();
  constructor(public k: Kernel, public env: TypeEnv) {
    for (const p of k.params)
      if (p.kind === "tensor") this.bufs.set(p.name, { name: p.name, scope: "global", dtype: p.dtype, shape: p.shape ?? [] });
    walkStmts(k.launch.body, (s) => { if (s.k === "alloc") this.bufs.set(s.buf.name, s.buf); });
  }
  err(loc: Loc | undefined, message: string) { this.diags.push({ loc: loc ?? this.k.loc, message, severity: "error" }); }

  /** Type of e, or undefined after reporting why it has none. */
  expr(e: Expr, loc?: Loc): DType | undefined {
    let ok = true;
    walkExpr(e, (x) => {
      if (x.k === "var" && !this.env.vars.has(x.name)) { this.err(loc, `unknown name '${x.name}'`); ok = false; }
      if (x.k === "load") {
        const b = this.bufs.get(x.buf);
        if (!b) { this.err(loc, `unknown buffer '${x.buf}'`); ok = false; }
        else if (b.shape.length && x.idx.length !== b.shape.length) {
          this.err(loc, `'${x.buf}' has rank ${b.shape.length}, indexed with ${x.idx.length} indices`); ok = false;
        }
      }
    });
    if (!ok) return undefined;
    walkExpr(e, (x) => {
      if (x.k === "bin" && BITWISE.has(x.op)) {
        const ta = typeOf(x.a, this.env), tb = typeOf(x.b, this.env);
        if (isFloat(ta) || isFloat(tb)) { this.err(loc, `operator '${x.op}' needs integer operands, got ${ta} and ${tb}`); ok = false; }
      }
      if (x.k === "un" && x.op === "bitnot" && isFloat(typeOf(x.a, this.env))) { this.err(loc, `'~' needs an integer operand`); ok = false; }
      if (x.k === "load") for (const i of x.idx) if (isFloat(typeOf(i, this.env))) { this.err(loc, `index of '${x.buf}' is a float`); ok = false; }
    });
    return ok ? typeOf(e, this.env) : undefined;
  }

  constShape(b: Buffer, loc?: Loc) {
    if (b.scope === "global") return;
    b.shape.forEach((d, i) => {
      if (evalConst(d) === undefined) this.err(loc, `dimension ${i} of ${b.scope} buffer '${b.name}' is not a compile-time constant after specialization`);
    });
  }

  region(r: Region, loc?: Loc): number[] | undefined {
    const b = this.bufs.get(r.buf);
    if (!b) { this.err(loc, `unknown buffer '${r.buf}'`); return undefined; }
    if (r.offsets.length !== b.shape.length || r.extents.length !== b.shape.length) {
      this.err(loc, `region of '${r.buf}' has ${r.offsets.length} offsets and ${r.extents.length} extents, the buffer has rank ${b.shape.length}`);
      return undefined;
    }
    r.offsets.forEach((o) => this.expr(o, loc));
    const ext: number[] = [];
    for (const [i, e] of r.extents.entries()) {
      const n = evalConst(e);
      if (n === undefined) { this.err(loc, `extent ${i} of the tile of '${r.buf}' is not a compile-time constant after specialization`); return undefined; }
      if (n <= 0) { this.err(loc, `extent ${i} of the tile of '${r.buf}' is ${n}, must be positive`); return undefined; }
      ext.push(n);
    }
    return ext;
  }
}

const squeeze = (ext: number[]) => ext.filter((n) => n !== 1);
const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function castTo(t: DType, e0: Expr, have: DType | undefined, env: TypeEnv): Expr {
  if (have === undefined) return e0;
  const e = explicitCasts(e0, env);
  if (have === t) return e;
  // Untyped literals take the destination type without a cast node.
  if ((e.k === "int" && e.dtype === undefined && !isFloat(t) && t !== "bool") || (e.k === "float" && e.dtype === undefined && t === "f32"))
    return e;
  return fold({ k: "cast", dtype: t, a: e });
}

export function inferTypes(k: Kernel): Kernel {
  const env: TypeEnv = { vars: new Map(), bufs: new Map() };
  for (const p of k.params) (p.kind === "tensor" ? env.bufs : env.vars).set(p.name, p.dtype);
  for (const d of k.dims) env.vars.set(d, "i32");
  for (const b of k.launch.blockVars) env.vars.set(b, "i32");
  if (k.launch.threadVar) env.vars.set(k.launch.threadVar, "i32");
  walkStmts(k.launch.body, (s) => {
    if (s.k === "alloc") env.bufs.set(s.buf.name, s.buf.dtype);
    else if (s.k === "let") env.vars.set(s.name, s.dtype);
    else if (s.k === "for") s.vars.forEach((x) => env.vars.set(x, "i32"));
    else if (s.k === "atomic" && s.result) env.vars.set(s.result, env.bufs.get(s.buf) ?? "i32");
    else if (s.k === "warp_reduce") env.vars.set(s.result, s.dtype);
  });
  const c = new Checker(k, env);
  const written = new Set<string>();

  if (evalConst(k.launch.threads) === undefined) c.err(k.loc, `threads per block is not a compile-time constant after specialization`);
  if (k.launch.minBlocks) {
    const mb = evalConst(k.launch.minBlocks);
    if (mb === undefined || !Number.isInteger(mb) || mb < 1 || mb > 32)
      c.err(k.loc, `launch option minBlocks must be an integer from 1 to 32 (blocks per SM) after specialization, got ${mb ?? "a run-time value"}`);
  }
  k.launch.grid.forEach((g) => c.expr(g, k.loc));

  const body = mapStmts(k.launch.body, (s): Stmt | undefined => {
    const loc = "loc" in s ? s.loc : undefined;
    switch (s.k) {
      case "alloc": c.constShape(s.buf, loc); return undefined;
      case "let": return { ...s, value: castTo(s.dtype, s.value, c.expr(s.value, loc), env) };
      case "assign": {
        const t = env.vars.get(s.name);
        if (!t) { c.err(loc, `assignment to unknown name '${s.name}'`); return undefined; }
        return { ...s, value: castTo(t, s.value, c.expr(s.value, loc), env) };
      }
      case "store": {
        const b = c.bufs.get(s.buf);
        if (!b) { c.err(loc, `store to unknown buffer '${s.buf}'`); return undefined; }
        if (b.shape.length !== s.idx.length) c.err(loc, `'${s.buf}' has rank ${b.shape.length}, stored with ${s.idx.length} indices`);
        s.idx.forEach((i) => c.expr(i, loc));
        written.add(s.buf);
        return { ...s, value: castTo(b.dtype, s.value, c.expr(s.value, loc), env) };
      }
      case "for":
        s.starts.forEach((e) => c.expr(e, loc));
        s.extents.forEach((e) => c.expr(e, loc));
        if (s.stagesExpr) c.err(loc, `pipeline depth is not a compile-time constant after specialization`);
        if (s.kind === "pipelined" && s.stages !== undefined && (!Number.isInteger(s.stages) || s.stages < 1))
          c.err(loc, `pipelined loop needs stages >= 1, got ${s.stages}`);
        return undefined;
      case "if": return c.expr(s.cond, loc) ? { ...s, cond: explicitCasts(s.cond, env) } : undefined;
      case "copy": {
        const a = c.region(s.src, loc), b = c.region(s.dst, loc);
        if (a && b && !same(squeeze(a), squeeze(b)))
          c.err(loc, `copy from a [${a.join(", ")}] tile of '${s.src.buf}' to a [${b.join(", ")}] tile of '${s.dst.buf}': extents differ`);
        written.add(s.dst.buf);
        return undefined;
      }
      case "fill": {
        c.region(s.dst, loc);
        written.add(s.dst.buf);
        const b = c.bufs.get(s.dst.buf);
        return b ? { ...s, value: castTo(b.dtype, s.value, c.expr(s.value, loc), env) } : undefined;
      }
      case "gemm": {
        const a = c.region(s.a, loc), b = c.region(s.b, loc), cc = c.region(s.c, loc);
        written.add(s.c.buf);
        if (!a || !b || !cc) return undefined;
        if (a.length !== 2 || b.length !== 2 || cc.length !== 2) { c.err(loc, `gemm takes 2-d tiles`); return undefined; }
        const [m, ka] = s.transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
        const [kb, n] = s.transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
        if (ka !== kb || cc[0] !== m || cc[1] !== n)
          c.err(loc, `gemm shapes do not agree: a is ${m}x${ka}, b is ${kb}x${n}, c is ${cc[0]}x${cc[1]}`);
        return undefined;
      }
      // Row-wise ops: the reduced/scanned extent may be a run-time value, so only the
      // written buffers are recorded here; lowering checks the rest.
      case "reduce": case "scan": written.add(s.dst.buf); return undefined;
      case "topk": written.add(s.values.buf); written.add(s.indices.buf); c.expr(s.count, loc); return undefined;
      case "atomic": {
        const b = c.bufs.get(s.buf);
        if (!b) { c.err(loc, `atomic on unknown buffer '${s.buf}'`); return undefined; }
        s.idx.forEach((i) => c.expr(i, loc));
        written.add(s.buf);
        return { ...s, value: castTo(b.dtype, s.value, c.expr(s.value, loc), env) };
      }
      default: return undefined;
    }
  });
  if (c.diags.length) throw new CompileError(c.diags);
  const params = k.params.map((p) => (p.kind === "tensor" && written.has(p.name) && !p.output ? { ...p, output: true } : p));
  return { ...k, params, launch: { ...k.launch, body } };
}
