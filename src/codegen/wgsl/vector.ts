// Vector accesses for vcopy on WebGPU. A WGSL storage buffer has one element type, so a
// read-only input that some vcopy reads in whole 16-byte vectors is declared as
// array<vec4<word>> (word = its 32-bit element type, or u32 for packed 16-bit types) and
// every other access indexes the vector and its component. Whether a given copy really is
// aligned is only known at run time (the lowering's row guard is about CUDA's pointers), so
// each vector path sits behind a cheap alignment test with the element path as fallback.
// Outputs stay scalar arrays: a component write to a vec4 that neighbouring invocations
// also write would be a data race under WGSL's memory model.
import type { Stmt } from "../../ir/ir.ts";
import { walkStmts } from "../../ir/expr.ts";
import type { BufInfo } from "./expr.ts";

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

/** Whether a read-only global input whose vcopies move up to `lanes` elements gains from a
 *  vec4 declaration: a copy of 16 bytes or more of 32-bit words or packed halves. f16 with
 *  shader-f16 is array<f16> (2-byte words) and is left scalar. */
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
