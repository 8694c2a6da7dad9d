// Checks of the layer bench's outputs, on the CPU after the run. Every case: the output is
// finite. Token 0 (the same input row in every case of a layer, bench/layer-plan.ts): its
// routing and output row against the float64 layer reference, computed from the runner's
// fills (src/runtime/prng.ts) of only the experts it picks, so it costs one token's work.
// Where even that is too much to generate (Mixtral: 2 x 176M weights), token 0's row is
// compared with the first case of the same layer instead (consistency across M).
// Run as a script it writes one layer's token-0 reference as JSON (bench/layer.ts runs it in
// a child process while the GPU works): tsx bench/layer-check.ts MODEL WEIGHTS OUT.json
import { addExpertOutput, routeToken, silu } from "../src/check/moe-layer-ref.ts";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { modelSpec, quantities, type LayerSpec, W4_ORDERS, type Weights } from "../src/moe/layer.ts";
import { dequantMatrix } from "../src/quant/index.ts";
import { fillValues } from "../src/runtime/prng.ts";
import { type LayerCaseMeta, layerInits, type OutputCheck, twinOf } from "./layer-plan.ts";

/** The error bound of the layer test (test/moe_layer): the intermediate is bf16, the rest f32. */
export const ROW_TOLERANCE = 2 ** -7;
/** Two combines of the same f32 partial sums differ only in summation order. */
export const COMBINE_TOLERANCE = 1e-4;

/** Weights to generate (and for w4a16 dequantize) for token 0's reference: its top-k experts'. */
export function tokenZeroValues(s: LayerSpec): number {
  return s.topK * 3 * s.intermediate * s.hidden;
}

export interface TokenReference { ids: number[]; weights: number[]; out: Float64Array }

/** Token 0 of a bench layer case in float64, from the plan's seeds. */
export function tokenZeroReference(s: LayerSpec): TokenReference {
  const { hidden: H, intermediate: N, experts: E } = s;
  const q = quantities(s, 1);
  const init = layerInits(s);
  const fill = (buf: string, dtype: "bf16" | "u32", count: number, start: number) => {
    const i = init[buf]!;
    return fillValues(dtype, i.seed, i.lo, i.hi, count, start);
  };
  const x = fill("x", "bf16", H, 0);
  const wr = fill("w_router", "bf16", E * H, 0);
  const logits = new Float64Array(E);
  for (let e = 0; e < E; e++) {
    let acc = 0;
    for (let k = 0; k < H; k++) acc += x[k]! * wr[e * H + k]!;
    logits[e] = acc;
  }
  const r = routeToken(logits, s.topK, s.renormalize);
  // Rows [r0, r0 + rows) of a [*, cols] weight matrix, dequantized for w4a16.
  const rows = (w: "w13" | "w2", sc: string, r0: number, n: number, cols: number, words: number, groups: number) => {
    if (s.weights === "bf16") return fill(w, "bf16", n * cols, r0 * cols);
    const packed = fill(w, "u32", n * words, r0 * words), scales = fill(sc, "bf16", n * groups, r0 * groups);
    return dequantMatrix(packed, n, cols, { format: "u4", order: W4_ORDERS[w], scales, zeros: 8, group: 128 }, "bf16");
  };
  const out = new Float64Array(H);
  r.ids.forEach((e, j) => {
    const w13 = rows("w13", "s13", e * 2 * N, 2 * N, H, q.HQ!, q.HG!);
    const w2 = rows("w2", "s2", e * H, H, N, q.NQ!, q.NG!);
    addExpertOutput(out, 0, x, 0, r.weights[j]!, w13, 0, w2, 0, H, N, silu);
  });
  return { ...r, out };
}

const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!)); return m; };
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };

/** A case's saved files, read back (undefined: not saved, e.g. the case failed). */
export interface SavedCase { out?: Float64Array; ids?: ArrayLike<number>; weights?: ArrayLike<number> }

/**
 * Verdicts per case name. `refs` holds token 0's reference per layer name, where computed;
 * without one, token 0's row is held against the first case of that layer that has output.
 */
export function checkLayerOutputs(meta: LayerCaseMeta[], saved: (m: LayerCaseMeta) => SavedCase, refs: Map<string, TokenReference>): Map<string, OutputCheck> {
  const checks = new Map<string, OutputCheck>();
  const firstRow = new Map<string, { T: number; row: Float64Array }>();
  for (const m of meta) {
    const { out, ids, weights } = saved(m);
    const H = m.spec.hidden, K = m.spec.topK;
    if (!out || !ids || !weights) continue;
    if (out.length !== m.T * H) { checks.set(m.name, { pass: false, text: `output has ${out.length} values, want ${m.T * H}` }); continue; }
    let bad = 0;
    for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i]!)) bad++;
    if (bad) { checks.set(m.name, { pass: false, text: `${bad} non-finite outputs` }); continue; }
    // Plain launches of a PDL library's kernels: its whole output against the PDL launches' (the
    // same kernels; only the order of the f32 atomic adds may differ).
    const pdlTwin = m.plain ? meta.find((x) => !x.plain && x.spec.name === m.spec.name && x.T === m.T) : undefined;
    const pdlOut = pdlTwin && saved(pdlTwin).out;
    if (pdlOut && pdlOut.length === out.length) {
      const scale = maxAbs(pdlOut), err = maxDiff(out, pdlOut);
      checks.set(m.name, { pass: err <= COMBINE_TOLERANCE * scale, text: `all rows vs PDL launches: err ${err.toExponential(1)} of ${scale.toExponential(1)}` });
      continue;
    }
    // A layer forced to one combine, or one entry of the choice table alone: its whole output
    // against the table's layer on the same inputs (twinOf says within what).
    const twin = twinOf(m.spec);
    const twinMeta = twin === undefined ? undefined : meta.find((x) => x.spec.name === twin.name && x.T === m.T && !x.plain);
    const twinOut = twinMeta && saved(twinMeta).out;
    if (twin && twinOut && twinOut.length === out.length) {
      const scale = maxAbs(twinOut), err = maxDiff(out, twinOut);
      const tol = twin.kind === "combine" ? COMBINE_TOLERANCE : ROW_TOLERANCE;
      checks.set(m.name, { pass: err <= tol * scale, text: `all rows vs the table${twin.kind === "combine" ? "'s combines" : ""}: err ${err.toExponential(1)} of ${scale.toExponential(1)}` });
      continue;
    }
    const row = out.subarray(0, H);
    const ref = refs.get(m.spec.name);
    if (ref) {
      const got = Array.from(ids).slice(0, K);
      if ([...got].sort((a, b) => a - b).join() !== [...ref.ids].sort((a, b) => a - b).join()) {
        checks.set(m.name, { pass: false, text: `token 0 routed to [${got}], reference [${ref.ids}]` });
        continue;
      }
      const wErr = Math.max(...got.map((e, j) => Math.abs(weights[j]! - ref.weights[ref.ids.indexOf(e)]!)));
      const scale = maxAbs(ref.out), err = maxDiff(row, ref.out);
      const pass = err <= ROW_TOLERANCE * scale && wErr <= 1e-4;
      checks.set(m.name, { pass, text: `row 0 vs f64: err ${err.toExponential(1)} of ${scale.toExponential(1)}, weights ${wErr.toExponential(1)}` });
      continue;
    }
    const first = firstRow.get(m.spec.name);
    if (!first) {
      if (m.plain) { checks.set(m.name, { pass: false, text: "no PDL twin output to compare with" }); continue; }
      firstRow.set(m.spec.name, { T: m.T, row: Float64Array.from(row) });
      checks.set(m.name, { pass: maxAbs(row) > 0, text: "finite (no f64 ref: too many weights to generate)" });
      continue;
    }
    const scale = maxAbs(first.row), err = maxDiff(row, first.row);
    checks.set(m.name, { pass: err <= ROW_TOLERANCE * scale, text: `row 0 vs M=${first.T}: err ${err.toExponential(1)} of ${scale.toExponential(1)}` });
  }
  return checks;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [model, weights, out] = process.argv.slice(2);
  if (!model || !weights || !out) throw new Error("usage: tsx bench/layer-check.ts MODEL WEIGHTS OUT.json");
  const r = tokenZeroReference(modelSpec(model, weights as Weights));
  writeFileSync(out, JSON.stringify({ ids: r.ids, weights: r.weights, out: Array.from(r.out) }));
}
