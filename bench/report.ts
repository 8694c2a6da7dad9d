// Turns the runner's results into the bench table: per shape, the fastest of our configs
// whose output matched cuBLAS, next to cuBLAS and (for skinny shapes) the copy ceiling.
import type { CaseResult, Results } from "../src/runtime/plan.ts";
import { type BenchShape, type CaseMeta, type GemmConfig, configText } from "./plan.ts";

export interface BenchRow {
  shape: BenchShape;
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
  tried: { shape: BenchShape; config: GemmConfig; result?: CaseResult; registers?: number; spills?: number }[];
}

export function benchReport(meta: CaseMeta[], results: Results, skipped: { shape: BenchShape; config: GemmConfig; error: string }[] = []): BenchReport {
  const byName = new Map(results.cases.map((c) => [c.name, c]));
  const copy = meta.find((m) => m.kind === "copy");
  const copyRes = copy && byName.get(copy.name);
  const copyGBs = copyRes?.status === "ok" ? copyRes.gbps : undefined;
  const shapes = [...new Map(meta.filter((m) => m.shape).map((m) => [m.shape!.label, m.shape!])).values()];
  const tried: BenchReport["tried"] = [];
  const rows = shapes.map((shape): BenchRow => {
    const cub = meta.find((m) => m.kind === "cublas" && m.shape!.label === shape.label);
    const cubRes = cub && byName.get(cub.name);
    const cublasOk = cubRes?.status === "ok" && cubRes.median_ms !== undefined;
    const ours = meta.filter((m) => m.kind === "ours" && m.shape!.label === shape.label);
    for (const m of ours) tried.push({ shape, config: m.config!, result: byName.get(m.name), registers: m.registers, spills: m.spills });
    const good = ours
      .map((m) => ({ m, r: byName.get(m.name) }))
      .filter(({ r }) => r?.status === "ok" && r.compare?.pass === true && r.median_ms !== undefined)
      .sort((a, b) => a.r!.median_ms! - b.r!.median_ms!);
    const row: BenchRow = { shape, note: "" };
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
      row.oursMs = ms;
      row.tflops = (2 * shape.M * shape.N * shape.K) / (ms * 1e-3) / 1e12;
      if (row.cublasMs !== undefined) row.vsCublas = row.cublasMs / ms;
      if (shape.skinny) {
        row.weightGBs = (2 * shape.N * shape.K) / (ms * 1e-3) / 1e9;
        if (copyGBs) row.ofCopy = row.weightGBs / copyGBs;
      }
    } else {
      notes.unshift("no correct config");
    }
    row.note = notes.join("; ");
    return row;
  });
  return { rows, copyGBs, device: results.device?.name, tried };
}

const f = (x: number | undefined, digits: number) => (x === undefined ? "-" : x.toFixed(digits));
const pct = (x: number | undefined) => (x === undefined ? "-" : `${(100 * x).toFixed(0)}%`);

const HEAD = ["shape", "best config", "ours ms", "TFLOP/s", "cuBLAS ms", "cuBLAS TFLOP/s", "vs cuBLAS", "weights GB/s", "of copy BW", "note"];

function cells(r: BenchRow): string[] {
  return [r.shape.label, r.config ?? "-", f(r.oursMs, 4), f(r.tflops, 1), f(r.cublasMs, 4), f(r.cublasTflops, 1), pct(r.vsCublas),
    r.shape.skinny ? f(r.weightGBs, 0) : "", r.shape.skinny ? pct(r.ofCopy) : "", r.note];
}

export function markdownTable(rep: BenchReport): string {
  const lines = [`| ${HEAD.join(" | ")} |`, `|${HEAD.map(() => " --- ").join("|")}|`];
  for (const r of rep.rows) lines.push(`| ${cells(r).join(" | ")} |`);
  lines.push("", `Copy (cuMemcpyDtoD, read + written): ${rep.copyGBs === undefined ? "not measured" : `${rep.copyGBs.toFixed(0)} GB/s`}.`);
  lines.push("", "All configs tried:", "", "| shape | config | status | median ms | TFLOP/s | regs | spills | max abs err |", "| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const t of rep.tried) {
    const r = t.result;
    lines.push(`| ${t.shape.label} | ${configText(t.config)} | ${r?.status ?? "-"}${r?.error ? `: ${r.error.replace(/\|/g, "/")}` : ""} | ${f(r?.median_ms, 4)} | ${f(r?.tflops, 1)} | ${t.registers ?? "-"} | ${t.spills ?? "-"} | ${r?.compare?.max_abs === undefined ? "-" : r.compare.max_abs.toPrecision(3)} |`);
  }
  return lines.join("\n") + "\n";
}

export function textTable(rep: BenchReport): string {
  const rows = [HEAD, ...rep.rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}
