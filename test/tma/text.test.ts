// The IR text of the TMA path reads back: parse(print(k)) gives k for a lowered TMA kernel
// (tensormap header lines, mbar.* and tma.load statements), and bad spellings are located errors.
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { cudaTarget, lower } from "../../src/passes/pipeline.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { gemmText } from "../wgmma/gemm-text.ts";

const TMA = cudaTarget("sm_90a", "wgmma", "tma");
const strip = (x: unknown): unknown => JSON.parse(JSON.stringify(x, (k, v) => (k === "loc" ? undefined : v)));

describe("TMA IR text", () => {
  it("a lowered TMA gemm round-trips through print and parse, and verifies", () => {
    const k = lower(parseKernel(gemmText(4), "g.ir"), { BM: 128, BN: 64, BK: 32, warps: 8 }, TMA);
    const text = printKernel(k);
    expect(text).toContain("tma.load");
    const back = parseKernel(text, "back.ir");
    expect(strip(back)).toEqual(strip(k));
    expect(printKernel(back)).toBe(text);
    expect(verifyErrors(back)).toEqual([]);
  });

  it("statements parse one by one", () => {
    const src = `kernel t(A: global bf16[M, K])
  dims M, K
  tensormap tmap_A = A box [64, 32] swizzle 64
launch thread grid [1] threads 128 blocks [b] thread tx {
  alloc As: shared bf16[2048]
  alloc bars: shared i64[2]
  mbar.init bars[0] count 1
  mbar.fence_init
  barrier
  mbar.arrive bars[0] tx 4096
  tma.load As[0] <- tmap_A[0, 0] bar bars[0]
  mbar.arrive bars[1]
  mbar.wait bars[0] parity 0
}
`;
    const k = parseKernel(src, "t.ir");
    expect(k.tensorMaps).toEqual([{ name: "tmap_A", tensor: "A", box: [64, 32], swizzle: 64 }]);
    expect(printKernel(k)).toBe(src);
    expect(verifyErrors(k)).toEqual([]);
  });

  it("misspellings are located errors", () => {
    const head = "kernel t()\nlaunch thread grid [1] threads 128 blocks [b] thread tx {\n  alloc bars: shared i64[2]\n";
    expect(() => parseKernel(`${head}  mbar.init bars[0]\n}\n`, "t.ir")).toThrow(/t\.ir:4:\d+: .*expected 'mbar\.init B count N'/);
    expect(() => parseKernel(`${head}  mbar.wait bars[0] phase 0\n}\n`, "t.ir")).toThrow(/t\.ir:4:\d+: .*expected 'parity', got 'phase'/);
    expect(() => parseKernel("kernel t(A: global bf16[M])\n  dims M\n  tensormap m = A box [64] swizzle 48\nlaunch thread grid [1] threads 32 blocks [b] thread tx {\n}\n", "t.ir"))
      .toThrow(/t\.ir:3:\d+: .*swizzle is 0, 32, 64 or 128, got 48/);
  });
});
