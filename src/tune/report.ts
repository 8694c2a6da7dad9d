// What a sweep prints and writes: the terminal table (top candidates per shape, then what
// happened to the rest), and with --report DIR the full rows as JSON and CSV and an SVG plot
// of time per candidate (drawn here; no plotting dependency).
import { join } from "node:path";
import { formatTable } from "../cli/table.ts";
import { kib } from "./limits.ts";
import { configKey } from "./space.ts";
import type { Row, ShapeOutcome, TuneOutcome } from "./ingest.ts";
import { ensureOutDir, writeOutput } from "../util/out-dir.ts";

const fix = (x: number | undefined, d: number) => (x === undefined ? undefined : x.toFixed(d));

export function formatOutcome(o: TuneOutcome, top = 10): string {
  const out: string[] = [];
  out.push(`${o.meta.kernel} (${o.meta.file}) on ${o.gpu}, ${o.meta.arch}; ${o.meta.candidates.length} configs in the space`);
  out.push(`candidates: ${Object.entries(o.counts).map(([s, n]) => `${n} ${s}`).join(", ")}`);
  for (const s of o.shapes) {
    out.push("");
    out.push(`${s.shape.label}: ${headline(s)}`);
    const ok = s.rows.filter((r) => r.status === "ok").sort((a, b) => a.median_ms! - b.median_ms!);
    const rows = ok.slice(0, top).map((r, i) => ({
      rank: i + 1, id: r.candidate + (r.isDefault ? "*" : ""), config: configKey(r.config),
      ms: fix(r.median_ms, 4), "TFLOP/s": fix(r.tflops, 1), "GB/s": fix(r.gbps, 0),
      regs: r.registers, smem: r.smem !== undefined ? kib(r.smem) : undefined,
    }));
    out.push(ok.length ? formatTable(rows) : "(no candidate was timed successfully)");
  }
  const failures = o.shapes[0]?.rows.filter((r) => !["ok", "pruned", "duplicate", "empty grid"].includes(r.status)) ?? [];
  if (failures.length) {
    out.push("");
    out.push(`failed (${failures.length}):`);
    for (const r of failures.slice(0, 8)) out.push(`  ${r.candidate} [${configKey(r.config)}] ${r.status}${r.reason ? `: ${r.reason}` : ""}`);
    if (failures.length > 8) out.push(`  ... ${failures.length - 8} more in the --report JSON/CSV`);
  }
  out.push("(* = the default config)");
  return out.join("\n");
}

function headline(s: ShapeOutcome): string {
  const w = s.winner;
  if (!w) return "no winner";
  const d = s.defaultRow;
  const vs = d?.status === "ok" ? `, ${(d.median_ms! / w.median_ms!).toFixed(2)}x the default (${d.median_ms!.toFixed(4)} ms)`
    : d ? `; the default config did not time (${d.status})` : "";
  return `winner ${w.candidate} [${configKey(w.config)}] ${w.median_ms!.toFixed(4)} ms${vs}`;
}

const CSV_COLS = ["shape", "candidate", "config", "status", "reason", "median_ms", "min_ms", "tflops", "gbps", "registers", "smem", "threads", "spills", "gpu", "default"] as const;

export function toCsv(o: TuneOutcome): string {
  const esc = (v: unknown) => {
    const s = v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [CSV_COLS.join(",")];
  for (const s of o.shapes)
    for (const r of s.rows)
      lines.push(CSV_COLS.map((c) => esc(c === "config" ? configKey(r.config) : c === "default" ? (r.isDefault ? 1 : 0) : r[c as keyof Row])).join(","));
  return lines.join("\n") + "\n";
}

/** One panel per shape: timed candidates sorted by time (bars), the winner green, the
 *  default orange, failed candidates counted underneath. */
export function toSvg(o: TuneOutcome): string {
  const W = 900, PH = 260, pad = { l: 70, r: 20, t: 40, b: 50 };
  const panels = o.shapes.length;
  const H = panels * (PH + pad.t + pad.b) + 10;
  const parts: string[] = [];
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  o.shapes.forEach((s, p) => {
    const y0 = p * (PH + pad.t + pad.b) + pad.t;
    const ok = s.rows.filter((r) => r.status === "ok").sort((a, b) => a.median_ms! - b.median_ms!);
    const failed = s.rows.length - ok.length;
    parts.push(`<text x="${pad.l}" y="${y0 - 15}" font-size="14" font-weight="bold">${esc(`${o.meta.kernel} ${s.shape.label} on ${o.gpu}`)}</text>`);
    const max = Math.max(...ok.map((r) => r.median_ms!), 1e-9);
    const plotW = W - pad.l - pad.r;
    const bw = ok.length ? plotW / ok.length : plotW;
    parts.push(`<line x1="${pad.l}" y1="${y0 + PH}" x2="${W - pad.r}" y2="${y0 + PH}" stroke="#333"/>`);
    parts.push(`<line x1="${pad.l}" y1="${y0}" x2="${pad.l}" y2="${y0 + PH}" stroke="#333"/>`);
    for (let t = 0; t <= 4; t++) {
      const v = (max * t) / 4, y = y0 + PH - (PH * t) / 4;
      parts.push(`<text x="${pad.l - 6}" y="${y + 4}" font-size="10" text-anchor="end">${v.toPrecision(3)}</text>`);
    }
    parts.push(`<text x="15" y="${y0 + PH / 2}" font-size="11" transform="rotate(-90 15 ${y0 + PH / 2})" text-anchor="middle">median ms</text>`);
    ok.forEach((r, i) => {
      const h = (PH * r.median_ms!) / max;
      const fill = i === 0 ? "#2a9d3f" : r.isDefault ? "#e08a1e" : "#4a78c2";
      parts.push(`<rect x="${(pad.l + i * bw + bw * 0.1).toFixed(1)}" y="${(y0 + PH - h).toFixed(1)}" width="${Math.max(bw * 0.8, 0.5).toFixed(1)}" height="${h.toFixed(1)}" fill="${fill}"><title>${esc(`${r.candidate} ${configKey(r.config)}: ${r.median_ms!.toFixed(4)} ms`)}</title></rect>`);
    });
    parts.push(`<text x="${pad.l}" y="${y0 + PH + 20}" font-size="11">${ok.length} timed candidates, fastest first (green: winner, orange: default); ${failed} not timed (pruned, duplicate or failed)</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}

export function writeReport(dir: string, o: TuneOutcome): string[] {
  ensureOutDir(dir, "--report");
  const base = `tune-${o.meta.kernel}`;
  const files = [join(dir, `${base}.json`), join(dir, `${base}.csv`), join(dir, `${base}.svg`)];
  const { meta, ...rest } = o;
  const json = { kernel: meta.kernel, file: meta.file, arch: meta.arch, nvcc: meta.nvcc, limits: meta.limits, ...rest,
    shapes: o.shapes.map((s) => ({ ...s.shape, winner: s.winner?.candidate, rows: s.rows })) };
  writeOutput(files[0]!, JSON.stringify(json, null, 1) + "\n");
  writeOutput(files[1]!, toCsv(o));
  writeOutput(files[2]!, toSvg(o));
  return files;
}
