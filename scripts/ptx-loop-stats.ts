// Static instruction counts of a kernel's main loop in PTX (src/driver/ptx-loop.ts):
//   npx tsx scripts/ptx-loop-stats.ts FILE.ptx [--json]
import { readFileSync } from "node:fs";
import { mainLoopStats } from "../src/driver/ptx-loop.ts";

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) { console.error("usage: tsx scripts/ptx-loop-stats.ts FILE.ptx [--json]"); process.exit(2); }
  const s = mainLoopStats(readFileSync(file, "utf8"));
  if (!s) { console.error(`${file}: no loop with an mma found`); process.exit(1); }
  if (process.argv.includes("--json")) console.log(JSON.stringify(s));
  else {
    const ops = (m: Record<string, number>) => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(", ");
    console.log(`${file}: main loop lines ${s.lines.join("-")}, ${s.total} instructions: ${ops(s.byOp)}`);
    console.log(`  largest mma block lines ${s.hot.lines.join("-")}, ${s.hot.total} instructions: ${ops(s.hot.byOp)}`);
  }
}
