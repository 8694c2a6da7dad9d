// The MoE layer bench (issue 4): the whole generated layer (router -> gating -> routing ->
// grouped gate/up -> grouped down -> [combine]) of each model, bf16 and w4a16, at
// several token counts M, timed by the runner as one call of the layer library per launch,
// next to the two ceilings its floor is made of, measured in the same plan:
//   bytes floor = weight bytes of the experts the routing actually touched / copy bandwidth
//   flops floor = the layer's FLOPs / cuBLAS bf16 TFLOP/s on a representative large GEMM
//   floor = the larger; ratio = our time / floor (1 would be perfect; the issue's targets:
//   w4a16 <= 1.5 at M <= 64, bf16 <= 1.4 at M >= 1024).
// Routing is realistic rather than forced: random router weights, so the touched experts
// are whatever the GPU's top-k picked (saved from the layer's workspace and counted).
// Expert weights (gigabytes) cannot be rotated, so every launch runs after an L2 flush.
import type { CaseResult, Init, PlanCase, Results, TensorArg } from "../src/runtime/plan.ts";
import { bufferNumel, callerBuffers, chooseConfig, type Combine, combineOf, expertWeightBytes, type LayerConfig, layerFlops, type LayerSpec, modelSpec, pairRowsOf, type Weights, workspaceLayout } from "../src/moe/layer.ts";

export const LAYER_TOKENS = [1, 16, 64, 256, 1024, 4096];
export const LAYER_MODELS = ["mixtral", "qwen3"];
export const LAYER_WEIGHTS: Weights[] = ["bf16", "w4a16"];
/** The cuBLAS GEMM whose throughput stands for "the tensor cores' bf16 rate": large enough to
 *  be compute-bound (Mixtral's gate/up shape at 4096 tokens). */
export const LAYER_CUBLAS = { m: 4096, n: 14336, k: 4096 };
export const LAYER_CUBLAS_NAME = `cublas bf16 ${LAYER_CUBLAS.m}x${LAYER_CUBLAS.n}x${LAYER_CUBLAS.k}`;
export const LAYER_COPY_NAME = "copy (layer floor)";

export interface Target { weights: Weights; ratio: number; applies: (T: number) => boolean; text: string }
export const TARGETS: Target[] = [
  { weights: "w4a16", ratio: 1.5, applies: (T) => T <= 64, text: "w4a16 <= 1.5x floor at M <= 64" },
  { weights: "bf16", ratio: 1.4, applies: (T) => T >= 1024, text: "bf16 <= 1.4x floor at M >= 1024" },
];

/** The fills: activations in [-1, 1]; weights scaled so that the gate/up sums stay O(1);
 *  4-bit words uniformly random (every nibble 0..15), scales positive. `out` starts as
 *  garbage: the layer must overwrite it. Same seeds for every M, so token 0's input row (and
 *  so its routing and output row) is the same in every case of a layer. */
export function layerInits(s: LayerSpec): Record<string, { seed: number; lo: number; hi: number }> {
  const q4 = s.weights === "w4a16";
  return {
    x: { seed: 101, lo: -1, hi: 1 },
    w_router: { seed: 102, lo: -0.05, hi: 0.05 },
    w13: q4 ? { seed: 103, lo: 0, hi: 4294967295 } : { seed: 103, lo: -0.03, hi: 0.03 },
    s13: { seed: 104, lo: 0.002, hi: 0.006 },
    w2: q4 ? { seed: 105, lo: 0, hi: 4294967295 } : { seed: 105, lo: -0.03, hi: 0.03 },
    s2: { seed: 106, lo: 0.002, hi: 0.006 },
    out: { seed: 107, lo: -1000, hi: 1000 },
  };
}

/** `plain`: the library's table with plain launches of the same kernels (its _nopdl entry points,
 *  src/moe/templates/layer.cu.hbs), timed beside the PDL launches (`--layer-pdl both`). */
export interface LayerLib { spec: LayerSpec; library: string; symbol: string; plain?: boolean }

/** The table of a library built with PDL, launched plainly (its moe_layer_<name>_nopdl_* entry points). */
export const plainLib = (lib: LayerLib): LayerLib => ({ ...lib, symbol: `${lib.symbol}_nopdl`, plain: true });

export interface LayerCaseMeta {
  name: string;
  spec: LayerSpec;
  T: number;
  /** Files (relative to the plan folder) the runner saves: the output, the routing. */
  outFile: string;
  idsFile: string;
  weightsFile: string;
  /** Plain launches of a PDL library's kernels (LayerLib.plain). */
  plain?: boolean;
}

export const layerCaseName = (s: LayerSpec, T: number, plain = false) => `layer ${s.name} M=${T}${plain ? " no PDL" : ""}`;

export function layerPlan(libs: LayerLib[], tokens: number[] = LAYER_TOKENS, opts: { warmup?: number; reps?: number } = {}):
  { cases: PlanCase[]; meta: LayerCaseMeta[] } {
  const time = { warmup: opts.warmup ?? 3, reps: opts.reps ?? 20 };
  const cases: PlanCase[] = [
    { name: LAYER_COPY_NAME, copy: { bytes: 1 << 30 }, time: { ...time, rotate: "auto" } },
    { name: LAYER_CUBLAS_NAME, cublas: { ...LAYER_CUBLAS, dtype: "bf16", transB: true, a: { random: { seed: 1, lo: -1, hi: 1 } }, b: { random: { seed: 2, lo: -1, hi: 1 } } },
      time: { ...time, rotate: "auto" } },
  ];
  const meta: LayerCaseMeta[] = [];
  for (const lib of libs) {
    const s = lib.spec;
    const inits = layerInits(s);
    for (const T of tokens) {
      const name = layerCaseName(s, T, lib.plain);
      const tag = `${s.name}-M${T}${lib.plain ? "-nopdl" : ""}`;
      const ws = workspaceLayout(s, T);
      const slice = (n: string) => {
        const sl = ws.slices.find((x) => x.name === n);
        if (!sl) throw new Error(`layer ${s.name}: no workspace buffer ${n}`);
        return sl;
      };
      const m: LayerCaseMeta = { name, spec: s, T, outFile: `out-${tag}.f32`, idsFile: `ids-${tag}.i32`, weightsFile: `weights-${tag}.f32`,
        ...(lib.plain ? { plain: true } : {}) };
      const args: TensorArg[] = callerBuffers(s).map((b) => ({
        tensor: b.name, dtype: b.dtype, shape: [bufferNumel(s, b, T)], init: { random: inits[b.name]! } satisfies Init,
        ...(b.output ? { save: m.outFile } : {}),
      }));
      const ids = slice("topk_ids"), w = slice("topk_weights");
      cases.push({
        name, args,
        layer: { library: lib.library, symbol: lib.symbol, tokens: T, workspace: [
          { name: "topk_ids", offset: ids.offset, bytes: ids.bytes, save: m.idsFile },
          { name: "topk_weights", offset: w.offset, bytes: w.bytes, save: m.weightsFile },
        ] },
        time: { ...time, flush_l2: true },
        flops: layerFlops(s, T),
      });
      meta.push(m);
    }
  }
  return { cases, meta };
}

/** Distinct experts among the routing's picks. */
export function touchedExperts(ids: ArrayLike<number>, E: number): number {
  const seen = new Set<number>();
  for (let i = 0; i < ids.length; i++) {
    const e = ids[i]!;
    if (!Number.isInteger(e) || e < 0 || e >= E) throw new Error(`routing: expert id ${e} out of [0, ${E})`);
    seen.add(e);
  }
  return seen.size;
}

export interface LayerFloor {
  weightBytes: number;
  flops: number;
  bytesMs: number;
  flopsMs: number;
  floorMs: number;
  bound: "bytes" | "flops";
}

export function layerFloor(s: LayerSpec, T: number, touched: number, copyGBs: number, cublasTflops: number): LayerFloor {
  const weightBytes = touched * expertWeightBytes(s);
  const flops = layerFlops(s, T);
  const bytesMs = weightBytes / (copyGBs * 1e9) * 1e3;
  const flopsMs = flops / (cublasTflops * 1e12) * 1e3;
  return { weightBytes, flops, bytesMs, flopsMs, floorMs: Math.max(bytesMs, flopsMs), bound: bytesMs >= flopsMs ? "bytes" : "flops" };
}

/** How the output was checked (bench/layer-check.ts): a verdict and a line to print. */
export interface OutputCheck { pass: boolean; text: string }

export interface LayerRow {
  model: string;
  weights: Weights;
  /** The combine of the entry that ran. */
  combine: Combine;
  /** Set where every entry of the layer was forced to one combine (the A/B twins of the table). */
  forced?: Combine;
  /** The one entry of the choice table this layer runs at every T, if so. */
  entry?: string;
  /** The entry of the choice table that ran. */
  config: string;
  /** Plain launches of the PDL library's kernels (`--layer-pdl both`). */
  plain?: boolean;
  T: number;
  status: string;
  oursMs?: number;
  touched?: number;
  experts: number;
  floor?: LayerFloor;
  ratio?: number;
  /** The issue's target for this row, if one applies, and whether it is met. */
  target?: { ratio: number; met: boolean };
  check?: OutputCheck;
}

export interface LayerReport { rows: LayerRow[]; copyGBs?: number; cublasTflops?: number; device?: string }

export function layerReport(meta: LayerCaseMeta[], results: Results, ids: (m: LayerCaseMeta) => ArrayLike<number> | undefined,
  checks: Map<string, OutputCheck> = new Map()): LayerReport {
  const byName = new Map(results.cases.map((c) => [c.name, c]));
  const ok = (r: CaseResult | undefined) => (r?.status === "ok" ? r : undefined);
  const copyGBs = ok(byName.get(LAYER_COPY_NAME))?.gbps;
  const cublasTflops = ok(byName.get(LAYER_CUBLAS_NAME))?.tflops;
  const rows = meta.map((m): LayerRow => {
    const r = byName.get(m.name);
    const model = m.spec.name.split("_")[0]!;
    const entry = chooseConfig(m.spec, m.T);
    const row: LayerRow = { model, weights: m.spec.weights, combine: combineOf(entry), forced: m.spec.forcedCombine, entry: m.spec.entry, config: entry.name,
      ...(m.plain ? { plain: true } : {}), T: m.T, status: r?.status ?? "not run", experts: m.spec.experts, check: checks.get(m.name) };
    if (r?.status !== "ok") { row.status = `${r?.status ?? "not run"}${r?.error ? `: ${r.error}` : ""}`; return row; }
    row.oursMs = r.median_ms;
    const picks = ids(m);
    if (picks) row.touched = touchedExperts(picks, m.spec.experts);
    if (row.touched !== undefined && copyGBs && cublasTflops) {
      row.floor = layerFloor(m.spec, m.T, row.touched, copyGBs, cublasTflops);
      if (row.oursMs !== undefined) row.ratio = row.oursMs / row.floor.floorMs;
    }
    const t = TARGETS.find((x) => x.weights === m.spec.weights && x.applies(m.T));
    if (t && row.ratio !== undefined) row.target = { ratio: t.ratio, met: row.ratio <= t.ratio };
    return row;
  });
  return { rows, copyGBs, cublasTflops, device: results.device?.name };
}

const f = (v: number | undefined, d: number) => (v === undefined ? "-" : v.toFixed(d));

function cells(r: LayerRow): string[] {
  return [
    r.model, `${r.weights}${r.forced ? ` all ${r.forced}` : ""}${r.entry ? ` ${r.entry} only` : ""}${r.plain ? " no PDL" : ""}`, String(r.T), `${r.config} (${r.combine})`, f(r.oursMs, 3),
    r.touched === undefined ? "-" : `${r.touched}/${r.experts}`,
    r.floor ? (r.floor.weightBytes / 1e6).toFixed(0) : "-",
    r.floor ? f(r.floor.bytesMs, 3) : "-", r.floor ? f(r.floor.flopsMs, 3) : "-",
    r.floor ? `${f(r.floor.floorMs, 3)} (${r.floor.bound})` : "-",
    r.ratio === undefined ? "-" : `${r.ratio.toFixed(2)}x`,
    r.target ? `<= ${r.target.ratio}x: ${r.target.met ? "met" : "MISSED"}` : "",
    r.status !== "ok" ? r.status : r.check ? `${r.check.pass ? "" : "FAIL "}${r.check.text}` : "-",
  ];
}

const HEAD = ["model", "weights", "M", "config", "ours ms", "experts", "weight MB", "bytes ms", "flops ms", "floor ms", "ratio", "target", "output check"];

export function layerTextTable(rep: LayerReport): string {
  const rows = [HEAD, ...rep.rows.map(cells)];
  const w = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i < 4 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join("  ").trimEnd()).join("\n") + "\n";
}

/** The combine measured four ways per model, weights and M: the table as it is (each entry its
 *  own combine), and every entry forced to atomics / to the separate reduction with f32 / bf16
 *  pair rows (atomic / reduce above 1: the reduction is faster). A forced layer that did not run
 *  is left out (undefined). */
export interface CombineRow { model: string; weights: Weights; T: number; config: string; combine: Combine; tableMs: number; atomicMs?: number; reduceMs?: number; reduceBf16Ms?: number }

export function combineComparison(rep: LayerReport): CombineRow[] {
  const same = (a: LayerRow, b: LayerRow) => a.model === b.model && a.weights === b.weights && a.T === b.T && !b.entry && !b.plain && b.oursMs !== undefined;
  return rep.rows.filter((r) => !r.forced && !r.entry && !r.plain && r.oursMs !== undefined).flatMap((r) => {
    const forced = (c: Combine) => rep.rows.find((x) => x.forced === c && same(r, x))?.oursMs;
    const atomicMs = forced("atomic"), reduceMs = forced("reduce"), reduceBf16Ms = forced("reduce_bf16");
    if (atomicMs === undefined && reduceMs === undefined && reduceBf16Ms === undefined) return [];
    return [{ model: r.model, weights: r.weights, T: r.T, config: r.config, combine: r.combine, tableMs: r.oursMs!,
      ...(atomicMs !== undefined ? { atomicMs } : {}), ...(reduceMs !== undefined ? { reduceMs } : {}), ...(reduceBf16Ms !== undefined ? { reduceBf16Ms } : {}) }];
  });
}

export function combineTable(rep: LayerReport): string {
  const rows = combineComparison(rep);
  if (!rows.length) return "";
  const ms = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(3));
  return ["| model | weights | M | table: entry (combine) | table ms | all atomic ms | all reduce ms | all reduce_bf16 ms | atomic / reduce |", "|---|---|---|---|---|---|---|---|---|",
    ...rows.map((c) => `| ${c.model} | ${c.weights} | ${c.T} | ${c.config} (${c.combine}) | ${c.tableMs.toFixed(3)} | ${ms(c.atomicMs)} | ${ms(c.reduceMs)} | ${ms(c.reduceBf16Ms)} | ` +
      `${c.atomicMs !== undefined && c.reduceMs !== undefined ? (c.atomicMs / c.reduceMs).toFixed(2) : "-"} |`)].join("\n") + "\n";
}

/** PDL against plain launches of the same kernels (`--layer-pdl both`), per layer and M. */
export interface PdlRow { model: string; weights: Weights; layer: string; T: number; config: string; pdlMs: number; plainMs: number }

/** Rows of `rep` are `meta`'s cases in order (layerReport): each table case with its plain twin's time. */
export function pdlComparison(rep: LayerReport, meta: LayerCaseMeta[]): PdlRow[] {
  const row = (name: string) => { const i = meta.findIndex((m) => m.name === name); return i < 0 ? undefined : rep.rows[i]; };
  return meta.flatMap((m, i) => {
    if (m.plain) return [];
    const r = rep.rows[i], p = row(layerCaseName(m.spec, m.T, true));
    if (r?.oursMs === undefined || p?.oursMs === undefined) return [];
    return [{ model: r.model, weights: r.weights, layer: m.spec.name, T: m.T, config: r.config, pdlMs: r.oursMs, plainMs: p.oursMs }];
  });
}

export function pdlTable(rep: LayerReport, meta: LayerCaseMeta[]): string {
  const rows = pdlComparison(rep, meta);
  if (!rows.length) return "";
  return ["| layer | M | entry | PDL ms | plain launches ms | plain - PDL us | plain / PDL |", "|---|---|---|---|---|---|---|",
    ...rows.map((c) => `| ${c.layer} | ${c.T} | ${c.config} | ${c.pdlMs.toFixed(4)} | ${c.plainMs.toFixed(4)} | ${((c.plainMs - c.pdlMs) * 1e3).toFixed(1)} | ${(c.plainMs / c.pdlMs).toFixed(3)} |`)].join("\n") + "\n";
}

export function layerMarkdownTable(rep: LayerReport, meta: LayerCaseMeta[] = []): string {
  const lines = [`| ${HEAD.join(" | ")} |`, `|${HEAD.map(() => "---").join("|")}|`, ...rep.rows.map((r) => `| ${cells(r).join(" | ")} |`)];
  const combine = combineTable(rep);
  const pdl = pdlTable(rep, meta);
  return [
    lines.join("\n"), "", ...(combine ? [combine] : []), ...(pdl ? [pdl] : []),
    `Floors: copy ${f(rep.copyGBs, 0)} GB/s (cuMemcpyDtoD, read + written), cuBLAS bf16 ${f(rep.cublasTflops, 0)} TFLOP/s ` +
      `(${LAYER_CUBLAS.m}x${LAYER_CUBLAS.n}x${LAYER_CUBLAS.k}); weight MB = touched experts x their weight bytes (w4a16: ` +
      `packed words and scales). Every launch after an L2 flush. Targets: ${TARGETS.map((t) => t.text).join("; ")}.`,
  ].join("\n") + "\n";
}

/** The layers the bench builds: every model x weights with its choice table (each entry its
 *  own combine), and for bf16 also the table with every entry forced to the atomic combine and
 *  to the separate reduction (the down GEMM writing per-pair rows, f32 or bf16), to measure the
 *  entries' choice against each (w4a16: its table only). */
export const benchSpecs = (models = LAYER_MODELS, weights = LAYER_WEIGHTS, forced = true): LayerSpec[] =>
  models.flatMap((m) => weights.flatMap((w) => [modelSpec(m, w), ...(w === "bf16" && forced ? [modelSpec(m, w, "atomic"), modelSpec(m, w, "reduce"), modelSpec(m, w, "reduce_bf16")] : [])]));

/** A candidate entry for a model's choice table (configs to try on the GPU before they go into
 *  src/moe/layer.ts CHOICES), as a layer of its own that runs it at every T:
 *  <model>_<weights>_<name>, checked against the model's table like an entry alone (twinOf). */
export function candidateSpec(model: string, weights: Weights, c: Omit<LayerConfig, "maxTokens" | "why" | "router"> & { router?: LayerConfig["router"] }): LayerSpec {
  const base = modelSpec(model, weights);
  if (base.configs.some((x) => x.name === c.name)) throw new Error(`layer candidate '${c.name}': ${base.name}'s choice table already has an entry of that name`);
  // Without its own router config, a candidate takes the table's last (prefill) entry's.
  const router = c.router ?? base.configs[base.configs.length - 1]!.router;
  return { ...base, name: `${base.name}_${c.name}`, configs: [{ ...c, router, maxTokens: null, why: "candidate" }], entry: c.name };
}

/** The candidates of a JSON file { "<model>_<weights>": [ { name, blockSize, up, down, router?, permute?, combine? }, ... ] }
 *  (combine: "atomic" where not given, as for any entry). */
export function candidateSpecs(json: unknown): LayerSpec[] {
  if (typeof json !== "object" || json === null) throw new Error("layer candidates: expected an object { \"<model>_<weights>\": [entries] }");
  return Object.entries(json as Record<string, unknown>).flatMap(([key, list]) => {
    const m = /^(.+)_(bf16|w4a16)$/.exec(key);
    if (!m || !Array.isArray(list)) throw new Error(`layer candidates: '${key}' must be <model>_<bf16|w4a16> with a list of entries`);
    return list.map((c) => candidateSpec(m[1]!, m[2] as Weights, c as Parameters<typeof candidateSpec>[2]));
  });
}

/** The layer whose whole output another is held against (same model, weights, inputs): one
 *  entry of the choice table alone against the table (the same where the table picks that
 *  entry; elsewhere other tiles, so other roundings of the bf16 intermediate); the table with
 *  every entry forced to one combine against the table as it is (the same tiles and bf16
 *  intermediate: they differ only in the f32 summation order of the combine and split-K, unless
 *  either rounds its pair rows to bf16, combine reduce_bf16). */
export function twinOf(s: LayerSpec): { name: string; kind: "combine" | "entry" } | undefined {
  if (s.entry) return { name: s.name.slice(0, -(s.entry.length + 1)), kind: "entry" };
  if (s.forcedCombine) {
    // bf16 pair rows on either side round each pair's row once more: held as an entry alone is.
    const name = s.name.slice(0, -(s.forcedCombine.length + 1));
    const table = modelSpec(name.slice(0, name.length - s.weights.length - 1), s.weights);
    const rounds = [s, table].some((x) => x.configs.some((c) => pairRowsOf(c) === "bf16"));
    return { name, kind: rounds ? "entry" : "combine" };
  }
  return undefined;
}

/** Each entry of a layer's choice table alone (not of a forced twin), from the same library: the layer
 *  exports moe_layer_<name>_<entry>_buffers... (templates/layer.cu.hbs). */
export function entryLibs(lib: LayerLib): LayerLib[] {
  const s = lib.spec;
  if (s.forcedCombine || s.entry || s.configs.length < 2) return [];
  const model = s.name.slice(0, s.name.length - s.weights.length - 1);
  return s.configs.map((c) => ({ spec: modelSpec(model, s.weights, undefined, c.name), library: lib.library, symbol: `${lib.symbol}_${c.name}` }));
}
