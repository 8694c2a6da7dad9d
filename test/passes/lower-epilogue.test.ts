// The staged wgmma epilogue (lower-epilogue.ts): a 16-bit output leaves through a swizzled
// shared tile placed over a dead operand tile, in 16-byte vectors. The lowered epilogue as IR
// text, the IR text and verifier rules of `over`, the interpreter against the tile level on
// every path that takes it (cp.async, TMA, warp-specialized), the race a missing barrier
// makes visible through the overlay, and where it is not taken.
import { describe, expect, it } from "vitest";
import { inputs, lowerChecked, maxRelErr, runBoth } from "./harness.ts";
import { gemmText } from "../wgmma/gemm-text.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import type { Kernel, Stmt } from "../../src/ir/ir.ts";
import { runKernel } from "../../src/interp/index.ts";
import { SM80, SM90A, cudaTarget, lower, type Target } from "../../src/passes/pipeline.ts";
import { parseKernels } from "../../src/frontend/index.ts";

const TMA = cudaTarget("sm_90a", "wgmma", "tma", undefined, false);
const WS = cudaTarget("sm_90a", "wgmma", "tma", undefined, true);
const cfg = { BM: 64, BN: 64, BK: 32, warps: 4 };
/** Warp-specialized persistent blocks: the running pipeline (the producer refills the stages
 *  while the consumers run the epilogue). */
const WSP = (P: number): Target => ({ ...WS, persistentBlocks: P });

/** The lowered text from the main loop's last wgmma wait to the end of the kernel. */
function epilogueText(k: Kernel): string {
  const text = printKernel(k);
  const at = text.lastIndexOf("wgmma.wait 0");
  return at < 0 ? "" : text.slice(text.lastIndexOf("\n", at) + 1);
}

describe("staged epilogue: IR text out", () => {
  it("bf16 output on the wgmma path: staging tile over the dead A tile, bounds-guarded writes, 16-byte vectors out", () => {
    const k = lowerChecked(parseKernel(gemmText(3, "bf16"), "g.ir"), cfg, SM90A);
    expect(epilogueText(k)).toBe(`  wgmma.wait 0
  cp.wait 0
  barrier
  alloc acc_out: shared bf16[4096] layout xor_swizzle(7, 0) over As
  for s_1 in unroll(0, 16) {
    let r_1: i32 = tx / 128 * 64 + s_1 / 16 * 64 + (tx % 128 / 32 * 16 + tx % 32 / 4 + (s_1 % 16 * 2 >> 1 & 1) * 8)
    let c_1: i32 = s_1 % 16 / 2 * 8 + tx % 4 * 2
    if (by * 64 + r_1 < M && bx * 64 + c_1 < N) {
      vcopy acc_out[r_1 * 64 + (c_1 / 8 ^ r_1 >> 0 & 7) * 8 + c_1 % 8] <- acc[s_1 * 2] lanes 2 convert if (true)
    }
  }
  barrier
  if (N % 8 == 0) {
    for it_8 in unroll(0, 4) {
      let u_8: i32 = it_8 * 128 + tx
      vcopy C[by * 64 + u_8 / 8, bx * 64 + u_8 % 8 * 8] <- acc_out[u_8 / 8 * 64 + (u_8 % 8 ^ u_8 / 8 >> 0 & 7) * 8] lanes 8 if (by * 64 + u_8 / 8 < M && bx * 64 + u_8 % 8 * 8 + 8 <= N)
    }
  } else {
    for it_9 in serial(0, 32) {
      let u_9: i32 = it_9 * 128 + tx
      vcopy C[by * 64 + u_9 / 64, bx * 64 + u_9 % 64] <- acc_out[u_9 / 64 * 64 + (u_9 % 64 / 8 ^ u_9 / 64 >> 0 & 7) * 8 + u_9 % 8] lanes 1 if (by * 64 + u_9 / 64 < M && bx * 64 + u_9 % 64 < N)
    }
  }
  barrier
}
`);
    // No shared memory of its own: the block's bytes are the operand tiles' (3 stages each).
    expect(k.smemBytes).toBe(3 * (64 * 32 + 64 * 32) * 2);
  });

  it("is not taken for f32 outputs, the mma.sync path, persistent blocks, or without a large enough dead host", () => {
    const has = (src: string, target: Target, c = cfg) => printKernel(lowerChecked(parseKernel(src, "g.ir"), c, target)).includes(" over ");
    expect(has(gemmText(3, "bf16"), SM90A)).toBe(true);
    expect(has(gemmText(3), SM90A)).toBe(false); // f32: pairs leave as 8-byte vectors already
    expect(has(gemmText(3, "bf16"), SM80)).toBe(false);
    // Persistent without warp specialization: the per-element stores (no staging at all).
    expect(printKernel(lowerChecked(parseKernel(gemmText(3, "bf16"), "g.ir"), cfg, { ...SM90A, persistentBlocks: 4 }))).not.toContain("acc_out");
    // Operand tiles too small for the 64x128 output tile (2 stages of 16 columns).
    expect(has(gemmText(2, "bf16"), SM90A, { BM: 64, BN: 128, BK: 16, warps: 4 })).toBe(false);
  });
});

describe("staged epilogue in warp-specialized persistent blocks: a staging tile of its own", () => {
  it("is allocated beside the stages (no `over`), written without a barrier in front, read out, then the consumers' barrier", () => {
    const k = lowerChecked(parseKernel(gemmText(3, "bf16"), "g.ir"), cfg, WSP(4));
    const text = printKernel(k);
    expect(text).toContain("  alloc acc_out: shared bf16[4096] layout xor_swizzle(7, 0)\n");
    // Operand stages + 6 mbarriers (128 bytes) + the 64x64 bf16 staging tile.
    expect(k.smemBytes).toBe(3 * (64 * 32 + 64 * 32) * 2 + 128 + 64 * 64 * 2);
    // From the cp.async fallback's last wait (the TMA path's `pipe = ...; barrier 1, 128` is
    // above it) to the end: the staging writes, the consumers' barrier, the copy-out and one
    // closing `barrier 1, 128` (the tile loop's own merged into it by simplify).
    expect(epilogueText(k)).toBe(`        wgmma.wait 0
        cp.wait 0
        barrier 1, 128
      }
      for s_1 in unroll(0, 16) {
        let r_1: i32 = tx / 128 * 64 + s_1 / 16 * 64 + (tx % 128 / 32 * 16 + tx % 32 / 4 + (s_1 % 16 * 2 >> 1 & 1) * 8)
        let c_1: i32 = s_1 % 16 / 2 * 8 + tx % 4 * 2
        if (by * 64 + r_1 < M && bx * 64 + c_1 < N) {
          vcopy acc_out[r_1 * 64 + (c_1 / 8 ^ r_1 >> 0 & 7) * 8 + c_1 % 8] <- acc[s_1 * 2] lanes 2 convert if (true)
        }
      }
      barrier 1, 128
      if (N % 8 == 0) {
        for it_8 in unroll(0, 4) {
          let u_8: i32 = it_8 * 128 + tx
          vcopy C[by * 64 + u_8 / 8, bx * 64 + u_8 % 8 * 8] <- acc_out[u_8 / 8 * 64 + (u_8 % 8 ^ u_8 / 8 >> 0 & 7) * 8] lanes 8 if (by * 64 + u_8 / 8 < M && bx * 64 + u_8 % 8 * 8 + 8 <= N)
        }
      } else {
        for it_9 in serial(0, 32) {
          let u_9: i32 = it_9 * 128 + tx
          vcopy C[by * 64 + u_9 / 64, bx * 64 + u_9 % 64] <- acc_out[u_9 / 64 * 64 + (u_9 % 64 / 8 ^ u_9 / 64 >> 0 & 7) * 8 + u_9 % 8] lanes 1 if (by * 64 + u_9 / 64 < M && bx * 64 + u_9 % 64 < N)
        }
      }
      barrier 1, 128
    }
  }
}
`);
  });

  it("only where the block's shared memory holds it: 128x256x64 with 3 stages (208 KB) yes, 4 stages (256 KB) no", () => {
    const staged = (stages: number) => {
      const k = lowerChecked(parseKernel(gemmText(stages, "bf16"), "g.ir"), { BM: 128, BN: 256, BK: 64, warps: 8 }, WSP(132));
      return { staged: printKernel(k).includes("alloc acc_out: shared bf16[32768]"), smem: k.smemBytes };
    };
    expect(staged(3)).toEqual({ staged: true, smem: 3 * (128 + 256) * 64 * 2 + 128 + 128 * 256 * 2 });
    expect(staged(4)).toEqual({ staged: false, smem: 4 * (128 + 256) * 64 * 2 + 128 });
  });

  const cases: [string, Record<string, number>, number, Record<string, number>][] = [
    ["1 consumer warpgroup, 9 tiles on 4 blocks, N % 8 != 0", cfg, 4, { M: 130, N: 133, K: 96 }],
    ["2 consumer warpgroups, 9 tiles on 2 blocks, 1 K tile a tile", { BM: 128, BN: 64, BK: 32, warps: 8 }, 2, { M: 257, N: 136, K: 32 }],
  ];
  for (const [name, c, P, dims] of cases) {
    it(`interpreter against the tile level: ${name}, race check on`, () => {
      const r = runBoth(gemmText(3, "bf16"), c, WSP(P), { dims, seed: 7 });
      const text = printKernel(r.thread);
      expect({ own: /alloc acc_out: shared bf16\[\d+\] layout xor_swizzle\(7, 0\)\n/.test(text), running: text.includes("pipe = pipe + ") }).toEqual({ own: true, running: true });
      expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      runKernel(r.thread, { tensors: inputs(r.thread, dims, 8) }, { raceCheck: true });
    });
  }

  it("reports the race on the staging tile when no consumer barrier orders a tile's copy-out before the next tile's staging writes", () => {
    const k = lowerChecked(parseKernel(gemmText(3, "bf16"), "g.ir"), cfg, WSP(2));
    // In the consumers' tile loop: drop the closing `barrier 1, 128` after the copy-out and the
    // one that closes the TMA main loop (the only consumer barriers between the two).
    let dropped = 0;
    const edit = (ss: Stmt[], inTile: boolean): Stmt[] => ss.flatMap((s): Stmt[] => {
      if (inTile && s.k === "named_barrier" && s.id === 1) {
        const after = ss.slice(ss.indexOf(s) + 1);
        if (after.length === 0) { dropped++; return []; }
      }
      if (s.k === "for") return [{ ...s, body: edit(s.body, inTile || s.vars[0]!.startsWith("tile_it")) }];
      if (s.k === "if") return [{ ...s, then: edit(s.then, inTile), else: inTile ? s.else : edit(s.else, inTile) }];
      return [s];
    });
    const edited: Kernel = { ...k, launch: { ...k.launch, body: edit(k.launch.body, false) } };
    expect(dropped).toBe(2);
    const dims = { M: 64, N: 256, K: 64 }; // 4 tiles on 2 blocks
    runKernel(k, { tensors: inputs(k, dims, 1) }, { raceCheck: true });
    expect(() => runKernel(edited, { tensors: inputs(edited, dims, 1) }, { raceCheck: true })).toThrow(/data race on shared acc_out\[\d+\]/);
  });
});

describe("staged epilogue inside an `if`: a tile of its own where the block is alone on its SM, else over a dead operand tile", () => {
  // moe_gemm_up_permuted stores its whole tiles under `if (r0 + BM <= BS)` (block-uniform at the
  // tile level): the operand tiles allocated before it are dead there, as for a top-level copy.
  const up = parseKernels("dsl-examples/moe_gemm_up.ts").find((k) => k.name === "moe_gemm_up_permuted")!;
  const lowered = (c: Record<string, number>) => printKernel(lower(up, c, SM90A));
  it("128x128x64, 3 stages, 8 warps (144 KB of stages: one block an SM): a tile of its own, no barrier in front", () => {
    const text = lowered({ BM: 128, BN: 128, BK: 64, stages: 3, warps: 8, GROUP_M: 8 });
    expect(text).toMatch(/\n {2}if \(r0 \+ 128 <= BS\) \{\n {4}alloc gate_out: shared bf16\[16384\] layout xor_swizzle\(7, 0\)\n {4}for s_\d+ in unroll/);
  });
  it("64x64x64, 3 stages, 4 warps (a few blocks an SM): over As, a barrier in front", () => {
    const text = lowered({ BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, GROUP_M: 8 });
    expect(text).toMatch(/\n {2}if \(r0 \+ 64 <= BS\) \{\n {4}alloc gate_out: shared bf16\[4096\] layout xor_swizzle\(7, 0\) over As\n {4}barrier\n {4}for s_\d+ in unroll/);
  });
  it("not over a tile that is used after the copy, here after the `if`", () => {
    const text = `
kernel t(A: global bf16[M, K], B: global bf16[N, K], C: global bf16[M, N] out)
  dims M, N, K
launch tile grid [cdiv(N, 64), cdiv(M, 64)] threads 128 blocks [bx, by] {
  alloc Ts: shared bf16[64, 64]
  alloc As: shared bf16[64, 32]
  alloc Bs: shared bf16[64, 32]
  alloc acc: fragment f32[64, 64]
  fill acc[0 : +64, 0 : +64] = 0.0
  for k in pipelined(0, cdiv(K, 32)) stages 3 {
    copy A[by * 64 : +64, k * 32 : +32] -> As[0 : +64, 0 : +32]
    copy B[bx * 64 : +64, k * 32 : +32] -> Bs[0 : +64, 0 : +32]
    gemm As[0 : +64, 0 : +32], Bs[0 : +64, 0 : +32] -> acc[0 : +64, 0 : +64] transB
  }
  if (by * 64 < M) {
    copy acc[0 : +64, 0 : +64] -> C[by * 64 : +64, bx * 64 : +64]
  }
  copy A[0 : +64, 0 : +64] -> Ts[0 : +64, 0 : +64]
}
`;
    const out = printKernel(lowerChecked(parseKernel(text, "t.ir"), {}, SM90A));
    // Ts comes first and is large enough, but the copy after the if writes it.
    expect(out).toContain("over As");
    expect(printKernel(lowerChecked(parseKernel(text.replace("  copy A[0 : +64, 0 : +64] -> Ts[0 : +64, 0 : +64]\n", ""), "t.ir"), {}, SM90A))).toContain("over Ts");
  });
});

describe("over: IR text and verifier", () => {
  const text = (decl: string) => `kernel t(A: global bf16[N])
  dims N
launch thread grid [1] threads 32 blocks [b] thread tx {
  alloc X: shared bf16[64]
  ${decl}
  store A[tx] = X[tx]
}
`;
  it("round-trips, with a converting pair store", () => {
    const conv = text("alloc Y: shared bf16[32] over X").replace("  store A[tx] = X[tx]", "  alloc R: local f32[2]\n  vcopy Y[tx % 16 * 2] <- R[0] lanes 2 convert if (tx < 16)\n  store A[tx] = X[tx]");
    const k2 = parseKernel(conv, "t.ir");
    expect(printKernel(k2)).toBe(conv);
    expect(verifyErrors(k2)).toEqual([]);
    expect(verifyErrors(parseKernel(conv.replace("lanes 2 convert", "lanes 4 convert"), "t.ir")).join("\n")).toMatch(/vcopy convert takes 2 lanes of f32 into bf16 or f16, got 4 lanes/);
  });
  it("round-trips", () => {
    const k = parseKernel(text("alloc Y: shared bf16[32] over X"), "t.ir");
    expect(printKernel(k)).toBe(text("alloc Y: shared bf16[32] over X"));
    expect(verifyErrors(k)).toEqual([]);
  });
  it("rejects a host that is missing, not shared, or of another dtype", () => {
    expect(verifyErrors(parseKernel(text("alloc Y: shared bf16[32] over Z"), "t.ir")).join("\n")).toMatch(/placed over 'Z', which is not a shared buffer allocated before it/);
    expect(verifyErrors(parseKernel(text("alloc Y: shared f16[32] over X"), "t.ir")).join("\n")).toMatch(/both must have one dtype/);
    expect(verifyErrors(parseKernel(text("alloc Y: local bf16[32] over X"), "t.ir")).join("\n")).toMatch(/only shared buffers can be placed over another/);
  });
});

describe("staged epilogue: interpreter against the tile level", () => {
  const cases: [string, Record<string, number>, Target, number, Record<string, number>][] = [
    ["cp.async, 1 warpgroup, N % 8 != 0 (element copy-out)", cfg, SM90A, 3, { M: 70, N: 61, K: 96 }],
    ["cp.async, 2 warpgroups, 128x128", { BM: 128, BN: 128, BK: 64, warps: 8 }, SM90A, 3, { M: 130, N: 136, K: 64 }],
    ["TMA, host larger than the tile", { BM: 64, BN: 128, BK: 64, warps: 4 }, TMA, 3, { M: 65, N: 200, K: 128 }],
    ["warp-specialized TMA", { BM: 128, BN: 64, BK: 32, warps: 8 }, WS, 3, { M: 129, N: 72, K: 96 }],
  ];
  for (const [name, c, target, stages, dims] of cases) {
    it(name, () => {
      const r = runBoth(gemmText(stages, "bf16"), c, target, { dims, seed: 5 });
      expect(printKernel(r.thread)).toContain(" over ");
      expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      // And with the race check on (the overlay shares the host's access history).
      runKernel(r.thread, { tensors: inputs(r.thread, dims, 6) }, { raceCheck: true });
    });
  }

  it("reports the race when the barrier before the staging writes is missing", () => {
    const k = lowerChecked(parseKernel(gemmText(3, "bf16"), "g.ir"), cfg, SM90A);
    // Drop the barriers between the main loop and the first staging write.
    const drop = (list: Stmt[]): Stmt[] => {
      const at = list.findIndex((s) => s.k === "alloc" && s.buf.over !== undefined);
      if (at < 0) return list;
      const first = list.findIndex((s, i) => i > at && s.k === "for");
      let start = at;
      while (start > 0 && (list[start - 1]!.k === "barrier" || list[start - 1]!.k === "cp_wait")) start--;
      return list.filter((s, i) => !(s.k === "barrier" && i >= start && i < first));
    };
    const edited: Kernel = { ...k, launch: { ...k.launch, body: drop(k.launch.body) } };
    expect(printKernel(edited).split("barrier").length).toBeLessThan(printKernel(k).split("barrier").length);
    expect(() => runKernel(edited, { tensors: inputs(edited, { M: 64, N: 64, K: 64 }, 1) }, { raceCheck: true })).toThrow(/data race on shared acc_out\[\d+\]: read by thread \d+ and written by thread/);
  });
});

describe("staged epilogue of a row scatter (`copy acc -> Y rows yrow` inside an `if`, bf16 rows)", () => {
  // Tile row i leaves for global row M - 1 - (by * BM + i) (reversed), every third row dropped
  // (-1): the copy sits inside a block-uniform `if`, as the MoE pairs kernels' does.
  const scatterText = (stages: number) => `
kernel scat(A: global bf16[M, K], B: global bf16[N, K], C: global bf16[M, N] out)
  dims M, N, K
  tune BM = [64, 128], BN = [64, 128, 256], BK = [64, 32], warps = [4, 8]
launch tile grid [cdiv(N, BN), cdiv(M, BM)] threads warps * 32 blocks [bx, by] {
  alloc As: shared bf16[BM, BK]
  alloc Bs: shared bf16[BN, BK]
  alloc acc: fragment f32[BM, BN]
  fill acc[0 : +BM, 0 : +BN] = 0.0
  if (by * BM < M) {
    for k in pipelined(0, cdiv(K, BK)) stages ${stages} {
      copy A[by * BM : +BM, k * BK : +BK] -> As[0 : +BM, 0 : +BK]
      copy B[bx * BN : +BN, k * BK : +BK] -> Bs[0 : +BN, 0 : +BK]
      gemm As[0 : +BM, 0 : +BK], Bs[0 : +BN, 0 : +BK] -> acc[0 : +BM, 0 : +BN] transB
    }
    alloc yrow: shared i32[BM]
    for i in parallel(0, BM) {
      var row: i32 = -1
      if (by * BM + i < M && (by * BM + i) % 3 != 1) {
        row = M - 1 - (by * BM + i)
      }
      store yrow[i] = row
    }
    copy acc[0 : +BM, 0 : +BN] -> C[0 : +BM, bx * BN : +BN] rows yrow
  }
}
`;
  it("IR text: the staging tile over the dead A tile, 16-byte vectors to the rows' global rows, elements where unaligned", () => {
    const text = printKernel(lowerChecked(parseKernel(scatterText(3), "s.ir"), cfg, SM90A));
    expect(text).toContain("alloc acc_out: shared bf16[4096] layout xor_swizzle(7, 0) over As\n");
    // Staging writes guarded by the columns only (a tile row's global row is known at the copy-out).
    expect(text).toMatch(/if \(bx \* 64 \+ c_\d+ < N\) \{\n\s+vcopy acc_out\[[^\n]*\] <- acc\[s_\d+ \* 2\] lanes 2 convert if \(true\)/);
    expect(text).toMatch(/let g(_\d+)?: i32 = yrow\[u_\d+ \/ 8\]\n\s+vcopy C\[g(_\d+)?, bx \* 64 \+ u_\d+ % 8 \* 8\] <- acc_out\[[^\n]*\] lanes 8 if \(g(_\d+)? >= 0 && \(g(_\d+)? < M && bx \* 64 \+ u_\d+ % 8 \* 8 \+ 8 <= N\)\)/);
    expect(text).toMatch(/vcopy C\[g_\d+, bx \* 64 \+ u_\d+ % 64\] <- acc_out\[[^\n]*\] lanes 1 if \(g_\d+ >= 0 && \(g_\d+ < M && bx \* 64 \+ u_\d+ % 64 < N\)\)/);
    // The f32 rows keep their 8-byte pair stores (a whole sector a quad already); sm_80 is not staged.
    expect(printKernel(lowerChecked(parseKernel(scatterText(3).replace("C: global bf16", "C: global f32"), "s.ir"), cfg, SM90A))).not.toContain("acc_out");
    expect(printKernel(lowerChecked(parseKernel(scatterText(3), "s.ir"), cfg, SM80))).not.toContain("acc_out");
  });
  // [name, config, target, dims, stages]: the 128x256 tile's 4 stages (192 KB) leave no room for a
  // staging tile of its own (the MoE pairs kernel's prefill tile): over Bs.
  const cases: [string, Record<string, number>, Target, Record<string, number>, number][] = [
    ["cp.async, N % 8 != 0 (element copy-out)", cfg, SM90A, { M: 70, N: 61, K: 96 }, 3],
    ["cp.async, 2 warpgroups, 128x128", { BM: 128, BN: 128, BK: 64, warps: 8 }, SM90A, { M: 130, N: 136, K: 64 }, 3],
    ["warp-specialized TMA, 128x256 (over Bs: As is too small)", { BM: 128, BN: 256, BK: 64, warps: 8 }, WS, { M: 129, N: 264, K: 192 }, 4],
  ];
  for (const [name, c, target, dims, stages] of cases) {
    it(`interpreter against the tile level: ${name}, race check on`, () => {
      const r = runBoth(scatterText(stages), c, target, { dims, seed: 7 });
      expect(printKernel(r.thread)).toMatch(/ over (As|Bs)\n/);
      expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
      // Every third row dropped stays 0; the others are written.
      const C = r.got.C!.data, N = dims.N!, M = dims.M!;
      expect(C[(M - 1 - 1) * N]).toBe(0);
      expect(C.some((v) => v !== 0)).toBe(true);
      runKernel(r.thread, { tensors: inputs(r.thread, dims, 8) }, { raceCheck: true });
    });
  }
});
