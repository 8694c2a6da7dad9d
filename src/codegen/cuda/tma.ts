// TMA and mbarrier statements (sm_90a) as CUDA C++ with inline PTX (PTX ISA: mbarrier,
// cp.async.bulk.tensor, fence.mbarrier_init). Barriers and shared destinations are passed as
// 32-bit shared-window addresses; the tensor map as the generic address of the
// __grid_constant__ kernel parameter, which is what the TMA unit reads.
const smemAddr = (p: string) => `(unsigned)__cvta_generic_to_shared(${p})`;

export function mbarInitLines(bar: string, count: number): string[] {
  return [`asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\\n" :: "r"(${smemAddr(bar)}), "r"(${count}) : "memory");`];
}

export const mbarFenceInitLines = (): string[] => [`asm volatile("fence.mbarrier_init.release.cluster;\\n" ::: "memory");`];

export function mbarArriveLines(bar: string, tx: number | undefined): string[] {
  if (tx === undefined) return [`asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\\n" :: "r"(${smemAddr(bar)}) : "memory");`];
  return [`asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\\n" :: "r"(${smemAddr(bar)}), "r"(${tx}) : "memory");`];
}

/** try_wait suspends the thread for a system-dependent time before failing, so the loop spins
 *  rarely; a C loop rather than a PTX branch keeps labels unique when the code is unrolled. */
export function mbarWaitLines(bar: string, parity: string): string[] {
  return [
    "{",
    `  const unsigned tm_bar = ${smemAddr(bar)};`,
    `  const unsigned tm_parity = (unsigned)(${parity});`,
    "  unsigned tm_done = 0;",
    "  do {",
    `    asm volatile("{\\n.reg .pred p;\\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\\nselp.u32 %0, 1, 0, p;\\n}\\n"`,
    `                 : "=r"(tm_done) : "r"(tm_bar), "r"(tm_parity) : "memory");`,
    "  } while (!tm_done);",
    "}",
  ];
}

/** coords: C++ expressions, outermost dim first (the IR order); TMA takes the innermost first. */
export function tmaLoadLines(dst: string, map: string, coords: string[], bar: string): string[] {
  const n = coords.length;
  if (n < 1 || n > 5) throw new Error(`tma.load of rank ${n}`);
  const inner = [...coords].reverse();
  const list = inner.map((_, i) => `%${i + 2}`).join(", ");
  return [
    `asm volatile("cp.async.bulk.tensor.${n}d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {${list}}], [%${n + 2}];\\n"`,
    `             :: "r"(${smemAddr(dst)}), "l"(reinterpret_cast<unsigned long long>(&${map})),`,
    `                ${inner.map((c) => `"r"((int)(${c}))`).join(", ")}, "r"(${smemAddr(bar)}) : "memory");`,
  ];
}
