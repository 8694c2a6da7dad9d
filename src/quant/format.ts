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

/** Where value i of a word sits, and which values a word holds.
 *  - linear: value i in bits [b*i, b*i + b) (b = 4 or 8), i.e. little-endian order.
 *  - interleaved: the slots are ordered so that one mask pulls two neighbours into the two
 *    16-bit halves: 4-bit value 2j in slot j and 2j+1 in slot j+4 (order 0,2,4,6,1,3,5,7);
 *    8-bit value 2j in byte j and 2j+1 in byte j+2 (order 0,2,1,3).
 *  Both: word w of a row holds k = per * w + i, i < per (consecutive values).
 *  - mma (4-bit only): lane-owned words for the mma.m16n8k16 B fragment. Within each block of
 *    32 values of a row (4 words), word t holds the 8 values lane t (lane % 4) of a group
 *    needs for the block's two k-steps: element i (i < 8) of word 4b + t is
 *    k = 32b + 2t + (i & 1) + 8 (i >> 1), i.e. 2t, 2t+1, 2t+8, 2t+9, 2t+16, 2t+17, 2t+24,
 *    2t+25, in the interleaved slots (element i in slot (i >> 1) + 4 (i & 1)), so register
 *    pair p (k-step p >> 1, half p & 1) is `(w >> 4p) & 0x000f000f` at a constant shift.
 *    Rows are 4 * cdiv(K, 32) words (whole blocks; the tail is 0). See docs/QUANT.md. */
export type QOrder = "linear" | "interleaved" | "mma";
export const QORDERS: readonly QOrder[] = ["linear", "interleaved", "mma"];

/** Why `order` cannot hold `format`, or undefined. */
export function orderProblem(f: QFormat, order: QOrder): string | undefined {
  return order === "mma" && valuesPerWord(f) !== 8 ? `order "mma" is defined for the 4-bit formats (u4, s4), not ${f}` : undefined;
}

/** The slot order inside one word: mma words use the interleaved slots. */
export const slotOrder = (order: QOrder): "linear" | "interleaved" => (order === "mma" ? "interleaved" : order);

/** Values of the K axis one block of the order spans (the row length is a whole number of them). */
export const orderBlock = (f: QFormat, order: QOrder): number => (order === "mma" ? 32 : valuesPerWord(f));

/** Words of a row of K values. */
export const wordsPerRow = (f: QFormat, order: QOrder, K: number): number =>
  Math.ceil(K / orderBlock(f, order)) * (orderBlock(f, order) / valuesPerWord(f));

/** Where value k of a row lives: word index in the row, and element index i in that word. */
export function positionOf(f: QFormat, order: QOrder, k: number): { word: number; i: number } {
  const per = valuesPerWord(f);
  if (order !== "mma") return { word: Math.floor(k / per), i: k % per };
  const b = Math.floor(k / 32), r = k % 32;
  return { word: 4 * b + ((r & 7) >> 1), i: (r & 1) + 2 * (r >> 3) };
}

/** Inverse of positionOf: the k of element i of word w of a row. */
export function kOf(f: QFormat, order: QOrder, w: number, i: number): number {
  const per = valuesPerWord(f);
  if (order !== "mma") return per * w + i;
  return 32 * (w >> 2) + 2 * (w & 3) + (i & 1) + 8 * (i >> 1);
}

export const valuesPerWord = (f: QFormat): number => (f === "u4" || f === "s4" ? 8 : 4);
export const bitsOf = (f: QFormat): number => 32 / valuesPerWord(f);

/** The slot (bit offset / value width) where value i of a word lives. */
export function slotOf(f: QFormat, order: QOrder, i: number): number {
  const n = valuesPerWord(f);
  if (slotOrder(order) === "linear") return i;
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

/** The values of one word, in element order (positionOf / kOf say which k each is). */
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
