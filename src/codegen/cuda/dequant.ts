// The dequant statement as CUDA: one packed 32-bit word -> 4 or 8 bf16/f16 values, two at a
// time in the 16-bit halves of a register, then packed bf16x2/half2 arithmetic.
//  - 4-bit: "magic number" conversion. (w >> 4i) & 0x000f000f | M, one lop3, puts two
//    nibbles into the mantissas of two copies of a float whose exponent makes the mantissa
//    an integer (M = 128.0 bf16 = 0x4300, 1024.0 f16 = 0x6400); subtracting M (and a
//    literal zero point, folded in) gives q exactly. The interleaved order puts the two
//    neighbours 2i, 2i+1 in slots i, i+4, so no shuffling is needed; linear costs a shift.
//  - 8-bit ints: prmt (byte_perm) places bytes under 1024.0 (f16), or under 2^23 in f32
//    then converts a pair (bf16, whose 8-bit significand cannot hold 1024 + 255).
//  - e4m3: prmt + lop3 move sign, exponent and mantissa into a 16-bit float's fields, and
//    one multiply by 2^(bias difference) fixes the exponent (exact, subnormals included);
//    the NaN pattern S.1111.111 is patched in a branch that is almost never taken.
// Then round(q - zero) (skipped for a literal zero folded above) and round(. * scale):
// the two roundings of the IR semantics (src/quant/format.ts), each one bf16x2/half2 op.
// With a pair p (the register-fused dequant-gemm, src/passes/fuse-dequant-gemm.ts) the
// same instructions run once, for pair tm_i = p only (values 2p and 2p+1 of the word).
import type { DType, Expr, Stmt } from "../../ir/ir.ts";
import { toBits } from "../../numeric/dtype.ts";

type Dequant = Extract<Stmt, { k: "dequant" }>;

const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, "0")}u`;

function literal(e: Expr): number | undefined {
  return e.k === "int" || e.k === "float" ? e.v : undefined;
}

/** C expressions of the destination type itself (bf16 / f16) for the scale or zero point:
 *  the IR wrote them as cast<f32>(x) of such an x, whose rounding back is exact. */
export interface Native { scale?: string; zero?: string }

/**
 * Lines of one dequant. dst: `&local[i]` (16-byte aligned 16-bit array, i even);
 * word/scale/zero (and pair, when s.pair is set): C expressions (u32, and any arithmetic type).
 */
export function dequantLines(s: Dequant, dtype: DType, dst: string, word: string, scale: string, zero: string, pair?: string, native: Native = {}): string[] {
  if ((s.pair === undefined) !== (pair === undefined)) throw new Error("dequantLines: the pair expression goes with s.pair");
  if (dtype !== "bf16" && dtype !== "f16") throw new Error(`dequant into ${dtype}: bf16 or f16 only`);
  const bf = dtype === "bf16";
  const T2 = bf ? "__nv_bfloat162" : "__half2";
  const T1 = bf ? "__nv_bfloat16" : "__half";
  const cvt = bf ? "__float2bfloat16_rn" : "__float2half_rn";
  const splat = (x: string) => `${T2}(${cvt}(${x}), ${cvt}(${x}))`;
  // A value already of the destination type, packed twice by an integer multiply: plain C
  // that nvcc reuses across the unrolled k-steps (the inline asm of __bfloat162bfloat162 it
  // repeated per dequant).
  const splatNative = (name: string, x: string) => {
    L.push(`  const unsigned ${name}u = (unsigned)${bf ? "__bfloat16_as_ushort" : "__half_as_ushort"}(${x}) * 0x10001u;`);
    L.push(`  const ${T2} ${name} = ${as2(`${name}u`)};`);
  };
  const as2 = (u: string) => `*reinterpret_cast<const ${T2}*>(&${u})`;
  const L: string[] = ["{"];
  // Literal constants as their bit patterns: a cvt of a float literal inside cuda_bf16.h's
  // inline asm is not folded by nvcc, so splat(136.0f) cost two cvt and a mov per dequant.
  const constant = (name: string, v: number) => {
    const h = toBits(dtype, v);
    L.push(`  const unsigned ${name}u = ${hex(h * 0x10001)};`);
    L.push(`  const ${T2} ${name} = ${as2(`${name}u`)};`);
  };
  const z = literal(s.zero);
  let w = word;
  // Signed ints become offset-binary (q + 8 / q + 128) with one xor; the offset joins the magic.
  let offset = 0;
  if (s.format === "s4") { w = `(${word}) ^ 0x88888888u`; offset = 8; }
  if (s.format === "s8") { w = `(${word}) ^ 0x80808080u`; offset = 128; }
  L.push(`  const unsigned tm_w = ${w};`);
  L.push(`  ${T2}* tm_o = reinterpret_cast<${T2}*>(${dst});`);
  // A literal integer zero point folds into the magic subtraction when that stays exact.
  const magicBase = s.format === "u4" || s.format === "s4" ? (bf ? 128 : 1024) : s.format === "e4m3" ? 0 : (bf ? 8388608 : 1024);
  const limit = magicBase === 128 ? 256 : magicBase === 1024 ? 2048 : 0;
  const fold = z !== undefined && Number.isInteger(z) && magicBase + offset + z >= 0 && magicBase + offset + z < limit;
  const sub = magicBase + offset + (fold ? z! : 0);
  const needZ = !fold && z !== 0;
  const pairs = s.format === "u4" || s.format === "s4" ? 4 : 2;
  if (s.format === "e4m3") {
    // 2^(bias(dtype) - bias(e4m3)): 2^120 for bf16, 2^8 for f16, as the 16-bit pattern.
    constant("tm_e", bf ? 2 ** 120 : 256);
  }
  if (needZ) {
    if (native.zero !== undefined) splatNative("tm_z", native.zero);
    else if (z !== undefined) constant("tm_z", z);
    else L.push(`  const ${T2} tm_z = ${splat(`(float)(${zero})`)};`);
  }
  // A literal scale of 1 (T.dequant without scales) multiplies by nothing: x * 1 is x exactly.
  const unscaled = literal(s.scale) === 1;
  if (unscaled) { /* no tm_s */ }
  else if (native.scale !== undefined) splatNative("tm_s", native.scale);
  else L.push(`  const ${T2} tm_s = ${splat(`(float)(${scale})`)};`);
  // Subtracting a magic of 0 (a zero point of -128 on u4 bf16: the biased 128 + q the fused
  // partial-sum loop feeds its mma, src/passes/fuse-dequant-gemm.ts) is no instruction either.
  const magicOnly = (s.format === "u4" || s.format === "s4") && fold && sub === 0;
  if (s.format !== "e4m3" && !(bf && (s.format === "u8" || s.format === "s8")) && !magicOnly)
    constant("tm_m", sub);
  if (pair !== undefined) L.push(`  {`, `    const int tm_i = ${pair};`);
  else {
    L.push("#pragma unroll");
    L.push(`  for (int tm_i = 0; tm_i < ${pairs}; ++tm_i) {`);
  }
  const inner: string[] = [];
  switch (s.format) {
    case "u4": case "s4": {
      const magic = bf ? 0x43004300 : 0x64006400;
      if (s.order === "interleaved") {
        inner.push(`unsigned tm_t;`);
        // lop3 0xea = (a & b) | c
        inner.push(`asm("lop3.b32 %0, %1, %2, %3, 0xea;\\n" : "=r"(tm_t) : "r"(tm_w >> (4 * tm_i)), "r"(0x000f000fu), "r"(${hex(magic)}));`);
      } else {
        inner.push(`const unsigned tm_x = tm_w >> (8 * tm_i);`);
        inner.push(`const unsigned tm_t = (tm_x & 0x0000000fu) | ((tm_x << 12) & 0x000f0000u) | ${hex(magic)};`);
      }
      inner.push(magicOnly ? `${T2} tm_q = ${as2("tm_t")};` : `${T2} tm_q = __hsub2(${as2("tm_t")}, tm_m);`);
      break;
    }
    case "u8": case "s8": {
      // Bytes of pair tm_i: interleaved (tm_i, tm_i + 2), linear (2 tm_i, 2 tm_i + 1).
      const b0 = s.order === "interleaved" ? "tm_i" : "2 * tm_i";
      const b1 = s.order === "interleaved" ? "tm_i + 2" : "2 * tm_i + 1";
      if (bf) {
        // f32 = 2^23 + byte: __byte_perm(w, 0x4b000000, byte | 0x7540) -> bytes (b, 00, 00, 4b).
        inner.push(`const float tm_f0 = __uint_as_float(__byte_perm(tm_w, 0x4b000000u, (${b0}) | 0x7540)) - ${sub}.0f;`);
        inner.push(`const float tm_f1 = __uint_as_float(__byte_perm(tm_w, 0x4b000000u, (${b1}) | 0x7540)) - ${sub}.0f;`);
        inner.push(`${T2} tm_q = __floats2bfloat162_rn(tm_f0, tm_f1);`);
      } else {
        // (b0, 0x64, b1, 0x64): selector nibbles b0, 4, b1, 4.
        inner.push(`const unsigned tm_t = __byte_perm(tm_w, 0x64646464u, (${b0}) | 0x40 | ((${b1}) << 8) | 0x4000);`);
        inner.push(`${T2} tm_q = __hsub2(${as2("tm_t")}, tm_m);`);
      }
      break;
    }
    case "e4m3": {
      const b0 = s.order === "interleaved" ? "tm_i" : "2 * tm_i";
      const b1 = s.order === "interleaved" ? "tm_i + 2" : "2 * tm_i + 1";
      // (00, b0, 00, b1): each fp8 in the high byte of its 16-bit lane; selector 4, b0, 4, b1.
      inner.push(`const unsigned tm_t = __byte_perm(tm_w, 0u, 0x0404 | ((${b0}) << 4) | ((${b1}) << 12));`);
      // sign stays; exponent+mantissa shift down to the 16-bit float's field boundary.
      const sh = bf ? 4 : 1, em = bf ? 0x07f007f0 : 0x3f803f80;
      inner.push(`const unsigned tm_h = ((tm_t >> ${sh}) & ${hex(em)}) | (tm_t & 0x80008000u);`);
      inner.push(`${T2} tm_q = __hmul2(${as2("tm_h")}, tm_e);`);
      break;
    }
  }
  if (needZ) inner.push(`tm_q = __hsub2(tm_q, tm_z);`);
  inner.push(`tm_o[${pair !== undefined ? "0" : "tm_i"}] = ${unscaled ? "tm_q" : "__hmul2(tm_q, tm_s)"};`);
  L.push(...inner.map((x) => `    ${x}`));
  L.push("  }");
  if (s.format === "e4m3" && pair !== undefined) {
    // S.1111.111 is NaN in e4m3; the bit move above made it a finite 480.
    const [b0, b1] = s.order === "interleaved" ? ["(" + pair + ")", "(" + pair + ") + 2"] : ["2 * (" + pair + ")", "2 * (" + pair + ") + 1"];
    L.push(`  {`);
    L.push(`    ${T1}* tm_v = reinterpret_cast<${T1}*>(tm_o);`);
    const nan = bf ? "__ushort_as_bfloat16((unsigned short)0x7fc0)" : "__ushort_as_half((unsigned short)0x7e00)";
    L.push(`    if (((tm_w >> (8 * (${b0}))) & 0x7fu) == 0x7fu) tm_v[0] = ${nan};`);
    L.push(`    if (((tm_w >> (8 * (${b1}))) & 0x7fu) == 0x7fu) tm_v[1] = ${nan};`);
    L.push("  }");
  } else if (s.format === "e4m3") {
    // S.1111.111 is NaN in e4m3; the bit move above made it a finite 480.
    const slot = (i: number) => (s.order === "interleaved" ? (i >> 1) + (i & 1) * 2 : i);
    L.push(`  if (__vcmpeq4(tm_w & 0x7f7f7f7fu, 0x7f7f7f7fu)) {`);
    L.push(`    ${T1}* tm_v = reinterpret_cast<${T1}*>(tm_o);`);
    for (let i = 0; i < 4; i++)
      L.push(`    if (((tm_w >> ${8 * slot(i)}) & 0x7fu) == 0x7fu) tm_v[${i}] = ${bf ? "__ushort_as_bfloat16((unsigned short)0x7fc0)" : "__ushort_as_half((unsigned short)0x7e00)"};`);
    L.push("  }");
  }
  L.push("}");
  return L;
}
