// Packed weight formats: how one 32-bit word holds several quantized values, and the exact
// value a `dequant` statement produces from it. This file is the single definition the
// interpreter, the host-side packer (pack.ts) and the references share; the CUDA and WGSL
// emitters implement the same function with bit tricks (see docs/QUANT.md).
import type { DType } from "../ir/ir.ts";
import { fromBits, roundTo } from "../numeric/dtype.ts";

/** u4/s4: 8 values per word (unsigned 0..15 / two's complement -8..7); u8/s8: 4 per word;
 *  e4m3: 4 fp8 values per word (OCP e4m3fn: no infinities, S.1111.111 is NaN). */
export type QFormat = "u4" | "s4" | "u8" | "s8" | "e4m3";
export const QFORMATS: readonly QFormat[] = ["u4", "s4", "u8", "s8", "e4m3"];

/** Where value i of a word sits.
 *  - linear: value i in bits [b*i, b*i + b) (b = 4 or 8), i.e. little-endian order.
 *  - interleaved: the slots are ordered so that one mask pulls two neighbours into the two
 *    16-bit halves: 4-bit value 2j in slot j and 2j+1 in slot j+4 (order 0,2,4,6,1,3,5,7);
 *    8-bit value 2j in byte j and 2j+1 in byte j+2 (order 0,2,1,3). */
export type QOrder = "linear" | "interleaved";
export const QORDERS: readonly QOrder[] = ["linear", "interleaved"];

export const valuesPerWord = (f: QFormat): number => (f === "u4" || f === "s4" ? 8 : 4);
export const bitsOf = (f: QFormat): number => 32 / valuesPerWord(f);

/** The slot (bit offset / value width) where value i of a word lives. */
export function slotOf(f: QFormat, order: QOrder, i: number): number {
  const n = valuesPerWord(f);
  if (order === "linear") return i;
  return (i >> 1) + (i & 1) * (n / 2);
}

/** The raw unsigned field of value i (0..15 or 0..255). */
export function fieldOf(f: QFormat, order: QOrder, word: number, i: number): number {
  const b = bitsOf(f);
  return (word >>> (b * slotOf(f, order, i))) & ((1 << b) - 1);
}

/** The exact quantized value of a raw field: an integer, or an fp8 value (maybe NaN). */
export function decodeField(f: QFormat, field: number): number {
  switch (f) {
    case "u4": case "u8": return field;
    case "s4": return field >= 8 ? field - 16 : field;
    case "s8": return field >= 128 ? field - 256 : field;
    case "e4m3": return fromBits("fp8e4m3", field);
  }
}

/** Inverse of decodeField for values in range (the packer); undefined when q is not one. */
export function encodeField(f: QFormat, q: number): number | undefined {
  switch (f) {
    case "u4": return Number.isInteger(q) && q >= 0 && q <= 15 ? q : undefined;
    case "u8": return Number.isInteger(q) && q >= 0 && q <= 255 ? q : undefined;
    case "s4": return Number.isInteger(q) && q >= -8 && q <= 7 ? q & 15 : undefined;
    case "s8": return Number.isInteger(q) && q >= -128 && q <= 127 ? q & 255 : undefined;
    case "e4m3": {
      for (let b = 0; b < 256; b++) if (Object.is(fromBits("fp8e4m3", b), q) || (Number.isNaN(q) && b === 0x7f)) return b;
      return undefined;
    }
  }
}

/** The values of one word, in element order. */
export function decodeWord(f: QFormat, order: QOrder, word: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < valuesPerWord(f); i++) out.push(decodeField(f, fieldOf(f, order, word >>> 0, i)));
  return out;
}

/** What `dequant` stores for a quantized value q: round(round(q - zero) * scale) in `to`
 *  (bf16 or f16), where zero and scale are first rounded to `to`. Two IEEE roundings, so
 *  NaN and infinities propagate exactly as in IEEE arithmetic (e.g. 0 * inf = NaN). */
export function dequantValue(q: number, zero: number, scale: number, to: DType): number {
  const z = roundTo(to, zero), s = roundTo(to, scale);
  return roundTo(to, roundTo(to, q - z) * s);
}

/** All values of one word through dequantValue. */
export function dequantWord(f: QFormat, order: QOrder, word: number, zero: number, scale: number, to: DType): number[] {
  return decodeWord(f, order, word).map((q) => dequantValue(q, zero, scale, to));
}
