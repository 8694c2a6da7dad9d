// The sm_90a warpgroup statements as CUDA C++ with inline PTX (PTX ISA: wgmma.mma_async,
// wgmma.fence / commit_group / wait_group, fence.proxy.async, matrix descriptors).
import { type Stmt, type WgmmaOperand, isWgmmaRegs } from "../../ir/ir.ts";
import { SWIZZLE_CODE } from "../../layout/wgmma.ts";

/** Names of shared buffers that wgmma reads: the emitter aligns them to 1024 bytes, the
 *  period of the 128-byte swizzle, which the hardware applies to absolute addresses. */
export function wgmmaOperandBuffers(body: Stmt[]): Set<string> {
  const out = new Set<string>();
  const walk = (ss: Stmt[]) => {
    for (const s of ss) {
      if (s.k === "wgmma") { if (!isWgmmaRegs(s.a)) out.add(s.a.ref.buf); out.add(s.b.ref.buf); }
      else if (s.k === "for") walk(s.body);
      else if (s.k === "if") { walk(s.then); walk(s.else); }
    }
  };
  walk(body);
  return out;
}

/** Accumulator buffers (name -> element count per wgmma) that wgmma writes. */
export function wgmmaAccumulators(body: Stmt[]): Set<string> {
  const out = new Set<string>();
  const walk = (ss: Stmt[]) => {
    for (const s of ss) {
      if (s.k === "wgmma") out.add(s.d.buf);
      else if (s.k === "for") walk(s.body);
      else if (s.k === "if") { walk(s.then); walk(s.else); }
    }
  };
  walk(body);
  return out;
}

/** The descriptor as a C++ expression: the constant fields folded here, the address at run time. */
function descriptor(addr: string, o: WgmmaOperand): string {
  const f = (x: number) => BigInt((x & 0x3ffff) >> 4);
  const fixed = (f(o.lbo) << 16n) | (f(o.sbo) << 32n) | (BigInt(SWIZZLE_CODE[o.swizzle]) << 62n);
  return `((unsigned long long)((((unsigned)__cvta_generic_to_shared(${addr})) & 0x3FFFFu) >> 4) | 0x${fixed.toString(16)}ull)`;
}

/** d: `&acc[i]` (f32 local array); a, b: `&tile[j]` of the shared operands, or for A from
 *  registers `&regs[j]` of a 16-bit local array (8 elements = the 4 .b32 registers).
 *  fenced: the statement starts with wgmma.fence (a wgmma_fence statement right before it). */
export function wgmmaLines(s: Stmt & { k: "wgmma" }, d: string, a: string, b: string, fenced = false): string[] {
  const regs = s.n / 2;
  const list = Array.from({ length: regs }, (_, i) => `%${i}`).join(", ");
  const outs = Array.from({ length: regs }, (_, i) => `"${s.scaleD ? "+" : "="}f"(tm_d[${i}])`);
  const fromRegs = isWgmmaRegs(s.a);
  // A from registers: {a0..a3}, and no transpose immediate for A (PTX: only imm-trans-b).
  const aOp = fromRegs ? `{%${regs}, %${regs + 1}, %${regs + 2}, %${regs + 3}}` : `%${regs}`;
  const bOp = `%${fromRegs ? regs + 4 : regs + 1}`;
  const imms = fromRegs ? "1, 1, 0" : "1, 1, 0, 0";
  // scale-d is a predicate operand: set from a constant, so ptxas sees it fixed.
  // fenced: a wgmma.fence first, in the same statement (see body.ts).
  const ptx = `{\\n.reg .pred p;\\nsetp.ne.b32 p, ${s.scaleD ? 1 : 0}, 0;\\n${fenced ? "wgmma.fence.sync.aligned;\\n" : ""}` +
    `wgmma.mma_async.sync.aligned.m64n${s.n}k16.f32.${s.atype}.${s.atype} {${list}}, ${aOp}, ${bOp}, p, ${imms};\\n}\\n`;
  const lines = ["{", `  float* tm_d = ${d};`];
  if (fromRegs) lines.push(`  const unsigned* tm_a = reinterpret_cast<const unsigned*>(${a});`);
  lines.push(`  asm volatile("${ptx}"`);
  for (let i = 0; i < outs.length; i += 8) lines.push(`      ${i === 0 ? ":" : " "} ${outs.slice(i, i + 8).join(", ")}${i + 8 < outs.length ? "," : ""}`);
  const aIn = isWgmmaRegs(s.a) ? [0, 1, 2, 3].map((i) => `"r"(tm_a[${i}])`).join(", ") : `"l"(${descriptor(a, s.a)})`;
  lines.push(`      : ${aIn}, "l"(${descriptor(b, s.b)})`, `      : "memory");`, "}");
  return lines;
}

export const wgmmaFenceLines = (): string[] => [`asm volatile("wgmma.fence.sync.aligned;\\n" ::: "memory");`];
export const wgmmaCommitLines = (): string[] => [`asm volatile("wgmma.commit_group.sync.aligned;\\n" ::: "memory");`];
export const fenceAsyncLines = (): string[] => [`asm volatile("fence.proxy.async.shared::cta;\\n" ::: "memory");`];

/** wait_group n. After a wait for all groups (n = 0) every accumulator register is pinned: the
 *  wgmma asm statements claim their outputs at issue, and nothing else would stop the compiler
 *  from reading them before the wait (the empty asm with "+f" makes each value depend on the
 *  wait's position). Not after n > 0: a group is still in flight there, and an instruction
 *  "defining" its registers makes ptxas serialize every wgmma (warning C7515); the code between
 *  such a wait and the final wait 0 touches the accumulator only through wgmma. */
export function wgmmaWaitLines(n: number, accs: { c: string; count: number }[]): string[] {
  if (!Number.isInteger(n) || n < 0 || n > 7) throw new Error(`wgmma.wait ${n}`);
  const out = [`asm volatile("wgmma.wait_group.sync.aligned ${n};\\n" ::: "memory");`];
  if (n === 0) for (const a of accs)
    out.push("#pragma unroll", `for (int tm_i = 0; tm_i < ${a.count}; ++tm_i) asm volatile("" : "+f"(${a.c}[tm_i]) :: "memory");`);
  return out;
}
