// What a tuning result depends on, as short stable strings: the kernel's code (its
// tile-level IR, so comments and formatting do not matter), its space, its dtypes, and the
// problem shape, bucketed so that nearby token counts share a winner.
import { createHash } from "node:crypto";
import type { Kernel } from "../ir/ir.ts";
import { printKernel } from "../ir/print.ts";
import { printExpr } from "../ir/print.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

/** The kernel's tile-level IR without its space (a change of space is keyed separately). */
export function kernelHash(k: Kernel): string {
  return sha(printKernel({ ...k, tunables: {}, where: undefined, config: {} }));
}

export function spaceHash(k: Kernel): string {
  return sha(JSON.stringify({ tunables: k.tunables, where: k.where ? printExpr(k.where) : null }));
}

/** `A:bf16,B:bf16,C:bf16`: the params' dtypes in order. */
export function dtypesOf(k: Kernel): string {
  return k.params.map((p) => `${p.name}:${p.dtype}`).join(",");
}

/** Dims that vary at run time (the token count of MoE layers): bucketed to the next power
 *  of two. The others (model dims) are kept exact. */
export const BUCKETED_DIMS = ["M"];

export function nextPow2(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

export function shapeBucket(dims: Record<string, number>, bucketed: readonly string[] = BUCKETED_DIMS): Record<string, number> {
  return Object.fromEntries(Object.entries(dims).map(([n, x]) => [n, bucketed.includes(n) ? nextPow2(x) : x]));
}

export function shapeLabel(dims: Record<string, number>): string {
  return Object.entries(dims).map(([n, x]) => `${n}=${x}`).join(",");
}
