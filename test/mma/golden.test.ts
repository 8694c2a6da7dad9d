// The IR text of one small lowered gemm, pinned: 2 warps (2x1), 32x16x32, B stored [N, K],
// both tiles xor-swizzled, B at a stage offset. A diff here is a change to emitted code.
import { describe, expect, it } from "vitest";
import { int, v } from "../../src/ir/ir.ts";
import { parseStmts } from "../../src/ir/parse.ts";
import { printStmts } from "../../src/ir/print.ts";
import { swizzleFor } from "../../src/layout/swizzle.ts";
import { lowerGemmMma } from "../../src/passes/lower-gemm-mma.ts";

const expected = `
alloc af0: local bf16[16]
alloc bf1: local bf16[16]
let lane2: i32 = tx % 32
let warp3: i32 = tx / 32
let arow4: i32 = (warp3 * 16 + lane2 % 8 + (lane2 / 8 & 1) * 8) * 32
let achunk5: i32 = lane2 / 8 >> 1
let axor6: i32 = lane2 % 8 >> 1 & 3
let brow7: i32 = (lane2 % 8 + (lane2 / 8 >> 1) * 8) * 32
let bchunk8: i32 = lane2 / 8 & 1
ldmatrix.x4 af0[0] <- As[arow4 + (achunk5 ^ axor6) * 8]
ldmatrix.x4 bf1[0] <- Bs[1024 + (brow7 + (bchunk8 ^ axor6) * 8)]
for kk9 in unroll(0, 2) {
  if (kk9 + 1 < 2) {
    ldmatrix.x4 af0[(kk9 + 1) % 2 * 8] <- As[arow4 + (achunk5 + (kk9 + 1) * 2 ^ axor6) * 8]
    ldmatrix.x4 bf1[(kk9 + 1) % 2 * 8] <- Bs[1024 + (brow7 + (bchunk8 + (kk9 + 1) * 2 ^ axor6) * 8)]
  }
  for j10 in unroll(0, 2) {
    mma.bf16 acc[j10 * 4] = af0[kk9 % 2 * 8] * bf1[kk9 % 2 * 8 + j10 * 4] + acc[j10 * 4]
  }
}
`;

describe("lowerGemmMma IR text", () => {
  it("matches the pinned text and re-parses to the same statements", () => {
    let n = 0;
    const r = lowerGemmMma({
      a: { buf: "As", base: int(0), rows: 32, cols: 32, layout: swizzleFor(32) },
      b: { buf: "Bs", base: int(1024), rows: 16, cols: 32, layout: swizzleFor(32) },
      transA: false, transB: true,
      c: { buf: "acc", rows: 32, cols: 16, warpsM: 2, warpsN: 1 },
      atype: "bf16", threads: 64, tx: v("tx"), fresh: (h) => `${h}${n++}`,
    });
    const text = printStmts([...r.allocs, ...r.body]).trim();
    expect(text).toBe(expected.trim());
    expect(printStmts(parseStmts(text)).trim()).toBe(text);
  });
});
