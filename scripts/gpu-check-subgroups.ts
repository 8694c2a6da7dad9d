// GPU part of scripts/gpu-check-subgroups.sh: warp_reduce on the GPU gives the interpreter's
// bits. test/cuda/kernels/warp_reduce.ir (f32 sum over 32 lanes, f32 max over 8, i32 sum over
// 4, u32 min over 16; inputs whose f32 sums depend on the order) is launched through the
// checker's CUDA backend for each arch and compared exactly with the reference butterfly.
// Prints one PASS/FAIL line per case and exits 1 on any failure.
import type { Kernel } from "../src/ir/ir.ts";
import { cudaBackend } from "../src/check/backend-cuda.ts";
import { zeros } from "../src/numeric/tensor.ts";
import { warpReduceInputs, warpReduceKernel, warpReduceRef } from "../test/interp/warp-reduce-ref.ts";

let failed = 0;
for (const arch of ["sm_90a", "sm_80"] as const) {
  const backend = await cudaBackend((k: Kernel) => k, arch);
  const k = warpReduceKernel();
  for (const N of [1, 31, 64, 100, 192, 1000, 4096, 65536]) {
    const { X, I } = warpReduceInputs(N, N + 17);
    const outs = await backend(k, { dims: { N }, config: {}, dataSeed: 0 }, {
      X, I, S: zeros("f32", [N]), M: zeros("f32", [N]), J: zeros("i32", [N]), U: zeros("u32", [N]),
    }, {});
    const want = warpReduceRef(X, I);
    const bad: string[] = [];
    for (const n of ["S", "M", "J", "U"] as const) {
      const got = outs[n]!.data;
      const i = want[n].findIndex((w, j) => !Object.is(w, got[j]));
      if (i >= 0) bad.push(`${n}[${i}] = ${got[i]}, interpreter ${want[n][i]}`);
    }
    if (bad.length) failed++;
    console.log(`${bad.length ? "FAIL" : "PASS"} warp_reduce bits ${arch} N=${N}${bad.length ? `: ${bad.join("; ")}` : ""}`);
  }
}
process.exit(failed ? 1 : 0);
