// T.cast of a float to each integer dtype: truncate toward zero, then saturate to the dtype's
// range; NaN gives 0 (what the GPU's conversion instructions do; C leaves out-of-range values
// undefined). Inputs: in range, just past each range, far past (+-3e9), infinities, NaN.
// Run on the GPU: node bin/tilemoe.js check test/frontend/kernels/float_to_int.ts --backend cuda
import { T, type Tensor } from "tilemoe";
import { defineCheck } from "tilemoe/check";

export const float_to_int = T.kernel({}, function float_to_int(X: Tensor<"N", "f32">, I32: Tensor<"N", "i32">, U32: Tensor<"N", "u32">,
                                                               I16: Tensor<"N", "i16">, U16: Tensor<"N", "u16">, I8: Tensor<"N", "i8">,
                                                               U8: Tensor<"N", "u8">) {
  const [N] = X.shape;
  T.launch([T.cdiv(N, 64)], { threads: 64 }, (bx) => {
    for (const i of T.parallel(64)) {
      const n = bx * 64 + i;
      if (n < N) {
        const x = X[n];
        I32[n] = T.cast(x, "i32");
        U32[n] = T.cast(x, "u32");
        I16[n] = T.cast(x, "i16");
        U16[n] = T.cast(x, "u16");
        I8[n] = T.cast(x, "i8");
        U8[n] = T.cast(x, "u8");
      }
    }
  });
});

const RANGES = { I32: [-(2 ** 31), 2 ** 31 - 1], U32: [0, 2 ** 32 - 1], I16: [-32768, 32767], U16: [0, 65535], I8: [-128, 127], U8: [0, 255] } as const;
const sat = (x: number, [lo, hi]: readonly [number, number]) => (Number.isNaN(x) ? 0 : Math.min(hi, Math.max(lo, Math.trunc(x))) + 0);
const SPECIAL = [NaN, Infinity, -Infinity, 3e9, -3e9, 2147483520, -2147483648, 4294967040, 70000.5, -70000.5, 40000, -40000,
  300.7, -300.7, 200, -200, 127.9, -128.9, 255.5, -0.7, 0.7, 0];

export const float_to_int_check = defineCheck({
  kernel: "float_to_int",
  dims: { N: [1, 100] },
  derive: ({ N }, rand) => ({
    tensors: { X: Array.from({ length: N! }, (_, n) => (n < SPECIAL.length && rand() < 0.7 ? SPECIAL[n]! : (rand() - 0.5) * 2 ** (rand() * 34))) },
  }),
  reference: ({ X }) => Object.fromEntries(Object.entries(RANGES).map(([name, r]) => [name, X!.data.map((x) => sat(Math.fround(x), r))])),
});
