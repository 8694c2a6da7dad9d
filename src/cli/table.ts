// Plain aligned text tables for terminal summaries (build, check, tune, bench).

export function formatTable(rows: Record<string, unknown>[], columns?: string[]): string {
  if (!rows.length) return "(nothing)";
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (v === undefined || v === null ? "-" : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(cols), line(widths.map((w) => "-".repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join("\n");
}

export function printTable(rows: object[], columns?: string[]): void {
  console.log(formatTable(rows as Record<string, unknown>[], columns));
}
