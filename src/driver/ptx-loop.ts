// Static instruction counts of a kernel's main loop in PTX: the innermost loop (a label and a
// later branch back to it) that holds an mma. Compares lowerings of the decode configs without
// a GPU (scripts/ptx-loop-stats.ts, test/quant/decode.test.ts, docs/QUANT.md).
export interface LoopStats {
  lines: [number, number]; total: number; byOp: Record<string, number>;
  /** The basic block with the most mma (no label or branch inside): in the register-fused
   *  dequant-gemm, the k-step loop of a whole tile, all of whose instructions run per tile. */
  hot: { lines: [number, number]; total: number; byOp: Record<string, number> };
}

/** Opcode classes worth separating for the dequant-gemm loop. */
function opClass(op: string): string {
  if (op.startsWith("mma.")) return "mma";
  if (op.startsWith("ldmatrix")) return "ldmatrix";
  if (op.startsWith("ld.global") || op.startsWith("ld.param")) return op.startsWith("ld.param") ? "ld.param" : "ld.global";
  if (op.startsWith("ld.shared")) return op.includes(".v4") ? "ld.shared.v4" : op.includes(".v2") ? "ld.shared.v2" : "ld.shared";
  if (op.startsWith("ld.local") || op.startsWith("st.local")) return "local";
  if (op.startsWith("cp.async")) return "cp.async";
  if (op.startsWith("bra")) return "bra";
  if (op.startsWith("setp")) return "setp";
  if (op.startsWith("selp")) return "selp";
  if (op.startsWith("cvt")) return "cvt";
  if (op.startsWith("lop3")) return "lop3";
  if (op.startsWith("prmt")) return "prmt";
  if (/^(sub|mul|fma|add)\.(rn\.)?(bf16x2|f16x2)/.test(op)) return "x2 math";
  if (op.startsWith("mov")) return "mov";
  if (op.startsWith("bar") || op.startsWith("barrier")) return "bar";
  return "other";
}

export function mainLoopStats(ptx: string): LoopStats | undefined {
  const lines = ptx.split("\n");
  const labels = new Map<string, number>();
  lines.forEach((l, i) => { const m = /^(\$?[\w$]+):/.exec(l.trim()); if (m) labels.set(m[1]!, i); });
  let best: [number, number] | undefined;
  lines.forEach((l, i) => {
    const m = /\bbra(?:\.uni)?\s+(\$?[\w$]+);/.exec(l);
    if (!m) return;
    const at = labels.get(m[1]!);
    if (at === undefined || at >= i) return;
    if (!lines.slice(at, i).some((x) => /\bmma\.sync/.test(x))) return;
    if (!best || i - at < best[1] - best[0]) best = [at, i];
  });
  if (!best) return undefined;
  const count = (from: number, to: number) => {
    const byOp: Record<string, number> = {};
    let total = 0;
    for (const raw of lines.slice(from, to + 1)) {
      // cuda_bf16.h wraps its instructions in braces: "{ mul.bf16x2 %r1, %r2, %r3; }"
      const l = raw.replace(/\/\/.*$/, "").trim().replace(/^\{\s*/, "").replace(/\s*\}$/, "");
      if (!l.endsWith(";") || l.startsWith(".")) continue;
      const op = l.replace(/^@!?%\w+\s+/, "").split(/\s+/)[0]!.replace(/;$/, "");
      const c = opClass(op);
      byOp[c] = (byOp[c] ?? 0) + 1;
      total++;
    }
    return { total, byOp };
  };
  // Basic blocks of the loop: a label starts one, a branch ends one.
  let hot: [number, number] = best, hotMma = -1, start = best[0];
  for (let i = best[0]; i <= best[1]; i++) {
    const isLabel = /^\$?[\w$]+:/.test(lines[i]!.trim());
    const isBranch = /\bbra(?:\.uni)?\s/.test(lines[i]!);
    if (isLabel && i > start) start = i;
    if (isBranch || i === best[1]) {
      const n = lines.slice(start, i + 1).filter((x) => /\bmma\.sync/.test(x)).length;
      if (n > hotMma) { hotMma = n; hot = [start, i]; }
      start = i + 1;
    }
  }
  return { lines: [best[0] + 1, best[1] + 1], ...count(best[0], best[1]),
    hot: { lines: [hot[0] + 1, hot[1] + 1], ...count(hot[0], hot[1]) } };
}

