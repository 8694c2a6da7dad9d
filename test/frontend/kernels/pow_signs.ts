// Math.pow and ** as TypeScript computes them where the plain exp2(y * log2(x)) form would not:
// a negative base with an integer exponent (Math.pow(-2, 3) is -8), x ** 0 = 1 for every x (NaN
// and 0 included), a negative base with a fractional exponent (NaN).
// Run on the GPU: node bin/tilemoe.js check test/frontend/kernels/pow_signs.ts --backend cuda
import { T, type Tensor } from "tilemoe";
import { defineCheck } from "tilemoe/check";

export const pow_signs = T.kernel({}, function pow_signs(X: Tensor<"N", "f32">, Y: Tensor<"N", "f32">, R: Tensor<"N", "f32">) {
  const [N] = X.shape;
  T.launch([T.cdiv(N, 64)], { threads: 64 }, (bx) => {
    for (const i of T.parallel(64)) {
      const n = bx * 64 + i;
      if (n < N) {
        R[n] = Math.pow(X[n], Y[n]);
      }
    }
  });
});

const BASES = [-2, -0.5, -4, 0, 2, 0.25, NaN, -1];  // powers of two: exact through exp2(y * log2(x)), so only the signs are on trial
const EXPONENTS = [3, 2, 0, -1, -2, 0.5, 1, 5, -3];

export const pow_signs_check = defineCheck({
  kernel: "pow_signs",
  dims: { N: [1, 100] },
  derive: ({ N }, rand) => ({
    tensors: {
      X: Array.from({ length: N! }, () => BASES[Math.floor(rand() * BASES.length)]!),
      Y: Array.from({ length: N! }, () => EXPONENTS[Math.floor(rand() * EXPONENTS.length)]!),
    },
  }),
  reference: ({ X, Y }) => ({ R: X!.data.map((x, n) => Math.pow(x, Y!.data[n]!)) }),
});
