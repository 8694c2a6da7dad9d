// Integer Math.floor(a / b) and T.cdiv(a, b) at every sign: each column of Q is one form the
// lowering may pick (src/passes/lower-int-division.ts): both signs unknown, a power-of-two
// divisor (a shift), another constant divisor, a scalar divisor, a dividend known non-negative
// over a scalar divisor, and a division inside `if (a >= 0)` (plain C division); floor in columns
// 0-5, ceiling in 6-11. The reference is TypeScript's Math.floor and Math.ceil.
// Run on the GPU: node bin/tilemoe.js check test/frontend/kernels/int_division.ts --backend cuda
import { T, type Tensor } from "tilemoe";
import { defineCheck } from "tilemoe/check";

export const int_division = T.kernel({}, function int_division(A: Tensor<"N", "i32">, B: Tensor<"N", "i32">, d: T.i32,
                                                               Q: Tensor<"N, 12", "i32">) {
  const [N] = A.shape;
  T.launch([T.cdiv(N, 64)], { threads: 64 }, (bx) => {
    for (const i of T.parallel(64)) {
      const n = bx * 64 + i;
      if (n < N) {
        const a = A[n], b = B[n];
        Q[n][0] = Math.floor(a / b);
        Q[n][1] = Math.floor(a / 8);
        Q[n][2] = Math.floor(a / 3);
        Q[n][3] = Math.floor(a / d);
        Q[n][4] = Math.floor(n / d);
        Q[n][6] = T.cdiv(a, b);
        Q[n][7] = T.cdiv(a, 8);
        Q[n][8] = T.cdiv(a, 3);
        Q[n][9] = T.cdiv(a, d);
        Q[n][10] = T.cdiv(n, d);
        if (a >= 0) {
          Q[n][5] = Math.floor(a / 3);
          Q[n][11] = T.cdiv(a, 3);
        } else {
          Q[n][5] = -1;
          Q[n][11] = -1;
        }
      }
    }
  });
});

/** Q as TypeScript computes it. */
export function intDivisionRef(A: ArrayLike<number>, B: ArrayLike<number>, d: number): Float64Array {
  const Q = new Float64Array(A.length * 12);
  for (let n = 0; n < A.length; n++) {
    const a = A[n]!;
    const row = (f: (x: number) => number) => [f(a / B[n]!), f(a / 8), f(a / 3), f(a / d), f(n / d), a >= 0 ? f(a / 3) : -1];
    Q.set([...row(Math.floor), ...row(Math.ceil)], n * 12);
  }
  return Q;
}

export const int_division_check = defineCheck({
  kernel: "int_division",
  dims: { N: [1, 300], D: [-9, 9] },
  inputs: { A: { lo: -100, hi: 100 } },
  // Divisors of both signs, never zero.
  derive: ({ N, D }, rand) => ({
    tensors: { B: Array.from({ length: N! }, () => { const x = Math.floor(rand() * 19) - 9; return x === 0 ? 7 : x; }) },
    scalars: { d: D === 0 ? -4 : D! },
  }),
  reference: ({ A, B }, { d }) => ({ Q: intDivisionRef(A!.data, B!.data, d!) }),
});
