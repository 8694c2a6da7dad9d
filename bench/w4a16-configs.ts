// The w4a16 bench's register-A wgmma rows (src/passes/dequant-wgmma.ts): configs of gemm_w4a16
// that take the path on sm_90a, by M. BK 64 (the wgmma swizzle needs activation rows of at most
// 128 bytes); BN a multiple of 64 per warpgroup; BM is wgmma's n.
//  - decode (M <= 16): BM 16 with `dequant: "wgmma"` (below 64 rows auto keeps the mma.sync
//    fusion; these rows measure whether the register-A wgmma should replace it), split-K so
//    that N / BN * splitK covers the SMs about twice.
//  - M = 64: one 64-wide n, two m-tiles per warpgroup or two warpgroups.
//  - M >= 256: 128- and 256-wide tiles, 8 warps, 3-4 stages, TMA (and one cp.async row);
//    64 weight rows on 4 warps, and at M <= 256 split-K, for grids that fill the SMs.
import type { GemmConfig } from "./plan.ts";

export const rsConfigsFor = (M: number): GemmConfig[] =>
  M <= 16 ? [
    ...[2, 4, 8].map((splitK) => ({ BM: 16, BN: 64, BK: 64, stages: 4, warps: 4, splitK, dequant: "wgmma" as const })),
    ...[1, 2, 4].map((splitK) => ({ BM: 16, BN: 128, BK: 64, stages: 4, warps: 4, splitK, dequant: "wgmma" as const })),
  ]
  : M <= 64 ? [
    ...[1, 2].map((splitK) => ({ BM: 64, BN: 128, BK: 64, stages: 4, warps: 4, splitK })),
    { BM: 64, BN: 128, BK: 64, stages: 4, warps: 8, splitK: 1 },
  ]
  : [
    { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, splitK: 1 },
    { BM: 128, BN: 128, BK: 64, stages: 4, warps: 4, splitK: 1 },
    { BM: 128, BN: 256, BK: 64, stages: 4, warps: 8, splitK: 1 },
    { BM: 256, BN: 128, BK: 64, stages: 3, warps: 8, splitK: 1 },
    { BM: 256, BN: 128, BK: 64, stages: 4, warps: 8, splitK: 1 },
    // One consumer warpgroup on 64 weight rows: twice the blocks of the 128-row tiles, so that
    // N = 14336 at M = 1024 fills 6.8 waves of 132 SMs instead of 3.4 (the 256x128 tile's last
    // wave is 39% full: measured 1.36x of the compute floor there, 1.19x at M = 4096).
    { BM: 256, BN: 64, BK: 64, stages: 4, warps: 4, splitK: 1 },
    { BM: 256, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 1 },
    // M <= 256: a 256-row tile leaves N / BN blocks (N = 4096: 32 of 128 rows, 64 of 64: a
    // quarter or half of the SMs; measured 0.60x of bf16 cuBLAS), so split K too.
    ...(M <= 256 ? [2, 4].flatMap((splitK) => [{ BM: 256, BN: 64, BK: 64, stages: 4, warps: 4, splitK }, { BM: 128, BN: 64, BK: 64, stages: 4, warps: 4, splitK }]) : []),
    // The same tile through the cp.async pipeline (the rows above are TMA builds, the default;
    // labelled "wgmma" without "+tma").
    { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, splitK: 1, cores: "wgmma", copy: "cp.async" },
  ];

export const W4A16_RS_CONFIGS: GemmConfig[] = [1, 64, 256].flatMap(rsConfigsFor);
