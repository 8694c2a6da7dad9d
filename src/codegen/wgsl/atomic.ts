// The atomic statement in WGSL. WGSL has atomics only on i32/u32 words (atomic<i32>,
// atomic<u32>), so:
//  - i32/u32 add/max/min map to atomicAdd/atomicMax/atomicMin, which wrap and compare
//    exactly as the interpreter does;
//  - every other dtype keeps its bits in an atomic<u32> word and updates through an
//    atomicCompareExchangeWeak loop: decode the old value, combine, round into the dtype,
//    encode, swap. f32 (and f32-register types in shared memory) are the whole word; packed
//    globals (bf16, f16, 8/16-bit) splice their element into the word, so neighbours in the
//    same word are never lost.
// max/min follow the interpreter (JS Math.max/min): NaN wins, +0 > -0. NaN is tested on the
// bits because WGSL lets compilers assume float compares never see NaN.
// Every function returns the element's value before the update (the statement's `result`).
import { CompileError, type AtomicOp, type DType, type Stmt } from "../../ir/ir.ts";
import { walkStmts } from "../../ir/expr.ts";
import { type BufInfo, type ExprCtx, fix } from "./expr.ts";
import { bitsFn } from "./helpers.ts";
import { regType } from "./types.ts";

function err(message: string): never {
  throw new CompileError([{ severity: "error", message }]);
}

/** Buffers that some atomic statement updates: their words must be atomic<..> in WGSL. */
export function atomicTargets(body: Stmt[]): Set<string> {
  const out = new Set<string>();
  walkStmts(body, (s) => { if (s.k === "atomic") out.add(s.buf); });
  return out;
}

/** How a word-per-element atomic buffer holds its values: the atomic's type, and the
 *  register type whose bits it stores (f32 values live as u32 bits). */
export function wordAtomicType(dtype: DType, cx: ExprCtx, where: string): { elem: string; repr: "i32" | "u32" | "f32" } {
  const rt = regType(dtype, cx.feats);
  if (rt === "i32") return { elem: "atomic<i32>", repr: "i32" };
  if (rt === "u32") return { elem: "atomic<u32>", repr: "u32" };
  if (rt === "f32") return { elem: "atomic<u32>", repr: "f32" };
  return err(`WGSL codegen: atomics on ${dtype} ${where} have no WGSL form (${rt} registers)`);
}

/** Reads an atomic word of `repr` at `flat` as a value in its register type. */
export function atomicLoadWord(b: BufInfo, flat: string): string {
  const v = `atomicLoad(&${b.name}[${flat}])`;
  return b.atomicWord === "f32" ? `bitcast<f32>(${v})` : v;
}

export function atomicStoreWord(b: BufInfo, flat: string, value: string): string {
  return `atomicStore(&${b.name}[${flat}], ${b.atomicWord === "f32" ? `bitcast<u32>(${value})` : value});`;
}

/** The bits (low `bits` bits of a u32) of a register value `v` of a packed dtype. */
export function packedBits(dtype: DType, v: string, cx: ExprCtx): string {
  switch (dtype) {
    case "u8": case "u16": return v;
    case "i8": case "i16": return `u32(${v})`;
    case "bool": return `select(0u, 1u, ${v})`;
    case "f16": return cx.feats.f16 ? `(bitcast<u32>(vec2<f16>(${v}, 0.0h)) & 0xffffu)` : `pack2x16float(vec2<f32>(${v}, 0.0))`;
    default: cx.used.add(`bits_${dtype}`); return `${bitsFn(dtype)}(${v})`;
  }
}

const NAN_FNS = `
fn _atm_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn _atm_fmax(a: f32, b: f32) -> f32 {
  if (_atm_isnan(a)) { return a; }
  if (_atm_isnan(b)) { return b; }
  if (a == b) { return bitcast<f32>(bitcast<u32>(a) & bitcast<u32>(b)); }
  return select(b, a, a > b);
}
fn _atm_fmin(a: f32, b: f32) -> f32 {
  if (_atm_isnan(a)) { return a; }
  if (_atm_isnan(b)) { return b; }
  if (a == b) { return bitcast<f32>(bitcast<u32>(a) | bitcast<u32>(b)); }
  return select(b, a, a < b);
}`;

function combine(op: AtomicOp, rt: string, a: string, b: string): string {
  if (op === "add") return `(${a} + ${b})`;
  if (rt === "f32" || rt === "f16") {
    const f = `_atm_f${op}(f32(${a}), f32(${b}))`;
    return rt === "f16" ? `${rt}(${f})` : f;
  }
  return `${op}(${a}, ${b})`;
}

/** Emitted helper functions of a module: name -> source. */
export type AtomicFns = Map<string, string>;

/** WGSL expression performing `op` with `value` (in the dtype's register type) on element
 *  `flat` of b; its value is the element before the update. */
export function atomicExpr(op: AtomicOp, b: BufInfo, flat: string, value: string, cx: ExprCtx, fns: AtomicFns): string {
  const rt = regType(b.dtype, cx.feats);
  const exact = b.dtype === "i32" || b.dtype === "u32";
  if (b.atomicWord && exact) {
    const f = op === "add" ? "atomicAdd" : op === "max" ? "atomicMax" : "atomicMin";
    return `${f}(&${b.name}[${flat}], ${value})`;
  }
  const fn = `_atm_${op}_${b.name}`;
  if (!fns.has(fn)) {
    if (op !== "add" && (rt === "f32" || rt === "f16")) fns.set("_atm_nan", NAN_FNS);
    if (rt === "bool") err(`WGSL codegen: atomic ${op} on bool '${b.name}'`);
    let word: string, decode: string, encode: string;
    if (b.atomicWord) {
      word = "e";
      decode = b.atomicWord === "f32" ? "bitcast<f32>(w)" : "w";
      encode = b.atomicWord === "f32" ? "bitcast<u32>(n)" : "n";
    } else if (b.scope === "global" && b.storage?.kind === "packed" && b.atomic) {
      const bits = b.storage.bits, per = 32 / bits, mask = bits === 16 ? "0xffffu" : "0xffu";
      word = `e / ${per}`;
      decode = `_ld_${b.name}(w, e)`;
      encode = `(w & ~(${mask} << sh)) | ((${packedBits(b.dtype, "n", cx)} & ${mask}) << sh)`;
      encode = `${encode}`;
      fns.set(fn, casFn(fn, b, rt, word, decode, encode, combine(op, rt, "o", "v"), cx, `let sh = u32(e % ${per}) * ${bits}u;`));
      return `${fn}(${flat}, ${value})`;
    } else {
      return err(`WGSL codegen: atomic on '${b.name}', which is not an atomic buffer`);
    }
    fns.set(fn, casFn(fn, b, rt, word, decode, encode, combine(op, rt, "o", "v"), cx, ""));
  }
  return `${fn}(${flat}, ${value})`;
}

function casFn(fn: string, b: BufInfo, rt: string, word: string, decode: string, encode: string, comb: string, cx: ExprCtx, pre: string): string {
  const wt = b.atomicWord === "i32" ? "i32" : "u32";
  return [
    `fn ${fn}(e: i32, v: ${rt}) -> ${rt} {`,
    ...(pre ? [`  ${pre}`] : []),
    `  var w: ${wt} = atomicLoad(&${b.name}[${word}]);`,
    "  loop {",
    `    let o: ${rt} = ${decode};`,
    `    let n: ${rt} = ${fix(comb, b.dtype, cx)};`,
    `    let r = atomicCompareExchangeWeak(&${b.name}[${word}], w, ${encode});`,
    "    if (r.exchanged) { return o; }",
    "    w = r.old_value;",
    "  }",
    "}",
  ].join("\n");
}
