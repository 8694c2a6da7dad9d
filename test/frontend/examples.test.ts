// The dsl-examples compile to the tile IR we expect, and that IR survives the text form.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";

const dir = join(import.meta.dirname, "../../dsl-examples");
const byName = (file: string) => Object.fromEntries(parseKernels(join(dir, file)).map((k) => [k.name, k]));

const GEMM_BF16 = `kernel gemm_bf16(A: global bf16[M, K], B: global bf16[N, K], C: global bf16[M, N] out)
  dims M, K, N
  tune BM = [128, 64], BN = [128, 256, 64], BK = [32, 64], stages = [4, 3, 2], warps = [8, 4], GROUP_M = [8, 1]
  where (BM + BN) * BK * 2 * stages <= 160 * 1024
launch tile grid [cdiv(N, BN) * cdiv(M, BM)] threads warps * 32 blocks [pid] {
  let tilesM: i32 = cdiv(M, BM)
  let tilesN: i32 = cdiv(N, BN)
  let group: i32 = floordiv(pid, GROUP_M * tilesN)
  let rows: i32 = max(1, min(tilesM - group * GROUP_M, GROUP_M))
  let inGroup: i32 = pid % (GROUP_M * tilesN)
  let by: i32 = group * GROUP_M + inGroup % rows
  let bx: i32 = floordiv(inGroup, rows)
  alloc As: shared bf16[BM, BK]
  alloc Bs: shared bf16[BN, BK]
  alloc acc: fragment f32[BM, BN]
  fill acc[0 : +BM, 0 : +BN] = 0.0
  for k in pipelined(0, cdiv(K, BK)) stages stages {
    copy A[by * BM : +BM, k * BK : +BK] -> As[0 : +BM, 0 : +BK]
    copy B[bx * BN : +BN, k * BK : +BK] -> Bs[0 : +BN, 0 : +BK]
    gemm As[0 : +BM, 0 : +BK], Bs[0 : +BN, 0 : +BK] -> acc[0 : +BM, 0 : +BN] transB
  }
  copy acc[0 : +BM, 0 : +BN] -> C[by * BM : +BM, bx * BN : +BN]
}
`;

describe("dsl-examples -> tile IR", () => {
  it("gemm.ts: gemm_bf16 and gemm_f16, identical but for the input dtype", () => {
    const ks = byName("gemm.ts");
    expect(Object.keys(ks)).toEqual(["gemm_bf16", "gemm_f16"]);
    expect(printKernel(ks.gemm_bf16!)).toBe(GEMM_BF16);
    const f16 = GEMM_BF16.replaceAll("bf16", "f16");
    expect(printKernel(ks.gemm_f16!)).toBe(f16);
    expect(ks.gemm_bf16!.loc).toMatchObject({ line: 37, col: 26 });
  });

  it("gemm_f32.ts: serial main loop, f32 everywhere", () => {
    const k = byName("gemm_f32.ts").gemm_f32!;
    const text = printKernel(k);
    expect(text).toContain("kernel gemm_f32(A: global f32[M, K], B: global f32[N, K], C: global f32[M, N] out)");
    expect(text).toContain("tune BM = [32, 64], BN = [32, 64], BK = [16, 32], warps = [2, 4]");
    expect(text).toContain("for k in serial(0, cdiv(K, BK)) {");
    expect(text).toContain("alloc As: shared f32[BM, BK]");
  });

  it("gemm_relu_bias.ts: the epilogue is a parallel loop over the fragment", () => {
    const k = byName("gemm_relu_bias.ts").gemm_relu_bias!;
    expect(k.params.map((p) => [p.name, p.dtype, !!p.output])).toEqual([
      ["A", "bf16", false], ["B", "bf16", false], ["bias", "f32", false], ["C", "bf16", true],
    ]);
    expect(printKernel(k)).toContain(`  for i, j in parallel(0, BM; 0, BN) {
    let col: i32 = bx * BN + j
    if (col < N) {
      store acc[i, j] = max(acc[i, j] + bias[col], 0.0)
    }
  }
  copy acc[0 : +BM, 0 : +BN] -> C[by * BM : +BM, bx * BN : +BN]`);
  });

  it("every example kernel round-trips through the IR text form", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      for (const k of parseKernels(join(dir, f))) {
        const text = printKernel(k);
        expect(printKernel(parseKernel(text)), `${f}: ${k.name}`).toBe(text);
      }
    }
  });
});
