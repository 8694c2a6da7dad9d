// The whole MoE layer as data: which DSL kernels run in which order (router -> gating ->
// routing -> gate/up -> down), with which configs, and how each kernel's params and dims
// bind to the layer's buffers and quantities. One table serves the generated C launcher
// (host.ts) and the interpreter run (interp.ts), so both call the kernels the same way.
import { userError } from "../util/user-error.ts";
import { byteSize, type DType, type Kernel, type TunableValue } from "../ir/ir.ts";
import { parseKernels } from "../frontend/index.ts";
import { type QOrder, wordsPerRow } from "../quant/format.ts";
import { routingBlocks } from "./routing.ts";

/** The packing order of the w4a16 layer's expert weights (docs/QUANT.md, docs/LAYER.md). The
 *  down projection's w2 in the mma order: its kernel ran faster at every T measured, the decode
 *  tiles with 64 registers instead of 78 (H200, bench/RESULTS.md, thirteenth session: Mixtral
 *  T = 1 down 42.0 -> 36.4 us, T = 64 187 -> 173). The gate/up w13 stays interleaved: on the mma
 *  order (80 registers instead of 125, 6 blocks an SM) its decode kernel gained 2-4% at Mixtral
 *  T = 64 and Qwen3 T = 1-1024 but lost 10% at Qwen3 T = 16, where a third of its grid rows are
 *  routing blocks no expert fills (81 of 128 experts used), and the prefill's register-A tiles
 *  lost 1%. (At Mixtral T = 1 it lost a third before routingBlocks was tightened.) */
export const W4_ORDERS = { w13: "interleaved", w2: "mma" } as const satisfies Record<"w13" | "w2", QOrder>;

export type Activation = "silu" | "gelu";
export type Weights = "bf16" | "w4a16";

export interface LayerSpec {
  /** C identifier part: the layer's functions are moe_layer_<name>... */
  name: string;
  experts: number;      // E
  hidden: number;       // H
  intermediate: number; // N (per expert, per projection)
  topK: number;         // K
  /** The choice table: which routing block and grouped-GEMM configs serve which token
   *  count T (the launcher picks at run time, chooseConfig). At least one entry; the last
   *  one serves every T above the others. */
  configs: LayerConfig[];
  activation: Activation;
  weights: Weights;
  /** Divide the top-k softmax weights by their sum (Mixtral, Qwen3 do). */
  renormalize: boolean;
  /** Set where modelSpec forced every entry of the table to one combine (an A/B twin of the
   *  table; the entries' own `combine` says so too, this only labels the layer). */
  forcedCombine?: Combine;
  /** Set where the layer keeps one entry of a model's choice table for every T (modelSpec's `only`). */
  entry?: string;
  /** Calls with T * top_k <= this many pairs gate and route in one kernel (stage gate_align),
   *  the others in two (gate, align); at most GATE_ALIGN_PAIRS; default GATE_ALIGN_DEFAULT_PAIRS; 0: always two
   *  (the layer as it was, to compare with). */
  gateAlignPairs?: number;
}

export type Combine = "atomic" | "reduce" | "reduce_bf16";
export const COMBINES: readonly Combine[] = ["atomic", "reduce", "reduce_bf16"];
/** Each combine's value in the launcher's moe_layer_<name>_reduces table (host.ts, quantitiesC):
 *  0 atomics, 1 f32 pair rows, 2 bf16 pair rows. */
export const REDUCES_CODE: Record<Combine, number> = { atomic: 0, reduce: 1, reduce_bf16: 2 };

/** One entry of a layer's choice table. */
export interface LayerConfig {
  /** C identifier part: a stage kernel that differs between entries is moe_layer_<layer>_<stage>_<name>. */
  name: string;
  /** Serves the T <= maxTokens that no earlier entry serves; null: every larger T (the last entry). */
  maxTokens: number | null;
  /** Routing block (BS): moe_align pads each expert's pairs to it; the grouped GEMMs' row blocks. */
  blockSize: number;
  /** Copy the activation rows into routing order first (stage `permute`, workspace `xp`) and
   *  run the gate/up GEMM on them as plain tiles (moe_gemm_up_permuted): on sm_90a those take
   *  TMA and warp specialization, which the row gather by token id cannot (bf16:
   *  moe_gemm_up_permuted; w4a16: moe_gemm_up_permuted_w4a16). SiLU only. */
  permute?: boolean;
  /** The top-k combine of this entry: "atomic" (default) adds each pair's row, times its
   *  routing weight, into `out` with f32 atomics in the down GEMM (its launcher clears `out`);
   *  "reduce" has the down GEMM store one f32 row per (token, slot) pair into the workspace
   *  `pairs` and a separate weighted reduction write `out` (dsl-examples/moe_gemm_down_reduce.ts):
   *  one launch more and a [T * top_k, H] f32 round trip, no atomics; splitK 1 only.
   *  "reduce_bf16": as "reduce" with the pair rows rounded to bf16 once (workspace `pairs_bf16`,
   *  half the round trip's bytes; the combine still sums in f32). */
  combine?: Combine;
  /** Configs of the router (dsl-examples/moe_router.ts), gate/up and down kernels (gating
   *  and routing have one config each). up and down may also say `persistent: P`: that stage
   *  is built with P persistent blocks (a build option, not a tunable; stage-build.ts), and
   *  with it `pingpong: true`: ping-pong consumers (two warpgroups alternate tiles; warps 4). */
  router: Record<string, TunableValue>;
  up: Record<string, TunableValue>;
  down: Record<string, TunableValue>;
  /** Why this entry: what bounds the layer at these T and how the configs answer it. */
  why: string;
}

export const MODELS: Record<string, Omit<LayerSpec, "name" | "weights" | "configs">> = {
  mixtral: { experts: 8, hidden: 4096, intermediate: 14336, topK: 2, activation: "silu", renormalize: true },
  qwen3: { experts: 128, hidden: 2048, intermediate: 768, topK: 8, activation: "silu", renormalize: true },
};

const DECODE_WHY = "Few tokens: the layer reads each touched expert's weights once and computes little, so weight bytes " +
  "bound it. Routing block 16: at these T an expert's pairs mostly fit one block, so its weights are read once, and " +
  "a 64-row block would be mostly padding. BM 16 tiles: on sm_90a they take mma.sync, and w4a16 weights are " +
  "dequantized in registers from the packed words (from BM 64 on, the layer uses wgmma with the dequantized tile in " +
  "shared memory). 4 warps side by side along N (one warp along M, which the fused dequant needs). GROUP_M 8: an " +
  "expert split over two blocks reads its weight tiles once for both (see the prefill entry). The down " +
  "projection splits its K (the intermediate N) so the few active experts still fill the GPU: without it its grid " +
  "is H / 64 column tiles per used block, 1-2 blocks per SM.";
const PREFILL_WHY = "Many tokens: every expert has many pairs and the tensor cores bound the layer. 8 warps for " +
  "the up projection's two accumulators; the row " +
  "blocks fill the GPU without splitting K. GROUP_M 8: an expert's row blocks (Mixtral at T = 4096: 8 of 128 rows) " +
  "sweep the column tiles 8 together, so each weight tile comes from HBM about once per 8 blocks instead of once " +
  "per block (the grid's own order runs one row block across all columns at a time, and an expert's weights " +
  "do not fit in L2).";

/** The router's configs (docs/LAYER.md). The kernel picks its K slices at run time, up to
 *  splitK, so that the grid has about 128 blocks; these set the tile and the most slices.
 *  Decode: BM 16 (the few tokens); at T = 1 one K tile of 64 a block: Mixtral's H = 4096 in
 *  64 slices, Qwen3's 2048 in 2 x 32 (before, one block walked all of H: 64 / 32 dependent K
 *  steps, ~80 us). 3 stages (TMA, 2 tiles ahead): where the row tiles fill the grid and leave
 *  one slice (Qwen3 from T = 1024, in the w4a16 mid entry), a block
 *  walks all of H again, and 2 cp.async stages would wait for each tile in turn.
 *  Prefill: BM 64 (wgmma's m64), slices only while the row blocks leave SMs idle. */
const DECODE_ROUTER = { BM: 16, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 64 };
const PREFILL_ROUTER = { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 16 };
const PERMUTE_WHY = "bf16: the activation rows are first copied into routing order (moe_permute, workspace xp), so " +
  "the gate/up GEMM (2/3 of the FLOPs) reads them as plain tiles: on sm_90a all its operand tiles then arrive by TMA " +
  "with a warp-specialized producer, where the row gather by token id kept it on the cp.async pipeline (on the " +
  "plain GEMM: ~60% of cuBLAS on cp.async, ~90% with TMA and warp specialization). The copy reads and writes " +
  "T * top_k rows once. Routing block and BM 128, BN 128 (up: two accumulators) and 256 (down), as the GEMM's best tiles.";

const REDUCE_WHY = "Combine: the separate reduction (combine reduce: the down GEMM stores one f32 row per pair, " +
  "moe_combine sums a token's top_k rows). Measured on an H200 with the whole layer forced to each combine: " +
  "13-15% faster for Qwen3 at M >= 1024, where 67 M f32 atomics at M = 4096 make the down projection latency-bound, " +
  "and 4.91 against 5.29 ms for Mixtral at M = 4096.";
const ATOMIC_DECODE_WHY = "Combine: f32 atomics into `out` (which also take the split-K slices): at decode sizes the " +
  "separate reduction measured no faster, and it costs a launch and a [T * top_k, H] f32 round trip.";
const REDUCE_DECODE_WHY = "Combine: the separate reduction (the down GEMM stores one f32 row per pair, K unsplit). " +
  "Qwen3 bf16 (top 8: eight atomic adds per output value) measured on an H200 (bench/RESULTS.md, fifth session): call 5 " +
  "0.229 against 0.238 ms at T = 16, 0.330 against 0.343 at 64, 0.370 against 0.399 at 256 with the atomics and split-K 2, " +
  "a tie at 1; call 8 (this table) a tie up to 64 and 0.373 against 0.380 at 256: never slower. Mixtral (top 2) keeps " +
  "the atomics (0.228 against 0.243 ms at T = 1).";
const W4_PREFILL_WHY = "Many tokens: each expert's rows fill 128-row blocks, and the dequantized weights go to the " +
  "tensor cores as wgmma's register operand (dequantized once a block for all 128 token rows), so the dequant work per " +
  "FLOP is an eighth of the 16-row decode tiles'. Routing block 128, BN 128 on two consumer warpgroups, 4 stages.";
const PERMUTE_W4_WHY = "The activation rows are first copied into routing order (moe_permute), so the gate/up GEMM " +
  "(moe_gemm_up_permuted_w4a16) reads plain tiles: on sm_90a the activations and the packed weights then arrive by TMA " +
  "with a warp-specialized producer (measured on an H200: 14% faster for Mixtral at T = 1024 and 4096, 6% for Qwen3 at 4096).";
const W4_MID_WHY = "Tens of pairs per expert: the decode entry's fused register dequant on 32-row blocks, so an expert " +
  "with 17-32 pairs reads and dequantizes its weights once instead of twice (routing block 32).";
const W4_ATOMIC_WHY = "Combine: f32 atomics into `out`, which also take the split-K slices of the down projection.";
const W4_REDUCE_WHY = "Combine: the separate reduction (moe_gemm_down_pairs_w4a16 stores one f32 row per pair, moe_combine " +
  "sums a token's top_k rows). Measured on an H200 (bench/RESULTS.md, tenth session, call 8) against the atomics: Qwen3 " +
  "1.439 against 1.949 ms at T = 4096 (prefill), 0.543 against 0.668 at 1024 (mid), 0.140 / 0.250 against 0.151 / 0.280 at " +
  "16 / 256 and a tie at 1 (decode, unsplit); Mixtral's prefill 2.626 / 8.746 against 2.670 / 8.934 at 1024 / 4096.";

/** The prefill entry: every T above the decode entry's. */
function prefill(weights: Weights): LayerConfig {
  return weights === "w4a16"
    // up BK 64 x 3 stages: BK 128 x 2 stages at 8 warps needs 255 registers and spills
    // (560 spill ops on sm_90a); this one fits in 197 with none.
    // w4a16: 128-row blocks on the register-A wgmma (each dequantized weight feeds 128 token
    // rows). Measured on an H200 (bench/RESULTS.md, sixth session, call 9) against the 64-row
    // entry it replaced and the 16/32-row fused decode tiles: Mixtral 1.060 ms at T = 256 (BM 16:
    // 1.610, BM 32: 1.249), 2.50 at 1024 (5.56 / 3.86), 8.34 at 4096 (22.7 / 15.7); Qwen3 1.85 at
    // 4096 (2.97 / 2.34). 128 x 64 tiles on 4 warps and 64 x 128 on 8 lost at every T.
    // 4 stages (99 / 82 KiB a block): 1-2% faster than 3 on an H200 (tenth session: Mixtral 2.668 /
    // 4.839 / 8.979 ms at T = 1024 / 2048 / 4096 against 2.721 / 4.906 / 9.086, Qwen3 1.940 against
    // 1.957 at 4096).
    // The activation rows permuted first (moe_gemm_up_permuted_w4a16): on sm_90a its plain
    // activation tiles and the packed weights arrive by TMA with a warp-specialized producer.
    // Measured on an H200 (bench/RESULTS.md, twelfth session, candidates w4a16-permute.json,
    // outputs as the gathered entry's): Mixtral 2.226 / 7.424 ms at T = 1024 / 4096 against
    // 2.591 / 8.675, Qwen3 1.334 against 1.425 at 4096.
    ? { name: "prefill", maxTokens: null, blockSize: 128, permute: true, combine: "reduce", router: PREFILL_ROUTER,
        up: { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, GROUP_M: 8 },
        down: { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, splitK: 1, GROUP_M: 8 }, why: `${W4_PREFILL_WHY} ${PERMUTE_W4_WHY} ${W4_REDUCE_WHY}` }
    // bf16: the rows permuted into routing order first, so all three operand tiles of the up
    // GEMM arrive by TMA with warp specialization (the down GEMM's already did); 128-row tiles
    // as the bf16 GEMM's best sm_90a configs (BM 128 x BN 256 x BK 64, 8 warps; the up kernel's
    // two accumulators make BN 128 the same work and registers). 4 stages (sm_90a's shared
    // memory holds them; a layer built for sm_80 steps down to 3, stage-build.ts lowerStage):
    // measured on an H200 (bench/RESULTS.md, tenth session) against 3, Mixtral 1.471 / 4.543 ms
    // at T = 1024 / 4096 against 1.603 / 4.844, Qwen3 1.128 against 1.163 at 4096, the output
    // bit for bit the same; the up kernel alone 7-10% faster, the down kernel ~1%.
    : { name: "prefill", maxTokens: null, blockSize: 128, permute: true, combine: "reduce", router: PREFILL_ROUTER, up: { BM: 128, BN: 128, BK: 64, stages: 4, warps: 8, GROUP_M: 8 },
        down: { BM: 128, BN: 256, BK: 64, stages: 4, warps: 8, splitK: 1, GROUP_M: 8 }, why: `${PREFILL_WHY} ${PERMUTE_WHY} ${REDUCE_WHY}` };
}

/** Between decode and the 128-row prefill (bf16, many small experts): 64-row tiles on 4 warps,
 *  small enough that two warp-specialized blocks share an SM (`per_sm 2`), so one block's pipeline
 *  fill and epilogue overlap the other's main loop, and half the routing padding of the 128-row
 *  blocks. Measured on an H200 (bench/RESULTS.md, fifth session, call 3): Qwen3 bf16 0.423 against
 *  0.538 ms at T = 512, 0.519 against 0.577 at 1024, 0.745 against 0.754 at 2048; at 4096 the
 *  128-row entry wins (1.158 against 1.205). Mixtral's two 14336-wide GEMMs lose on these tiles at
 *  every T (64-row wgmma tiles move twice the operand bytes per FLOP). */
function mid(maxTokens: number): LayerConfig {
  return { name: "mid", maxTokens, blockSize: 64, permute: true, combine: "reduce", router: PREFILL_ROUTER,
    up: { BM: 64, BN: 64, BK: 64, stages: 4, warps: 4, GROUP_M: 8 }, down: { BM: 64, BN: 128, BK: 64, stages: 4, warps: 4, splitK: 1, GROUP_M: 8 },
    why: `Many tokens on many small experts (Qwen3 at T = 257 .. 1280: 16-80 pairs per expert): 64-row tiles, two blocks an SM. ${PERMUTE_WHY} ${REDUCE_WHY}` };
}

/** The decode entry for T <= maxTokens, the down projection's K in splitK slices. */
function decode(weights: Weights, maxTokens: number, splitK: number, why: string, combine: Combine = "atomic", rows = 16): LayerConfig {
  // w4a16: BK 128 (a K tile is one scale group, 64 bytes of packed words a row); bf16: BK 64, the kernels' largest.
  const bk = weights === "w4a16" ? 128 : 64;
  // w4a16: 2 stages, measured faster than 3 and 4 at every T of both models (H200, bench/RESULTS.md:
  // Mixtral T = 1 0.136 against 0.159 ms, Qwen3 T = 64 0.216 against 0.250): half the shared
  // memory of 4, so more blocks share an SM; the standalone decode kernel's tuned winners are 2-stage too.
  const stages = weights === "w4a16" ? 2 : 4;
  const combineWhy = weights === "w4a16" ? (combine === "reduce" ? W4_REDUCE_WHY : W4_ATOMIC_WHY) : combine === "reduce" ? REDUCE_DECODE_WHY : ATOMIC_DECODE_WHY;
  return { name: rows === 16 ? "decode" : "mid", maxTokens, blockSize: rows, combine, router: DECODE_ROUTER, up: { BM: rows, BN: 64, BK: bk, stages, warps: 4, GROUP_M: 8 },
    down: { BM: rows, BN: 64, BK: bk, stages, warps: 4, splitK, GROUP_M: 8 }, why: `${rows === 16 ? DECODE_WHY : W4_MID_WHY} ${why} ${combineWhy}` };
}

/**
 * The choice table of each model and weight kind, in T order (docs/LAYER.md has it as a
 * table). Thresholds in tokens for the model's E and top_k: the decode entry holds while the
 * pairs per expert (T * top_k / E on average) stay well under its block of 16, since an
 * expert with more pairs than a block is read once per block.
 * Not tuned on a GPU yet: scripts/gpu-check-layer2.sh times each entry alone at every M.
 */
export const CHOICES: Record<string, Record<Weights, LayerConfig[]>> = {
  // The thresholds are measured: the layer bench times each entry alone at every M
  // (`bench/run.ts --layer --layer-entries`; H200, commit 4168697, bench/RESULTS.md), and each
  // entry below serves the token counts where it was the faster one.
  mixtral: {
    // Up to T = 16: 4 pairs per expert on average. Measured: decode 0.338 / 0.899 ms at T = 1 / 16
    // against prefill's 0.394 / 1.075; at T = 64 they tie (1.109 / 1.097), above it prefill wins.
    bf16: [decode("bf16", 16, 8, "Mixtral: N = 14336 is 224 K tiles of 64; split-K 8 leaves 28 a slice."), prefill("bf16")],
    // Measured on an H200 (bench/RESULTS.md, sixth session, call 9; each entry alone): BM 16 up to
    // T = 16 (4 pairs per expert), BM 32 at 64 (0.509 against 0.530 ms; 16 pairs an expert on
    // average, so half the experts span two 16-row blocks), the 128-row register-A entry from 256
    // (1.06 against 1.25 for BM 32). With the permuted prefill entry (twelfth session, calls
    // 10-11, each entry alone): mid 0.673 / 0.822 against prefill 0.928 / 0.932 ms at T = 128 /
    // 160, a tie at 176 and 192 (0.933 / 0.935 against 0.935 / 0.937), prefill 0.943 against 1.019
    // at 224: mid up to 160.
    w4a16: [decode("w4a16", 16, 8, "Mixtral: N = 14336 is 112 K tiles of 128; split-K 8 leaves 14 a slice."),
      decode("w4a16", 160, 8, "Mixtral: split-K 8 as the decode entry.", "atomic", 32), prefill("w4a16")],
  },
  qwen3: {
    // 128 experts, top 8: T = 64 is 4 pairs per expert on average. Measured: decode wins up to
    // T = 256 (0.913 vs 0.950 ms), prefill from 1024 (1.633 vs 2.397).
    // From T = 257 the mid entry (64-row tiles) up to 1280, then the 128-row prefill: measured
    // (tenth session, call 10, each entry alone) mid 0.388 against prefill 0.458 ms at T = 512,
    // prefill 0.536 / 0.637 against mid 0.583 / 0.676 at 1536 / 2048; at 1024 mid won (call 6:
    // 0.477; prefill 0.559 in call 5); 1280 is the midpoint.
    bf16: [decode("bf16", 256, 1, "Qwen3: N = 768 is 12 K tiles of 64, unsplit (the reduction's down kernel stores rows).", "reduce"), mid(1280), prefill("bf16")],
    // Measured on an H200 (bench/RESULTS.md, sixth session, call 9; each entry alone): BM 16 up to
    // T = 256 (0.289 ms against BM 32's 0.304: 16 pairs an expert), BM 32 at 1024 (0.706 against
    // 0.850; the 128-row entry 0.726), the 128-row register-A entry at 4096 (1.85 against 2.34).
    // With the reduce combine (tenth session, calls 9-10, each entry alone): decode 0.196 against
    // mid 0.236 ms at T = 128, mid 0.241 / 0.341 against decode 0.249 / 0.417 at 256 / 512, mid
    // 0.554 against prefill 0.595 at 1024, prefill 0.628 / 0.884 against mid 0.757 / 0.970 at
    // 1536 / 2048: the thresholds 192 and 1280 were the midpoints. With the permuted prefill entry
    // (twelfth session, calls 10-11, each entry alone): mid 0.457 / 0.480 against prefill 0.541 /
    // 0.551 ms at T = 768 / 896, a tie at 1024 (0.554 / 0.555), prefill 0.569 / 0.574 / 0.592
    // against mid 0.627 / 0.655 / 0.757 at 1152 / 1280 / 1536: mid up to 1024.
    w4a16: [decode("w4a16", 192, 1, "Qwen3: N = 768 is 6 K tiles of 128, unsplit (the reduction's down kernel stores rows; split-K 2 with the atomics was slower).", "reduce"),
      decode("w4a16", 1024, 1, "Qwen3: unsplit, as the decode entry.", "reduce", 32), prefill("w4a16")],
  },
};

/**
 * The layer of a known model with its choice table. `combine` forces every entry to that
 * combine (A/B measurements: layer <model>_<weights>_<combine>; the reduce combine's down kernel
 * cannot split K, so forced reduce entries get splitK 1 and keep their other configs); without
 * it each entry has its own. `only` keeps one entry of the table for every T (to check or time
 * an entry alone); the layer is then <model>_<weights>[_<combine>]_<only>.
 */
export function modelSpec(model: string, weights: Weights = "bf16", combine?: Combine, only?: string): LayerSpec {
  const m = MODELS[model];
  if (!m) throw userError(`unknown model '${model}' (known: ${Object.keys(MODELS).join(", ")}); pass one of those`);
  let configs = CHOICES[model]![weights];
  if (only !== undefined) {
    const c = configs.find((x) => x.name === only);
    if (!c) throw userError(`${model} ${weights} has no layer config '${only}' (its choice table: ${configs.map((x) => x.name).join(", ")}); pass one of those`);
    configs = [{ ...c, maxTokens: null }];
  }
  if (combine !== undefined)
    configs = configs.map((c) => ({ ...c, combine, ...(combine !== "atomic" ? { down: { ...c.down, splitK: 1 } } : {}) }));
  return { ...m, name: `${model}_${weights}${combine ? `_${combine}` : ""}${only ? `_${only}` : ""}`, weights, configs,
    ...(combine ? { forcedCombine: combine } : {}), ...(only ? { entry: only } : {}) };
}

/** An entry's combine ("atomic" where it does not say). */
export const combineOf = (c: LayerConfig): Combine => c.combine ?? "atomic";

/** The dtype of an entry's pair rows: f32 (combine "reduce"), bf16 ("reduce_bf16"); undefined: atomics. */
export function pairRowsOf(c: LayerConfig): "f32" | "bf16" | undefined {
  const m = combineOf(c);
  return m === "reduce" ? "f32" : m === "reduce_bf16" ? "bf16" : undefined;
}

/** The choice-table entry serving T tokens; the generated launcher's moe_layer_<name>_config(T) picks the same. */
export function chooseConfig(s: LayerSpec, T: number): LayerConfig {
  return s.configs.find((c) => c.maxTokens === null || T <= c.maxTokens) ?? s.configs[s.configs.length - 1]!;
}

/** A layer buffer: the caller's (inputs, weights, output) or a slice of the workspace. */
export interface LayerBuffer {
  name: string; dtype: DType; workspace: boolean; output?: boolean;
  /** Extent factors: layer quantity names or constants; the product is the element count. */
  numel: (string | number)[];
  doc: string;
}

export interface Stage {
  /** Short name: router, gate, align (or gate_align), permute, up, down, combine. */
  stage: string;
  file: string;
  kernel: string;
  config: Record<string, TunableValue>;
  /** Kernel param or dim name -> layer buffer (tensors) or layer quantity (scalars, dims). */
  bind: Record<string, string>;
  /** Runs only in calls whose pair count P = T * top_k is at most / above this (the gating and
   *  routing stages: one kernel or two, gateAlignPairs); absent: in every call. */
  pairs?: { atMost: number } | { above: number };
}

/** A stage's condition on the call's pair count P as `P op n` (the launcher's C test, the
 *  interpreter's and build-layer's text); undefined: every call. */
export function pairsTest(st: Stage): { op: "<=" | ">"; n: number } | undefined {
  if (!st.pairs) return undefined;
  return "atMost" in st.pairs ? { op: "<=", n: st.pairs.atMost } : { op: ">", n: st.pairs.above };
}

/** Whether a stage runs in a call with P pairs. */
export function runsAt(st: Stage, P: number): boolean {
  const t = pairsTest(st);
  return !t || (t.op === "<=" ? P <= t.n : P > t.n);
}

/** routingBlocks (routing.ts) as a C expression of the launcher's int64_t T and BS. */
function routingBlocksC(topK: number, E: number): string {
  const P = `T * ${topK}`;
  return `((${P} + (${P} < ${E} ? ${P} : ${E}) * (BS - 1)) / BS)`;
}

/** Layer quantities: constants of the spec plus the ones derived from the token count T. */
export function quantities(s: LayerSpec, T: number): Record<string, number> {
  const P = T * s.topK;
  const entry = chooseConfig(s, T);
  const BS = entry.blockSize;
  const NB = routingBlocks(P, s.experts, BS);
  return {
    T, H: s.hidden, N: s.intermediate, E: s.experts, K: s.topK, BS, P, NB,
    // Rows of the permuted activations `xp`: one per routing slot where the entry permutes.
    XP: entry.permute ? NB * BS : 0,
    // Rows of the per-pair down projection `pairs` (f32) or `pairs_bf16`: one per (token, slot)
    // pair where the entry reduces with rows of that dtype.
    PR: pairRowsOf(entry) === "f32" ? P : 0,
    PRB: pairRowsOf(entry) === "bf16" ? P : 0,
    E2N: s.experts * 2 * s.intermediate, EH: s.experts * s.hidden,
    HQ: wordsPerRow("u4", W4_ORDERS.w13, s.hidden), HG: Math.ceil(s.hidden / 128), NQ: wordsPerRow("u4", W4_ORDERS.w2, s.intermediate), NG: Math.ceil(s.intermediate / 128),
    renorm: s.renormalize ? 1 : 0,
  };
}

/** The same quantities as C expressions of the launcher's int64_t T and BS (the routing
 *  block of T's table entry, a local of the launcher); the rest are constants. */
export function quantitiesC(s: LayerSpec): Record<string, string> {
  const q = quantities(s, 0);
  const c: Record<string, string> = {};
  for (const [n, v] of Object.entries(q)) c[n] = String(v);
  c.T = "T";
  c.BS = "BS";
  c.P = `(T * ${s.topK})`;
  c.NB = routingBlocksC(s.topK, s.experts);
  // The launcher's `config` (the entry it runs) says whether it permutes (templates/layer.cu.hbs).
  c.XP = `(moe_layer_${s.name}_permutes[config] ? ${c.NB} * BS : 0)`;
  c.PR = `(moe_layer_${s.name}_reduces[config] == ${REDUCES_CODE.reduce} ? ${c.P} : 0)`;
  c.PRB = `(moe_layer_${s.name}_reduces[config] == ${REDUCES_CODE.reduce_bf16} ? ${c.P} : 0)`;
  return c;
}

export function buffers(s: LayerSpec): LayerBuffer[] {
  const q4 = s.weights === "w4a16";
  return [
    { name: "x", dtype: "bf16", workspace: false, numel: ["T", "H"], doc: "activations [T, H]" },
    { name: "w_router", dtype: "bf16", workspace: false, numel: ["E", "H"], doc: "router weights [E, H]" },
    ...(q4
      ? [{ name: "w13", dtype: "u32" as DType, workspace: false, numel: ["E2N", "HQ"], doc: "gate/up weights [E, 2N, H] as 4-bit, 8 per u32, interleaved order (docs/QUANT.md): [E * 2N, cdiv(H, 8)]" },
         { name: "s13", dtype: "bf16" as DType, workspace: false, numel: ["E2N", "HG"], doc: "their scales, one per 128 values of a row, w = (q - 8) * s: [E * 2N, cdiv(H, 128)]" }]
      : [{ name: "w13", dtype: "bf16" as DType, workspace: false, numel: ["E2N", "H"], doc: "gate/up weights [E, 2N, H]: rows [0, N) of expert e are gate, [N, 2N) up" }]),
    ...(q4
      ? [{ name: "w2", dtype: "u32" as DType, workspace: false, numel: ["EH", "NQ"], doc: "down weights [E, H, N] as 4-bit, 8 per u32, mma order: [E * H, 4 * cdiv(N, 32)]" },
         { name: "s2", dtype: "bf16" as DType, workspace: false, numel: ["EH", "NG"], doc: "their scales, one per 128 values of a row, w = (q - 8) * s: [E * H, cdiv(N, 128)]" }]
      : [{ name: "w2", dtype: "bf16" as DType, workspace: false, numel: ["EH", "N"], doc: "down weights [E, H, N]" }]),
    { name: "out", dtype: "f32", workspace: false, output: true, numel: ["T", "H"], doc: "layer output [T, H] (f32; overwritten)" },
    { name: "logits", dtype: "f32", workspace: true, numel: ["T", "E"], doc: "router logits" },
    { name: "topk_weights", dtype: "f32", workspace: true, numel: ["T", "K"], doc: "routing weights" },
    { name: "topk_ids", dtype: "i32", workspace: true, numel: ["T", "K"], doc: "chosen experts" },
    { name: "sorted", dtype: "i32", workspace: true, numel: ["NB", "BS"], doc: "pair ids grouped by expert" },
    { name: "block_expert", dtype: "i32", workspace: true, numel: ["NB"], doc: "expert of each routing block" },
    { name: "counts", dtype: "i32", workspace: true, numel: ["E"], doc: "pairs per expert" },
    { name: "total", dtype: "i32", workspace: true, numel: [1], doc: "padded pair count" },
    { name: "y", dtype: "bf16", workspace: true, numel: ["NB", "BS", "N"], doc: "act(gate) * up, rows in routing order" },
    // Last, so the other slices keep their offsets; empty (0 bytes) for entries that do not permute / reduce.
    ...(s.configs.some((c) => c.permute) ? [{ name: "xp", dtype: "bf16" as DType, workspace: true, numel: ["XP", "H"], doc: "activation rows in routing order (entries that permute)" }] : []),
    ...(s.configs.some((c) => pairRowsOf(c) === "f32")
      ? [{ name: "pairs", dtype: "f32" as DType, workspace: true, numel: ["PR", "H"], doc: "down projection per (token, slot) pair, before the combine (entries that reduce)" }] : []),
    ...(s.configs.some((c) => pairRowsOf(c) === "bf16")
      ? [{ name: "pairs_bf16", dtype: "bf16" as DType, workspace: true, numel: ["PRB", "H"], doc: "down projection per (token, slot) pair rounded to bf16, before the combine (entries that reduce_bf16)" }] : []),
  ];
}

/** Workspace slices start at multiples of this (covers every kernel's 16-byte alignment). */
export const WS_ALIGN = 256;

const DIR = "dsl-examples";

/** The most pairs (T * top_k) moe_gate_align_softmax routes: one chunk of moe_align's, in one block. */
export const GATE_ALIGN_PAIRS = 256;

/** The default of LayerSpec.gateAlignPairs, measured on an H200 (bench/RESULTS.md, eighth session,
 *  scripts/gpu-check-gatealign.sh, w4a16 with PDL, one kernel against two): faster by 0.6 / 1.2 us
 *  at Qwen3 T = 1 / 7 (8 / 56 pairs) and 3.9 / 1.7 us at Mixtral T = 1 / 16 (2 / 32 pairs), slower by
 *  5.1 us at Qwen3 T = 32 and 11.9 us at Mixtral T = 128 (256 pairs: one block's serial token
 *  rounds against two launches that PDL already overlaps). */
export const GATE_ALIGN_DEFAULT_PAIRS = 64;

/** The pair count up to which a layer's calls gate and route in one kernel (LayerSpec.gateAlignPairs). */
export const gateAlignPairsOf = (s: LayerSpec): number => s.gateAlignPairs ?? GATE_ALIGN_DEFAULT_PAIRS;

/** moe_permute's config: 16-row tiles (they divide every routing block, so no tile is ragged,
 *  and keep many blocks for small T), 512 columns a step, 4 steps in flight. Tuned on an H200
 *  (`tilemoe tune dsl-examples/moe_permute.ts`, Qwen3's rows, bench/RESULTS.md twelfth session):
 *  0.0193 ms at T = 1024 (BS 64; the best of 48) and 0.0621 at 4096 (BS 128) against 0.0223 /
 *  0.0707 for the 16 x 256 tiles with 3 stages before. At 4096 64-row tiles were faster still
 *  (0.0564), but they leave Mixtral's small calls few blocks (48 at T = 1024). */
export const PERMUTE_CONFIG: Record<string, TunableValue> = { BR: 16, BH: 512, stages: 4, warps: 4 };

/** The stages of one entry of the choice table, in launch order: router, gate_align (calls with
 *  T * top_k <= gateAlignPairs) or gate and align (the others), [permute,] up, down[, combine]. */
export function stages(s: LayerSpec, c: LayerConfig = s.configs[0]!): Stage[] {
  validate(s);
  const upBind = { W13: "w13", S13: "s13", sorted: "sorted", block_expert: "block_expert", Y: "y", K: "H", E2N: "E2N", NB: "NB", BS: "BS", N: "N" };
  const up: Stage = c.permute
    ? { stage: "up", ...(s.weights === "w4a16"
      ? { file: `${DIR}/moe_gemm_up_w4a16.ts`, kernel: "moe_gemm_up_permuted_w4a16" }
      : { file: `${DIR}/moe_gemm_up.ts`, kernel: "moe_gemm_up_permuted" }), config: c.up, bind: { ...upBind, Xp: "xp" } }
    : { stage: "up", ...(s.weights === "w4a16"
      ? { file: `${DIR}/moe_gemm_up_w4a16.ts`, kernel: "moe_gemm_up_w4a16" }
      : { file: `${DIR}/moe_gemm_up.ts`, kernel: s.activation === "gelu" ? "moe_gemm_up_gelu" : "moe_gemm_up" }),
      config: c.up, bind: { ...upBind, X: "x", top_k: "K", T: "T" } };
  const permute: Stage[] = c.permute
    ? [{ stage: "permute", file: `${DIR}/moe_permute.ts`, kernel: "moe_permute", config: PERMUTE_CONFIG,
         bind: { X: "x", sorted: "sorted", block_expert: "block_expert", top_k: "K", Xp: "xp", T: "T", H: "H", NB: "NB", BS: "BS" } }]
    : [];
  const down = s.weights === "w4a16"
    ? { file: `${DIR}/moe_gemm_down_w4a16.ts`, kernel: "moe_gemm_down_w4a16", config: c.down }
    : { file: `${DIR}/moe_gemm_down.ts`, kernel: "moe_gemm_down", config: c.down };
  const downBind = { A: "y", W2: "w2", S2: "s2", sorted: "sorted", block_expert: "block_expert", topk_weights: "topk_weights", out: "out",
    NB: "NB", BS: "BS", N: "N", EH: "EH", T: "T", TOPK: "K", H: "H" };
  // The pairs kernels store each pair's row: no split-K (validate() refuses one).
  const { splitK: _splitK, ...pairsConfig } = c.down;
  const rows = pairRowsOf(c);
  const suffix = rows === "bf16" ? "_bf16" : "";
  const pairsBuf = rows === "bf16" ? "pairs_bf16" : "pairs";
  const pairs = s.weights === "w4a16"
    ? { file: `${DIR}/moe_gemm_down_w4a16.ts`, kernel: `moe_gemm_down_pairs_w4a16${suffix}` }
    : { file: `${DIR}/moe_gemm_down_reduce.ts`, kernel: `moe_gemm_down_pairs${suffix}` };
  const combine: Stage[] = rows !== undefined
    ? [{ stage: "down", ...pairs, config: pairsConfig, bind: { ...downBind, Y: pairsBuf, P: "P" } },
       { stage: "combine", file: `${DIR}/moe_gemm_down_reduce.ts`, kernel: `moe_combine${suffix}`, config: { BH: 256 },
         bind: { Y: pairsBuf, topk_weights: "topk_weights", out: "out", T: "T", TOPK: "K", H: "H" } }]
    : [{ stage: "down", ...down, bind: downBind }];
  // The gating tile's width: the experts rounded up to 128 or 256.
  const EMAX = s.experts <= 128 ? 128 : 256;
  const gateBind = { logits: "logits", renorm: "renorm", weights: "topk_weights", ids: "topk_ids", T: "T", E: "E", K: "K" };
  const alignBind = { sorted: "sorted", block_expert: "block_expert", counts: "counts", total: "total", NB: "NB", BS: "BS", E: "E" };
  const fused = gateAlignPairsOf(s);
  // One block: gate's and align's work for up to 256 pairs (docs/LAYER.md, gate_align), 16 tokens
  // a gating round (BT 16, 512 threads; at BT 32, 1024 threads, nvcc for sm_90a gives it 32
  // registers and spills): Qwen3 up to T = 32 in two rounds, Mixtral up to T = 128 in eight.
  const gating: Stage[] = [
    ...(fused > 0 ? [{ stage: "gate_align", file: `${DIR}/moe_gate_align.ts`, kernel: "moe_gate_align_softmax",
      config: { BT: 16, EMAX, KMAX: 8, CH: GATE_ALIGN_PAIRS }, bind: { ...gateBind, ...alignBind }, pairs: { atMost: fused } }] : []),
    { stage: "gate", file: `${DIR}/moe_gate.ts`, kernel: "moe_gate_softmax", config: { BT: 4, EMAX, KMAX: 8 }, bind: gateBind,
      ...(fused > 0 ? { pairs: { above: fused } } : {}) },
    // One launch of cdiv(P, CH) blocks, each counting all P ids itself (docs/LAYER.md, Routing).
    { stage: "align", file: `${DIR}/moe_align.ts`, kernel: "moe_align", config: { EMAX: 256, CH: 256 },
      bind: { ids: "topk_ids", ...alignBind, P: "P" }, ...(fused > 0 ? { pairs: { above: fused } } : {}) },
  ];
  return [
    { stage: "router", file: `${DIR}/moe_router.ts`, kernel: "moe_router", config: c.router,
      bind: { X: "x", Wr: "w_router", logits: "logits", T: "T", H: "H", E: "E" } },
    ...gating,
    ...permute,
    up,
    ...combine,
  ];
}

function validate(s: LayerSpec): void {
  const bad = (m: string) => { throw userError(`layer ${s.name}: ${m}`); };
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.name)) bad("name must be a C identifier");
  if (s.experts < 1 || s.experts > 256) bad(`E = ${s.experts}: the gating and routing kernels take 1..256 experts`);
  if (s.topK < 1 || s.topK > 8 || s.topK > s.experts) bad(`top_k = ${s.topK}: must be in 1..min(8, E)`);
  if (s.configs.length === 0) bad("the choice table (configs) is empty");
  const g = s.gateAlignPairs;
  if (g !== undefined && (!Number.isInteger(g) || g < 0 || g > GATE_ALIGN_PAIRS))
    bad(`gateAlignPairs ${g}: the one-kernel gating and routing (moe_gate_align_softmax) takes up to ${GATE_ALIGN_PAIRS} pairs; use 0 .. ${GATE_ALIGN_PAIRS} (0: always gate + align)`);
  s.configs.forEach((c, i) => {
    const last = i === s.configs.length - 1;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(c.name)) bad(`config '${c.name}': its name must be a C identifier`);
    if (s.configs.findIndex((x) => x.name === c.name) !== i) bad(`config '${c.name}' appears twice in the choice table`);
    if (last !== (c.maxTokens === null)) bad(`config '${c.name}': the last entry of the choice table, and only it, serves every larger T (maxTokens null)`);
    if (i > 0 && c.maxTokens !== null && c.maxTokens <= s.configs[i - 1]!.maxTokens!) bad(`config '${c.name}': maxTokens must grow along the table`);
    if (![16, 32, 64, 128].includes(c.blockSize)) bad(`config '${c.name}': block size ${c.blockSize}: the routing block takes 16, 32, 64 or 128`);
    if (c.permute && s.activation !== "silu") bad(`config '${c.name}': the permuted gate/up kernels have SiLU only (moe_gemm_up_permuted, moe_gemm_up_permuted_w4a16); drop permute`);
    if (c.combine !== undefined && !COMBINES.includes(c.combine)) bad(`config '${c.name}': combine '${c.combine}': use ${COMBINES.map((m) => `"${m}"`).join(", ")}`);
    if (pairRowsOf(c) !== undefined && (c.down.splitK ?? 1) !== 1) bad(`config '${c.name}': the ${combineOf(c)} combine's down kernel stores rows and cannot split K (splitK ${c.down.splitK}); use splitK 1 or combine "atomic"`);
  });
  if (s.weights === "w4a16" && s.activation !== "silu") bad("w4a16 weights have a SiLU gate/up kernel only");
  if (s.hidden < 1 || s.intermediate < 1) bad("hidden and intermediate sizes must be positive");
}

/** Each choice-table entry's stages with their tile-level kernels (files parsed once). */
export function stageKernels(s: LayerSpec): { config: LayerConfig; stages: { stage: Stage; kernel: Kernel }[] }[] {
  const files = new Map<string, Kernel[]>();
  return s.configs.map((config) => ({ config, stages: stages(s, config).map((st) => {
    let ks = files.get(st.file);
    if (!ks) files.set(st.file, (ks = parseKernels(st.file)));
    const kernel = ks.find((k) => k.name === st.kernel);
    if (!kernel) throw new Error(`${st.file}: no kernel ${st.kernel}`);
    for (const p of [...kernel.params.map((x) => x.name), ...kernel.dims])
      if (!(p in st.bind)) throw new Error(`layer stage ${st.stage}: ${st.kernel}'s '${p}' is not bound`);
    return { stage: st, kernel };
  }) }));
}

/** A stage's identity for sharing one compiled kernel between table entries. */
export function stageKey(st: Stage): string {
  return `${st.file}:${st.kernel}:${Object.entries(st.config).map(([k, v]) => `${k}=${v}`).join(",")}`;
}

/** The caller's buffers in the order of the C launcher's parameters (host.ts emits them so). */
export function callerBuffers(s: LayerSpec): LayerBuffer[] {
  return buffers(s).filter((b) => !b.workspace);
}

/** A buffer's element count for T tokens. */
export function bufferNumel(s: LayerSpec, b: LayerBuffer, T: number): number {
  const q = quantities(s, T);
  return b.numel.reduce<number>((a, f) => a * (typeof f === "number" ? f : q[f]!), 1);
}

/** Where each workspace buffer lies for T tokens, as moe_layer_<name>_workspace_bytes and
 *  the launcher carve it (templates/layer.cu.hbs): in buffers() order, each slice rounded
 *  up to WS_ALIGN bytes. */
export function workspaceLayout(s: LayerSpec, T: number): { slices: { name: string; dtype: DType; offset: number; bytes: number }[]; total: number } {
  const round = (n: number) => Math.ceil(n / WS_ALIGN) * WS_ALIGN;
  let offset = 0;
  const slices = buffers(s).filter((b) => b.workspace).map((b) => {
    const bytes = bufferNumel(s, b, T) * byteSize(b.dtype);
    const slice = { name: b.name, dtype: b.dtype, offset, bytes };
    offset += round(bytes);
    return slice;
  });
  return { slices, total: offset };
}

/** Bytes of one expert's weights (gate/up and down, with w4a16 scales): what a token routed
 *  to it makes the layer read at least once. */
export function expertWeightBytes(s: LayerSpec): number {
  const { hidden: H, intermediate: N } = s;
  if (s.weights === "bf16") return 3 * N * H * 2;
  const q4 = (rows: number, cols: number, order: QOrder) => rows * (wordsPerRow("u4", order, cols) * 4 + Math.ceil(cols / 128) * 2);
  return q4(2 * N, H, W4_ORDERS.w13) + q4(H, N, W4_ORDERS.w2);
}

/** Multiply-adds of the layer for T tokens, times 2: router GEMM and the top-k experts' three projections. */
export function layerFlops(s: LayerSpec, T: number): number {
  return 2 * T * s.experts * s.hidden + 2 * T * s.topK * 3 * s.intermediate * s.hidden;
}
