// What test/cuda/kernels/warp_reduce.ir must produce, written as ir.ts defines warp_reduce
// but as a recursion over halves instead of the butterfly loop: the combination of lanes
// [l, l ^ (w/2)] of width w is op(R(l, w/2), R(l ^ (w/2), w/2)).
import { readFileSync } from "node:fs";
import type { Kernel } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import type { TensorValue } from "../../src/numeric/tensor.ts";

export const WARP_REDUCE_IR = readFileSync(new URL("../cuda/kernels/warp_reduce.ir", import.meta.url), "utf8");
export const warpReduceKernel = (): Kernel => parseKernel(WARP_REDUCE_IR, "test/cuda/kernels/warp_reduce.ir");

type Op = (a: number, b: number) => number;
function butterfly(x: number[], width: number, op: Op): number[] {
  const R = (l: number, w: number): number => (w === 1 ? x[l]! : op(R(l, w / 2), R(l ^ (w / 2), w / 2)));
  return x.map((_, l) => R(l, width));
}

/** Inputs whose f32 sums depend on the order (mixed magnitudes, cancellation). */
export function warpReduceInputs(N: number, seed: number): { X: TensorValue; I: TensorValue } {
  const X = randomTensor("f32", [N], seed, -1, 1);
  X.data.forEach((v, i) => { if (i % 5 === 0) X.data[i] = Math.fround(v * 3e7); if (i % 7 === 3) X.data[i] = -0; });
  const I = randomTensor("i32", [N], seed + 1, -2000000000, 2000000000);
  return { X, I };
}

/** S, M, J, U of the kernel for inputs X, I (threads past N contribute 0). */
export function warpReduceRef(X: TensorValue, I: TensorValue): Record<"S" | "M" | "J" | "U", number[]> {
  const N = X.data.length, T = Math.ceil(N / 64) * 64;
  const x = Array.from({ length: T }, (_, g) => (g < N ? X.data[g]! : 0));
  const k = Array.from({ length: T }, (_, g) => (g < N ? I.data[g]! : 0));
  const S: number[] = [], M: number[] = [], J: number[] = [], U: number[] = [];
  for (let w0 = 0; w0 < T; w0 += 32) {
    const xs = x.slice(w0, w0 + 32), ks = k.slice(w0, w0 + 32);
    S.push(...butterfly(xs, 32, (a, b) => Math.fround(a + b)));
    M.push(...[0, 8, 16, 24].flatMap((o) => butterfly(xs.slice(o, o + 8), 8, Math.max)));
    J.push(...[0, 4, 8, 12, 16, 20, 24, 28].flatMap((o) => butterfly(ks.slice(o, o + 4), 4, (a, b) => (a + b) | 0)));
    U.push(...[0, 16].flatMap((o) => butterfly(ks.slice(o, o + 16).map((v) => v >>> 0), 16, Math.min)));
  }
  return { S: S.slice(0, N), M: M.slice(0, N), J: J.slice(0, N), U: U.slice(0, N) };
}
