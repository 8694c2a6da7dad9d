// The gate/up projections of a MoE layer as one grouped GEMM over experts, driven by the
// routing of moe_align.ts: rows are the (token, slot) pair ids sorted by expert and padded
// per expert to the routing block BS (`sorted[b][r]`, pads hold ids >= T * top_k), and
// `block_expert[b]` is the expert of routing block b (-1 for unused blocks).
// Row (b, r) of Y is act(x W_gate[e]^T) * (x W_up[e]^T) for x = X[pair / top_k] and
// e = block_expert[b]; pad rows and unused blocks come out 0 (unused blocks skip the
// K loop, so experts with no tokens cost no weight traffic).
// W13 is [E, 2N, K] declared flat ([E * 2N, K]; the tile ops take same-rank regions):
// expert e's gate rows are e * 2N + [0, N), its up rows e * 2N + N + [0, N). Columns of a
// ragged last column tile read the neighbouring rows, and are never stored.
// A row tile never crosses a routing block: the launch covers each block with
// cdiv(BS, BM) tiles (BM = BS is the natural choice; any BM is correct).
// The activation is ordinary DSL code in the epilogue, a helper function passed to the shared
// body: SiLU in moe_gemm_up, exact GELU (erf) in moe_gemm_up_gelu. So is where the activation
// rows come from: gathered by token id from X (moe_gemm_up, moe_gemm_up_gelu), or already in
// routing order in Xp (moe_gemm_up_permuted, after moe_permute.ts), whose plain tiles TMA loads.
import { T, type Buf, type Tensor } from "tilemoe";
import { routedTile, storeGateUp, tokenRows } from "./lib/moe_tiles.ts";

type Shared2d = Buf<"bf16", readonly [number, number]>;
type Frag2d = Buf<"f32", readonly [number, number]>;

// The operand stages' budget: sm_90a's 227 KiB a block less room for the epilogue's staging
// tile, so that 128-row tiles can take 4 stages there (the up kernel's 128 x 128 tiles measured
// ~10% faster with 4 than with 3 on an H200, bench/RESULTS.md tenth session). A config over a
// target's own limit (sm_80: 163 KiB) is refused by the build with the sizes, skipped by the
// tuner, and stepped down to fewer stages by the layer (src/moe/host.ts).
const SMEM_BYTES = 196 * 1024;

/** SiLU(g) = g * sigmoid(g), the gate activation of Mixtral and Qwen3. */
function silu(g: number) { return g * T.sigmoid(g); }
/** Exact GELU(g), through erf. */
function gelu(g: number) { return 0.5 * g * (1.0 + T.erf(g * Math.SQRT1_2)); }

/** The whole grouped gate/up kernel; `act` is applied to the gate in the epilogue, and
 *  `accumulate` (gatheredRows or permutedRows) runs the K loop over the tile's activation rows A. */
function gateUp(A: Tensor<"R, K", "bf16">, W13: Tensor<"E2N, K", "bf16">, sorted: Tensor<"NB, BS", "i32">,
                block_expert: Tensor<"NB", "i32">, top_k: number, Y: Tensor<"NB * BS, N", "bf16">,
                BM: number, BN: number, BK: number, stages: number, warps: number, GROUP_M: number, act: (g: number) => number,
                accumulate: typeof gatheredRows) {
  const [NB, BS] = sorted.shape;
  const N = Y.shape[1];
  T.launch([T.cdiv(N, BN), NB * T.cdiv(BS, BM)], { threads: warps * 32 }, (gx, gy) => {
    // Its column tile, routing block, first row there and expert, in the grouped order (lib/moe_tiles.ts).
    const [bx, b, r0, e] = routedTile(gx, gy, T.cdiv(N, BN), block_expert, BS, BM, GROUP_M);
    const As = T.shared([BM, BK], "bf16");
    const Gs = T.shared([BN, BK], "bf16");
    const Us = T.shared([BN, BK], "bf16");
    const gate = T.fragment([BM, BN], "f32");
    const up = T.fragment([BM, BN], "f32");
    T.clear(gate);
    T.clear(up);
    accumulate(A, W13, sorted, top_k, As, Gs, Us, gate, up, e, b, r0, bx, N, BS, BM, BN, BK, stages);
    storeGateUp(gate, up, Y, b, r0, bx, N, BS, BM, BN, act);
  });
}

/** One K tile of expert e's gate and up weights (column tile bx), multiplied into both accumulators. */
function gateUpStep(W13: Tensor<"E2N, K", "bf16">, As: Shared2d, Gs: Shared2d, Us: Shared2d, gate: Frag2d, up: Frag2d,
                    e: number, bx: number, k: number, N: number, BN: number, BK: number) {
  T.copy(W13.tile([e * 2 * N + bx * BN, k * BK], [BN, BK]), Gs);
  T.copy(W13.tile([e * 2 * N + N + bx * BN, k * BK], [BN, BK]), Us);
  T.gemm(As, Gs, gate, { transB: true });
  T.gemm(As, Us, up, { transB: true });
}

/** The routing gather (moe_gemm_up): row i of the tile is the token row X[pair / top_k] of its
 *  pair, or -1 (reads 0) for pads and rows past the block. Resolved once per tile, so the main
 *  loop gathers with async row copies that pipeline like the weight tiles (TMA cannot gather). */
function gatheredRows(X: Tensor<"R, K", "bf16">, W13: Tensor<"E2N, K", "bf16">, sorted: Tensor<"NB, BS", "i32">, top_k: number,
                      As: Shared2d, Gs: Shared2d, Us: Shared2d, gate: Frag2d, up: Frag2d,
                      e: number, b: number, r0: number, bx: number, N: number, BS: number, BM: number, BN: number, BK: number, stages: number) {
  const [tokens, K] = X.shape;
  const xrow = T.shared([BM], "i32");
  tokenRows(xrow, sorted, b, r0, BM, tokens, top_k);
  if (e >= 0) {
    for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
      T.copy(X.rows(xrow, k * BK, BK), As);
      gateUpStep(W13, As, Gs, Us, gate, up, e, bx, k, N, BN, BK);
    }
  }
}

/** Rows already in routing order (moe_gemm_up_permuted, after moe_permute.ts): the tile is the
 *  plain [BM, BK] tile of Xp at the block's rows, which TMA loads on sm_90a. Rows past the
 *  block are the next block's, loaded and never stored; pad rows of Xp are zeros. */
function permutedRows(Xp: Tensor<"R, K", "bf16">, W13: Tensor<"E2N, K", "bf16">, _sorted: Tensor<"NB, BS", "i32">, _top_k: number,
                      As: Shared2d, Gs: Shared2d, Us: Shared2d, gate: Frag2d, up: Frag2d,
                      e: number, b: number, r0: number, bx: number, N: number, BS: number, BM: number, BN: number, BK: number, stages: number) {
  const K = Xp.shape[1];
  if (e >= 0) {
    for (const k of T.pipelined(T.cdiv(K, BK), stages)) {
      T.copy(Xp.tile([b * BS + r0, k * BK], [BM, BK]), As);
      gateUpStep(W13, As, Gs, Us, gate, up, e, bx, k, N, BN, BK);
    }
  }
}

export const moe_gemm_up = T.kernel(
  {
    tune: { BM: [64, 16, 128], BN: [64, 128], BK: [64, 32], stages: [3, 2, 4], warps: [8, 4], GROUP_M: [1, 8] },
    where: ({ BM, BN, BK, stages }) => (BM + 2 * BN) * BK * 2 * stages <= SMEM_BYTES,
  },
  function moe_gemm_up(X: Tensor<"T, K", "bf16">, W13: Tensor<"E2N, K", "bf16">, sorted: Tensor<"NB, BS", "i32">,
                       block_expert: Tensor<"NB", "i32">, top_k: T.i32, Y: Tensor<"NB * BS, N", "bf16">,
                       { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    gateUp(X, W13, sorted, block_expert, top_k, Y, BM, BN, BK, stages, warps, GROUP_M, silu, gatheredRows);
  },
);

// The same kernel with exact GELU(gate) * up: only the activation passed differs.
export const moe_gemm_up_gelu = T.kernel(
  {
    tune: { BM: [64, 16, 128], BN: [64, 128], BK: [64, 32], stages: [3, 2, 4], warps: [8, 4], GROUP_M: [1, 8] },
    where: ({ BM, BN, BK, stages }) => (BM + 2 * BN) * BK * 2 * stages <= SMEM_BYTES,
  },
  function moe_gemm_up_gelu(X: Tensor<"T, K", "bf16">, W13: Tensor<"E2N, K", "bf16">, sorted: Tensor<"NB, BS", "i32">,
                            block_expert: Tensor<"NB", "i32">, top_k: T.i32, Y: Tensor<"NB * BS, N", "bf16">,
                            { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    gateUp(X, W13, sorted, block_expert, top_k, Y, BM, BN, BK, stages, warps, GROUP_M, gelu, gatheredRows);
  },
);

// The gate/up GEMM over activation rows already in routing order (Xp, written by moe_permute.ts):
// the layer's prefill path, where on sm_90a all three operand tiles arrive by TMA with warp
// specialization (the gathered moe_gemm_up stays on cp.async). `sorted` gives the routing
// block (its shape); the pairs' rows are Xp's. BN 256 for prefill tiles; the two f32
// accumulators of BM x BN take at most 128 registers a thread (BM 128 x BN 256 would need 256
// at 8 warps: the whole register file of an SM).
export const moe_gemm_up_permuted = T.kernel(
  {
    tune: { BM: [64, 16, 128], BN: [64, 128, 256], BK: [64, 32], stages: [3, 2, 4], warps: [8, 4], GROUP_M: [1, 8] },
    where: ({ BM, BN, BK, stages, warps }) => (BM + 2 * BN) * BK * 2 * stages <= SMEM_BYTES && 2 * BM * BN <= warps * 32 * 128,
  },
  function moe_gemm_up_permuted(Xp: Tensor<"NB * BS, K", "bf16">, W13: Tensor<"E2N, K", "bf16">, sorted: Tensor<"NB, BS", "i32">,
                                block_expert: Tensor<"NB", "i32">, Y: Tensor<"NB * BS, N", "bf16">,
                                { BM, BN, BK, stages, warps, GROUP_M }: T.Config) {
    // top_k (1 here) is read only by the gathered rows.
    gateUp(Xp, W13, sorted, block_expert, 1, Y, BM, BN, BK, stages, warps, GROUP_M, silu, permutedRows);
  },
);

// ---- what the checker compares against (runs in `tilemoe check`; plain float64)
import { defineCheck, type TensorValue } from "tilemoe/check";
import { alignRef } from "./moe_align.ts";
import { routingBlocks } from "tilemoe/moe";

/** A routing: top_k distinct experts per token, biased by `mode` toward the edge cases
 *  (0: uniform; 1: every token on experts 0..top_k-1, so top_k = 1 puts all tokens on one
 *  expert; 2: even experts first, so with top_k <= E / 2 odd ones receive nothing), then
 *  grouped by moe_align's reference. Exported for moe_gemm_down.ts and the tests. */
export function routing(T_: number, E: number, topK: number, NB: number, BS: number, mode: number, rand: () => number) {
  const ids: number[] = [];
  for (let t = 0; t < T_; t++) {
    const pool = [...Array(E).keys()];
    const pref = mode === 2 ? pool.filter((e) => e % 2 === 0) : mode === 1 ? pool.slice(0, topK) : pool;
    const rest = pool.filter((e) => !pref.includes(e));
    const pick: number[] = [];
    for (const from of [pref, rest]) {
      const avail = [...from];
      while (pick.length < topK && avail.length) pick.push(avail.splice(Math.floor(rand() * avail.length), 1)[0]!);
    }
    ids.push(...pick);
  }
  return alignRef(T_ * topK, E, NB, BS, (p) => ids[p]!);
}

const siluF64 = (g: number) => g / (1 + Math.exp(-g));
const geluF64 = (g: number) => 0.5 * g * (1 + erf(g / Math.SQRT2));

/** erf to ~1e-15 (Abramowitz-Stegun 7.1.26 is too coarse for a float64 reference): series
 *  for small |x|, continued fraction for large. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= -a * a / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (a + f);
  return Math.sign(x) * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f));
}

/** Y of the gate/up kernels: row (b, r) of a used block is act(x W_gate[e]^T) * (x W_up[e]^T)
 *  for the activation row x of A that starts at element rowAt(b, r), or 0 where that is -1.
 *  Exported for moe_gemm_up_w4a16.ts (its permuted kernel). */
export function upRows(act: (g: number) => number, A: TensorValue, W13: TensorValue, blockExpert: TensorValue,
  dims: Record<string, number>, rowAt: (b: number, r: number) => number): Float64Array {
  const { K, N, NB, BS } = dims as Record<"K" | "N" | "NB" | "BS", number>;
  const Y = new Float64Array(NB * BS * N);
  for (let b = 0; b < NB; b++) {
    const e = blockExpert.data[b]!;
    if (e < 0) continue;
    for (let r = 0; r < BS; r++) {
      const x = rowAt(b, r);
      if (x < 0) continue;
      for (let n = 0; n < N; n++) {
        let g = 0, u = 0;
        const wg = (e * 2 * N + n) * K, wu = (e * 2 * N + N + n) * K;
        for (let k = 0; k < K; k++) { g += A.data[x + k]! * W13.data[wg + k]!; u += A.data[x + k]! * W13.data[wu + k]!; }
        Y[(b * BS + r) * N + n] = act(g) * u;
      }
    }
  }
  return Y;
}

/** The gathered kernels' Y: row (b, r) is its pair's token row of X; pads are 0. */
export function upRef(act: (g: number) => number, X: TensorValue, W13: TensorValue, sorted: TensorValue, blockExpert: TensorValue,
  topK: number, dims: Record<string, number>): Float64Array {
  const { T: T_, K, BS } = dims as Record<"T" | "K" | "BS", number>;
  return upRows(act, X, W13, blockExpert, dims, (b, r) => {
    const pair = sorted.data[b * BS + r]!;
    return pair >= T_ * topK ? -1 : Math.floor(pair / topK) * K;
  });
}

// NB is the capacity in blocks: every pair plus one partial block per expert. T = 1 is a
// single token; E > T * top_k leaves experts empty; TOPK = E routes every token everywhere.
// TOPK (the scalar top_k) and skew (the routing's mode) are not dims of the kernel; they
// are drawn with the dims so that a corner case can be pinned with --shape.
const dims = { T: [1, 12], K: [1, 80], N: [1, 72], E: [1, 6], TOPK: [1, 6], skew: [0, 2],
  E2N: ({ E, N }: Record<string, number>) => E! * 2 * N!, BS: { values: [1, 4, 16, 64] }, NB: [1, 90] } as const;
const dimsWhere = ({ T: t, E, TOPK, BS, NB }: Record<string, number>) =>
  TOPK! <= E! && NB! >= routingBlocks(t! * TOPK!, E!, BS!) && NB! * BS! <= 1024;
const upCheck = (kernel: string, act: (g: number) => number) => defineCheck({
  kernel,
  dims,
  dimsWhere,
  inputs: { X: { lo: -1, hi: 1 }, W13: { lo: -0.5, hi: 0.5 } },
  derive: ({ T: t, E, TOPK, NB, BS, skew }, rand) => {
    const r = routing(t!, E!, TOPK!, NB!, BS!, skew!, rand);
    return { tensors: { sorted: r.sorted, block_expert: r.block_expert }, scalars: { top_k: TOPK! } };
  },
  reference: ({ X, W13, sorted, block_expert }, { top_k }, d) => ({ Y: upRef(act, X!, W13!, sorted!, block_expert!, top_k!, d) }),
  reduction: ({ K }) => K!,
  // Y is a product of two K-long sums: the accumulation error of one is scaled by the other.
  magnitude: 8,
});
export const moe_gemm_up_check = upCheck("moe_gemm_up", siluF64);
export const moe_gemm_up_gelu_check = upCheck("moe_gemm_up_gelu", geluF64);

// The permuted kernel computes every row of a used block from Xp's row at the same place
// (pads included: moe_permute writes zeros there, here they are random like the rest).
// T and TOPK only shape the routing.
export const moe_gemm_up_permuted_check = defineCheck({
  kernel: "moe_gemm_up_permuted",
  dims,
  dimsWhere,
  inputs: { Xp: { lo: -1, hi: 1 }, W13: { lo: -0.5, hi: 0.5 } },
  derive: ({ T: t, E, TOPK, NB, BS, skew }, rand) => {
    const r = routing(t!, E!, TOPK!, NB!, BS!, skew!, rand);
    return { tensors: { sorted: r.sorted, block_expert: r.block_expert } };
  },
  reference: ({ Xp, W13, block_expert }, _s, d) =>
    ({ Y: upRows(siluF64, Xp!, W13!, block_expert!, d, (b, r) => (b * d.BS! + r) * d.K!) }),
  reduction: ({ K }) => K!,
  magnitude: 8,
});
