// The dequant statement (both levels): the values of one packed 32-bit word, as
// src/quant/format.ts defines them, into n consecutive elements of a 16-bit float buffer
// (or, with a pair p >= 0, values 2p and 2p+1 into two elements).
import { decodeField, dequantValue, fieldOf, type QFormat, type QOrder, valuesPerWord } from "../quant/format.ts";
import { Fault } from "./fault.ts";
import type { RtBuf, SharedChecker } from "./memory.ts";

export function makeDequant(chk: SharedChecker) {
  return (b: RtBuf, at: number, format: QFormat, order: QOrder, word: number, scale: number, zero: number, pair: number, tid: number, site: number): void => {
    if (b.dtype !== "bf16" && b.dtype !== "f16") throw new Fault(`dequant into ${b.dtype} ${b.name}: bf16 or f16 needed`, site);
    const per = valuesPerWord(format);
    if (pair >= 0 && !(Number.isInteger(pair) && 2 * pair + 1 < per)) throw new Fault(`dequant pair ${pair} of a ${format} word (${per / 2} pairs)`, site);
    const n = pair >= 0 ? 2 : per;
    if (!(at >= 0 && at + n <= b.size)) throw new Fault(`dequant writes ${b.name}[${at} .. ${at + n - 1}], out of bounds (${b.size})`, site);
    // Only the values written (a pair is 2 of the word's 4 or 8), each as dequantWord's.
    const first = pair >= 0 ? 2 * pair : 0;
    for (let j = 0; j < n; j++) {
      if (b.track) chk.write(b, at + j, tid, site);
      b.data[at + j] = dequantValue(decodeField(format, fieldOf(format, order, word >>> 0, first + j)), zero, scale, b.dtype);
    }
  };
}
