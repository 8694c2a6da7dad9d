// Walks a thread-level launch body and writes the kernel's C++ statements, one IR statement
// at a time. Scoping follows the IR: a let or alloc is visible to the end of its block.
import { type Buffer, type Expr, type Ref, type Stmt, bin, byteSize, int, isWgmmaRegs } from "../../ir/ir.ts";
import { fold } from "../../ir/expr.ts";
import { type BufInfo, type ExprCtx, ExprEmitter, PRIMARY, type VarInfo } from "./expr.ts";
import { type Env, evalInt } from "./fold.ts";
import { elementCount } from "./smem.ts";
import { cpAsyncLines, cpCommitLines, cpWaitLines, isTrue, ldmatrixLines, mmaLines, vcopyLines } from "./intrinsics.ts";
import { dequantLines } from "./dequant.ts";
import { cName } from "./names.ts";
import { fenceAsyncLines, wgmmaCommitLines, wgmmaFenceLines, wgmmaLines, wgmmaWaitLines } from "./wgmma.ts";
import { storageType } from "./types.ts";
import { atomicExpr } from "./atomic.ts";
import { mbarArriveLines, mbarFenceInitLines, mbarInitLines, mbarWaitLines, tmaLoadLines } from "./tma.ts";

interface Frame { vars: Map<string, VarInfo>; bufs: Map<string, BufInfo> }

export class BodyEmitter {
  private readonly frames: Frame[] = [{ vars: new Map(), bufs: new Map() }];
  private readonly ex: ExprEmitter;
  private readonly ctx: ExprCtx;
  private readonly lines: string[] = [];
  private depth = 1;
  /** Local buffers that wgmma accumulates into (set by emit.ts): pinned after each wgmma.wait. */
  wgmmaAccs = new Set<string>();
  /** TMA tensor maps (IR name -> the kernel parameter's C name), set by emit.ts. */
  tensorMaps = new Map<string, string>();

  constructor(private readonly env: Env) {
    this.ctx = {
      lookupVar: (n) => this.find((f) => f.vars.get(n)),
      lookupBuf: (n) => this.find((f) => f.bufs.get(n)),
      config: env,
      indexType: "int64_t",
    };
    this.ex = new ExprEmitter(this.ctx);
  }

  defineVar(name: string, info: VarInfo): void { this.frames[this.frames.length - 1].vars.set(name, info); }
  defineBuf(name: string, info: BufInfo): void { this.frames[this.frames.length - 1].bufs.set(name, info); }

  helpers(): Set<string> { return this.ex.helpers; }

  line(s: string): void { this.lines.push("  ".repeat(this.depth) + s); }
  text(): string { return this.lines.join("\n"); }

  block(ss: Stmt[]): void {
    this.frames.push({ vars: new Map(), bufs: new Map() });
    for (let i = 0; i < ss.length; i++) {
      const s = ss[i]!, next = ss[i + 1];
      // A wgmma.fence right before a register-A wgmma goes into the wgmma's asm statement: the
      // A registers are then inputs of the fence too, so the compiler forms them (packs the
      // 16-bit halves) before it; formed after it, ptxas injects a warpgroup.arrive and
      // serializes the wgmma (C7519/C7520).
      if (s.k === "wgmma_fence" && next?.k === "wgmma" && isWgmmaRegs(next.a)) {
        for (const l of wgmmaLines(next, this.addr(next.d), this.addr(next.a.ref), this.addr(next.b.ref), true)) this.line(l);
        i++;
        continue;
      }
      this.stmt(s);
    }
    this.frames.pop();
  }

  private find<T>(get: (f: Frame) => T | undefined): T | undefined {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const x = get(this.frames[i]);
      if (x !== undefined) return x;
    }
    return undefined;
  }

  private nested(ss: Stmt[]): void {
    this.depth++;
    this.block(ss);
    this.depth--;
  }

  private addr(r: Ref): string { return this.ex.address(r.buf, r.idx); }

  /** `vcopy ... lanes 2 convert`: two f32 registers rounded into one bf16x2 / half2 store
   *  (no temporary whose address is taken, which nvcc would keep on the stack). */
  private convertingPair(s: Extract<Stmt, { k: "vcopy" }>): string[] {
    const d = this.ex.buf(s.dst.buf), src = this.ex.buf(s.src.buf);
    const [type, cvt] = d.dtype === "bf16" ? ["__nv_bfloat162", "__floats2bfloat162_rn"] : ["__half2", "__floats2half2_rn"];
    const at = (k: number) => this.ex.elementRaw(src, [fold(bin("+", s.src.idx[0]!, int(k)))]);
    const store = `*reinterpret_cast<${type}*>(${this.addr(s.dst)}) = ${cvt}(${at(0)}, ${at(1)});`;
    const p = this.pred(s.pred);
    if (p.always) return [store];
    return d.scope === "global" ? [`if (${p.code}) ${store}`] : [`if (${p.code}) ${store}`, `else *reinterpret_cast<unsigned*>(${this.addr(s.dst)}) = 0u;`];
  }

  private pred(e: Expr): { code: string; always: boolean } {
    return { code: this.ex.emit(e).code, always: isTrue(e) };
  }

  private stmt(s: Stmt): void {
    switch (s.k) {
      case "alloc": return this.alloc(s.buf);
      case "let": {
        const c = cName(s.name);
        this.line(`${s.mutable ? "" : "const "}${storageType(s.dtype)} ${c} = ${this.ex.emitStorage(s.value, s.dtype)};`);
        this.defineVar(s.name, { c, dtype: s.dtype });
        return;
      }
      case "assign": {
        const vi = this.ctx.lookupVar(s.name);
        if (!vi) throw new Error(`assignment to unbound variable ${s.name}`);
        this.line(`${vi.c} = ${this.ex.emitStorage(s.value, vi.dtype)};`);
        return;
      }
      case "store": {
        const b = this.ex.buf(s.buf);
        this.line(`${this.ex.elementRaw(b, s.idx)} = ${this.ex.emitStorage(s.value, b.dtype)};`);
        return;
      }
      case "for": return this.loop(s, 0);
      case "if": {
        this.line(`if (${this.ex.emit(s.cond).code}) {`);
        this.nested(s.then);
        if (s.else.length > 0) {
          this.line("} else {");
          this.nested(s.else);
        }
        this.line("}");
        return;
      }
      case "atomic": {
        const b = this.ex.buf(s.buf);
        const call = atomicExpr(s.op, b.dtype, this.addr(s), this.ex.emitStorage(s.value, b.dtype));
        if (s.result === undefined) return this.line(`${call};`);
        const c = cName(s.result);
        this.line(`const ${storageType(b.dtype)} ${c} = ${call};`);
        this.defineVar(s.result, { c, dtype: b.dtype });
        return;
      }
      case "warp_reduce": {
        // The butterfly of ir.ts: step m combines (own, lane ^ m) in that order, so the
        // interpreter's float sums are these bits. width < 32 keeps the xor inside its group.
        const c = cName(s.result), t = storageType(s.dtype);
        const fn = s.op === "sum" ? undefined : s.dtype === "f32" ? `tm_f${s.op}` : s.op;
        if (fn?.startsWith("tm_")) this.ex.helpers.add(`${fn}:f32`);
        this.line(`${t} ${c} = ${this.ex.emitStorage(s.value, s.dtype)};`);
        this.line("#pragma unroll");
        this.line(`for (int _wr_m = 1; _wr_m < ${s.width}; _wr_m <<= 1) {`);
        this.line(`  const ${t} _wr_o = __shfl_xor_sync(0xffffffffu, ${c}, _wr_m, ${s.width});`);
        this.line(`  ${c} = ${fn ? `${fn}(${c}, _wr_o)` : `${c} + _wr_o`};`);
        this.line("}");
        this.defineVar(s.result, { c, dtype: s.dtype });
        return;
      }
      case "barrier": return this.line("__syncthreads();");
      // Immediate operands: the counts are constants of the lowering.
      case "named_barrier": return this.line(`asm volatile("bar.sync ${s.id}, ${s.count};" ::: "memory");`);
      // PDL (docs/LAYER.md): "memory" keeps the compiler from moving loads above the wait.
      case "griddep": return this.line(`asm volatile("griddepcontrol.${s.op};" ::: "memory");`);
      case "setmaxnreg": return this.line(`asm volatile("setmaxnreg.${s.op}.sync.aligned.u32 ${s.regs};");`);
      case "wgmma":
        for (const l of wgmmaLines(s, this.addr(s.d), this.addr(s.a.ref), this.addr(s.b.ref))) this.line(l);
        return;
      case "wgmma_fence": for (const l of wgmmaFenceLines()) this.line(l); return;
      case "wgmma_commit": for (const l of wgmmaCommitLines()) this.line(l); return;
      case "fence_async": for (const l of fenceAsyncLines()) this.line(l); return;
      case "mbar_init": for (const l of mbarInitLines(this.addr(s.bar), s.count)) this.line(l); return;
      case "mbar_fence_init": for (const l of mbarFenceInitLines()) this.line(l); return;
      case "mbar_arrive": for (const l of mbarArriveLines(this.addr(s.bar), s.tx)) this.line(l); return;
      case "mbar_wait": for (const l of mbarWaitLines(this.addr(s.bar), this.ex.emit(s.parity).code)) this.line(l); return;
      case "tma_load": {
        const map = this.tensorMaps.get(s.map);
        if (!map) throw new Error(`tma.load through unknown tensor map ${s.map}`);
        for (const l of tmaLoadLines(this.addr(s.dst), map, s.coords.map((e) => this.ex.emit(e).code), this.addr(s.bar))) this.line(l);
        return;
      }
      case "wgmma_wait": {
        const accs = [...this.wgmmaAccs].flatMap((n) => {
          const b = this.ctx.lookupBuf(n);
          const count = b && b.shape.length === 1 ? evalInt(b.shape[0]!, this.env) : undefined;
          return b && count !== undefined ? [{ c: b.c, count }] : [];
        });
        for (const l of wgmmaWaitLines(s.n, accs)) this.line(l);
        return;
      }
      case "vcopy": {
        if (s.convert) { for (const l of this.convertingPair(s)) this.line(l); return; }
        const b = this.ex.buf(s.dst.buf);
        const bytes = s.lanes * byteSize(b.dtype);
        for (const l of vcopyLines(this.addr(s.dst), this.addr(s.src), bytes, this.pred(s.pred), b.scope === "global")) this.line(l);
        return;
      }
      case "cp_async":
        for (const l of cpAsyncLines(this.addr(s.dst), this.addr(s.src), s.bytes, this.pred(s.pred))) this.line(l);
        return;
      case "cp_commit": for (const l of cpCommitLines()) this.line(l); return;
      case "cp_wait": for (const l of cpWaitLines(s.n)) this.line(l); return;
      case "dequant": {
        const b = this.ex.buf(s.dst.buf);
        const [w, sc, z] = [s.word, s.scale, s.zero].map((e) => this.ex.emit(e).code);
        const pair = s.pair ? this.ex.emit(s.pair).code : undefined;
        // cast<f32>(x) of an x of the destination type rounds back to x exactly: use x.
        const native = (e: Expr) => {
          if (e.k !== "cast" || e.dtype !== "f32") return undefined;
          return this.ex.emit(e.a).dtype === b.dtype ? this.ex.emitStorage(e.a, b.dtype) : undefined;
        };
        const nat = { scale: native(s.scale), zero: native(s.zero) };
        for (const l of dequantLines(s, b.dtype, this.addr(s.dst), w!, sc!, z!, pair, nat)) this.line(l);
        return;
      }
      case "ldmatrix":
        for (const l of ldmatrixLines(this.addr(s.dst), this.addr(s.addr), s.num, s.trans)) this.line(l);
        return;
      case "mma": {
        const same = s.d.buf === s.c.buf && JSON.stringify(s.d.idx) === JSON.stringify(s.c.idx);
        for (const l of mmaLines(s.atype, this.addr(s.d), this.addr(s.a), this.addr(s.b), this.addr(s.c), same)) this.line(l);
        return;
      }
      case "copy": case "fill": case "gemm":
        throw new Error(`tile-level statement '${s.k}' reached the CUDA emitter; lower the kernel first`);
    }
  }

  private alloc(buf: Buffer): void {
    const c = cName(buf.name);
    if (buf.scope === "shared") {
      // Declared at the top of the kernel (see emit.ts); only the scope binding happens here.
      this.defineBuf(buf.name, { c, dtype: buf.dtype, scope: "shared", shape: buf.shape });
      return;
    }
    if (buf.scope === "global") throw new Error(`global buffer ${buf.name} allocated inside a kernel`);
    // 16-byte alignment lets mma/ldmatrix view 16-bit arrays as 32-bit registers and vcopy use uint4.
    this.line(`__align__(16) ${storageType(buf.dtype)} ${c}[${elementCount(buf, this.env)}];`);
    this.defineBuf(buf.name, { c, dtype: buf.dtype, scope: buf.scope, shape: buf.shape });
  }

  private loop(s: Extract<Stmt, { k: "for" }>, i: number): void {
    if (i === s.vars.length) {
      this.block(s.body);
      return;
    }
    const c = cName(s.vars[i]);
    const start = this.ex.emit(s.starts[i]).code;
    const s0 = evalInt(s.starts[i], this.env), e0 = evalInt(s.extents[i], this.env);
    const end = s0 !== undefined && e0 !== undefined ? this.ex.emit(int(s0 + e0))
      : s0 === 0 ? this.ex.emit(s.extents[i])
      : this.ex.binary("+", this.ex.emit(s.starts[i]), this.ex.emit(s.extents[i]));
    // Through binary: an end of lower precedence than `<` (a ternary) gets its parentheses.
    const test = this.ex.binary("<", { code: c, prec: PRIMARY, dtype: "i32" }, end).code;
    if (s.kind === "unroll") this.line("#pragma unroll");
    this.line(`for (int ${c} = ${start}; ${test}; ++${c}) {`);
    this.frames.push({ vars: new Map([[s.vars[i], { c, dtype: "i32" }]]), bufs: new Map() });
    this.depth++;
    this.loop(s, i + 1);
    this.depth--;
    this.frames.pop();
    this.line("}");
  }
}
