// The TMA lowering decision and code as IR text in -> IR text out (lower-pipeline-tma.ts):
// which pipelined loops take TMA, the tensor maps, the mbarrier protocol and the run-time
// fallback, against a golden of the printed thread-level kernel.
// UPDATE_GOLDEN=1 npx vitest run test/tma/lower.test.ts rewrites the golden (review the diff).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { cudaTarget, lower, type Target } from "../../src/passes/pipeline.ts";
import { gemmText } from "../wgmma/gemm-text.ts";

// The plain TMA pipeline (warp specialization, the sm_90a default, has its own tests: ws.test.ts).
const TMA = cudaTarget("sm_90a", "wgmma", "tma", undefined, false);
const lowered = (src: string, config: Record<string, number>, target: Target = TMA) => printKernel(lower(parseKernel(src, "g.ir"), config, target));
const cfg = { BM: 64, BN: 64, BK: 64, warps: 4 };

describe("lower-pipeline-tma: IR text in -> IR text out", () => {
  it("the 3-stage gemm: tensor maps, full/empty mbarriers, S-1 tiles ahead, the cp.async fallback (golden)", () => {
    const out = lowered(gemmText(3), cfg);
    const url = new URL("./golden/gemm_tma.ir.txt", import.meta.url);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(url, out);
    else {
      if (!existsSync(url)) throw new Error("missing golden gemm_tma.ir.txt; run with UPDATE_GOLDEN=1");
      expect(out).toBe(readFileSync(url, "utf8"));
    }
  });

  it("the protocol's key lines, spelled out", () => {
    const out = lowered(gemmText(4), { BM: 128, BN: 64, BK: 32, warps: 8 });
    expect(out).toContain("tensormap tmap_A = A box [128, 32] swizzle 64");
    expect(out).toContain("tensormap tmap_B = B box [64, 32] swizzle 64");
    expect(out).toContain("alloc bars: shared i64[8]");
    expect(out).toMatch(/mbar\.init bars\[3\] count 1\n\s+mbar\.init bars\[4\] count 2/); // full: 1 producer; empty: 2 warpgroups
    expect(out).toMatch(/for p in unroll\(0, 3\)/);                                       // S - 1 = 3 tiles ahead
    expect(out).toContain("mbar.arrive bars[p] tx 12288");                                // (128 + 64) * 32 * 2 bytes
    expect(out).toContain("mbar.wait bars[k % 4] parity k / 4 & 1");
    expect(out).toContain("if (k > 0 && tx % 128 == 0) {\n        mbar.arrive bars[(k - 1) % 4 + 4]");
    expect(out).toContain("mbar.wait bars[(k + 3) % 4 + 4] parity (k + 3) / 4 - 1 & 1");
    expect(out).toContain("tma.load Bs[(k + 3) % 4 * 2048] <- tmap_B[bx * 64, (k + 3) * 32] bar bars[(k + 3) % 4]");
    expect(out).toMatch(/if \(M > 0 && K > 0 && K % 8 == 0 && N > 0\) \{/);
    expect(out).toMatch(/\} else \{[\s\S]*cp\.async/);
  });

  it("sm_90a uses TMA by default; not with --copy cp.async, 2 stages (no wgmma overlap) or without wgmma", () => {
    expect(lowered(gemmText(3), cfg, cudaTarget("sm_90a"))).toContain("tma.load");
    expect(lowered(gemmText(3), cfg, cudaTarget("sm_90a", "wgmma", "cp.async"))).not.toContain("tma.load");
    expect(lowered(gemmText(2), cfg)).not.toContain("tma.load");
    expect(lowered(gemmText(3), cfg, cudaTarget("sm_90a", "mma", "tma"))).not.toContain("tma.load");
  });

  it("a copy that fills only part of its tile stays on cp.async", () => {
    const src = gemmText(3).replace("copy A[by * BM : +BM, k * BK : +BK] -> As[0 : +BM, 0 : +BK]",
      "copy A[by * BM : +32, k * BK : +BK] -> As[0 : +32, 0 : +BK]");
    expect(src).toContain("-> As[0 : +32, 0 : +BK]");
    const out = lowered(src, cfg);
    expect(out).toContain("wgmma.m64n64k16");
    expect(out).toContain("cp.async As");
    expect(out).not.toContain("tma.load");
  });
});
