// Structural checks of a kernel, run between passes in tests: a pass that produces IR
// which names something undefined, mixes levels or breaks an intrinsic's constraints is
// caught here, at the pass, rather than as a wrong number in the interpreter or nvcc.
import {
  type Buffer, type DType, type Diagnostic, type Expr, type Kernel, type Loc, type Ref, type Region, type Stmt,
  DTYPES, byteSize, isFloat,
} from "./ir.ts";
import { type TypeEnv, evalConst, litBool, typeOf } from "./expr.ts";
import { mmaAccProblem } from "../layout/fragment.ts";
import { wgmmaAccProblem } from "../layout/wgmma.ts";
import { validMaxnreg } from "./registers.ts";

type Entry =
  | { what: "var"; dtype?: DType; mutable: boolean }
  | { what: "buf"; buf: Pick<Buffer, "name" | "scope" | "dtype"> & { rank?: number } };

const MATH_ARITY: Record<string, number> = { pow: 2, fma: 3 };
/** Names the text form reads as literals or syntax; a kernel using them cannot be printed. */
const RESERVED = /^(?:(?:inf|nan)(?:_[A-Za-z0-9]+)?|true|false|cast)$/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TILE_ONLY = new Set<Stmt["k"]>(["copy", "fill", "gemm", "reduce", "topk", "scan"]);
const THREAD_ONLY = new Set<Stmt["k"]>(["barrier", "vcopy", "cp_async", "cp_commit", "cp_wait", "ldmatrix", "mma",
  "wgmma", "wgmma_fence", "wgmma_commit", "wgmma_wait", "fence_async", "warp_reduce", "mbar_init", "mbar_fence_init", "mbar_arrive", "mbar_wait", "tma_load", "named_barrier", "setmaxnreg", "griddep"]);

class Verifier {
  readonly diags: Diagnostic[] = [];
  private scopes: Map<string, Entry>[] = [];
  private loc: Loc | undefined;
  /** How many `if`s enclose the statement being checked (block-collectives need 0). */
  private ifDepth = 0;

  constructor(private readonly k: Kernel) {
    this.loc = k.loc;
  }

  error(message: string): void {
    this.diags.push({ loc: this.loc, message, severity: "error" });
  }
  warn(message: string): void {
    this.diags.push({ loc: this.loc, message, severity: "warning" });
  }

  // ------------------------------------------------------------ scopes

  private push(): void { this.scopes.push(new Map()); }
  private pop(): void { this.scopes.pop(); }

  private declare(name: string, e: Entry): void {
    const top = this.scopes[this.scopes.length - 1]!;
    if (top.has(name)) this.error(`'${name}' is declared twice in the same scope`);
    if (RESERVED.test(name)) this.error(`'${name}' is reserved in IR text and cannot be a name`);
    else if (!IDENT.test(name)) this.error(`'${name}' is not an identifier ([A-Za-z_][A-Za-z0-9_]*), so IR text cannot name it`);
    top.set(name, e);
  }

  private lookup(name: string): Entry | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const e = this.scopes[i]!.get(name);
      if (e) return e;
    }
    return undefined;
  }

  private typeEnv(): TypeEnv {
    const env: TypeEnv = { vars: new Map(), bufs: new Map() };
    for (const s of this.scopes) {
      for (const [n, e] of s) {
        if (e.what === "var" && e.dtype) env.vars.set(n, e.dtype);
        else if (e.what === "buf") env.bufs.set(n, e.buf.dtype);
      }
    }
    return env;
  }

  // ------------------------------------------------------------ expressions

  dtype(t: string, what: string): void {
    if (!(DTYPES as readonly string[]).includes(t)) this.error(`unknown dtype '${t}' in ${what}`);
  }

  expr(e: Expr): void {
    switch (e.k) {
      case "int":
        if (!Number.isInteger(e.v)) this.error(`integer literal ${e.v} is not an integer`);
        if (e.dtype) this.dtype(e.dtype, "a literal");
        return;
      case "float":
        if (e.dtype) this.dtype(e.dtype, "a literal");
        return;
      case "var": {
        const d = this.lookup(e.name);
        if (!d) this.error(`undefined variable '${e.name}'`);
        else if (d.what === "buf") this.error(`'${e.name}' is a buffer, used as a scalar`);
        return;
      }
      case "bin": this.expr(e.a); this.expr(e.b); return;
      case "un": this.expr(e.a); return;
      case "select": this.expr(e.cond); this.expr(e.a); this.expr(e.b); return;
      case "cast": this.dtype(e.dtype, "a cast"); this.expr(e.a); return;
      case "call": {
        const want = MATH_ARITY[e.fn] ?? 1;
        if (e.args.length !== want) this.error(`${e.fn} takes ${want} argument${want > 1 ? "s" : ""}, got ${e.args.length}`);
        e.args.forEach((a) => this.expr(a));
        return;
      }
      case "load": this.access(e.buf, e.idx, "load from"); return;
    }
  }

  private buffer(name: string, what: string): (Entry & { what: "buf" })["buf"] | undefined {
    const d = this.lookup(name);
    if (!d) { this.error(`${what} undefined buffer '${name}'`); return undefined; }
    if (d.what !== "buf") { this.error(`${what} '${name}', which is a scalar, not a buffer`); return undefined; }
    return d.buf;
  }

  private access(name: string, idx: Expr[], what: string): (Entry & { what: "buf" })["buf"] | undefined {
    idx.forEach((i) => this.expr(i));
    const b = this.buffer(name, what);
    if (b && b.rank !== undefined && idx.length !== b.rank)
      this.error(`${what} '${name}' with ${idx.length} indices, but it has rank ${b.rank}`);
    return b;
  }

  private region(r: Region, what: string): (Entry & { what: "buf" })["buf"] | undefined {
    r.offsets.forEach((o) => this.expr(o));
    r.extents.forEach((x) => this.expr(x));
    if (r.offsets.length !== r.extents.length)
      this.error(`${what} region of '${r.buf}' has ${r.offsets.length} offsets but ${r.extents.length} extents`);
    const b = this.buffer(r.buf, `${what} region of`);
    if (b && b.rank !== undefined && r.offsets.length !== b.rank)
      this.error(`${what} region of '${r.buf}' has rank ${r.offsets.length}, but the buffer has rank ${b.rank}`);
    return b;
  }

  private ref(r: Ref, what: string, scopes: Buffer["scope"][]): (Entry & { what: "buf" })["buf"] | undefined {
    const b = this.access(r.buf, r.idx, what);
    if (b && !scopes.includes(b.scope)) this.error(`${what} '${r.buf}' must be ${scopes.join(" or ")}, it is ${b.scope}`);
    return b;
  }

  /** reduce / topk / scan: regions of shared or fragment tiles, axes that exist. */
  private moeTileOp(s: Extract<Stmt, { k: "reduce" | "topk" | "scan" }>): void {
    const regions: [Region, string][] = s.k === "topk"
      ? [[s.src, "topk source"], [s.values, "topk values"], [s.indices, "topk indices"]]
      : [[s.src, `${s.k} source`], [s.dst, `${s.k} destination`]];
    for (const [r, what] of regions) {
      const b = this.region(r, what);
      if (b && b.scope !== "shared" && b.scope !== "fragment") this.error(`${what} '${r.buf}' must be shared or fragment, it is ${b.scope}`);
    }
    if (s.k === "reduce" && !(Number.isInteger(s.axis) && s.axis >= 0 && s.axis < s.src.offsets.length))
      this.error(`reduce axis ${s.axis} is not an axis of '${s.src.buf}' (rank ${s.src.offsets.length})`);
    if (s.k === "topk") {
      this.expr(s.count);
      if (s.src.offsets.length !== 2) this.error(`topk source '${s.src.buf}' must be a 2-d region`);
      const ib = this.buffer(s.indices.buf, "topk indices of");
      if (ib && ib.dtype !== undefined && (isFloat(ib.dtype) || ib.dtype === "bool")) this.error(`topk indices '${s.indices.buf}' must be integers, it is ${ib.dtype}`);
    }
  }

  /** The index buffer of a row gather or scatter: rank-1 i32, shared or local. */
  private rowIndex(name: string): void {
    const idx = this.buffer(name, "copy rows:");
    if (idx && (idx.scope === "global" || idx.scope === "fragment")) this.error(`copy rows '${name}' must be a shared or local buffer, it is ${idx.scope}`);
    if (idx && idx.rank !== undefined && idx.rank !== 1) this.error(`copy rows '${name}' must be rank 1, it has rank ${idx.rank}`);
    if (idx && idx.dtype !== undefined && idx.dtype !== "i32") this.error(`copy rows '${name}' must be i32, it is ${idx.dtype}`);
  }

  /** A row-gathering copy: a 2-d global source read at rows rows[i], from row offset 0. */
  private gather(s: Extract<Stmt, { k: "copy" }> & { rows: string }, src: (Entry & { what: "buf" })["buf"] | undefined): void {
    this.rowIndex(s.rows);
    if (src && src.scope !== "global") this.error(`a copy with rows gathers from a global tensor; '${s.src.buf}' is ${src.scope}`);
    if (s.src.offsets.length !== 2) this.error(`a copy with rows needs a 2-d source region, '${s.src.buf}' has rank ${s.src.offsets.length}`);
    else if (!(s.src.offsets[0]!.k === "int" && s.src.offsets[0]!.v === 0))
      this.error(`a copy with rows starts its source region at row 0 (the rows come from '${s.rows}')`);
  }

  /** A row-scattering copy: a 2-d global destination written at rows dstRows[i], from row offset 0. */
  private scatter(s: Extract<Stmt, { k: "copy" }> & { dstRows: string }, dst: (Entry & { what: "buf" })["buf"] | undefined): void {
    this.rowIndex(s.dstRows);
    if (dst && dst.scope !== "global") this.error(`a copy with destination rows scatters into a global tensor; '${s.dst.buf}' is ${dst.scope}`);
    if (s.dst.offsets.length !== 2) this.error(`a copy with destination rows needs a 2-d destination region, '${s.dst.buf}' has rank ${s.dst.offsets.length}`);
    else if (!(s.dst.offsets[0]!.k === "int" && s.dst.offsets[0]!.v === 0))
      this.error(`a copy with destination rows starts its destination region at row 0 (the rows come from '${s.dstRows}')`);
  }

  /** A value stored into a scalar of type `t`: floats need an explicit cast into ints/bools. */
  private valueFits(t: DType, value: Expr, what: string): void {
    let vt: DType;
    try { vt = typeOf(value, this.typeEnv()); } catch { return; } // undefined names are reported already
    if (!isFloat(t) && isFloat(vt)) this.error(`${what}: a ${vt} value needs a cast to be ${t}`);
  }

  // ------------------------------------------------------------ statements

  private layout(b: Buffer): void {
    const l = b.layout;
    if (!l) return;
    const level = this.k.launch.level;
    const consts = b.shape.map((e) => (e.k === "int" ? e.v : undefined));
    if (l.kind === "xor_swizzle") {
      if (b.scope !== "shared") this.error(`layout xor_swizzle on '${b.name}' needs shared memory, it is ${b.scope}`);
      if (byteSize(b.dtype) !== 2) this.error(`layout xor_swizzle on '${b.name}' needs a 16-bit dtype, it is ${b.dtype}`);
      if (level === "tile" && b.shape.length !== 2) this.error(`layout xor_swizzle on '${b.name}' needs a 2-d tile`);
      if (level === "tile" && consts[1] !== undefined && consts[1] % 8 !== 0)
        this.error(`layout xor_swizzle on '${b.name}': rows of ${consts[1]} elements are not whole 16-byte chunks`);
      if (!Number.isInteger(l.mask) || !Number.isInteger(l.shift) || l.mask < 0 || l.shift < 0)
        this.error(`layout xor_swizzle(${l.mask}, ${l.shift}) needs non-negative integers`);
      return;
    }
    // Lowering turns a fragment into the thread's local slots and keeps the layout as the
    // record of which element each slot holds (the shape is then the slot count).
    if (level === "thread" && b.scope === "local") return;
    // Lowering keeps a fragment's layout on the local buffer of its per-thread slots.
    const lowered = level === "thread" && b.scope === "local";
    if (b.scope !== "fragment" && !lowered) {
      this.error(`layout ${l.kind} on '${b.name}' needs a fragment buffer${level === "thread" ? " (or its lowered local)" : ""}, it is ${b.scope}`);
      return;
    }
    if (l.kind === "mma_acc" && !(Number.isInteger(l.warpsM) && Number.isInteger(l.warpsN) && l.warpsM >= 1 && l.warpsN >= 1)) {
      this.error(`layout mma_acc(${l.warpsM}, ${l.warpsN}) needs positive warp counts`);
      return;
    }
    if (l.kind === "wgmma_acc") {
      if (!(Number.isInteger(l.wgM) && Number.isInteger(l.wgN) && l.wgM >= 1 && l.wgN >= 1)) {
        this.error(`layout wgmma_acc(${l.wgM}, ${l.wgN}) needs positive warpgroup counts`);
        return;
      }
      if (lowered) return;
      // Any dtype: elementwise companions of an accumulator share its layout (inferLayouts).
      if (b.shape.length !== 2) { this.error(`layout wgmma_acc on '${b.name}' needs a 2-d fragment`); return; }
      const threads = this.k.launch.threads.k === "int" ? this.k.launch.threads.v : undefined;
      if (consts[0] !== undefined && consts[1] !== undefined && threads !== undefined) {
        const why = wgmmaAccProblem(l, { rows: consts[0], cols: consts[1], threads });
        if (why) this.error(`layout of '${b.name}': ${why}`);
      }
      return;
    }
    if (l.kind === "mma_acc" && !lowered) {
      // Any dtype: the layout only says which thread holds which element, and fragments
      // used elementwise with an accumulator (e.g. its bf16 copy) share it (inferLayouts).
      // gemm accumulators themselves are f32 by layout inference.
      if (b.shape.length !== 2) { this.error(`layout mma_acc on '${b.name}' needs a 2-d fragment`); return; }
      const threads = this.k.launch.threads.k === "int" ? this.k.launch.threads.v : undefined;
      if (consts[0] !== undefined && consts[1] !== undefined && threads !== undefined) {
        const why = mmaAccProblem(l, { rows: consts[0], cols: consts[1], threads });
        if (why) this.error(`layout of '${b.name}': ${why}`);
      }
    }
  }

  private alloc(b: Buffer): void {
    b.shape.forEach((e) => this.expr(e));
    this.dtype(b.dtype, `buffer '${b.name}'`);
    if (!["global", "shared", "fragment", "local"].includes(b.scope)) this.error(`unknown scope '${b.scope}' of '${b.name}'`);
    if (b.scope === "global") this.error(`'${b.name}': global buffers are kernel params, not allocations`);
    if (this.k.launch.level === "thread") {
      if ((b.scope === "shared" || b.scope === "local") && b.shape.length !== 1)
        this.error(`'${b.name}': ${b.scope} buffers are 1-d at thread level, it has rank ${b.shape.length}`);
      if (b.scope === "fragment") this.warn(`'${b.name}': fragment buffer at thread level (lowering should have replaced it)`);
    }
    if (b.align !== undefined && !(b.align > 0 && (b.align & (b.align - 1)) === 0)) this.error(`'${b.name}': align ${b.align} is not a power of two`);
    this.layout(b);
    if (b.over !== undefined) {
      const h = this.lookup(b.over);
      if (b.scope !== "shared") this.error(`'${b.name}': only shared buffers can be placed over another ('over ${b.over}')`);
      else if (!h || h.what !== "buf" || h.buf.scope !== "shared") this.error(`'${b.name}' is placed over '${b.over}', which is not a shared buffer allocated before it`);
      else if (h.buf.dtype !== b.dtype) this.error(`'${b.name}' (${b.dtype}) is placed over '${b.over}' (${h.buf.dtype}): both must have one dtype`);
    }
    this.declare(b.name, { what: "buf", buf: { name: b.name, scope: b.scope, dtype: b.dtype, rank: b.shape.length } });
  }

  block(body: Stmt[]): void {
    this.push();
    body.forEach((s) => this.stmt(s));
    this.pop();
  }

  stmt(s: Stmt): void {
    const outer = this.loc;
    if (s.loc) this.loc = s.loc;
    const level = this.k.launch.level;
    if (level === "thread" && TILE_ONLY.has(s.k)) this.error(`${s.k} is a tile op; it cannot appear at thread level`);
    if (level === "tile" && THREAD_ONLY.has(s.k)) this.error(`${s.k} is a thread-level intrinsic; it cannot appear at tile level`);
    this.stmtBody(s);
    this.loc = outer;
  }

  private stmtBody(s: Stmt): void {
    switch (s.k) {
      case "alloc": this.alloc(s.buf); return;
      case "let":
        this.expr(s.value);
        this.dtype(s.dtype, `let '${s.name}'`);
        this.valueFits(s.dtype, s.value, `${s.mutable ? "var" : "let"} '${s.name}'`);
        this.declare(s.name, { what: "var", dtype: s.dtype, mutable: s.mutable });
        return;
      case "assign": {
        this.expr(s.value);
        const d = this.lookup(s.name);
        if (!d) this.error(`assignment to undefined '${s.name}'`);
        else if (d.what !== "var" || !d.mutable) this.error(`assignment to '${s.name}', which is not a mutable let (var)`);
        else if (d.dtype) this.valueFits(d.dtype, s.value, `assignment to '${s.name}'`);
        return;
      }
      case "store": this.expr(s.value); this.access(s.buf, s.idx, "store to"); return;
      case "for": {
        s.starts.forEach((e) => this.expr(e));
        s.extents.forEach((e) => this.expr(e));
        if (s.vars.length === 0) this.error("for loop without a variable");
        if (s.starts.length !== s.vars.length || s.extents.length !== s.vars.length)
          this.error(`for loop over ${s.vars.length} variables has ${s.starts.length} starts and ${s.extents.length} extents`);
        if (s.kind !== "parallel" && s.vars.length > 1) this.error(`${s.kind} loops have one variable, this one has ${s.vars.length}`);
        if (!["serial", "unroll", "parallel", "pipelined"].includes(s.kind)) this.error(`unknown loop kind '${s.kind}'`);
        if (s.stages !== undefined) {
          if (s.kind !== "pipelined") this.error(`stages on a ${s.kind} loop (only pipelined loops have stages)`);
          if (!(Number.isInteger(s.stages) && s.stages >= 1)) this.error(`stages ${s.stages} must be a positive integer`);
        }
        this.push();
        s.vars.forEach((x) => this.declare(x, { what: "var", dtype: "i32", mutable: false }));
        this.block(s.body);
        this.pop();
        return;
      }
      case "if": {
        // `if (true)` is a scope only: specialize keeps a folded branch's block where it binds names.
        const scope = litBool(s.cond) === true;
        this.expr(s.cond);
        if (!scope) this.ifDepth++;
        this.block(s.then); this.block(s.else);
        if (!scope) this.ifDepth--;
        return;
      }
      case "copy": {
        const src = this.region(s.src, "copy source");
        const dst = this.region(s.dst, "copy destination");
        if (s.rows !== undefined && s.dstRows !== undefined) this.error(`a copy gathers rows ('${s.rows}') or scatters them ('${s.dstRows}'), not both`);
        if (s.rows !== undefined) this.gather(s as Extract<Stmt, { k: "copy" }> & { rows: string }, src);
        if (s.dstRows !== undefined) this.scatter(s as Extract<Stmt, { k: "copy" }> & { dstRows: string }, dst);
        return;
      }
      case "fill": this.expr(s.value); this.region(s.dst, "fill"); return;
      case "gemm":
        for (const [r, what] of [[s.a, "gemm A"], [s.b, "gemm B"], [s.c, "gemm C"]] as const) {
          this.region(r, what);
          if (r.offsets.length !== 2) this.error(`${what} region of '${r.buf}' must be 2-d, it has rank ${r.offsets.length}`);
        }
        return;
      case "reduce": case "topk": case "scan": this.moeTileOp(s); return;
      case "atomic": {
        this.expr(s.value);
        const b = this.ref(s, "atomic", ["global", "shared"]);
        if (s.result !== undefined) this.declare(s.result, { what: "var", dtype: b?.dtype ?? "i32", mutable: false });
        return;
      }
      case "warp_reduce": {
        this.expr(s.value);
        if (!["sum", "max", "min"].includes(s.op)) this.error(`unknown warp_reduce operation '${s.op}'`);
        if (!["f32", "i32", "u32"].includes(s.dtype)) this.error(`warp_reduce '${s.result}' is ${s.dtype}; it combines f32, i32 or u32 values`);
        if (![2, 4, 8, 16, 32].includes(s.width)) this.error(`warp_reduce width ${s.width} must be 2, 4, 8, 16 or 32`);
        if (this.ifDepth > 0) this.error(`warp_reduce '${s.result}' is under an if: every thread of the block must reach it`);
        const threads = evalConst(this.k.launch.threads);
        if (threads !== undefined && threads % 32 !== 0) this.error(`warp_reduce needs whole warps, but the block has ${threads} threads`);
        this.declare(s.result, { what: "var", dtype: s.dtype, mutable: false });
        return;
      }
      case "barrier": case "cp_commit": return;
      case "named_barrier": {
        // bar.sync 0 is __syncthreads' barrier; a named barrier takes whole warps.
        if (!(Number.isInteger(s.id) && s.id >= 1 && s.id <= 15)) this.error(`named barrier id ${s.id} must be in 1..15 (0 is the block-wide barrier)`);
        const threads = evalConst(this.k.launch.threads);
        if (!(Number.isInteger(s.count) && s.count >= 32 && s.count % 32 === 0)) this.error(`named barrier count ${s.count} must be a positive multiple of 32 (whole warps)`);
        else if (threads !== undefined && s.count > threads) this.error(`named barrier ${s.id} waits for ${s.count} threads, but the block has ${threads}`);
        return;
      }
      case "setmaxnreg":
        if (s.op !== "inc" && s.op !== "dec") this.error(`setmaxnreg op '${s.op}' must be inc or dec`);
        if (!validMaxnreg(s.regs)) this.error(`setmaxnreg ${s.regs} must be a multiple of 8 in [24, 256]`);
        return;
      case "vcopy":
        this.expr(s.pred);
        this.ref(s.dst, "vcopy destination", ["global", "shared", "local"]);
        this.ref(s.src, "vcopy source", ["global", "shared", "local"]);
        if (![1, 2, 4, 8, 16].includes(s.lanes)) this.error(`vcopy lanes ${s.lanes} must be 1, 2, 4, 8 or 16`);
        if (s.convert) {
          const dt = (n: string) => { const e = this.lookup(n); return e?.what === "buf" ? e.buf.dtype : undefined; };
          const d = dt(s.dst.buf), sr = dt(s.src.buf);
          if (s.lanes !== 2 || sr !== "f32" || (d !== "bf16" && d !== "f16"))
            this.error(`vcopy convert takes 2 lanes of f32 into bf16 or f16, got ${s.lanes} lanes of ${sr} into ${d}`);
        }
        return;
      case "cp_async":
        this.expr(s.pred);
        this.ref(s.dst, "cp.async destination", ["shared"]);
        this.ref(s.src, "cp.async source", ["global"]);
        if (![4, 8, 16].includes(s.bytes)) this.error(`cp.async bytes ${s.bytes} must be 4, 8 or 16`);
        return;
      case "cp_wait":
        if (!(Number.isInteger(s.n) && s.n >= 0)) this.error(`cp.wait ${s.n} must be a non-negative integer`);
        return;
      case "dequant": {
        if (!["u4", "s4", "u8", "s8", "e4m3"].includes(s.format)) this.error(`unknown packed weight format '${s.format}'`);
        if (!["linear", "interleaved"].includes(s.order)) this.error(`unknown packing order '${s.order}'`);
        [s.word, s.scale, s.zero, ...(s.pair ? [s.pair] : [])].forEach((e) => this.expr(e));
        const d = this.ref(s.dst, "dequant destination", ["local"]);
        if (d && d.dtype !== "bf16" && d.dtype !== "f16") this.error(`dequant destination '${d.name}' must be bf16 or f16, it is ${d.dtype}`);
        return;
      }
      case "ldmatrix": {
        if (![1, 2, 4].includes(s.num)) this.error(`ldmatrix num ${s.num} must be 1, 2 or 4`);
        const d = this.ref(s.dst, "ldmatrix destination", ["local"]);
        if (d && byteSize(d.dtype) !== 2) this.error(`ldmatrix destination '${d.name}' must have a 16-bit dtype, it is ${d.dtype}`);
        this.ref(s.addr, "ldmatrix address", ["shared"]);
        return;
      }
      case "wgmma_fence": case "wgmma_commit": case "fence_async": case "mbar_fence_init": return;
      case "griddep":
        if (this.ifDepth > 0) this.error(`griddepcontrol.${s.op} is reached by every thread of the block: it cannot sit under an 'if'`);
        return;
      case "mbar_init": case "mbar_arrive": case "mbar_wait": {
        const b = this.ref(s.bar, `${s.k} barrier`, ["shared"]);
        if (b && b.dtype !== "i64") this.error(`mbarrier '${b.name}' must be a shared i64 buffer, it is ${b.dtype}`);
        if (s.k === "mbar_init" && !(Number.isInteger(s.count) && s.count >= 1 && s.count < 1 << 20)) this.error(`mbar.init count ${s.count} must be an integer in [1, 2^20)`);
        if (s.k === "mbar_arrive" && s.tx !== undefined && !(Number.isInteger(s.tx) && s.tx > 0 && s.tx < 1 << 20)) this.error(`mbar.arrive tx ${s.tx} must be an integer in [1, 2^20)`);
        if (s.k === "mbar_wait") this.expr(s.parity);
        return;
      }
      case "tma_load": {
        s.coords.forEach((e) => this.expr(e));
        this.ref(s.dst, "tma.load destination", ["shared"]);
        const b = this.ref(s.bar, "tma.load barrier", ["shared"]);
        if (b && b.dtype !== "i64") this.error(`mbarrier '${b.name}' must be a shared i64 buffer, it is ${b.dtype}`);
        return;
      }
      case "wgmma_wait":
        if (!(Number.isInteger(s.n) && s.n >= 0 && s.n <= 7)) this.error(`wgmma.wait ${s.n} must be an integer in [0, 7]`);
        return;
      case "wgmma": {
        if (s.atype !== "bf16" && s.atype !== "f16") this.error(`wgmma input type ${s.atype} must be bf16 or f16`);
        if (!(Number.isInteger(s.n) && s.n >= 8 && s.n <= 256 && s.n % 8 === 0)) this.error(`wgmma n = ${s.n} must be a multiple of 8 in [8, 256]`);
        const d = this.ref(s.d, "wgmma d", ["local"]);
        if (d && d.dtype !== "f32") this.error(`wgmma d '${d.name}' must be f32, it is ${d.dtype}`);
        if ("regs" in s.b) this.error("wgmma b must be a shared-memory operand (descriptor fields), not registers");
        if ("regs" in s.a) {
          const r = this.ref(s.a.ref, "wgmma a (registers)", ["local"]);
          if (r && r.dtype !== s.atype) this.error(`wgmma a registers '${r.name}' must be ${s.atype}, it is ${r.dtype}`);
        }
        for (const [o, what] of [[s.a, "a"], [s.b, "b"]] as const) {
          if ("regs" in o) continue;
          const b = this.ref(o.ref, `wgmma ${what}`, ["shared"]);
          if (b && b.dtype !== s.atype) this.error(`wgmma ${what} '${b.name}' must be ${s.atype}, it is ${b.dtype}`);
          if (![0, 32, 64, 128].includes(o.swizzle)) this.error(`wgmma ${what} swizzle ${o.swizzle} must be 0, 32, 64 or 128`);
          for (const [x, nm] of [[o.lbo, "lbo"], [o.sbo, "sbo"]] as const)
            if (!(Number.isInteger(x) && x >= 0 && x % 16 === 0 && x < 1 << 18)) this.error(`wgmma ${what} ${nm} ${x} must be a multiple of 16 below 2^18`);
        }
        return;
      }
      case "mma": {
        if (s.atype !== "bf16" && s.atype !== "f16") this.error(`mma input type ${s.atype} must be bf16 or f16`);
        for (const [r, what, want] of [[s.a, "a", s.atype], [s.b, "b", s.atype], [s.c, "c", "f32"], [s.d, "d", "f32"]] as const) {
          const b = this.ref(r, `mma ${what}`, ["local"]);
          if (b && b.dtype !== want) this.error(`mma ${what} '${b.name}' must be ${want}, it is ${b.dtype}`);
        }
        return;
      }
    }
  }

  // ------------------------------------------------------------ kernel

  run(): Diagnostic[] {
    const k = this.k;
    this.push();
    if (!IDENT.test(k.name)) this.error(`kernel name '${k.name}' is not an identifier`);
    const tunables = new Set(Object.keys(k.tunables));
    for (const p of k.params) {
      this.dtype(p.dtype, `param '${p.name}'`);
      if (p.kind === "tensor") {
        this.declare(p.name, { what: "buf", buf: { name: p.name, scope: "global", dtype: p.dtype, rank: p.shape?.length } });
      } else {
        if (p.shape) this.error(`scalar param '${p.name}' has a shape`);
        this.declare(p.name, { what: "var", dtype: p.dtype, mutable: false });
      }
    }
    for (const d of k.dims) this.declare(d, { what: "var", dtype: "i32", mutable: false });
    for (const [n, vals] of Object.entries(k.tunables)) {
      if (vals.length === 0) this.error(`tunable '${n}' has no values`);
      this.declare(n, { what: "var", dtype: tunableType(vals[0]), mutable: false });
    }
    for (const [n, val] of Object.entries(k.config)) {
      if (tunables.has(n)) {
        if (!k.tunables[n]!.includes(val)) this.warn(`config ${n} = ${JSON.stringify(val)} is not among the tunable's values`);
      } else {
        this.declare(n, { what: "var", dtype: tunableType(val), mutable: false });
      }
    }
    // Shapes and the constraint are read before the launch: no block or thread vars yet.
    for (const p of k.params) p.shape?.forEach((e) => this.expr(e));
    if (k.where) {
      this.expr(k.where);
      for (const n of namesIn(k.where)) if (!tunables.has(n) && !(n in k.config)) this.error(`where clause names '${n}', which is not a tunable`);
    }
    if (k.smemBytes !== undefined && !(Number.isInteger(k.smemBytes) && k.smemBytes >= 0)) this.error(`smem ${k.smemBytes} must be a non-negative integer`);

    const l = k.launch;
    l.grid.forEach((e) => this.expr(e));
    this.expr(l.threads);
    if (l.grid.length < 1 || l.grid.length > 3) this.error(`grid has ${l.grid.length} dims; it needs 1 to 3`);
    if (l.blockVars.length !== l.grid.length) this.error(`${l.blockVars.length} block vars for a ${l.grid.length}-d grid`);
    if (l.level !== "tile" && l.level !== "thread") this.error(`unknown launch level '${l.level}'`);
    if (l.level === "thread" && l.threadVar === undefined) this.error("a thread-level launch needs a thread var");
    for (const b of l.blockVars) this.declare(b, { what: "var", dtype: "i32", mutable: false });
    if (l.threadVar !== undefined) this.declare(l.threadVar, { what: "var", dtype: "i32", mutable: false });
    // The launch body shares the kernel's scope: a top-level let may not redeclare a param.
    l.body.forEach((s) => this.stmt(s));
    this.pop();
    return this.diags;
  }
}

function tunableType(v: unknown): DType | undefined {
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "i32" : "f32";
  return undefined;
}

function namesIn(e: Expr, into: string[] = []): string[] {
  switch (e.k) {
    case "var": into.push(e.name); break;
    case "bin": namesIn(e.a, into); namesIn(e.b, into); break;
    case "un": case "cast": namesIn(e.a, into); break;
    case "select": namesIn(e.cond, into); namesIn(e.a, into); namesIn(e.b, into); break;
    case "call": e.args.forEach((a) => namesIn(a, into)); break;
    case "load": e.idx.forEach((a) => namesIn(a, into)); break;
    default: break;
  }
  return into;
}

/** Structural problems of `k` (empty when it is well formed). Errors and warnings. */
export function verifyKernel(k: Kernel): Diagnostic[] {
  return new Verifier(k).run();
}

/** Only the errors, formatted one per line; handy in `expect(verifyErrors(k)).toEqual([])`. */
export function verifyErrors(k: Kernel): string[] {
  return verifyKernel(k).filter((d) => d.severity === "error").map((d) => (d.loc ? `${d.loc.line}:${d.loc.col}: ` : "") + d.message);
}
