// Vector accesses for vcopy on WebGPU. A WGSL storage buffer has one element type, so a
// global that some vcopy moves in whole 16-byte vectors is declared as array<vec4<word>>
// (word = its 32-bit element type; read-only inputs of packed 16-bit types as vec4<u32>)
// and every other access indexes the vector and its component. Whether a given copy really
// is aligned is only known at run time (the lowering's row guard is about CUDA's pointers),
// so each vector path sits behind a cheap alignment test with the element path as fallback.
// Writes: a vcopy into a vec4 output stores whole vectors when aligned; into a packed
// (8/16-bit, atomic-word) output it stores whole words with atomicStore when the copy
// covers them, instead of an atomicAnd + atomicOr per element. The element fallback writes
// single components or elements, as before: WGSL memory locations are bytes, so a
// component store touches only its own element.
import type { Stmt } from "../../ir/ir.ts";
import { walkStmts } from "../../ir/expr.ts";
import type { BufInfo, ExprCtx } from "./expr.ts";
import { packedBits } from "./atomic.ts";

/** Words per array element of a global's WGSL declaration (4 when declared vec4). */
export function vecWords(b: BufInfo): number {
  return b.vec4 ? 4 : 1;
}

/** WGSL reference to 32-bit word `w` (an i32 expression) of a global. */
export function wordAt(b: BufInfo, w: string): string {
  return b.vec4 ? `${b.name}[(${w}) >> 2u][(${w}) & 3]` : `${b.name}[${w}]`;
}

/** Elements of the buffer per 32-bit word: 1 for word storage, 2 for packed 16-bit. */
function perWord(b: BufInfo): number {
  return b.storage?.kind === "packed" ? 32 / b.storage.bits : 1;
}

/** Largest lane count over the vcopies reading each buffer. */
export function vcopyLanes(body: Stmt[]): Map<string, number> {
  const out = new Map<string, number>();
  walkStmts(body, (s) => {
    if (s.k === "vcopy") out.set(s.src.buf, Math.max(out.get(s.src.buf) ?? 0, s.lanes));
  });
  return out;
}

/** Largest lane count over the vcopies writing each buffer. */
export function vcopyStoreLanes(body: Stmt[]): Map<string, number> {
  const out = new Map<string, number>();
  walkStmts(body, (s) => {
    if (s.k === "vcopy") out.set(s.dst.buf, Math.max(out.get(s.dst.buf) ?? 0, s.lanes));
  });
  return out;
}

/** Whether a global whose vcopies move up to `lanes` elements gains from a vec4
 *  declaration: a copy of 16 bytes or more of 32-bit words or packed halves (packed outputs
 *  are atomic words and never vec4). f16 with shader-f16 is array<f16> (2-byte words) and
 *  is left scalar. */
export function wantsVec4(b: BufInfo, lanes: number): boolean {
  if (lanes === 0 || b.scope !== "global" || b.atomic || b.atomicWord || !b.storage) return false;
  if (b.storage.kind === "word") return b.storage.elem !== "f16" && lanes % 4 === 0;
  return b.storage.bits === 16 && lanes % 8 === 0;
}

/** A copy plan: the alignment test on the source's flat index, and per lane the WGSL value
 *  (in the source dtype's register type) read from the words loaded first. */
export interface VectorRead {
  cond: string;
  loads: string[];          // `let` statements, one per vector or word read
  values: string[];         // one per lane
}

/** The vector read of `lanes` elements starting at flat index `s` of global `b`, or
 *  undefined when the copy has no vector form (then it stays element-wise). */
export function vectorRead(b: BufInfo, s: string, lanes: number, id: number): VectorRead | undefined {
  if (b.scope !== "global" || b.atomic || b.atomicWord || !b.storage) return undefined;
  const per = perWord(b);
  if (b.storage.kind === "word" && b.storage.elem === "f16") return undefined;
  if (per === 4) return undefined; // 8-bit elements: lanes are at most 8, two words; not worth it
  const words = lanes / per;
  if (!Number.isInteger(words)) return undefined;
  const span = vecWords(b) * per; // elements per array element
  if (b.vec4 && words % 4 === 0) {
    const loads: string[] = [], values: string[] = [];
    for (let j = 0; j < words / 4; j++) {
      const v = `_v${id}_${j}`;
      loads.push(`let ${v} = ${b.name}[((${s}) >> ${Math.log2(span)}u) + ${j}];`);
      for (const c of ["x", "y", "z", "w"])
        for (let h = 0; h < per; h++) values.push(per === 1 ? `${v}.${c}` : `_ld_${b.name}(${v}.${c}, ${h}i)`);
    }
    return { cond: `((${s}) & ${span - 1}) == 0`, loads, values };
  }
  if (per === 2) {
    // Packed halves without the vec4 view: one u32 read gives two elements.
    const loads: string[] = [], values: string[] = [];
    for (let j = 0; j < words; j++) {
      const v = `_v${id}_${j}`;
      loads.push(`let ${v}: u32 = ${wordAt(b, `((${s}) >> 1u) + ${j}`)};`);
      for (let h = 0; h < 2; h++) values.push(`_ld_${b.name}(${v}, ${h}i)`);
    }
    return { cond: `((${s}) & 1) == 0`, loads, values };
  }
  return undefined;
}

/** A write plan: the alignment test on the destination's flat index, and the statements
 *  storing all lanes at once. */
export interface VectorWrite { cond: string; stores: string[] }

/** The vector write of `values` (register values in b's dtype, one per lane, plain names:
 *  each is used once per path) to consecutive elements from flat index `d` of global `b`,
 *  or undefined when it has no vector form (then it stays element-wise). */
export function vectorWrite(b: BufInfo, d: string, values: string[], cx: ExprCtx): VectorWrite | undefined {
  if (b.scope !== "global" || b.atomicWord || !b.storage) return undefined;
  const n = values.length;
  if (b.storage.kind === "word") {
    if (!b.vec4 || n % 4 !== 0) return undefined;
    const stores: string[] = [];
    for (let j = 0; j < n / 4; j++)
      stores.push(`${b.name}[((${d}) >> 2u) + ${j}] = vec4<${b.storage.elem}>(${values.slice(4 * j, 4 * j + 4).join(", ")});`);
    return { cond: `((${d}) & 3) == 0`, stores };
  }
  // Packed output: whole words, each written by this invocation alone.
  if (!b.atomic) return undefined;
  const bits = b.storage.bits, per = 32 / bits, mask = bits === 16 ? "0xffffu" : "0xffu";
  if (n % per !== 0) return undefined;
  const stores: string[] = [];
  for (let j = 0; j < n / per; j++) {
    const parts = values.slice(per * j, per * j + per).map((v, h) => {
      const raw = `(${packedBits(b.dtype, v, cx)} & ${mask})`;
      return h ? `(${raw} << ${h * bits}u)` : raw;
    });
    stores.push(`atomicStore(&${b.name}[((${d}) >> ${Math.log2(per)}u) + ${j}], ${parts.join(" | ")});`);
  }
  return { cond: `((${d}) & ${per - 1}) == 0`, stores };
}
