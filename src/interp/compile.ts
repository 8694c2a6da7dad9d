// Compiles a kernel body to JavaScript source once per (kernel, bound values), so that the
// interpreter runs at JIT speed instead of walking the tree per element.
//  - tile level: a plain function executed once per block; tile ops call into tileops.ts.
//  - thread level: a generator function, one instance per thread; it yields at every
//    synchronisation point (a number = barrier site; an object = warp collective) and the
//    scheduler (threads.ts) decides when to resume it.
// Types follow ir/expr.ts typeOf/promote: operands are converted to the operation's type,
// the operation is done in float64 and the result rounded to that type (ints wrap, i32
// multiply is exact through Math.imul, division truncates).
import { type DType, type Expr, type Kernel, type Ref, type Region, type Stmt, isFloat, isInt, isWgmmaRegs } from "../ir/ir.ts";
import { evalConst, TRUE, type TypeEnv, typeOf, walkStmts } from "../ir/expr.ts";
import { printExpr } from "../ir/print.ts";
import { floatToInt, roundTo } from "../numeric/dtype.ts";
import { InterpError, stmtHead } from "./fault.ts";

export interface AllocDecl { name: string; dtype: DType; scope: "shared" | "fragment" | "local" | "global"; shape: number[]; over?: string }

export interface Compiled {
  /** (RT, G, S, TS, tid, bx, by, bz) => void | Generator */
  fn: (...args: unknown[]) => unknown;
  sites: Stmt[];
  allocs: AllocDecl[];
  source: string;
}

export interface CompileInput {
  kernel: Kernel;
  /** Names with known values (dims, config, scalar params), inlined as literals. */
  consts: Map<string, { value: number; dtype: DType }>;
  /** Global tensor params in G order. */
  globals: { name: string; dtype: DType; rank: number }[];
}

type VarSym = { js: string; t: DType };
type BufSym = { js: string; d: string; dtype: DType; scope: AllocDecl["scope"]; rank: number };

const fmt = (v: number): string => {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "(-Infinity)";
  if (Object.is(v, -0)) return "(-0)";
  return v < 0 ? `(${v})` : String(v);
};

const EXACT_IN_F32 = new Set<DType>(["bool", "i8", "u8", "i16", "u16", "f16", "bf16", "fp8e4m3", "fp8e5m2"]);

/** JS for converting a value of type `from` to type `to` (C conversion semantics). */
export function conv(js: string, from: DType, to: DType): string {
  if (from === to) return js;
  switch (to) {
    case "f64": return js;
    case "f32": return EXACT_IN_F32.has(from) ? js : `Math.fround(${js})`;
    case "f16": case "bf16": case "fp8e4m3": case "fp8e5m2": return `RND.${to}(${js})`;
    case "bool": return `(${js} !== 0 ? 1 : 0)`;
    case "i32": return `(${js} | 0)`;
    case "u32": return `(${js} >>> 0)`;
    case "i16": return `((${js}) << 16 >> 16)`;
    case "u16": return `((${js}) & 65535)`;
    case "i8": return `((${js}) << 24 >> 24)`;
    case "u8": return `((${js}) & 255)`;
    case "i64": return `RND.i64(${js})`;
  }
}

const MATH: Record<string, (a: string[]) => string> = {
  exp: ([a]) => `Math.exp(${a})`, exp2: ([a]) => `Math.pow(2, ${a})`, log: ([a]) => `Math.log(${a})`,
  log2: ([a]) => `Math.log2(${a})`, sqrt: ([a]) => `Math.sqrt(${a})`, rsqrt: ([a]) => `(1 / Math.sqrt(${a}))`,
  abs: ([a]) => `Math.abs(${a})`, tanh: ([a]) => `Math.tanh(${a})`, sin: ([a]) => `Math.sin(${a})`,
  cos: ([a]) => `Math.cos(${a})`, floor: ([a]) => `Math.floor(${a})`, ceil: ([a]) => `Math.ceil(${a})`,
  round: ([a]) => `MF.round(${a})`, erf: ([a]) => `MF.erf(${a})`, sigmoid: ([a]) => `(1 / (1 + Math.exp(-(${a}))))`,
  pow: ([a, b]) => `Math.pow(${a}, ${b})`, fma: ([a, b, c]) => `(${a} * ${b} + ${c})`,
};

export function compileKernel(inp: CompileInput): Compiled {
  return new Gen(inp).run();
}

class Gen {
  private out: string[] = [];
  private vars: Map<string, VarSym>[] = [new Map()];
  private bufs: Map<string, BufSym>[] = [new Map()];
  private n = 0;
  readonly sites: Stmt[] = [];
  readonly allocs: AllocDecl[] = [];
  private site = -1;
  private readonly thread: boolean;
  private readonly env: TypeEnv;
  /** Local buffers that a wgmma reads as register A operand: their stores are tracked (regw). */
  private readonly wgmmaRegs = new Set<string>();

  constructor(private inp: CompileInput) {
    const l = inp.kernel.launch;
    this.thread = l.level === "thread";
    this.env = {
      vars: { get: (n: string) => this.lookVar(n)?.t ?? inp.consts.get(n)?.dtype } as Map<string, DType>,
      bufs: { get: (n: string) => this.lookBuf(n)?.dtype } as Map<string, DType>,
    };
    inp.globals.forEach((g, i) => {
      this.bufs[0]!.set(g.name, { js: `G[${i}]`, d: `GD${i}`, dtype: g.dtype, scope: "global", rank: g.rank });
    });
    ["BX", "BY", "BZ"].forEach((js, i) => { const bv = l.blockVars[i]; if (bv) this.vars[0]!.set(bv, { js, t: "i32" }); });
    if (this.thread) {
      if (!l.threadVar) throw new InterpError(`kernel ${inp.kernel.name}: thread-level launch without a thread variable`);
      this.vars[0]!.set(l.threadVar, { js: "TID", t: "i32" });
    }
    walkStmts(l.body, (x) => { if (x.k === "wgmma" && isWgmmaRegs(x.a)) this.wgmmaRegs.add(x.a.ref.buf); });
  }

  run(): Compiled {
    const head = [
      `"use strict";`,
      `const {ix1, ix2, ix3, ixN, lds, sts, alloc, copy, gatherRows, scatterRows, fill, gemm, vcopy, vzero, cpa, cpz, cpCommit, cpWait, idiv, imod, icdiv, ifloordiv, F2I, RND, MF, dq, fenceAsync, regw} = RT;`,
      `return function${this.thread ? "*" : ""} (G, S, TS, TID, BX, BY, BZ) {`,
      ...this.inp.globals.map((_, i) => `const GD${i} = G[${i}].data;`),
    ];
    this.block(this.inp.kernel.launch.body);
    const source = [...head, ...this.out, "};"].join("\n");
    let factory: (rt: unknown) => (...a: unknown[]) => unknown;
    try {
      factory = new Function("RT", source) as typeof factory;
    } catch (e) {
      throw new Error(`interp: generated JS does not parse (${(e as Error).message}):\n${source}`);
    }
    return { fn: factory as unknown as Compiled["fn"], sites: this.sites, allocs: this.allocs, source };
  }

  // ------------------------------------------------------------ names

  private lookVar(n: string): VarSym | undefined {
    for (let i = this.vars.length - 1; i >= 0; i--) { const s = this.vars[i]!.get(n); if (s) return s; }
    return undefined;
  }
  private lookBuf(n: string): BufSym | undefined {
    for (let i = this.bufs.length - 1; i >= 0; i--) { const s = this.bufs[i]!.get(n); if (s) return s; }
    return undefined;
  }
  private buf(n: string): BufSym {
    const b = this.lookBuf(n);
    if (!b) throw this.err(`unknown buffer '${n}'`);
    return b;
  }
  private fresh(hint: string): string { return `${hint.replace(/[^A-Za-z0-9_]/g, "_")}_${this.n++}`; }
  private err(msg: string): InterpError {
    const s = this.sites[this.site];
    return new InterpError(`kernel ${this.inp.kernel.name}: ${msg}${s ? `\n  at: ${stmtHead(s)}` : ""}`);
  }
  private emit(line: string) { this.out.push(line); }
  private push() { this.vars.push(new Map()); this.bufs.push(new Map()); }
  private pop() { this.vars.pop(); this.bufs.pop(); }

  // ------------------------------------------------------------ expressions

  private type(e: Expr): DType {
    try { return typeOf(e, this.env); } catch (x) { throw this.err((x as Error).message + " (an unspecialized tunable or an unbound dim?)"); }
  }

  /** JS for `e` converted to `to`; literals are converted at compile time. */
  private exprAs(e: Expr, to: DType): string {
    if (e.k === "int" || e.k === "float") {
      const from = e.dtype ?? (e.k === "int" ? "i32" : "f32"), v = roundTo(from, e.v);
      return fmt(isFloat(from) && isInt(to) ? floatToInt(to, v) : roundTo(to, v));
    }
    const from = this.type(e);
    // A float becomes an integer saturated (numeric/dtype.ts floatToInt), not wrapped.
    if (isFloat(from) && isInt(to)) return `F2I(${JSON.stringify(to)}, ${this.expr(e)})`;
    return conv(this.expr(e), from, to);
  }

  private truthy(e: Expr): string { return `(${this.expr(e)} !== 0)`; }

  private index(e: Expr): string {
    const t = this.type(e);
    return isFloat(t) ? conv(this.expr(e), t, "i32") : this.expr(e);
  }

  expr(e: Expr): string {
    switch (e.k) {
      case "int": case "float": return fmt(roundTo(e.dtype ?? (e.k === "int" ? "i32" : "f32"), e.v));
      case "var": {
        const s = this.lookVar(e.name);
        if (s) return s.js;
        const c = this.inp.consts.get(e.name);
        if (c) return fmt(c.value);
        throw this.err(`unbound variable '${e.name}' (an unspecialized tunable or an unbound dim?)`);
      }
      case "load": return this.load(e.buf, e.idx);
      case "cast": return this.exprAs(e.a, e.dtype);
      case "un": {
        const t = this.type(e);
        if (e.op === "not") return `(${this.expr(e.a)} === 0 ? 1 : 0)`;
        const a = this.exprAs(e.a, t);
        if (e.op === "neg") return isFloat(t) ? `(-${a})` : conv(`(-${a})`, "f64", t);
        if (t === "i64") throw this.err("bitwise not on i64 is not supported by the interpreter");
        return conv(`(~${a})`, "i32", t);
      }
      case "call": {
        const t = this.type(e);
        const js = MATH[e.fn]!(e.args.map((a) => this.exprAs(a, t)));
        return conv(js, "f64", t);
      }
      case "select": {
        const t = this.type(e);
        return `(${this.truthy(e.cond)} ? ${this.exprAs(e.a, t)} : ${this.exprAs(e.b, t)})`;
      }
      case "bin": return this.bin(e);
    }
  }

  private bin(e: Expr & { k: "bin" }): string {
    const op = e.op;
    if (op === "&&" || op === "||") return `((${this.truthy(e.a)} ${op} ${this.truthy(e.b)}) ? 1 : 0)`;
    const shift = op === "<<" || op === ">>";
    const ot = shift ? this.type(e.a) : this.type({ k: "select", cond: TRUE, a: e.a, b: e.b });
    const A = this.exprAs(e.a, ot);
    const B = shift ? this.exprAs(e.b, "i32") : this.exprAs(e.b, ot);
    const cmp: Record<string, string> = { "<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "===", "!=": "!==" };
    if (cmp[op]) return `(${A} ${cmp[op]} ${B} ? 1 : 0)`;
    if (op === "min" || op === "max") return `Math.${op}(${A}, ${B})`;
    const sid = this.site;
    if (isFloat(ot)) {
      if (op === "+" || op === "-" || op === "*" || op === "/" || op === "%") return conv(`(${A} ${op} ${B})`, "f64", ot);
      throw this.err(`operator ${op} is not defined on ${ot}`);
    }
    // A positive literal divisor cannot fault: inline the truncating division (hot in index math).
    if ((op === "/" || op === "%") && e.b.k === "int" && e.b.v > 0 && isInt(ot) && ot !== "i64") {
      if (op === "%") return conv(`(${A} % ${B})`, "i32", ot);
      return ot === "i32" ? `((${A} / ${B}) | 0)` : conv(`Math.trunc(${A} / ${B})`, "f64", ot);
    }
    if (ot === "bool") {
      if (op === "&" || op === "|" || op === "^") return `(${A} ${op} ${B})`;
      return conv(this.intOp(op, A, B, "i32", sid), "i32", "bool");
    }
    return this.intOp(op, A, B, ot, sid);
  }

  private intOp(op: string, A: string, B: string, t: DType, sid: number): string {
    const wide = t === "i64";
    switch (op) {
      case "+": case "-": return conv(`(${A} ${op} ${B})`, "f64", t);
      case "*": return wide ? conv(`(${A} * ${B})`, "f64", t) : conv(`Math.imul(${A}, ${B})`, "i32", t);
      case "/": return conv(`idiv(${A}, ${B}, ${sid})`, "f64", t);
      case "%": return conv(`imod(${A}, ${B}, ${sid})`, "f64", t);
      case "cdiv": return conv(`icdiv(${A}, ${B}, ${sid})`, "f64", t);
      case "floordiv": return conv(`ifloordiv(${A}, ${B}, ${sid})`, "f64", t);
      case "&": case "|": case "^":
        if (wide) throw this.err(`operator ${op} on i64 is not supported by the interpreter`);
        return conv(`(${A} ${op} ${B})`, "i32", t);
      case "<<":
        if (wide) throw this.err(`operator << on i64 is not supported by the interpreter`);
        return conv(`(${A} << ${B})`, "i32", t);
      case ">>":
        if (wide) throw this.err(`operator >> on i64 is not supported by the interpreter`);
        return t.startsWith("u") ? conv(`(${A} >>> ${B})`, "u32", t) : `(${A} >> ${B})`;
    }
    throw this.err(`operator ${op} is not defined on ${t}`);
  }

  // ------------------------------------------------------------ memory

  private isThreadShared(b: BufSym): boolean { return this.thread && b.scope === "shared"; }

  /** JS for the flat, bounds-checked element index of buf[idx]. */
  private flat(b: BufSym, idx: Expr[], name: string): string {
    const sid = this.site;
    if (idx.length !== b.rank) throw this.err(`${name} has rank ${b.rank} but is indexed with ${idx.length} indices`);
    const is = idx.map((i) => this.index(i));
    if (is.length === 1) return `ix1(${b.js}, ${is[0]}, ${sid})`;
    if (is.length === 2) return `ix2(${b.js}, ${is[0]}, ${is[1]}, ${sid})`;
    if (is.length === 3) return `ix3(${b.js}, ${is[0]}, ${is[1]}, ${is[2]}, ${sid})`;
    return `ixN(${b.js}, [${is.join(", ")}], ${sid})`;
  }

  private load(name: string, idx: Expr[]): string {
    const b = this.buf(name);
    if (this.isThreadShared(b)) {
      if (idx.length !== 1) throw this.err(`shared ${name} is indexed with ${idx.length} indices at thread level`);
      return `lds(${b.js}, ${this.index(idx[0]!)}, TID, ${this.site})`;
    }
    return `${b.d}[${this.flat(b, idx, name)}]`;
  }

  private ref(r: Ref): { b: BufSym; ix: string } {
    const b = this.buf(r.buf);
    return { b, ix: this.flat(b, r.idx, r.buf) };
  }

  private region(r: Region): string {
    const b = this.buf(r.buf);
    return `${b.js}, [${r.offsets.map((o) => this.index(o)).join(", ")}], [${r.extents.map((x) => this.index(x)).join(", ")}]`;
  }

  // ------------------------------------------------------------ statements

  private block(body: Stmt[]) {
    for (const s of body) this.stmt(s);
  }

  private constShape(shape: Expr[], name: string): number[] {
    const env: Record<string, number> = {};
    for (const [n, c] of this.inp.consts) env[n] = c.value;
    return shape.map((e) => {
      const v = evalConst(e, env);
      if (v === undefined || !Number.isInteger(v) || v < 0) throw this.err(`shape ${printExpr(e)} of ${name} does not fold to a constant`);
      return v;
    });
  }

  private stmt(s: Stmt) {
    const outer = this.site;
    this.site = this.sites.length;
    this.sites.push(s);
    const sid = this.site;
    switch (s.k) {
      case "alloc": {
        const scope = s.buf.scope;
        if (scope === "global") throw this.err(`alloc of a global buffer ${s.buf.name} inside a kernel is not supported by the interpreter`);
        const shape = this.constShape(s.buf.shape, s.buf.name);
        const id = this.allocs.length;
        this.allocs.push({ name: s.buf.name, dtype: s.buf.dtype, scope, shape, ...(s.buf.over !== undefined ? { over: s.buf.over } : {}) });
        const js = this.fresh(`B_${s.buf.name}`), d = this.fresh(`D_${s.buf.name}`);
        const src = this.thread && scope === "shared" ? `S[${id}]` : `alloc(${id})`;
        this.emit(`const ${js} = ${src}; const ${d} = ${js}.data;`);
        this.bufs.at(-1)!.set(s.buf.name, { js, d, dtype: s.buf.dtype, scope, rank: shape.length });
        break;
      }
      case "let": {
        const js = this.fresh(`v_${s.name}`);
        const value = this.exprAs(s.value, s.dtype);
        this.emit(`let ${js} = ${value};`);
        this.vars.at(-1)!.set(s.name, { js, t: s.dtype });
        break;
      }
      case "assign": {
        const v = this.lookVar(s.name);
        if (!v) throw this.err(`assignment to undeclared variable '${s.name}'`);
        this.emit(`${v.js} = ${this.exprAs(s.value, v.t)};`);
        break;
      }
      case "store": {
        const b = this.buf(s.buf);
        const value = this.exprAs(s.value, b.dtype);
        if (this.isThreadShared(b)) {
          if (s.idx.length !== 1) throw this.err(`shared ${s.buf} is indexed with ${s.idx.length} indices at thread level`);
          this.emit(`sts(${b.js}, ${this.index(s.idx[0]!)}, ${value}, TID, ${sid});`);
        } else if (this.thread && b.scope === "local" && this.wgmmaRegs.has(s.buf)) {
          const i = this.fresh("ri");
          this.emit(`const ${i} = ${this.flat(b, s.idx, s.buf)}; regw(${b.js}, ${i}, ${sid}); ${b.d}[${i}] = ${value};`);
        } else {
          this.emit(`${b.d}[${this.flat(b, s.idx, s.buf)}] = ${value};`);
        }
        break;
      }
      case "for": {
        const bounds = s.vars.map((v, i) => {
          const st = this.fresh("s"), en = this.fresh("e");
          this.emit(`const ${st} = ${this.exprAs(s.starts[i]!, "i32")}, ${en} = ${st} + ${this.exprAs(s.extents[i]!, "i32")};`);
          return { v, st, en };
        });
        this.push();
        for (const { v, st, en } of bounds) {
          const js = this.fresh(`i_${v}`);
          this.emit(`for (let ${js} = ${st}; ${js} < ${en}; ${js}++) {`);
          this.vars.at(-1)!.set(v, { js, t: "i32" });
        }
        this.block(s.body);
        this.emit("}".repeat(bounds.length));
        this.pop();
        break;
      }
      case "if": {
        this.emit(`if ${this.truthy(s.cond)} {`);
        this.push(); this.block(s.then); this.pop();
        if (s.else.length > 0) {
          this.emit("} else {");
          this.push(); this.block(s.else); this.pop();
        }
        this.emit("}");
        break;
      }
      case "copy":
        this.tileOnly(s);
        if (s.rows !== undefined) this.emit(`gatherRows(${sid}, ${this.region(s.src)}, ${this.buf(s.rows).js}, ${this.region(s.dst)});`);
        else if (s.dstRows !== undefined) this.emit(`scatterRows(${sid}, ${this.region(s.src)}, ${this.buf(s.dstRows).js}, ${this.region(s.dst)});`);
        else this.emit(`copy(${sid}, ${this.region(s.src)}, ${this.region(s.dst)});`);
        break;
      case "fill": {
        this.tileOnly(s);
        const b = this.buf(s.dst.buf);
        this.emit(`fill(${sid}, ${this.region(s.dst)}, ${this.exprAs(s.value, b.dtype)});`);
        break;
      }
      case "gemm":
        this.tileOnly(s);
        this.emit(`gemm(${sid}, ${this.region(s.a)}, ${this.region(s.b)}, ${this.region(s.c)}, ${s.transA}, ${s.transB});`);
        break;
      case "reduce":
        this.tileOnly(s);
        this.emit(`RT.MOE.reduce(${sid}, "${s.op}", ${this.region(s.src)}, ${this.region(s.dst)}, ${s.axis}, ${s.accumulate});`);
        break;
      case "topk":
        this.tileOnly(s);
        this.emit(`RT.MOE.topk(${sid}, ${this.region(s.src)}, ${this.region(s.values)}, ${this.region(s.indices)}, ${this.exprAs(s.count, "i32")});`);
        break;
      case "scan": this.tileOnly(s); this.emit(`RT.MOE.scan(${sid}, ${this.region(s.src)}, ${this.region(s.dst)}, ${s.exclusive});`); break;
      case "atomic": {
        // Threads run one at a time between yields, so a plain read-modify-write is atomic here.
        const b = this.buf(s.buf);
        const call = `RT.MOE.atomic(${b.js}, ${this.flat(b, s.idx, s.buf)}, ${this.exprAs(s.value, b.dtype)}, "${s.op}")`;
        if (s.result === undefined) { this.emit(`${call};`); break; }
        const js = this.fresh(`v_${s.result}`);
        this.emit(`const ${js} = ${call};`);
        this.vars.at(-1)!.set(s.result, { js, t: b.dtype });
        break;
      }
      case "dequant": {
        const d = this.ref(s.dst);
        const args = [this.exprAs(s.word, "u32"), this.exprAs(s.scale, d.b.dtype), this.exprAs(s.zero, d.b.dtype)];
        const pair = s.pair ? this.exprAs(s.pair, "i32") : "-1";
        this.emit(`dq(${d.b.js}, ${d.ix}, "${s.format}", "${s.order}", ${args.join(", ")}, ${pair}, TID, ${sid});`);
        break;
      }
      case "barrier": if (this.threadOnly(s)) this.emit(`yield ${sid};`); break;
      case "named_barrier": this.threadOnly(s); this.emit(`yield { sid: ${sid}, named: ${s.id}, count: ${s.count} };`); break;
      case "setmaxnreg": this.threadOnly(s); this.emit(`yield { sid: ${sid} };`); break;
      case "vcopy": case "cp_async": {
        this.threadOnly(s);
        const d = this.ref(s.dst);
        const p = this.fresh("p");
        this.emit(`{ const ${p} = ${this.truthy(s.pred)};`);
        const n = s.k === "vcopy" ? s.lanes : s.bytes;
        const [on, off] = s.k === "vcopy" ? ["vcopy", "vzero"] : ["cpa", "cpz"];
        const src = this.ref(s.src);
        this.emit(`if (${p}) ${on}(TS, ${sid}, ${d.b.js}, ${d.ix}, ${src.b.js}, ${src.ix}, ${n}${s.k === "vcopy" && s.convert ? ", true" : ""});`);
        if (d.b.scope !== "global" || s.k === "cp_async") this.emit(`else ${off}(TS, ${sid}, ${d.b.js}, ${d.ix}, ${n});`);
        this.emit("}");
        break;
      }
      case "cp_commit": this.threadOnly(s); this.emit(`cpCommit(TS);`); break;
      case "cp_wait": this.threadOnly(s); this.emit(`cpWait(TS, ${s.n}, ${sid});`); break;
      case "ldmatrix": {
        this.threadOnly(s);
        const d = this.ref(s.dst), a = this.ref(s.addr);
        this.emit(`yield { sid: ${sid}, dst: ${d.b.js}, dOff: ${d.ix}, src: ${a.b.js}, addr: ${a.ix} };`);
        break;
      }
      case "wgmma": {
        this.threadOnly(s);
        const r = [s.d, s.a.ref, s.b.ref].map((x) => this.ref(x));
        const names = ["d", "a", "b"];
        this.emit(`yield { sid: ${sid}, ${r.map((x, i) => `${names[i]}: ${x.b.js}, ${names[i]}Off: ${x.ix}`).join(", ")} };`);
        break;
      }
      case "wgmma_fence": case "wgmma_commit": case "wgmma_wait": this.threadOnly(s); this.emit(`yield { sid: ${sid} };`); break;
      case "fence_async": this.threadOnly(s); this.emit(`fenceAsync(TID);`); break;
      // One kernel at a time: there is never a previous grid to wait for, nor a next one to launch.
      case "griddep": this.threadOnly(s); break;
      case "warp_reduce": {
        // A warp collective: the scheduler runs the butterfly over the lanes' `x` (warp.ts).
        this.threadOnly(s);
        const a = this.fresh("wr"), js = this.fresh(`v_${s.result}`);
        const f = s.op === "sum" ? conv("(x + y)", "f64", s.dtype) : `Math.${s.op}(x, y)`;
        this.emit(`const ${a} = { sid: ${sid}, x: ${this.exprAs(s.value, s.dtype)}, width: ${s.width}, f: (x, y) => ${f} };`);
        this.emit(`yield ${a};`);
        this.emit(`const ${js} = ${a}.x;`);
        this.vars.at(-1)!.set(s.result, { js, t: s.dtype });
        break;
      }
      case "mbar_init": { this.threadOnly(s); const b = this.ref(s.bar); this.emit(`RT.TMA.mbarInit(TID, ${sid}, ${b.b.js}, ${b.ix}, ${s.count});`); break; }
      case "mbar_fence_init": this.threadOnly(s); this.emit(`RT.TMA.mbarFenceInit(TID);`); break;
      case "mbar_arrive": { this.threadOnly(s); const b = this.ref(s.bar); this.emit(`RT.TMA.mbarArrive(TID, ${sid}, ${b.b.js}, ${b.ix}, ${s.tx ?? 0});`); break; }
      case "mbar_wait": {
        this.threadOnly(s);
        const b = this.ref(s.bar), bb = this.fresh("mb"), bo = this.fresh("mo"), par = this.fresh("mp");
        this.emit(`{ const ${bb} = ${b.b.js}, ${bo} = ${b.ix}, ${par} = ${this.exprAs(s.parity, "i32")};`);
        this.emit(`while (!RT.TMA.mbarTry(TID, ${sid}, ${bb}, ${bo}, ${par})) yield { sid: ${sid}, mbar: ${bb}, off: ${bo}, parity: ${par} }; }`);
        break;
      }
      case "tma_load": {
        this.threadOnly(s);
        const m = (this.inp.kernel.tensorMaps ?? []).find((x) => x.name === s.map);
        if (!m) throw this.err(`tma.load through '${s.map}', which is not among the kernel's tensor maps`);
        const gi = this.inp.globals.findIndex((g) => g.name === m.tensor);
        if (gi < 0) throw this.err(`tensor map '${m.name}' is over '${m.tensor}', which is not a tensor param`);
        const d = this.ref(s.dst), b = this.ref(s.bar);
        const coords = s.coords.map((e) => this.exprAs(e, "i32"));
        this.emit(`RT.TMA.tma(TID, ${sid}, G[${gi}], [${m.box.join(", ")}], ${m.swizzle}, ${d.b.js}, ${d.ix}, [${coords.join(", ")}], ${b.b.js}, ${b.ix});`);
        break;
      }
      case "mma": {
        this.threadOnly(s);
        const r = [s.d, s.a, s.b, s.c].map((x) => this.ref(x));
        const names = ["d", "a", "b", "c"];
        this.emit(`yield { sid: ${sid}, ${r.map((x, i) => `${names[i]}: ${x.b.js}, ${names[i]}Off: ${x.ix}`).join(", ")} };`);
        break;
      }
      default:
        throw this.err(`statement '${(s as Stmt).k}' is not supported by the interpreter yet`);
    }
    this.site = outer;
  }

  private tileOnly(s: Stmt) {
    if (this.thread) throw this.err(`tile op '${s.k}' in a thread-level kernel`);
  }
  private threadOnly(s: Stmt): boolean {
    if (!this.thread) {
      if (s.k === "barrier") return false; // one logical thread per block: a barrier is a no-op
      throw this.err(`thread-level statement '${s.k}' in a tile-level kernel`);
    }
    return true;
  }
}
