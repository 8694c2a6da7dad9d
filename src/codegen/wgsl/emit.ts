// Thread-level IR -> one WGSL compute shader. The body is produced by walking the IR:
// one invocation per IR thread, one workgroup per IR block, shared buffers are
// var<workgroup>, local buffers function-scope arrays, barriers workgroupBarrier().
// cp.async is done as a plain synchronous copy (the data is then ready before the wait,
// which is a valid schedule of the asynchronous one); mma and ldmatrix have no WGSL form:
// lower for target wgsl with mma off.
import { CompileError, type DType, type Kernel, type Param, type Ref, type Stmt, byteSize, isFloat } from "../../ir/ir.ts";
import { evalConst, stmtExprs, typeEnvOf, walkExpr, walkStmts } from "../../ir/expr.ts";
import {
  type BufInfo, type ExprCtx, bufInfo, convert, emitExpr, exprType, flatIndex, loadFlat, unpackFn,
} from "./expr.ts";
import { helperSource } from "./helpers.ts";
import { dequantLines } from "./dequant.ts";
import { wgslName } from "./names.ts";
import { type AtomicFns, atomicExpr, atomicStoreWord, atomicTargets, packedBits, wordAtomicType } from "./atomic.ts";
import { type Feats, globalStorage, regType } from "./types.ts";
import { vcopyLanes, vcopyStoreLanes, vectorRead, vectorWrite, wantsVec4, wordAt } from "./vector.ts";
import { type ReduceMode, SUBGROUP_BUILTINS, subgroupDecls, subgroupPrologue, warpReduceLines, warpReduces } from "./subgroup.ts";

export type { Feats } from "./types.ts";

/** One tensor parameter's storage-buffer binding. */
export interface WgslTensorBinding {
  binding: number;
  param: string;
  dtype: DType;
  access: "read" | "read_write";
  /** Bytes per element in the buffer (the host packs densely, little-endian). */
  elemBytes: number;
}

/** One 4-byte field of the uniform buffer: a symbolic dim or a scalar parameter. */
export interface WgslUniformField {
  name: string;            // IR name
  source: "dim" | "scalar";
  dtype: DType;            // IR dtype (dims: i32)
  wgslType: "i32" | "u32" | "f32";
  offset: number;          // bytes
}

export interface WgslKernel {
  name: string;
  wgsl: string;
  entryPoint: string;
  /** Storage buffers, one per tensor parameter, in parameter order. */
  bindings: WgslTensorBinding[];
  uniform: { binding: number; fields: WgslUniformField[]; size: number };
  workgroupSize: number;
  /** Device features the shader needs (`shader-f16`). */
  features: string[];
  /** Workgroup memory bytes. */
  workgroupBytes: number;
  /** How warp_reduce statements were expanded (absent when there are none): "subgroups"
   *  (shuffles, with the workgroup-memory path as the run-time fallback) or "workgroup". */
  warpReduce?: ReduceMode;
}

function err(message: string): never {
  throw new CompileError([{ severity: "error", message }]);
}

function uniformType(t: DType): "i32" | "u32" | "f32" {
  if (t === "u8" || t === "u16" || t === "u32" || t === "bool") return "u32";
  if (t === "i8" || t === "i16" || t === "i32") return "i32";
  if (t === "i64" || t === "f64") err(`scalar parameters of ${t} cannot be passed to WGSL`);
  return "f32";
}

interface Ctx extends ExprCtx {
  reduceMode: ReduceMode;
  out: string[];
  depth: number;
  tmp: number;
  workgroupDecls: string[];
  workgroupBytes: number;
  /** Buffers updated by atomic statements, and the helper functions those need. */
  atomics: Set<string>;
  atomicFns: AtomicFns;
}

const line = (cx: Ctx, s: string) => cx.out.push("  ".repeat(cx.depth) + s);

function constShape(b: { name: string; shape: import("../../ir/ir.ts").Expr[] }, consts: Record<string, number | string | boolean>): number[] {
  return b.shape.map((e) => {
    const c = evalConst(e, consts as Record<string, number | boolean>);
    if (c === undefined || !Number.isInteger(c) || c < 0) err(`WGSL codegen: shape of ${b.name} must fold to a constant at thread level`);
    return c;
  });
}

export function emitWgsl(k: Kernel, feats: Feats): WgslKernel {
  if (k.launch.level !== "thread") err(`WGSL codegen needs thread-level IR; lower '${k.name}' first`);
  const consts = Object.fromEntries(Object.entries(k.config).filter(([, x]) => typeof x !== "string")) as Record<string, number | boolean>;
  const threads = evalConst(k.launch.threads, consts);
  if (threads === undefined || !Number.isInteger(threads) || threads <= 0) err(`WGSL codegen: thread count of '${k.name}' does not fold to a positive constant`);
  if (k.launch.grid.length > 3) err("WGSL codegen: at most 3 grid dimensions");

  const cx: Ctx = {
    feats, env: typeEnvOf(k), bufs: new Map(), consts: k.config, used: new Set(), usesErf: false,
    reduceMode: feats.subgroups ? "subgroups" : "workgroup",
    out: [], depth: 1, tmp: 0, workgroupDecls: [], workgroupBytes: 0,
    atomics: atomicTargets(k.launch.body), atomicFns: new Map(),
  };
  const header: string[] = [];
  // Specialized tunables are inlined as literals; give them types for expression typing.
  for (const [n, x] of Object.entries(k.config))
    if (typeof x !== "string" && !cx.env.vars.has(n)) cx.env.vars.set(n, typeof x === "boolean" ? "bool" : Number.isInteger(x) ? "i32" : "f32");

  // Uniform fields: dims, then scalars; each 4 bytes.
  const fields: WgslUniformField[] = [];
  for (const d of k.dims) fields.push({ name: d, source: "dim", dtype: "i32", wgslType: "i32", offset: 4 * fields.length });
  for (const p of k.params.filter((q) => q.kind === "scalar"))
    fields.push({ name: p.name, source: "scalar", dtype: p.dtype, wgslType: uniformType(p.dtype), offset: 4 * fields.length });

  // Tensor bindings.
  const bindings: WgslTensorBinding[] = [];
  const tensors = k.params.filter((p): p is Param & { shape: NonNullable<Param["shape"]> } => p.kind === "tensor");
  const copied = vcopyLanes(k.launch.body), written = vcopyStoreLanes(k.launch.body);
  for (const p of tensors) {
    const updated = cx.atomics.has(p.name);
    // An atomically updated f16 tensor is packed even with shader-f16: there is no atomic<f16>.
    const storage = updated && p.dtype === "f16" ? { kind: "packed" as const, bits: 16 as const } : globalStorage(p.dtype, feats);
    const access = p.output || updated ? "read_write" : "read";
    const atomic = storage.kind === "packed" && access === "read_write";
    const atomicWord = updated && storage.kind === "word" ? wordAtomicType(p.dtype, cx, `in tensor '${p.name}'`) : undefined;
    const elem = atomicWord ? atomicWord.elem : storage.kind === "word" ? storage.elem : atomic ? "atomic<u32>" : "u32";
    const name = wgslName(p.name);
    const binding = bindings.length;
    bindings.push({ binding, param: p.name, dtype: p.dtype, access, elemBytes: byteSize(p.dtype) });
    const info: BufInfo = { name, scope: "global", dtype: p.dtype, shape: p.shape!.map((e) => emitExpr(e, cx, "i32")), storage, atomic, atomicWord: atomicWord?.repr };
    info.vec4 = wantsVec4(info, (access === "read" ? copied : written).get(p.name) ?? 0);
    header.push(`@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${info.vec4 ? `vec4<${elem}>` : elem}>;`);
    cx.bufs.set(p.name, info);
  }
  const uniformBinding = bindings.length;
  const structFields = fields.length ? fields.map((f) => `${wgslName(f.name)}: ${f.wgslType}`) : ["_unused: u32"];
  header.push(`struct _Params { ${structFields.join(", ")} }`);
  header.push(`@group(0) @binding(${uniformBinding}) var<uniform> _u: _Params;`);

  // Prologue: dims, scalars, block and thread indices as named values.
  for (const f of fields) {
    const u = `_u.${wgslName(f.name)}`;
    line(cx, `let ${wgslName(f.name)} = ${convert(u, f.wgslType, f.dtype, cx)};`);
  }
  const axes = ["x", "y", "z"];
  k.launch.blockVars.forEach((b, i) => line(cx, `let ${wgslName(b)} = i32(_wid.${axes[i]});`));
  if (k.launch.threadVar) line(cx, `let ${wgslName(k.launch.threadVar)} = i32(_lid.x);`);
  const reduces = warpReduces(k.launch.body);
  const sg = reduces.length > 0 && cx.reduceMode === "subgroups";
  if (reduces.length) {
    const d = subgroupDecls(reduces, threads, cx.reduceMode);
    cx.workgroupDecls.push(...d.decls);
    cx.workgroupBytes += d.bytes;
    if (sg) subgroupPrologue().forEach((l) => line(cx, l));
  }

  emitBody(k.launch.body, cx);

  const helpers: string[] = [];
  const reads = readBuffers(k.launch.body);
  for (const p of tensors) {
    const b = cx.bufs.get(p.name)!;
    if (b.storage!.kind !== "packed") continue;
    if (reads.has(p.name) || cx.atomics.has(p.name)) helpers.push(unpackFn(b, cx));
    if (b.atomic) helpers.push(packStoreFn(b, cx));
  }
  helpers.push(...cx.atomicFns.values());
  const lib = helperSource(cx.used, cx.usesErf, cx.usesF32Bits, cx.usesPow);
  const enables = [...(feats.f16 && needsF16(k) ? ["enable f16;"] : []), ...(sg ? ["enable subgroups;"] : [])];
  const wgsl = [
    `// ${k.name}: generated by tilemoe from thread-level IR`,
    ...enables,
    ...header,
    ...cx.workgroupDecls,
    ...(lib ? [lib] : []),
    ...helpers,
    `@compute @workgroup_size(${threads})`,
    `fn main(@builtin(workgroup_id) _wid: vec3<u32>, @builtin(local_invocation_id) _lid: vec3<u32>${sg ? `, ${SUBGROUP_BUILTINS}` : ""}) {`,
    ...cx.out,
    "}",
    "",
  ].join("\n");
  return {
    name: k.name, wgsl, entryPoint: "main", bindings,
    uniform: { binding: uniformBinding, fields, size: Math.max(16, Math.ceil((4 * fields.length) / 16) * 16) },
    workgroupSize: threads, workgroupBytes: cx.workgroupBytes,
    features: [...(enables.includes("enable f16;") ? ["shader-f16"] : []), ...(sg ? ["subgroups"] : [])],
    ...(reduces.length ? { warpReduce: cx.reduceMode } : {}),
  };
}

function readBuffers(body: Stmt[]): Set<string> {
  const out = new Set<string>();
  walkStmts(body, (s) => {
    if (s.k === "vcopy" || s.k === "cp_async") out.add(s.src.buf);
    stmtExprs(s).forEach((e) => walkExpr(e, (x) => { if (x.k === "load") out.add(x.buf); }));
  });
  return out;
}

function needsF16(k: Kernel): boolean {
  const env = typeEnvOf(k);
  if ([...env.vars.values(), ...env.bufs.values()].includes("f16")) return true;
  let lit = false;
  walkStmts(k.launch.body, (s) => stmtExprs(s).forEach((e) => walkExpr(e, (x) => {
    if ((x.k === "int" || x.k === "float" || x.k === "cast") && x.dtype === "f16") lit = true;
  })));
  return lit;
}

/** A function writing one packed element of an output: clear its bits, then or them in,
 *  both atomically, so threads writing other elements of the same word do not race. */
function packStoreFn(b: BufInfo, cx: ExprCtx): string {
  const bits = b.storage!.kind === "packed" ? b.storage!.bits : 32;
  const per = 32 / bits;
  const mask = bits === 16 ? "0xffffu" : "0xffu";
  const raw = packedBits(b.dtype, "v", cx);
  return [
    `fn _st_${b.name}(e: i32, v: ${regType(b.dtype, cx.feats)}) {`,
    `  let sh = u32(e % ${per}) * ${bits}u;`,
    `  atomicAnd(&${b.name}[e / ${per}], ~(${mask} << sh));`,
    `  atomicOr(&${b.name}[e / ${per}], ((${raw}) & ${mask}) << sh);`,
    "}",
  ].join("\n");
}

// ---------------------------------------------------------------- statements

function emitBody(stmts: Stmt[], cx: Ctx): void {
  for (const s of stmts) emitStmt(s, cx);
}

function block(cx: Ctx, head: string, body: () => void, tail = "}"): void {
  line(cx, head);
  cx.depth++;
  body();
  cx.depth--;
  line(cx, tail);
}

function storeFlat(b: BufInfo, flat: string, value: string, cx: Ctx): string {
  if (b.atomicWord) return atomicStoreWord(b, flat, value);
  if (b.scope === "global" && b.storage!.kind === "packed") return `_st_${b.name}(${flat}, ${value});`;
  if (b.scope === "global" && b.vec4) return `${wordAt(b, flat)} = ${value};`;
  return `${b.name}[${flat}] = ${value};`;
}

function emitStmt(s: Stmt, cx: Ctx): void {
  switch (s.k) {
    case "alloc": return emitAlloc(s.buf, cx);
    case "let": {
      const v = emitExpr(s.value, cx, s.dtype);
      if (s.mutable) line(cx, `var ${wgslName(s.name)}: ${regType(s.dtype, cx.feats)} = ${v};`);
      else line(cx, `let ${wgslName(s.name)}: ${regType(s.dtype, cx.feats)} = ${v};`);
      return;
    }
    case "assign": {
      const t = exprType({ k: "var", name: s.name }, cx);
      line(cx, `${wgslName(s.name)} = ${emitExpr(s.value, cx, t)};`);
      return;
    }
    case "store": {
      const b = bufInfo(s.buf, cx);
      const flat = flatIndex(b, s.idx.map((x) => emitExpr(x, cx, "i32")));
      line(cx, storeFlat(b, flat, emitExpr(s.value, cx, b.dtype), cx));
      return;
    }
    case "for": return emitFor(s, 0, cx);
    case "if": {
      line(cx, `if (${emitExpr(s.cond, cx, "bool")}) {`);
      cx.depth++; emitBody(s.then, cx); cx.depth--;
      if (s.else.length) {
        line(cx, "} else {");
        cx.depth++; emitBody(s.else, cx); cx.depth--;
      }
      line(cx, "}");
      return;
    }
    case "barrier": line(cx, "workgroupBarrier();"); return;
    case "vcopy":
      if (s.convert) throw new Error("wgsl: a converting vcopy is a CUDA epilogue form (lower-epilogue.ts), never lowered for WGSL");
      return emitVcopy(s.dst, s.src, s.lanes, s.pred, cx);
    case "cp_async": {
      const lanes = s.bytes / byteSize(bufInfo(s.dst.buf, cx).dtype);
      if (!Number.isInteger(lanes) || lanes < 1) err(`WGSL codegen: cp.async of ${s.bytes} bytes does not hold whole ${bufInfo(s.dst.buf, cx).dtype} elements`);
      return emitVcopy(s.dst, s.src, lanes, s.pred, cx);
    }
    case "cp_commit": case "cp_wait": return; // copies above were synchronous
    case "dequant": for (const l of dequantLines(s, cx, cx.tmp++)) line(cx, l); return;
    case "atomic": {
      const b = bufInfo(s.buf, cx);
      const flat = flatIndex(b, s.idx.map((x) => emitExpr(x, cx, "i32")));
      const call = atomicExpr(s.op, b, flat, emitExpr(s.value, cx, b.dtype), cx, cx.atomicFns);
      line(cx, s.result ? `let ${wgslName(s.result)}: ${regType(b.dtype, cx.feats)} = ${call};` : `${call};`);
      return;
    }
    case "warp_reduce": {
      const value = emitExpr(s.value, cx, s.dtype);
      if (s.op !== "sum" && isFloat(s.dtype)) cx.usesF32Bits = true; // nanMinMax's _is_nan
      for (const l of warpReduceLines(s, wgslName(s.result), value, cx.reduceMode)) line(cx, l);
      return;
    }
    case "ldmatrix": case "mma": case "wgmma": case "wgmma_fence": case "wgmma_commit": case "wgmma_wait": case "fence_async":
      return err(`WGSL codegen: '${s.k}' is a CUDA tensor-core instruction; lower for wgsl with mma off`);
    case "griddep":
      return err(`WGSL codegen: 'griddepcontrol.${s.op}' is CUDA's programmatic dependent launch (sm_90a); lower for wgsl without pdl`);
    case "mbar_init": case "mbar_fence_init": case "mbar_arrive": case "mbar_wait": case "tma_load": case "setmaxnreg": case "named_barrier":
      return err(`WGSL codegen: '${s.k}' is a Hopper TMA/mbarrier instruction; lower for wgsl without --copy tma or --ws`);
    case "copy": case "fill": case "gemm": case "reduce": case "topk": case "scan":
      return err(`WGSL codegen: tile op '${s.k}' left in thread-level IR`);
    default: {
      // A statement kind added to ir.ts without a WGSL case must not be dropped silently.
      const unknown: never = s;
      return err(`WGSL codegen: no WGSL for statement '${(unknown as Stmt).k}'`);
    }
  }
}

function emitAlloc(buf: import("../../ir/ir.ts").Buffer, cx: Ctx): void {
  if (buf.scope === "global") err(`WGSL codegen: global buffer '${buf.name}' allocated in a kernel`);
  const dims = constShape(buf, cx.consts);
  const n = dims.reduce((a, b) => a * b, 1);
  const name = wgslName(buf.name);
  const rt = regType(buf.dtype, cx.feats);
  const scope = buf.scope === "shared" ? "shared" : "local";
  const updated = cx.atomics.has(buf.name);
  if (updated && scope !== "shared") err(`WGSL codegen: atomic on '${buf.name}' (${buf.scope}): atomics work on global or shared memory`);
  const aw = updated ? wordAtomicType(buf.dtype, cx, `in shared '${buf.name}'`) : undefined;
  cx.bufs.set(buf.name, { name, scope, dtype: buf.dtype, shape: dims.map(String), atomicWord: aw?.repr });
  if (scope === "shared") {
    cx.workgroupDecls.push(`var<workgroup> ${name}: array<${aw ? aw.elem : rt}, ${n}>;`);
    cx.workgroupBytes += n * (rt === "f16" ? 2 : 4);
  } else {
    line(cx, `var ${name}: array<${rt}, ${n}>;`);
  }
}

function emitFor(s: Stmt & { k: "for" }, d: number, cx: Ctx): void {
  if (d === s.vars.length) { emitBody(s.body, cx); return; }
  const v = wgslName(s.vars[d]!);
  const start = emitExpr(s.starts[d]!, cx, "i32"), ext = emitExpr(s.extents[d]!, cx, "i32");
  const end = start === "0i" ? ext : `${start} + ${ext}`;
  block(cx, `for (var ${v}: i32 = ${start}; ${v} < ${end}; ${v}++) {`, () => emitFor(s, d + 1, cx));
}

/** Element-wise copy of `lanes` consecutive elements (the last index advances), masked as
 *  ir.ts says: a false predicate zero-fills non-global destinations and skips global ones. */
function emitVcopy(dst: Ref, src: Ref, lanes: number, pred: import("../../ir/ir.ts").Expr, cx: Ctx): void {
  const db = bufInfo(dst.buf, cx), sb = bufInfo(src.buf, cx);
  const id = cx.tmp++;
  const dFlat = `_d${id}`, sFlat = `_s${id}`;
  line(cx, `let ${dFlat} = ${flatIndex(db, dst.idx.map((x) => emitExpr(x, cx, "i32")))};`);
  // All lanes' values (in the destination dtype) to the destination: whole vectors or words
  // when it is aligned at run time, element by element otherwise.
  const storeLanes = (values: string[]) => {
    const at = (l: number) => (l ? `${dFlat} + ${l}` : dFlat);
    const names = values.map((_, l) => `_w${id}_${l}`);
    const vw = vectorWrite(db, dFlat, names, cx);
    if (!vw) { values.forEach((v, l) => line(cx, storeFlat(db, at(l), v, cx))); return; }
    values.forEach((v, l) => line(cx, `let ${names[l]} = ${v};`));
    line(cx, `if (${vw.cond}) {`);
    cx.depth++; vw.stores.forEach((x) => line(cx, x)); cx.depth--;
    line(cx, "} else {");
    cx.depth++; names.forEach((v, l) => line(cx, storeFlat(db, at(l), v, cx))); cx.depth--;
    line(cx, "}");
  };
  const elementwise = () => {
    const off = (f: string, l: number) => (l ? `${f} + ${l}` : f);
    storeLanes(Array.from({ length: lanes }, (_, l) => convert(loadFlat(sb, off(sFlat, l), cx), sb.dtype, db.dtype, cx)));
  };
  const copy = () => {
    line(cx, `let ${sFlat} = ${flatIndex(sb, src.idx.map((x) => emitExpr(x, cx, "i32")))};`);
    const vec = vectorRead(sb, sFlat, lanes, id);
    if (!vec) { elementwise(); return; }
    // Vector reads when the source is aligned at run time, elements otherwise.
    line(cx, `if (${vec.cond}) {`);
    cx.depth++;
    for (const l of vec.loads) line(cx, l);
    storeLanes(vec.values.map((v) => convert(v, sb.dtype, db.dtype, cx)));
    cx.depth--;
    line(cx, "} else {");
    cx.depth++; elementwise(); cx.depth--;
    line(cx, "}");
  };
  const p = emitExpr(pred, cx, "bool");
  if (p === "true") { copy(); return; }
  line(cx, `if (${p}) {`);
  cx.depth++; copy(); cx.depth--;
  if (db.scope !== "global") {
    line(cx, "} else {");
    cx.depth++;
    const zero = emitExpr({ k: "float", v: 0, dtype: db.dtype }, cx);
    for (let l = 0; l < lanes; l++) line(cx, storeFlat(db, l ? `${dFlat} + ${l}` : dFlat, zero, cx));
    cx.depth--;
  }
  line(cx, "}");
}
