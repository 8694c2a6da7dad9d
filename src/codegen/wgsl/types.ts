// How each IR dtype lives in WGSL: the type a value has in registers, and how a global
// tensor of it is laid out in its storage buffer.
//
// WGSL has no 8-bit types, no bf16, and f16 only behind `enable f16`. So:
//  - in registers, narrow ints widen to i32/u32, bf16 (and f16 without the feature) to f32;
//    the value stays exactly representable in its dtype because every write of such a
//    value goes through a rounding helper (see convert in expr.ts);
//  - shared and local arrays use the register type (one word per element: packing them
//    would make neighbouring threads' writes race);
//  - global tensors keep the byte layout the host uses everywhere else (little-endian,
//    dense), read as u32 words; a sub-word tensor that the kernel writes is
//    array<atomic<u32>> so that two threads writing two halves of one word do not race.
import { CompileError, type DType } from "../../ir/ir.ts";

export interface Feats { f16: boolean; subgroups: boolean }

/** WGSL register type of a value of dtype t. */
export function regType(t: DType, feats: Feats): string {
  switch (t) {
    case "bool": return "bool";
    case "i8": case "i16": case "i32": return "i32";
    case "u8": case "u16": case "u32": return "u32";
    case "f16": return feats.f16 ? "f16" : "f32";
    case "bf16": case "f32": case "fp8e4m3": case "fp8e5m2": return "f32";
    case "i64": case "f64":
      throw new CompileError([{ severity: "error", message: `dtype ${t} has no WGSL equivalent (WGSL has no 64-bit types)` }]);
  }
}

/** Values of t held in a wider register type must be re-rounded after every operation. */
export function needsRounding(t: DType, feats: Feats): boolean {
  switch (t) {
    case "bf16": case "fp8e4m3": case "fp8e5m2": case "i8": case "u8": case "i16": case "u16": return true;
    case "f16": return !feats.f16;
    default: return false;
  }
}

/** Storage of a global tensor: `word` = one element per 32-bit word (or f16 with the
 *  feature), `packed` = `bits`-wide elements packed little-endian into u32 words. */
export type GlobalStorage =
  | { kind: "word"; elem: string }
  | { kind: "packed"; bits: 8 | 16 };

export function globalStorage(t: DType, feats: Feats): GlobalStorage {
  switch (t) {
    case "i32": return { kind: "word", elem: "i32" };
    case "u32": return { kind: "word", elem: "u32" };
    case "f32": return { kind: "word", elem: "f32" };
    case "f16": return feats.f16 ? { kind: "word", elem: "f16" } : { kind: "packed", bits: 16 };
    case "bf16": case "i16": case "u16": return { kind: "packed", bits: 16 };
    case "bool": case "i8": case "u8": case "fp8e4m3": case "fp8e5m2": return { kind: "packed", bits: 8 };
    case "i64": case "f64":
      throw new CompileError([{ severity: "error", message: `tensors of ${t} cannot be used on WebGPU (WGSL has no 64-bit types)` }]);
  }
}
