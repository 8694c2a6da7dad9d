// Turns the runner's results into the bench table: per shape, the fastest of our configs
// whose output matched cuBLAS, next to cuBLAS and (for skinny shapes) the copy ceiling; then
// a row per tune-cache winner timed on that shape, labelled with the GPU it was tuned on.
import type { CaseResult, Results } from "../src/runtime/plan.ts";
import { type BenchShape, type CaseMeta, type GemmConfig, type TunedFrom, configText } from "./plan.ts";

export interface BenchRow {
  shape: BenchShape;
  /** A tuned winner's row (otherwise the best of the fixed configs). */
  tuned?: TunedFrom;
  /** Tuned rows: the best fixed config's time / this one's (above 1: tuning helped). */
  vsFixed?: number;
  config?: string;
  oursMs?: number;
  tflops?: number;
  cublasMs?: number;
  cublasTflops?: number;
  /** cuBLAS time / our time: 1 is parity. */
  vsCublas?: number;
  /** Skinny shapes: bytes of B (the weights) per second. */
  weightGBs?: number;
  /** weightGBs / the measured copy bandwidth. */
  ofCopy?: number;
  note: string;
}

export interface BenchReport {
  rows: BenchRow[];
  copyGBs?: number;
  device?: string;
  /** Every config tried: its status, for the detail table. */
  tried: { shape: BenchShape; config: GemmConfig; result?: CaseResult; registers?: number; spills?: number; tuned?: TunedFrom }[];
}

export function benchReport(meta: CaseMeta[], results: Results, skipped: { shape: BenchShape; config: GemmConfig; error: string }[] = []): BenchReport {
  const byName = new Map(results.cases.map((c) => [c.name, c]));
  const copy = meta.find((m) => m.kind === "copy");
  const copyRes = copy && byName.get(copy.name);
  const copyGBs = copyRes?.status === "ok" ? copyRes.gbps : undefined;
  const shapes = [...new Map(meta.filter((m) => m.shape).map((m) => [m.shape!.label, m.shape!])).values()];
  const tried: BenchReport["tried"] = [];
  const rows = shapes.flatMap((shape): BenchRow[] => {
    const cub = meta.find((m) => m.kind === "cublas" && m.shape!.label === shape.label);
    const cubRes = cub && byName.get(cub.name);
    const cublasOk = cubRes?.status === "ok" && cubRes.median_ms !== undefined;
    const mineAll = meta.filter((m) => m.kind === "ours" && m.shape!.label === shape.label);
    for (const m of mineAll) tried.push({ shape, config: m.config!, result: byName.get(m.name), registers: m.registers, spills: m.spills, tuned: m.tuned });
    const ours = mineAll.filter((m) => !m.tuned);
    const good = ours
      .map((m) => ({ m, r: byName.get(m.name) }))
      .filter(({ r }) => r?.status === "ok" && r.compare?.pass === true && r.median_ms !== undefined)
      .sort((a, b) => a.r!.median_ms! - b.r!.median_ms!);
    const row: BenchRow = { shape, note: "" };
    const timed = (r: BenchRow, ms: number) => {
      r.oursMs = ms;
      r.tflops = (2 * shape.M * shape.N * shape.K) / (ms * 1e-3) / 1e12;
      if (r.cublasMs !== undefined) r.vsCublas = r.cublasMs / ms;
      if (shape.skinny) {
        r.weightGBs = (2 * shape.N * shape.K) / (ms * 1e-3) / 1e9;
        if (copyGBs) r.ofCopy = r.weightGBs / copyGBs;
      }
    };
    if (cublasOk) {
      row.cublasMs = cubRes!.median_ms;
      row.cublasTflops = (2 * shape.M * shape.N * shape.K) / (row.cublasMs! * 1e-3) / 1e12;
    }
    const notes: string[] = [];
    if (!cublasOk) notes.push(`cuBLAS: ${cubRes?.error ?? "not run"} (outputs unchecked)`);
    const bad = ours.filter((m) => byName.get(m.name)?.status === "mismatch").length;
    const failed = ours.filter((m) => byName.get(m.name)?.status === "error").length;
    const notBuilt = skipped.filter((s) => s.shape.label === shape.label).length;
    if (bad) notes.push(`${bad} config(s) wrong vs cuBLAS`);
    if (failed) notes.push(`${failed} failed to run`);
    if (notBuilt) notes.push(`${notBuilt} failed to compile`);
    const best = good[0];
    if (best) {
      const ms = best.r!.median_ms!;
      row.config = configText(best.m.config!);
      timed(row, ms);
    } else {
      notes.unshift("no correct config");
    }
    row.note = notes.join("; ");
    const tunedRows = mineAll.filter((m) => m.tuned).map((m): BenchRow => {
      const r = byName.get(m.name);
      const t: BenchRow = { shape, tuned: m.tuned, config: configText(m.config!), cublasMs: row.cublasMs, cublasTflops: row.cublasTflops, note: "" };
      const why = [tunedNote(m.tuned!, results.device?.name)];
      if (r?.status === "ok" && r.compare?.pass !== false && r.median_ms !== undefined) {
        timed(t, r.median_ms);
        if (row.oursMs !== undefined) t.vsFixed = row.oursMs / r.median_ms;
        if (!r.compare && cublasOk) why.push("output not compared");
      } else why.unshift(r ? `${r.status}${r.error ? `: ${r.error}` : ""}` : "not built");
      t.note = why.join("; ");
      return t;
    });
    return [row, ...tunedRows];
  });
  return { rows, copyGBs, device: results.device?.name, tried };
}

/** Where a tuned row's config comes from, and what the reader must know about it. */
export function tunedNote(t: TunedFrom, device?: string): string {
  const parts = [t.exact ? "tuned for this shape" : `tuned for ${t.at} (nearest tuned shape)`];
  if (device && device !== t.gpu) parts.push(`tuned on another GPU (${t.gpu}), not on this ${device}`);
  if (t.staleSpace) parts.push("the kernel's space changed since the sweep");
  return parts.join(", ");
}

const source = (r: BenchRow) => `tuned (${r.tuned!.gpu})`;

const f = (x: number | undefined, digits: number) => (x === undefined ? "-" : x.toFixed(digits));
const pct = (x: number | undefined) => (x === undefined ? "-" : `${(100 * x).toFixed(0)}%`);

// Fixed rows: the best of the fixed configs; tuned rows say "tuned (GPU): config".
const HEAD = ["shape", "best config", "ours ms", "TFLOP/s", "cuBLAS ms", "cuBLAS TFLOP/s", "vs cuBLAS", "weights GB/s", "of copy BW", "tuned vs best fixed", "note"];

function cells(r: BenchRow): string[] {
  return [r.shape.label, r.tuned ? `${source(r)}: ${r.config ?? "-"}` : r.config ?? "-", f(r.oursMs, 4), f(r.tflops, 1), f(r.cublasMs, 4), f(r.cublasTflops, 1), pct(r.vsCublas),
    r.shape.skinny ? f(r.weightGBs, 0) : "", r.shape.skinny ? pct(r.ofCopy) : "", r.vsFixed === undefined ? "" : `${r.vsFixed.toFixed(2)}x`, r.note];
}

export function markdownTable(rep: BenchReport): string {
  const lines = [`| ${HEAD.join(" | ")} |`, `|${HEAD.map(() => " --- ").join("|")}|`];
  for (const r of rep.rows) lines.push(`| ${cells(r).join(" | ")} |`);
  lines.push("", "best config: a plain config is the fastest correct of the bench's fixed configs (bench/plan.ts); \"tuned (GPU): config\" is the tune cache's winner for the shape (or the nearest tuned shape), tuned on that GPU (bench/tuned.json and --tune-cache).");
  lines.push("", `Copy (cuMemcpyDtoD, read + written): ${rep.copyGBs === undefined ? "not measured" : `${rep.copyGBs.toFixed(0)} GB/s`}.`);
  lines.push("", "All configs tried:", "", "| shape | config | status | median ms | TFLOP/s | regs | spills | max abs err |", "| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const t of rep.tried) {
    const r = t.result;
    lines.push(`| ${t.shape.label} | ${t.tuned ? `tuned (${t.tuned.gpu}) ` : ""}${configText(t.config)} | ${r?.status ?? "-"}${r?.error ? `: ${r.error.replace(/\|/g, "/")}` : ""} | ${f(r?.median_ms, 4)} | ${f(r?.tflops, 1)} | ${t.registers ?? "-"} | ${t.spills ?? "-"} | ${r?.compare?.max_abs === undefined ? "-" : r.compare.max_abs.toPrecision(3)} |`);
  }
  return lines.join("\n") + "\n";
}

export function textTable(rep: BenchReport): string {
  const rows = [HEAD, ...rep.rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}
