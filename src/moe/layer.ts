// The whole MoE layer as data: which DSL kernels run in which order (router -> gating ->
// routing -> gate/up -> down), with which configs, and how each kernel's params and dims
// bind to the layer's buffers and quantities. One table serves the generated C launcher
// (host.ts) and the interpreter run (interp.ts), so both call the kernels the same way.
import { byteSize, CompileError, type DType, type Kernel, type TunableValue } from "../ir/ir.ts";
import { parseKernels } from "../frontend/index.ts";

export type Activation = "silu" | "gelu";
export type Weights = "bf16" | "w4a16";

export interface LayerSpec {
  /** C identifier part: the layer's functions are moe_layer_<name>... */
  name: string;
  experts: number;      // E
  hidden: number;       // H
  intermediate: number; // N (per expert, per projection)
  topK: number;         // K
  /** Routing block: rows of one expert's tile in the grouped GEMMs (BM of both). */
  blockSize: number;
  activation: Activation;
  weights: Weights;
  /** Divide the top-k softmax weights by their sum (Mixtral, Qwen3 do). */
  renormalize: boolean;
  /** The top-k combine: f32 atomics in the down GEMM (default), or the down GEMM writing one
   *  row per (token, slot) pair and a separate weighted reduction (dsl-examples/moe_gemm_down_reduce.ts). */
  combine?: Combine;
}

export type Combine = "atomic" | "reduce";

export const MODELS: Record<string, Omit<LayerSpec, "name" | "weights" | "blockSize">> = {
  mixtral: { experts: 8, hidden: 4096, intermediate: 14336, topK: 2, activation: "silu", renormalize: true },
  qwen3: { experts: 128, hidden: 2048, intermediate: 768, topK: 8, activation: "silu", renormalize: true },
};

export function modelSpec(model: string, weights: Weights = "bf16", blockSize = 64, combine: Combine = "atomic"): LayerSpec {
  const m = MODELS[model];
  if (!m) throw new CompileError([{ loc: { file: "<layer>", line: 0, col: 0 }, severity: "error",
    message: `unknown model '${model}' (known: ${Object.keys(MODELS).join(", ")})` }]);
  return { ...m, name: `${model}_${weights}${combine === "reduce" ? "_reduce" : ""}`, weights, blockSize, combine };
}

/** A layer buffer: the caller's (inputs, weights, output) or a slice of the workspace. */
export interface LayerBuffer {
  name: string; dtype: DType; workspace: boolean; output?: boolean;
  /** Extent factors: layer quantity names or constants; the product is the element count. */
  numel: (string | number)[];
  doc: string;
}

export interface Stage {
  /** Short name: router, gate, align, up, down. */
  stage: string;
  file: string;
  kernel: string;
  config: Record<string, TunableValue>;
  /** Kernel param or dim name -> layer buffer (tensors) or layer quantity (scalars, dims). */
  bind: Record<string, string>;
}

/** Layer quantities: constants of the spec plus the ones derived from the token count T. */
export function quantities(s: LayerSpec, T: number): Record<string, number> {
  const P = T * s.topK;
  return {
    T, H: s.hidden, N: s.intermediate, E: s.experts, K: s.topK, BS: s.blockSize, P,
    // Capacity in routing blocks: every pair, plus one partial block per expert that has pairs.
    NB: Math.ceil(P / s.blockSize) + Math.min(s.experts, P),
    E2N: s.experts * 2 * s.intermediate, EH: s.experts * s.hidden,
    HQ: Math.ceil(s.hidden / 8), HG: Math.ceil(s.hidden / 128), NQ: Math.ceil(s.intermediate / 8), NG: Math.ceil(s.intermediate / 128),
    renorm: s.renormalize ? 1 : 0,
  };
}

/** The same quantities as C expressions of the launcher's int64_t T (the rest are constants). */
export function quantitiesC(s: LayerSpec): Record<string, string> {
  const q = quantities(s, 0);
  const c: Record<string, string> = {};
  for (const [n, v] of Object.entries(q)) c[n] = String(v);
  c.T = "T";
  c.P = `(T * ${s.topK})`;
  c.NB = `((T * ${s.topK} + ${s.blockSize - 1}) / ${s.blockSize} + (T * ${s.topK} < ${s.experts} ? T * ${s.topK} : ${s.experts}))`;
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
      ? [{ name: "w2", dtype: "u32" as DType, workspace: false, numel: ["EH", "NQ"], doc: "down weights [E, H, N] as 4-bit, 8 per u32, interleaved order: [E * H, cdiv(N, 8)]" },
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
    ...(s.combine === "reduce" ? [{ name: "pairs", dtype: "f32" as DType, workspace: true, numel: ["P", "H"], doc: "down projection per (token, slot) pair, before the combine" }] : []),
  ];
}

/** Workspace slices start at multiples of this (covers every kernel's 16-byte alignment). */
export const WS_ALIGN = 256;

const DIR = "dsl-examples";

export function stages(s: LayerSpec): Stage[] {
  validate(s);
  const bm = s.blockSize;
  const up = s.weights === "w4a16"
    // BK 64 x 3 stages: BK 128 x 2 stages at 8 warps needs 255 registers and spills (560
    // spill ops on sm_90a); this one fits in 197 with none.
    ? { file: `${DIR}/moe_gemm_up_w4a16.ts`, kernel: "moe_gemm_up_w4a16", config: { BM: bm, BN: 64, BK: 64, stages: 3, warps: 8 } }
    : { file: `${DIR}/moe_gemm_up.ts`, kernel: s.activation === "gelu" ? "moe_gemm_up_gelu" : "moe_gemm_up",
        config: { BM: bm, BN: 64, BK: 64, stages: 3, warps: 8 } };
  const down = s.weights === "w4a16"
    ? { file: `${DIR}/moe_gemm_down_w4a16.ts`, kernel: "moe_gemm_down_w4a16", config: { BM: bm, BN: 64, BK: 128, stages: 3, warps: 4 } }
    : { file: `${DIR}/moe_gemm_down.ts`, kernel: "moe_gemm_down", config: { BM: bm, BN: 64, BK: 64, stages: 3, warps: 4 } };
  const downBind = { A: "y", W2: "w2", S2: "s2", sorted: "sorted", block_expert: "block_expert", topk_weights: "topk_weights", out: "out",
    NB: "NB", BS: "BS", N: "N", EH: "EH", T: "T", TOPK: "K", H: "H" };
  const combine: Stage[] = s.combine === "reduce"
    ? [{ stage: "down", file: `${DIR}/moe_gemm_down_reduce.ts`, kernel: "moe_gemm_down_pairs", config: { BM: bm, BN: 64, BK: 64, stages: 3, warps: 4 },
         bind: { ...downBind, Y: "pairs", P: "P" } },
       { stage: "combine", file: `${DIR}/moe_gemm_down_reduce.ts`, kernel: "moe_combine", config: { BH: 256 },
         bind: { Y: "pairs", topk_weights: "topk_weights", out: "out", T: "T", TOPK: "K", H: "H" } }]
    : [{ stage: "down", ...down, bind: downBind }];
  return [
    { stage: "router", file: `${DIR}/moe_router.ts`, kernel: "moe_router", config: { BM: 16, BN: 64, BK: 64, warps: 4 },
      bind: { X: "x", Wr: "w_router", logits: "logits", T: "T", H: "H", E: "E" } },
    { stage: "gate", file: `${DIR}/moe_gate.ts`, kernel: "moe_gate_softmax", config: { BT: 4, EMAX: s.experts <= 128 ? 128 : 256, KMAX: 8 },
      bind: { logits: "logits", renorm: "renorm", weights: "topk_weights", ids: "topk_ids", T: "T", E: "E", K: "K" } },
    { stage: "align", file: `${DIR}/moe_align.ts`, kernel: "moe_align", config: { EMAX: 256, CH: 256 },
      bind: { ids: "topk_ids", sorted: "sorted", block_expert: "block_expert", counts: "counts", total: "total",
              P: "P", NB: "NB", BS: "BS", E: "E" } },
    { stage: "up", ...up,
      bind: { X: "x", W13: "w13", S13: "s13", sorted: "sorted", block_expert: "block_expert", top_k: "K", Y: "y",
              T: "T", K: "H", E2N: "E2N", NB: "NB", BS: "BS", N: "N" } },
    ...combine,
  ];
}

function validate(s: LayerSpec): void {
  const bad = (m: string) => { throw new CompileError([{ loc: { file: "<layer>", line: 0, col: 0 }, severity: "error", message: `layer ${s.name}: ${m}` }]); };
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(s.name)) bad("name must be a C identifier");
  if (s.experts < 1 || s.experts > 256) bad(`E = ${s.experts}: the gating and routing kernels take 1..256 experts`);
  if (s.topK < 1 || s.topK > 8 || s.topK > s.experts) bad(`top_k = ${s.topK}: must be in 1..min(8, E)`);
  if (![16, 64, 128].includes(s.blockSize)) bad(`block size ${s.blockSize}: the grouped GEMMs' BM takes 16, 64 or 128`);
  if (s.weights === "w4a16" && s.activation !== "silu") bad("w4a16 weights have a SiLU gate/up kernel only");
  if (s.combine === "reduce" && s.weights !== "bf16") bad("the reduce combine has a bf16 down kernel only (use the atomic combine for w4a16)");
  if (s.hidden < 1 || s.intermediate < 1) bad("hidden and intermediate sizes must be positive");
}

/** The stages' tile-level kernels, parsed once per file. */
export function stageKernels(s: LayerSpec): { stage: Stage; kernel: Kernel }[] {
  const files = new Map<string, Kernel[]>();
  return stages(s).map((st) => {
    let ks = files.get(st.file);
    if (!ks) files.set(st.file, (ks = parseKernels(st.file)));
    const kernel = ks.find((k) => k.name === st.kernel);
    if (!kernel) throw new Error(`${st.file}: no kernel ${st.kernel}`);
    for (const p of [...kernel.params.map((x) => x.name), ...kernel.dims])
      if (!(p in st.bind)) throw new Error(`layer stage ${st.stage}: ${st.kernel}'s '${p}' is not bound`);
    return { stage: st, kernel };
  });
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
  const q4 = (rows: number, cols: number) => rows * (Math.ceil(cols / 8) * 4 + Math.ceil(cols / 128) * 2);
  return q4(2 * N, H) + q4(H, N);
}

/** Multiply-adds of the layer for T tokens, times 2: router GEMM and the top-k experts' three projections. */
export function layerFlops(s: LayerSpec, T: number): number {
  return 2 * T * s.experts * s.hidden + 2 * T * s.topK * 3 * s.intermediate * s.hidden;
}
