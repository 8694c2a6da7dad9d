// The wgmma lowering decisions and code as IR text in -> IR text out: layout inference
// (which gemms take wgmma, the operand swizzles, the `mma` tunable), the gemm's wgmma sequence,
// the overlapped pipeline, and the simplify peephole for the proxy fence.
import { describe, expect, it } from "vitest";
import { parseKernel, parseStmts } from "../../src/ir/parse.ts";
import { printKernel, printStmts } from "../../src/ir/print.ts";
import { CompileError } from "../../src/ir/ir.ts";
import { inferLayouts } from "../../src/passes/infer-layouts.ts";
import { lowerToThreads } from "../../src/passes/lower-threads.ts";
import { simplify } from "../../src/passes/simplify.ts";
import { specialize } from "../../src/passes/specialize.ts";
import { SM80, SM90A, type Target } from "../../src/passes/pipeline.ts";

const gemm = (opts: { tune?: string; transB?: boolean; bk?: number; pipelined?: number } = {}) => {
  const bk = opts.bk ?? 32, tb = opts.transB ?? true;
  const body = `  copy A[by * 128 : +128, k * ${bk} : +${bk}] -> As[0 : +128, 0 : +${bk}]
    copy B[${tb ? `bx * 32 : +32, k * ${bk} : +${bk}` : `k * ${bk} : +${bk}, bx * 32 : +32`}] -> Bs[0 : +${tb ? 32 : bk}, 0 : +${tb ? bk : 32}]
    gemm As[0 : +128, 0 : +${bk}], Bs[0 : +${tb ? 32 : bk}, 0 : +${tb ? bk : 32}] -> acc[0 : +128, 0 : +32]${tb ? " transB" : ""}`;
  return `kernel g(A: global bf16[M, K], B: global bf16[${tb ? "N, K" : "K, N"}], C: global f32[M, N] out)
  dims M, N, K${opts.tune ? `\n  tune ${opts.tune}` : ""}
launch tile grid [cdiv(N, 32), cdiv(M, 128)] threads 256 blocks [bx, by] {
  alloc As: shared bf16[128, ${bk}]
  alloc Bs: shared bf16[${tb ? `32, ${bk}` : `${bk}, 32`}]
  alloc acc: fragment f32[128, 32]
  fill acc[0 : +128, 0 : +32] = 0.0
  for k in ${opts.pipelined ? "pipelined" : "serial"}(0, cdiv(K, ${bk}))${opts.pipelined ? ` stages ${opts.pipelined}` : ""} {
  ${body}
  }
  copy acc[0 : +128, 0 : +32] -> C[by * 128 : +128, bx * 32 : +32]
}
`;
};

const layouts = (src: string, target: Target, config = {}) => {
  const k = inferLayouts(specialize(parseKernel(src, "k.ir"), { config, target }), { config, target });
  return printKernel(k).split("\n").filter((l) => l.includes("alloc")).map((l) => l.trim());
};

describe("inferLayouts and the wgmma decision", () => {
  it("sm_90a: K-major operands with 64-byte rows take wgmma_acc and the 64-byte swizzle", () => {
    expect(layouts(gemm(), SM90A)).toEqual([
      "alloc As: shared bf16[128, 32] layout xor_swizzle(3, 1)",
      "alloc Bs: shared bf16[32, 32] layout xor_swizzle(3, 1)",
      "alloc acc: fragment f32[128, 32] layout wgmma_acc(2, 1)",
    ]);
  });
  it("128-byte rows take the 128-byte swizzle", () => {
    expect(layouts(gemm({ bk: 64 }), SM90A)[0]).toBe("alloc As: shared bf16[128, 64] layout xor_swizzle(7, 0)");
  });
  it("sm_80, mma = \"mma_sync\", and an MN-major B keep mma_acc", () => {
    expect(layouts(gemm(), SM80)[2]).toBe("alloc acc: fragment f32[128, 32] layout mma_acc(4, 2)");
    expect(layouts(gemm({ tune: `mma = ["mma_sync", "auto"]` }), SM90A)[2]).toBe("alloc acc: fragment f32[128, 32] layout mma_acc(4, 2)");
    expect(layouts(gemm({ transB: false }), SM90A)[2]).toBe("alloc acc: fragment f32[128, 32] layout mma_acc(4, 2)");
  });
  it("16 rows (decode): the accumulator is held transposed, C^T = B A^T with n = 16", () => {
    const small = `kernel g(A: global bf16[M, K], B: global bf16[N, K], C: global f32[M, N] out)
  dims M, N, K
launch tile grid [cdiv(N, 64), cdiv(M, 16)] threads 128 blocks [bx, by] {
  alloc As: shared bf16[16, 32]
  alloc Bs: shared bf16[64, 32]
  alloc acc: fragment f32[16, 64]
  fill acc[0 : +16, 0 : +64] = 0.0
  for k in serial(0, cdiv(K, 32)) {
    copy A[by * 16 : +16, k * 32 : +32] -> As[0 : +16, 0 : +32]
    copy B[bx * 64 : +64, k * 32 : +32] -> Bs[0 : +64, 0 : +32]
    gemm As[0 : +16, 0 : +32], Bs[0 : +64, 0 : +32] -> acc[0 : +16, 0 : +64] transB
  }
  copy acc[0 : +16, 0 : +64] -> C[by * 16 : +16, bx * 64 : +64]
}
`;
    expect(layouts(small, SM90A)).toEqual([
      "alloc As: shared bf16[16, 32] layout xor_swizzle(3, 1)",
      "alloc Bs: shared bf16[64, 32] layout xor_swizzle(3, 1)",
      "alloc acc: fragment f32[16, 64] layout wgmma_acc_t(1, 1)",
    ]);
    // Bs (64 rows) is the wgmma's A operand, As (16 rows) its B: m64n16k16.
    expect(lowered(small)).toMatch(/wgmma\.m64n16k16\.bf16 acc\[0\] \+= Bs\[[^\]]*\] sw64 lbo 16 sbo 512, As\[/);
  });
  it("mma = \"wgmma\" on a gemm that cannot use it is a located error", () => {
    const src = gemm({ transB: false, tune: `mma = ["wgmma"]` });
    expect(() => layouts(src, SM90A)).toThrow(CompileError);
    expect(() => layouts(src, SM90A)).toThrow(/k\.ir:\d+:\d+: error: mma = "wgmma": this gemm cannot use wgmma: .*K-major/);
  });
});

const lowered = (src: string) => {
  const k = inferLayouts(specialize(parseKernel(src, "k.ir"), { config: {}, target: SM90A }), { config: {}, target: SM90A });
  return printKernel(simplify(lowerToThreads(k, { config: {}, target: SM90A })));
};
/** The lines from the first line matching `from` through the first later line matching `to`. */
const section = (text: string, from: RegExp, to: RegExp) => {
  const lines = text.split("\n");
  const i = lines.findIndex((l) => from.test(l));
  const j = lines.findIndex((l, n) => n > i && to.test(l));
  return lines.slice(i, j + 1).join("\n") + "\n";
};

describe("lowerToThreads: gemm to wgmma", () => {
  it("a gemm after plain copies: fence, barrier, descriptors per k-step and warpgroup, wait 0", () => {
    expect(section(lowered(gemm()), /fence\.proxy\.async/, /wgmma\.wait/)).toBe(`    fence.proxy.async
    barrier
    let wga: i32 = tx / 128 * 2048
    wgmma.fence
    for kk in unroll(0, 2) {
      wgmma.m64n32k16.bf16 acc[0] += As[wga + kk * 16] sw64 lbo 16 sbo 512, Bs[kk * 16] sw64 lbo 16 sbo 512
    }
    wgmma.commit
    wgmma.wait 0
`);
  });
  it("a 3-stage pipeline keeps one wgmma group in flight and loads one tile ahead", () => {
    const text = lowered(gemm({ pipelined: 3 }));
    expect(section(text, /^  for k in serial/, /^    if \(K % 8 == 0\)/)).toBe(`  for k in serial(0, cdiv(K, 32)) {
    cp.wait 0
    fence.proxy.async
    barrier
    if (K % 8 == 0) {
`);
    expect(section(text, /let wga/, /^  barrier/)).toBe(`    let wga: i32 = k % 3 * 4096 + tx / 128 * 2048
    wgmma.fence
    for kk in unroll(0, 2) {
      wgmma.m64n32k16.bf16 acc[0] += As[wga + kk * 16] sw64 lbo 16 sbo 512, Bs[k % 3 * 1024 + kk * 16] sw64 lbo 16 sbo 512
    }
    wgmma.commit
    wgmma.wait 1
  }
  wgmma.wait 0
  cp.wait 0
  barrier
`);
    // The refill goes to the stage of tile k + 1, two behind the one being multiplied.
    expect(text).toMatch(/cp\.async As\[\(k \+ 1\) % 3 \* 4096 \+/);
  });
  it("a 2-stage pipeline has no stage to spare: each gemm waits for its own group", () => {
    const text = lowered(gemm({ pipelined: 2 }));
    expect(text).toContain("wgmma.wait 0\n  }");
    expect(text).not.toContain("wgmma.wait 1");
  });
});

describe("simplify: the proxy fence between two barriers", () => {
  it("moves before the first barrier, which then serves both", () => {
    const body = parseStmts("store S[tx] = 1.0\nbarrier\nfence.proxy.async\nbarrier\nwgmma.fence\n");
    const k = parseKernel(`kernel k()
launch thread grid [1] threads 128 blocks [bx] thread tx {
  alloc S: shared f32[128]
}
`);
    const out = simplify({ ...k, launch: { ...k.launch, body: [...k.launch.body, ...body] } });
    expect(printStmts(out.launch.body)).toBe(`alloc S: shared f32[128]
store S[tx] = 1.0
fence.proxy.async
barrier
wgmma.fence
`);
  });
});
