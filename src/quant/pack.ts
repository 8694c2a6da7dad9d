// Host-side packing: a plain row-major [N, K] matrix of quantized values -> the u32 words
// that T.dequant reads ([N, cdiv(K, per)], per = values per word), plus the matching
// dequantization for references. docs/QUANT.md describes the bit layout so that other
// projects can pack the same way without this code.
import type { DType } from "../ir/ir.ts";
import { type QFormat, type QOrder, decodeWord, dequantValue, encodeField, bitsOf, kOf, orderProblem, positionOf, slotOf, valuesPerWord, wordsPerRow } from "./format.ts";

export interface Packed { words: Uint32Array; rows: number; wordsPerRow: number }

/** Packs q[N*K] (integers in the format's range, or fp8 e4m3 values) into rows of
 *  wordsPerRow(format, order, K) words; K need not be a multiple of the values per word (or
 *  of the mma order's 32-value block): the fields past K are 0. */
export function packWeights(q: ArrayLike<number>, N: number, K: number, format: QFormat, order: QOrder): Packed {
  if (q.length !== N * K) throw new Error(`packWeights: ${q.length} values for a ${N}x${K} matrix`);
  const bad = orderProblem(format, order);
  if (bad) throw new Error(`packWeights: ${bad}`);
  const b = bitsOf(format);
  const W = wordsPerRow(format, order, K);
  const words = new Uint32Array(N * W);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      const x = q[n * K + k]!;
      const field = encodeField(format, x);
      if (field === undefined) throw new Error(`packWeights: ${x} at [${n}, ${k}] is not a ${format} value`);
      const { word, i } = positionOf(format, order, k);
      words[n * W + word]! |= field << (b * slotOf(format, order, i));
    }
  for (let i = 0; i < words.length; i++) words[i] = words[i]! >>> 0;
  return { words, rows: N, wordsPerRow: W };
}

/** The quantized values back, [N*K] (inverse of packWeights). */
export function unpackWeights(p: Packed, K: number, format: QFormat, order: QOrder): Float64Array {
  const per = valuesPerWord(format);
  const out = new Float64Array(p.rows * K);
  for (let n = 0; n < p.rows; n++)
    for (let w = 0; w < p.wordsPerRow; w++) {
      const vals = decodeWord(format, order, p.words[n * p.wordsPerRow + w]!);
      for (let i = 0; i < per; i++) {
        const k = kOf(format, order, w, i);
        if (k < K) out[n * K + k] = vals[i]!;
      }
    }
  return out;
}

/** Packs u4 zero points z[N*G] (0..15) 8 groups per word along the group axis, linear
 *  order: [N, cdiv(G, 8)] words, the layout T.dequant reads for u32 zeros. */
export function packZeros(z: ArrayLike<number>, N: number, G: number): Packed {
  return packWeights(z, N, G, "u4", "linear");
}

export interface QuantParams {
  format: QFormat; order: QOrder;
  /** [N, G] scales, row-major. */
  scales: ArrayLike<number>;
  /** undefined = 0; a number; [N, G] float zeros; or packed u4 zeros (Uint32Array [N, cdiv(G, 8)]). */
  zeros?: number | ArrayLike<number> | { packed: ArrayLike<number> };
  /** Values per scale along K; 0 = per channel (G = 1). */
  group: number;
}

/** What T.dequant produces for the whole matrix: [N*K] values of dtype `to`, from packed
 *  words [N, wordsPerRow(format, order, K)] (cdiv(K, per) but for the mma order). */
export function dequantMatrix(words: ArrayLike<number>, N: number, K: number, p: QuantParams, to: DType): Float64Array {
  const bad = orderProblem(p.format, p.order);
  if (bad) throw new Error(`dequantMatrix: ${bad}`);
  const W = wordsPerRow(p.format, p.order, K);
  const G = p.group ? Math.ceil(K / p.group) : 1;
  const out = new Float64Array(N * K);
  const zeroAt = (n: number, g: number): number => {
    const z = p.zeros;
    if (z === undefined) return 0;
    if (typeof z === "number") return z;
    if ("packed" in z) {
      const GW = Math.ceil(G / 8);
      return (z.packed[n * GW + (g >> 3)]! >>> (4 * (g & 7))) & 15;
    }
    return (z as ArrayLike<number>)[n * G + g]!;
  };
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      const { word, i } = positionOf(p.format, p.order, k);
      const q = decodeWord(p.format, p.order, words[n * W + word]!)[i]!;
      const g = p.group ? Math.floor(k / p.group) : 0;
      out[n * K + k] = dequantValue(q, zeroAt(n, g), p.scales[n * G + g]!, to);
    }
  return out;
}
