// The interpreter's wgmma on hand-written thread-level kernels: descriptor addressing without
// swizzle (core matrices, lbo/sbo), the m64nNk16 D-fragment layout (read back with the PTX
// formula written out here), scale-d = 0, and the faults for misuse. Also the descriptor bits.
import { describe, expect, it } from "vitest";
import { parseKernel, parseStmts } from "../../src/ir/parse.ts";
import { runKernel } from "../../src/interp/index.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import { fragmentCoord } from "../../src/layout/fragment.ts";
import { wgmmaDescriptor } from "../../src/layout/wgmma.ts";
import { int } from "../../src/ir/ir.ts";
import { evalConst } from "../../src/ir/expr.ts";
import { wgmmaLines } from "../../src/codegen/cuda/wgmma.ts";

// A [64, 16] and B [8, 16] staged into the no-swizzle canonical layout: element (r, k) at byte
// (r % 8) * 16 + (r / 8) * sbo + (k % 8) * 2 + (k / 8) * lbo, lbo = 128, sbo = 256 (in elements:
// 64 and 128). D read back: d[i] of thread t at row 16 (t / 32) + (t % 32) / 4 + 8 (i / 2),
// col 2 (t % 4) + i % 2.
const kernel = (opts: { wgmma?: string; wait?: string; aIdx?: string } = {}) => `kernel w(A: global bf16[64, 16], B: global bf16[8, 16], D: global f32[64, 8] out)
launch thread grid [1] threads 128 blocks [bx] thread tx {
  alloc As: shared bf16[1024]
  alloc Bs: shared bf16[128]
  alloc acc: local f32[4]
  for i in serial(0, 8) {
    let e: i32 = i * 128 + tx
    let r: i32 = e / 16
    let k: i32 = e % 16
    store As[r % 8 * 8 + r / 8 * 128 + k % 8 + k / 8 * 64] = A[r, k]
  }
  let r: i32 = tx / 16
  let k: i32 = tx % 16
  store Bs[r * 8 + k % 8 + k / 8 * 64] = B[r, k]
  fence.proxy.async
  barrier
  wgmma.fence
  ${opts.wgmma ?? `wgmma.m64n8k16.bf16 acc[0] = As[${opts.aIdx ?? "0"}] sw0 lbo 128 sbo 256, Bs[0] sw0 lbo 128 sbo 256`}
  wgmma.commit
  ${opts.wait ?? "wgmma.wait 0"}
  for i in unroll(0, 4) {
    store D[tx / 32 * 16 + tx % 32 / 4 + i / 2 * 8, tx % 4 * 2 + i % 2] = acc[i]
  }
}
`;

function run(src: string) {
  const A = randomTensor("bf16", [64, 16], 1), B = randomTensor("bf16", [8, 16], 2), D = zeros("f32", [64, 8]);
  runKernel(parseKernel(src), { tensors: { A, B, D } }, { raceCheck: true });
  return { A, B, D };
}

describe("interpreter: wgmma", () => {
  it("computes D = A B^T from core-matrix operands into the m64nNk16 D layout (scale-d 0 ignores garbage)", () => {
    const { A, B, D } = run(kernel());
    for (let m = 0; m < 64; m++)
      for (let n = 0; n < 8; n++) {
        let want = 0;
        for (let k = 0; k < 16; k++) want += A.data[m * 16 + k]! * B.data[n * 16 + k]!;
        expect(D.data[m * 8 + n]).toBeCloseTo(Math.fround(want), 5);
      }
  });
  it("scale-d 1 adds to what the accumulator holds (uninitialised: NaN)", () => {
    const { D } = run(kernel({ wgmma: "wgmma.m64n8k16.bf16 acc[0] += As[0] sw0 lbo 128 sbo 256, Bs[0] sw0 lbo 128 sbo 256" }));
    expect(D.data.every((x) => Number.isNaN(x))).toBe(true);
  });
  it("the layout module's wgmma_acc coordinates agree with the PTX formula", () => {
    const s = { rows: 128, cols: 64, threads: 256 };
    const seen = new Set<string>();
    for (let t = 0; t < 256; t++)
      for (let slot = 0; slot < 32; slot++) {
        const c = fragmentCoord({ kind: "wgmma_acc", wgM: 1, wgN: 2 }, s, int(t), slot);
        const row = evalConst(c.row)!, col = evalConst(c.col)!;
        const g = Math.floor(t / 128), w = Math.floor((t % 128) / 32), l = t % 32;
        expect([row, col]).toEqual([16 * w + Math.floor(l / 4) + 8 * ((slot >> 1) & 1) + 64 * Math.floor(slot / 16),
          32 * g + 8 * Math.floor((slot % 16) / 4) + 2 * (l % 4) + (slot & 1)]);
        seen.add(`${row},${col}`);
      }
    expect(seen.size).toBe(128 * 64);
  });
  it("reports shared memory written through the generic proxy and read by wgmma without fence.proxy.async", () => {
    expect(() => run(kernel().replace("  fence.proxy.async\n", ""))).toThrow(/written by thread \d+ with no fence.proxy.async after the write/);
    // The fence must come after the write: fencing first and writing after does not count.
    const late = kernel().replace("  fence.proxy.async\n", "").replace("  for i in serial(0, 8) {", "  fence.proxy.async\n  for i in serial(0, 8) {");
    expect(() => run(late)).toThrow(/missing fence.proxy.async/);
  });
  it("reports a wgmma never retired by a wait", () => {
    expect(() => run(kernel({ wait: "" }))).toThrow(/never retired by a wgmma.wait/);
  });
  it("reports operand addresses that differ across the warpgroup", () => {
    expect(() => run(kernel({ aIdx: "tx / 64 * 8" }))).toThrow(/uniform across the warpgroup/);
  });
  it("reads operands when the group is retired: shared memory written before the wait is what it multiplies", () => {
    // Zeroing A between the commit and the wait must change the result (the hardware may read late).
    const src = kernel({ wait: "barrier\n  for i in serial(0, 8) {\n    store As[i * 128 + tx] = 0.0\n  }\n  fence.proxy.async\n  barrier\n  wgmma.wait 0" });
    const { D } = run(src);
    expect(D.data.every((x) => x === 0)).toBe(true);
  });
});

describe("matrix descriptor bits", () => {
  it("packs address, lbo, sbo (>> 4) and the swizzle code", () => {
    expect(wgmmaDescriptor(0x400, 128, 16, 1024)).toBe(0x4000004000010040n);
    expect(wgmmaDescriptor(0x1230, 0, 128, 256)).toBe(0x0000001000080123n);
    expect(wgmmaDescriptor(0x40010, 32, 16, 256) >> 62n).toBe(3n);
    expect(wgmmaDescriptor(0x40010, 32, 16, 256) & 0x3fffn).toBe(1n); // address bits above 17 are dropped
  });
  it("the CUDA emitter's run-time descriptor ORs the address into the same constant fields", () => {
    const s = parseStmts("wgmma.m64n64k16.f16 acc[0] += As[0] sw128 lbo 16 sbo 1024, Bs[0] sw32 lbo 16 sbo 256")[0] as never;
    const text = wgmmaLines(s, "&acc[0]", "&As[0]", "&Bs[0]").join("\n");
    const consts = [...text.matchAll(/0x([0-9a-f]+)ull/g)].map((m) => BigInt(`0x${m[1]}`));
    expect(consts).toEqual([wgmmaDescriptor(0, 128, 16, 1024), wgmmaDescriptor(0, 32, 16, 256)]);
    expect(text).toContain("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1,");
    expect(text).toContain("%31}, %32, %33, p, 1, 1, 0, 0;");
    expect(text).toContain("setp.ne.b32 p, 1, 0;");
  });
});
