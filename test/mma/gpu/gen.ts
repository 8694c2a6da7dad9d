// Writes a standalone GPU check of the mma lowering: one emitted .cu per case (the same
// harness kernels the interpreter tests run), a main.cu that fills exact inputs, launches
// each, and compares C with a float64 host product, and build.sh. Usage:
//   npx tsx test/mma/gpu/gen.ts <dir> && (cd <dir> && bash build.sh)   # on a GPU machine
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { emitCuda } from "../../../src/codegen/cuda/emit.ts";
import { type Case, buildKernel, caseName } from "../harness.ts";

const dir = process.argv[2] ?? ".cache/mma-gpu";
mkdirSync(dir, { recursive: true });

const cases: Case[] = [];
for (const transA of [false, true])
  for (const transB of [false, true])
    for (const swizzle of [false, true])
      for (const atype of ["bf16", "f16"] as const) {
        cases.push({ m: 128, n: 128, k: 32, warpsM: 2, warpsN: 4, transA, transB, swizzle, atype, repeat: 2 });
        cases.push({ m: 64, n: 24, k: 48, warpsM: 2, warpsN: 1, transA, transB, swizzle, atype, baseA: 64 * 48, baseB: 24 * 48 });
      }
cases.push({ m: 48, n: 40, k: 16, warpsM: 3, warpsN: 1, transA: false, transB: true, swizzle: true, atype: "bf16" });
cases.push({ m: 16, n: 120, k: 32, warpsM: 1, warpsN: 5, transA: true, transB: false, swizzle: true, atype: "f16" });
cases.push({ m: 128, n: 64, k: 64, warpsM: 4, warpsN: 2, transA: false, transB: true, swizzle: true, atype: "bf16" });
cases.push({ m: 32, n: 24, k: 32, warpsM: 1, warpsN: 1, transA: true, transB: true, swizzle: false, atype: "f16", baseA: 4, baseB: 3 });

const decls: string[] = [], table: string[] = [];
cases.forEach((c, i) => {
  const name = `mma_c${i}`;
  writeFileSync(join(dir, `${name}.cu`), emitCuda(buildKernel(c), { name }).cu);
  const t = c.atype === "bf16" ? "__nv_bfloat16" : "__half";
  decls.push(`extern "C" int ${name}(const ${t}*, const ${t}*, float*, cudaStream_t);`);
  table.push(`  { "${caseName(c)}", (Launch)${name}, ${c.atype === "bf16" ? 1 : 0}, ${c.m}, ${c.n}, ${c.k}, ${+c.transA}, ${+c.transB}, ${c.repeat ?? 1} },`);
});

writeFileSync(join(dir, "main.cu"), `#include <cstdio>
#include <vector>
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
${decls.join("\n")}
typedef int (*Launch)(const void*, const void*, float*, cudaStream_t);
struct Case { const char* name; Launch f; int bf16, m, n, k, ta, tb, rep; };
static const Case cases[] = {
${table.join("\n")}
};
// Multiples of 1/8 in [-2, 2]: exact in both 16-bit types, sums exact in f32.
static double val(unsigned i, unsigned seed) { unsigned s = i * 2654435761u + seed * 40503u; s ^= s >> 13; s *= 2246822519u; s ^= s >> 16; return (double)((int)(s % 33) - 16) / 8.0; }
int main() {
  int bad = 0;
  for (const Case& c : cases) {
    const int na = c.m * c.k, nb = c.k * c.n;
    std::vector<double> a(na), b(nb);
    std::vector<unsigned short> ha(na), hb(nb);
    for (int i = 0; i < na; i++) { a[i] = val(i, 1); if (c.bf16) { __nv_bfloat16 x = __float2bfloat16((float)a[i]); ha[i] = *(unsigned short*)&x; } else { __half x = __float2half((float)a[i]); ha[i] = *(unsigned short*)&x; } }
    for (int i = 0; i < nb; i++) { b[i] = val(i, 2); if (c.bf16) { __nv_bfloat16 x = __float2bfloat16((float)b[i]); hb[i] = *(unsigned short*)&x; } else { __half x = __float2half((float)b[i]); hb[i] = *(unsigned short*)&x; } }
    void *da, *db; float* dc;
    cudaMalloc(&da, na * 2); cudaMalloc(&db, nb * 2); cudaMalloc(&dc, c.m * c.n * 4);
    cudaMemcpy(da, ha.data(), na * 2, cudaMemcpyHostToDevice); cudaMemcpy(db, hb.data(), nb * 2, cudaMemcpyHostToDevice);
    cudaMemset(dc, 0xff, c.m * c.n * 4);
    int rc = c.f(da, db, dc, 0);
    cudaError_t e = cudaDeviceSynchronize();
    std::vector<float> hc(c.m * c.n);
    cudaMemcpy(hc.data(), dc, c.m * c.n * 4, cudaMemcpyDeviceToHost);
    int wrong = 0, first = -1;
    for (int i = 0; i < c.m; i++) for (int j = 0; j < c.n; j++) {
      double s = 0;
      for (int k = 0; k < c.k; k++) s += (c.ta ? a[k * c.m + i] : a[i * c.k + k]) * (c.tb ? b[j * c.k + k] : b[k * c.n + j]);
      s *= c.rep;
      if ((double)hc[i * c.n + j] != s) { if (first < 0) first = i * c.n + j; wrong++; }
    }
    printf("%s %s: rc %d, cuda %s, %d wrong", wrong || rc || e ? "FAIL" : "ok  ", c.name, rc, cudaGetErrorString(e), wrong);
    if (first >= 0) printf(" (first C[%d, %d] = %g)", first / c.n, first % c.n, hc[first]);
    printf("\\n");
    bad += wrong || rc || e;
    cudaFree(da); cudaFree(db); cudaFree(dc);
  }
  printf("%d of %d cases failed\\n", bad, (int)(sizeof(cases) / sizeof(cases[0])));
  return bad != 0;
}
`);

writeFileSync(join(dir, "build.sh"), `set -e
cd "$(dirname "$0")"
ls mma_c*.cu | xargs -P 16 -I{} nvcc -arch=sm_80 -O3 -c {} -o {}.o
nvcc -arch=sm_80 -O3 main.cu mma_c*.cu.o -o check
./check
`);
console.log(`${cases.length} cases written to ${dir}`);
