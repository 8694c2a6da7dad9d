// The thread-level intrinsic statements as CUDA C++ with inline PTX (PTX ISA: cp.async,
// ldmatrix, mma.sync m16n8k16). Each returns the lines of one statement.
import type { Expr } from "../../ir/ir.ts";

const VEC: Record<number, { type: string; zero: string }> = {
  16: { type: "uint4", zero: "make_uint4(0u, 0u, 0u, 0u)" },
  8: { type: "uint2", zero: "make_uint2(0u, 0u)" },
  4: { type: "unsigned", zero: "0u" },
  2: { type: "unsigned short", zero: "(unsigned short)0" },
  1: { type: "unsigned char", zero: "(unsigned char)0" },
};

export function isTrue(e: Expr): boolean {
  return (e.k === "int" || e.k === "float") && e.v !== 0;
}

/** One vector access of `bytes` bytes; dst and src are `&buf[i]` addresses. */
export function vcopyLines(dst: string, src: string, bytes: number, pred: { code: string; always: boolean }, dstGlobal: boolean): string[] {
  const v = VEC[bytes];
  if (!v) throw new Error(`vcopy of ${bytes} bytes has no vector type`);
  const copy = `*reinterpret_cast<${v.type}*>(${dst}) = *reinterpret_cast<const ${v.type}*>(${src});`;
  if (pred.always) return [copy];
  if (dstGlobal) return [`if (${pred.code}) ${copy}`];
  return [
    `if (${pred.code}) ${copy}`,
    `else *reinterpret_cast<${v.type}*>(${dst}) = ${v.zero};`,
  ];
}

function smemAddr(addr: string): string {
  return `(unsigned)__cvta_generic_to_shared(${addr})`;
}

export function cpAsyncLines(dst: string, src: string, bytes: number, pred: { code: string; always: boolean }): string[] {
  if (bytes !== 4 && bytes !== 8 && bytes !== 16) throw new Error(`cp.async of ${bytes} bytes (4, 8 or 16 only)`);
  // .cg (L2 only) exists for 16-byte copies alone; smaller ones go through L1 (.ca).
  const op = `cp.async.${bytes === 16 ? "cg" : "ca"}.shared.global`;
  if (pred.always) return [`asm volatile("${op} [%0], [%1], ${bytes};\\n" :: "r"(${smemAddr(dst)}), "l"(${src}));`];
  // src-size 0 reads nothing and zero-fills the destination: the predicated-off case.
  return [`asm volatile("${op} [%0], [%1], ${bytes}, %2;\\n" :: "r"(${smemAddr(dst)}), "l"(${src}), "r"((${pred.code}) ? ${bytes} : 0));`];
}

export const cpCommitLines = (): string[] => [`asm volatile("cp.async.commit_group;\\n" ::: "memory");`];

export function cpWaitLines(n: number): string[] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`cp.wait ${n}`);
  return [`asm volatile("cp.async.wait_group ${n};\\n" ::: "memory");`];
}

function regList(from: number, count: number): string {
  return Array.from({ length: count }, (_, i) => `%${from + i}`).join(", ");
}

/** dst: `&local[i]` of a 16-bit local array; addr: `&shared[j]`. */
export function ldmatrixLines(dst: string, addr: string, num: 1 | 2 | 4, trans: boolean): string[] {
  const outs = Array.from({ length: num }, (_, i) => `"=r"(tm_r[${i}])`).join(", ");
  return [
    "{",
    `  unsigned* tm_r = reinterpret_cast<unsigned*>(${dst});`,
    `  asm volatile("ldmatrix.sync.aligned.m8n8.x${num}${trans ? ".trans" : ""}.shared.b16 {${regList(0, num)}}, [%${num}];\\n"`,
    `      : ${outs}`,
    `      : "r"(${smemAddr(addr)}));`,
    "}",
  ];
}

/** a, b: `&local[i]` of 16-bit arrays; d, c: `&local[i]` of f32 arrays. sameDC: d and c alias. */
export function mmaLines(atype: "bf16" | "f16", d: string, a: string, b: string, c: string, sameDC: boolean): string[] {
  const ins = [
    ...[0, 1, 2, 3].map((i) => `"r"(tm_a[${i}])`),
    ...[0, 1].map((i) => `"r"(tm_b[${i}])`),
    ...(sameDC ? [] : [0, 1, 2, 3].map((i) => `"f"(tm_c[${i}])`)),
  ];
  const outs = [0, 1, 2, 3].map((i) => `"${sameDC ? "+" : "="}f"(tm_d[${i}])`);
  const cRegs = sameDC ? "{%0, %1, %2, %3}" : "{%10, %11, %12, %13}";
  return [
    "{",
    `  const unsigned* tm_a = reinterpret_cast<const unsigned*>(${a});`,
    `  const unsigned* tm_b = reinterpret_cast<const unsigned*>(${b});`,
    ...(sameDC ? [] : [`  const float* tm_c = ${c};`]),
    `  float* tm_d = ${d};`,
    `  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.${atype}.${atype}.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, ${cRegs};\\n"`,
    `      : ${outs.join(", ")}`,
    `      : ${ins.join(", ")});`,
    "}",
  ];
}
