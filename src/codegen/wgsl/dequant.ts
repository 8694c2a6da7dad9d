// The dequant statement as WGSL: one packed u32 word -> 4 or 8 values of a bf16/f16 local
// array, with the exact semantics of src/quant/format.ts: q_i = value i of the word (slot
// order linear or interleaved), dst[at + i] = round(round(q_i - zero) * scale) in the
// destination dtype, zero and scale first rounded to it.
// Fields come out with u32 shifts and masks (signed ones with extractBits on the word as
// i32, which sign-extends). Every q is exact in f16 and f32. bf16 (and f16 without
// shader-f16) is computed in f32 and rounded after each operation. f32 has at least 2p+2
// bits for p = 8 (bf16) and p = 11 (f16), so the f32 result rounded again equals one direct
// rounding of the exact result, which is what format.ts computes.
import { CompileError, type Stmt } from "../../ir/ir.ts";
import { bitsOf, slotOf, valuesPerWord } from "../../quant/format.ts";
import { type ExprCtx, bufInfo, emitExpr, fix, flatIndex } from "./expr.ts";
import { decodeFn } from "./helpers.ts";
import { regType } from "./types.ts";

type Dequant = Extract<Stmt, { k: "dequant" }>;

function err(message: string): never {
  throw new CompileError([{ severity: "error", message }]);
}

/** WGSL lines for one dequant; `id` makes its temporaries unique in the function. */
export function dequantLines(s: Dequant, cx: ExprCtx, id: number): string[] {
  const b = bufInfo(s.dst.buf, cx);
  const t = b.dtype;
  if (t !== "bf16" && t !== "f16") err(`WGSL codegen: dequant into ${t} '${s.dst.buf}': bf16 or f16 needed`);
  // Only the register-fused dequant-gemm makes pairs, and it needs mma (never on WGSL).
  if (s.pair) err(`WGSL codegen: dequant pair into '${s.dst.buf}': pairs come from the mma-fused lowering, which WGSL does not have`);
  if (b.scope === "global") err(`WGSL codegen: dequant into global '${s.dst.buf}': the destination must be a local or shared array`);
  const rt = regType(t, cx.feats);
  const n = valuesPerWord(s.format), bits = bitsOf(s.format);
  const w = `_qw${id}`, z = `_qz${id}`, sc = `_qs${id}`, at = `_qd${id}`;
  const out = [
    `let ${w}: u32 = ${emitExpr(s.word, cx, "u32")};`,
    `let ${z}: ${rt} = ${emitExpr(s.zero, cx, t)};`,
    `let ${sc}: ${rt} = ${emitExpr(s.scale, cx, t)};`,
    `let ${at} = ${flatIndex(b, s.dst.idx.map((x) => emitExpr(x, cx, "i32")))};`,
  ];
  for (let i = 0; i < n; i++) {
    const off = bits * slotOf(s.format, s.order, i);
    const field = `((${w} >> ${off}u) & ${(1 << bits) - 1}u)`;
    let q: string;
    switch (s.format) {
      case "u4": case "u8": q = `${rt}(${field})`; break;
      case "s4": case "s8": q = `${rt}(extractBits(bitcast<i32>(${w}), ${off}u, ${bits}u))`; break;
      case "e4m3":
        cx.used.add("decode_fp8e4m3");
        q = rt === "f32" ? `${decodeFn("fp8e4m3")}(${field})` : `${rt}(${decodeFn("fp8e4m3")}(${field}))`;
        break;
    }
    const v = fix(`(${fix(`(${q} - ${z})`, t, cx)} * ${sc})`, t, cx);
    out.push(`${b.name}[${at} + ${i}] = ${v};`);
  }
  return out;
}
