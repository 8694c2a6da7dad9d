// Math.round, Math.floor and Math.ceil of floats as TypeScript computes them: Math.round takes
// halves up (toward +Infinity: -2.5 -> -2, 2.5 -> 3), not away from zero as C's round() does, and
// a value just under a half (0.49999997f) rounds down. Inputs are halves, near-halves and plain
// values of both signs, and the specials.
// Run on the GPU: node bin/tilemoe.js check test/frontend/kernels/rounding.ts --backend cuda
import { T, type Tensor } from "tilemoe";
import { defineCheck } from "tilemoe/check";

export const rounding = T.kernel({}, function rounding(X: Tensor<"N", "f32">, R: Tensor<"N, 3", "f32">) {
  const [N] = X.shape;
  T.launch([T.cdiv(N, 64)], { threads: 64 }, (bx) => {
    for (const i of T.parallel(64)) {
      const n = bx * 64 + i;
      if (n < N) {
        const x = X[n];
        R[n][0] = Math.round(x);
        R[n][1] = Math.floor(x);
        R[n][2] = Math.ceil(x);
      }
    }
  });
});

const SPECIAL = [0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999997, -0.49999997, 0.50000006, -0.50000006, 8388607.5, -8388607.5,
  16777216, Infinity, -Infinity, NaN, 0, -0];

export const rounding_check = defineCheck({
  kernel: "rounding",
  dims: { N: [1, 200] },
  derive: ({ N }, rand) => ({
    tensors: {
      X: Array.from({ length: N! }, (_, n) => {
        if (n < SPECIAL.length && rand() < 0.5) return SPECIAL[n]!;
        const k = Math.floor(rand() * 81) - 40;
        return rand() < 0.5 ? k / 2 : k / 2 + (rand() - 0.5) * 2 ** -20;
      }),
    },
  }),
  reference: ({ X }) => {
    const R = new Float64Array(X!.data.length * 3);
    X!.data.forEach((x, n) => R.set([Math.round(x), Math.floor(x), Math.ceil(x)], n * 3));
    return { R };
  },
});
