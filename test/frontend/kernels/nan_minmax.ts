// Math.max / Math.min and T.reduce max / min with NaN: TypeScript's Math.max(NaN, 1) is NaN (and
// so is the max of a row holding a NaN), where C's fmaxf and WGSL's max() return the other
// operand. Rows of 32 values, some rows with NaNs, some with infinities.
// Run on the GPU: node bin/tilemoe.js check test/frontend/kernels/nan_minmax.ts --backend cuda
import { T, type Tensor } from "tilemoe";
import { defineCheck } from "tilemoe/check";

export const nan_minmax = T.kernel({}, function nan_minmax(X: Tensor<"N, 32", "f32">, R: Tensor<"N, 36", "f32">) {
  const [N] = X.shape;
  T.launch([T.cdiv(N, 4)], { threads: 128 }, (bx) => {
    const s = T.shared([4, 32], "f32");
    const mx = T.shared([4], "f32");
    const mn = T.shared([4], "f32");
    for (const [i, j] of T.parallel(4, 32)) {
      let x = 0.0;
      if (bx * 4 + i < N) {
        x = X[bx * 4 + i][j];
      }
      s[i][j] = x;
    }
    T.reduce(s, mx, { op: "max", axis: 1 });
    T.reduce(s, mn, { op: "min", axis: 1 });
    for (const [i, j] of T.parallel(4, 32)) {
      const r = bx * 4 + i;
      if (r < N) {
        // Pairs of neighbours: a NaN meets a number on either side.
        R[r][j] = j % 2 === 0 ? Math.max(s[i][j], s[i][j + 1]) : Math.min(s[i][j], s[i][j - 1]);
        if (j === 0) {
          R[r][32] = mx[i];
          R[r][33] = mn[i];
          R[r][34] = Math.max(s[i][0], 0.0);
          R[r][35] = T.max(T.min(s[i][1], 1.0), -1.0);
        }
      }
    }
  });
});

export const nan_minmax_check = defineCheck({
  kernel: "nan_minmax",
  dims: { N: [1, 40] },
  derive: ({ N }, rand) => ({
    tensors: {
      X: Array.from({ length: N! * 32 }, () => {
        const u = rand();
        return u < 0.08 ? NaN : u < 0.12 ? Infinity : u < 0.16 ? -Infinity : rand() * 4 - 2;
      }),
    },
  }),
  reference: ({ X }, _s, { N }) => {
    const R = new Float64Array(N! * 36);
    for (let r = 0; r < N!; r++) {
      const x = X!.data.subarray(r * 32, r * 32 + 32);
      for (let j = 0; j < 32; j++) R[r * 36 + j] = j % 2 === 0 ? Math.max(x[j]!, x[j + 1]!) : Math.min(x[j]!, x[j - 1]!);
      R.set([Math.max(...x), Math.min(...x), Math.max(x[0]!, 0), Math.max(Math.min(x[1]!, 1), -1)], r * 36 + 32);
    }
    return { R };
  },
});
