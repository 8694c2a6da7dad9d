// persistentGrid (persistent-grid.ts): the 1-d grid becomes min(G, P) blocks looping over the
// tiles; IR text in -> out, and the interpreter against the tile-level kernel on the cp.async
// and the TMA pipelines (more tiles than blocks, ragged edges, a block with one tile fewer).
import { describe, expect, it } from "vitest";
import { maxRelErr, runBoth } from "../passes/harness.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { persistentGrid } from "../../src/passes/persistent-grid.ts";
import { cudaTarget } from "../../src/passes/pipeline.ts";

const gemm1d = (stages: number) => `
kernel gemm(A: global bf16[M, K], B: global bf16[N, K], C: global f32[M, N])
  dims M, N, K
  tune BM = [64], BN = [64, 32], BK = [32, 64], warps = [4, 8]
launch tile grid [cdiv(N, BN) * cdiv(M, BM)] threads warps * 32 blocks [pid] {
  let bx: i32 = pid % cdiv(N, BN)
  let by: i32 = pid / cdiv(N, BN)
  alloc As: shared bf16[BM, BK]
  alloc Bs: shared bf16[BN, BK]
  alloc acc: fragment f32[BM, BN]
  fill acc[0 : +BM, 0 : +BN] = 0.0
  for k in pipelined(0, cdiv(K, BK)) stages ${stages} {
    copy A[by * BM : +BM, k * BK : +BK] -> As[0 : +BM, 0 : +BK]
    copy B[bx * BN : +BN, k * BK : +BK] -> Bs[0 : +BN, 0 : +BK]
    gemm As[0 : +BM, 0 : +BK], Bs[0 : +BN, 0 : +BK] -> acc[0 : +BM, 0 : +BN] transB
  }
  copy acc[0 : +BM, 0 : +BN] -> C[by * BM : +BM, bx * BN : +BN]
}
`;

describe("persistentGrid", () => {
  it("IR text in -> out: min(G, P) blocks, a tile loop, pid as a let, a barrier per tile", () => {
    const k = parseKernel(`kernel t(X: global f32[N] out)
  dims N
launch thread grid [cdiv(N, 64)] threads 64 blocks [pid] thread tx {
  store X[pid * 64 + tx] = 1.0
}
`, "t.ir");
    const out = printKernel(persistentGrid(k, { config: {}, target: { ...cudaTarget("sm_90a"), persistentBlocks: 132 } }));
    expect(out).toBe(`kernel t(X: global f32[N] out)
  dims N
launch thread grid [min(cdiv(N, 64), 132)] threads 64 blocks [pid_blk] thread tx {
  for tile_it in serial(0, cdiv(cdiv(N, 64) - pid_blk, 132)) {
    let pid: i32 = pid_blk + tile_it * 132
    store X[pid * 64 + tx] = 1.0
    barrier
  }
}
`);
    expect(printKernel(persistentGrid(k, { config: {}, target: cudaTarget("sm_90a") }))).toBe(printKernel(k));
  });

  const cases: [string, ReturnType<typeof cudaTarget>, Record<string, number>, Record<string, number>][] = [
    ["cp.async wgmma pipeline, 3 blocks over 2x3 tiles", cudaTarget("sm_90a"), { BM: 64, BN: 32, BK: 32, warps: 4 }, { M: 100, N: 70, K: 72 }],
    ["TMA pipeline, 2 blocks over 2x2 tiles, two warpgroups", cudaTarget("sm_90a", "wgmma", "tma"), { BM: 64, BN: 64, BK: 64, warps: 8 }, { M: 128, N: 100, K: 136 }],
    ["TMA pipeline, 4 blocks over 3x2 tiles", cudaTarget("sm_90a", "wgmma", "tma"), { BM: 64, BN: 64, BK: 32, warps: 4 }, { M: 190, N: 65, K: 96 }],
    ["mma.sync (sm_80)", cudaTarget("sm_80"), { BM: 64, BN: 32, BK: 32, warps: 4 }, { M: 70, N: 90, K: 40 }],
  ];
  for (const [name, target, cfg, dims] of cases) it(`${name}: matches the tile-level kernel`, () => {
    const P = name.includes("4 blocks") ? 4 : name.includes("2 blocks") ? 2 : 3;
    const r = runBoth(gemm1d(3), cfg, { ...target, persistentBlocks: P }, { dims, seed: 4 });
    expect(printKernel(r.thread)).toContain(`grid [min(`);
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
  });
});
