// Warp specialization of the TMA pipeline (Target.warpSpecialize, `--ws`; warp-specialize.ts):
// the pass as IR text in -> out, the lowered gemm's shape (a producer warpgroup beyond the
// kernel's threads, setmaxnreg, named barriers), the IR text and verifier rules of the new
// statements, the interpreter against the tile level, and the mistakes it must report
// (named-barrier counts, register pool, setmaxnreg direction).
import { describe, expect, it } from "vitest";
import { maxRelErr, inputs, lowerChecked, runBoth } from "../passes/harness.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { mapStmts, walkStmts } from "../../src/ir/expr.ts";
import type { Kernel, Stmt } from "../../src/ir/ir.ts";
import { runKernel } from "../../src/interp/index.ts";
import { cudaTarget } from "../../src/passes/pipeline.ts";
import { maxnregCounts, warpSpecialize, wsBlocksPerSM } from "../../src/passes/warp-specialize.ts";
import { launchRegs, SM_REGISTERS } from "../../src/ir/registers.ts";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { gemmText } from "../wgmma/gemm-text.ts";
import { checkWarpSpecialize } from "../../src/cli/args.ts";

const WS = cudaTarget("sm_90a", "wgmma", "tma", undefined, true);
const strip = (x: unknown): unknown => JSON.parse(JSON.stringify(x, (k, v) => (k === "loc" ? undefined : v)));
const lowered = (warps = 4, stages = 3) => lowerChecked(parseKernel(gemmText(stages), "g.ir"), { BM: 64 * (warps / 4), BN: 64, BK: 32, warps }, WS);
const run = (k: Kernel, dims = { M: 64, N: 64, K: 160 }) => runKernel(k, { tensors: inputs(k, dims, 1) }, { raceCheck: true });
const edit = (k: Kernel, f: (s: Stmt) => Stmt | Stmt[] | undefined): Kernel => ({ ...k, launch: { ...k.launch, body: mapStmts(k.launch.body, f) } });
const all = (k: Kernel) => { const out: Stmt[] = []; walkStmts(k.launch.body, (s) => { out.push(s); }); return out; };

describe("warpSpecialize: IR text in -> out", () => {
  it("adds the producer warpgroup, slices the control flow for it, and gives the consumers named barriers", () => {
    const src = `kernel t(A: global bf16[M, K])
  dims M, K
  tensormap tmap_A = A box [64, 32] swizzle 64
launch thread grid [4] threads 128 blocks [b] thread tx {
  let row: i32 = b * 64
  alloc acc: local f32[4]
  store acc[0] = 0.0
  alloc As: shared bf16[4096]
  alloc bars: shared i64[4]
  if (K > 0) {
    if (tx == 0) {
      mbar.init bars[0] count 1
      mbar.fence_init
    }
    barrier
    if (tx >= 128) {
      setmaxnreg.dec 40
      if (tx == 128) {
        mbar.arrive bars[0] tx 4096
        tma.load As[0] <- tmap_A[row, 0] bar bars[0]
      }
    } else {
      setmaxnreg.inc 232
      mbar.wait bars[0] parity 0
    }
    barrier
  }
  store A[row, tx] = As[tx]
}
`;
    const want = `kernel t(A: global bf16[M, K])
  dims M, K
  tensormap tmap_A = A box [64, 32] swizzle 64
launch thread grid [4] threads 256 blocks [b] thread tx {
  alloc As: shared bf16[4096]
  alloc bars: shared i64[4]
  if (tx >= 128) {
    setmaxnreg.dec 40
    let row: i32 = b * 64
    if (K > 0) {
      barrier 2, 256
      if (tx == 128) {
        mbar.arrive bars[0] tx 4096
        tma.load As[0] <- tmap_A[row, 0] bar bars[0]
      }
    }
  } else {
    setmaxnreg.inc 232
    let row: i32 = b * 64
    alloc acc: local f32[4]
    store acc[0] = 0.0
    if (K > 0) {
      if (tx == 0) {
        mbar.init bars[0] count 1
        mbar.fence_init
      }
      barrier 2, 256
      mbar.wait bars[0] parity 0
      barrier 1, 128
    }
    store A[row, tx] = As[tx]
  }
}
`;
    const out = warpSpecialize(parseKernel(src, "t.ir"), { config: {}, target: WS });
    expect(printKernel(out)).toBe(want);
    expect(verifyErrors(out)).toEqual([]);
  });

  it("the producer keeps lets that read globals (a MoE block's expert id); one that reads shared memory is a user error", () => {
    const src = (value: string) => `kernel t(A: global bf16[M, K], ids: global i32[4])
  dims M, K
  tensormap tmap_A = A box [64, 32] swizzle 64
launch thread grid [4] threads 128 blocks [b] thread tx {
  alloc As: shared bf16[4096]
  alloc bars: shared i64[4]
  alloc Ss: shared i32[4]
  let e: i32 = ${value}
  if (tx == 0) {
    mbar.init bars[0] count 1
    mbar.fence_init
  }
  barrier
  if (tx >= 128) {
    setmaxnreg.dec 40
    if (tx == 128) {
      mbar.arrive bars[0] tx 4096
      tma.load As[0] <- tmap_A[e * 64, 0] bar bars[0]
    }
  } else {
    mbar.wait bars[0] parity 0
  }
}
`;
    const out = printKernel(warpSpecialize(parseKernel(src("ids[b]"), "t.ir"), { config: {}, target: WS }));
    expect(out).toMatch(/if \(tx >= 128\) \{\n    setmaxnreg\.dec 40\n    let e: i32 = ids\[b\]\n    barrier 2, 256/);
    expect(() => warpSpecialize(parseKernel(src("Ss[b]"), "t.ir"), { config: {}, target: WS }))
      .toThrow(/warp specialization of 't': the producer warpgroup needs 'e', which is computed from shared or local memory .*build without --ws/);
  });

  it("leaves kernels alone without the flag, and without a role split (no TMA loop)", () => {
    const src = "kernel t()\nlaunch thread grid [1] threads 128 blocks [b] thread tx {\n  barrier\n}\n";
    const k = parseKernel(src, "t.ir");
    expect(warpSpecialize(k, { config: {}, target: WS })).toBe(k);
    expect(warpSpecialize(k, { config: {}, target: cudaTarget("sm_90a") })).toBe(k);
  });

  it("register counts fit the block's pool and are multiples of 8", () => {
    expect(maxnregCounts(256)).toEqual({ producer: 40, consumer: 232 });
    expect(launchRegs(384)).toBe(168);
    for (const T of [128, 256, 384, 512]) {
      const { producer, consumer } = maxnregCounts(T);
      const R = launchRegs(T + 128);
      expect(producer % 8).toBe(0);
      expect(producer).toBeLessThanOrEqual(R);
      const c = consumer ?? R;
      expect(c % 8).toBe(0);
      expect(c).toBeLessThanOrEqual(256);
      expect(T * c + 128 * producer).toBeLessThanOrEqual((T + 128) * R);
    }
  });
});

describe("blocks per SM of a warp-specialized kernel", () => {
  it("as many as keep the consumers' accumulators plus headroom in registers and the tiles in shared memory", () => {
    // The 128x256 GEMM (two consumer warpgroups, 128 accumulator registers each): one block, 232 registers.
    expect(wsBlocksPerSM(256, 128, 147456)).toBe(1);
    // A 64x64 tile on one consumer warpgroup (32 accumulator registers): three blocks, consumers at 120.
    expect(wsBlocksPerSM(128, 32, 49152)).toBe(3);
    expect(maxnregCounts(128, 3)).toEqual({ producer: 40, consumer: 120 });
    // A 16x64 decode tile (8 registers): four, the most planned for.
    expect(wsBlocksPerSM(128, 8, 40960)).toBe(4);
    // ... unless shared memory holds fewer.
    expect(wsBlocksPerSM(128, 8, 100 * 1024)).toBe(2);
    expect(wsBlocksPerSM(128, 8, 120 * 1024)).toBe(1);
  });

  it("the counts fit the pool of every block on the SM together", () => {
    for (const T of [128, 256, 384]) for (const b of [1, 2, 3, 4]) {
      const { producer, consumer } = maxnregCounts(T, b);
      const R = launchRegs(T + 128, b);
      expect((T + 128) * R * b).toBeLessThanOrEqual(SM_REGISTERS);
      expect(T * (consumer ?? R) + 128 * producer).toBeLessThanOrEqual((T + 128) * R);
    }
  });

  it("a small tile's launch records it (IR text, __launch_bounds__, setmaxnreg); a big tile keeps one block", () => {
    const small = lowered(4, 3);
    expect(small.launch.perSM).toBe(3);
    expect(printKernel(small)).toMatch(/threads 256 per_sm 3 blocks/);
    expect(all(small).filter((s) => s.k === "setmaxnreg").map((s) => s.k === "setmaxnreg" && `${s.op} ${s.regs}`)).toEqual(["dec 40", "inc 120"]);
    expect(emitCuda(small, { name: "g" }).cu).toContain("__launch_bounds__(256, 3)");
    const big = lowered(8, 4);
    expect(big.launch.perSM).toBeUndefined();
    expect(emitCuda(big, { name: "g" }).cu).toContain("__launch_bounds__(384, 1)");
  });

  it("the interpreter starts each warpgroup at the planned launch count: an inc beyond that pool deadlocks", () => {
    const k = lowered(4, 3);
    expect(() => run(k)).not.toThrow();
    // Planned for three blocks (80 registers a thread at launch), the consumers cannot take 216.
    const greedy = edit(k, (s) => (s.k === "setmaxnreg" && s.op === "inc" ? { ...s, regs: 216 } : undefined));
    expect(() => run(greedy)).toThrow(/setmaxnreg.inc 216 \(now 80\)/);
  });
});

describe("warp-specialized gemm: the lowering", () => {
  it("one producer warpgroup beyond the kernel's threads; TMA only in the producer, wgmma only in the consumers", () => {
    const k = lowered(8, 4);
    expect(printKernel(k)).toContain("threads 384");
    const top = k.launch.body.find((s) => s.k === "if")!;
    if (top.k !== "if") throw new Error("no role split");
    const kinds = (ss: Stmt[]) => { const s = new Set<string>(); walkStmts(ss, (x) => { s.add(x.k); }); return s; };
    const prod = kinds(top.then), cons = kinds(top.else);
    expect(prod.has("tma_load")).toBe(true);
    expect(prod.has("wgmma")).toBe(false);
    expect(cons.has("wgmma")).toBe(true);
    expect(cons.has("tma_load")).toBe(false);
    const stmts = all(k);
    expect(stmts.filter((s) => s.k === "barrier")).toEqual([]); // none block-wide is left
    expect(stmts.filter((s) => s.k === "setmaxnreg").map((s) => s.k === "setmaxnreg" && `${s.op} ${s.regs}`)).toEqual(["dec 40", "inc 232"]);
    expect(printKernel(k)).toContain("barrier 1, 256");
    expect(printKernel(k)).toContain("barrier 2, 384");
  });

  it("round-trips through print and parse, and verifies", () => {
    const k = lowered(8, 4);
    const text = printKernel(k);
    const back = parseKernel(text, "back.ir");
    expect(strip(back)).toEqual(strip(k));
    expect(printKernel(back)).toBe(text);
    expect(verifyErrors(back)).toEqual([]);
  });

  const fixed: [string, Record<string, number>, number, Record<string, number>][] = [
    ["1 consumer warpgroup, sw128, 3 stages", { BM: 64, BN: 64, BK: 64, warps: 4 }, 3, { M: 70, N: 61, K: 152 }],
    ["2 consumer warpgroups, sw64, 4 stages", { BM: 128, BN: 32, BK: 32, warps: 8 }, 4, { M: 130, N: 40, K: 200 }],
    ["fewer tiles than stages", { BM: 64, BN: 64, BK: 32, warps: 4 }, 4, { M: 64, N: 64, K: 24 }],
    ["K not a multiple of 8 (cp.async fallback; the producer idles)", { BM: 64, BN: 64, BK: 32, warps: 4 }, 3, { M: 40, N: 33, K: 45 }],
  ];
  for (const [name, cfg, stages, dims] of fixed) it(`${name}: matches the tile-level kernel in the interpreter`, () => {
    const r = runBoth(gemmText(stages), cfg, WS, { dims, seed: 5 });
    expect(all(r.thread).some((s) => s.k === "setmaxnreg")).toBe(true);
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
  });

  it("with persistent blocks: the producer follows the tile loop", () => {
    const r = runBoth(gemmText(3), { BM: 64, BN: 64, BK: 32, warps: 4 }, { ...WS, persistentBlocks: 2 }, { dims: { M: 130, N: 70, K: 96 }, seed: 3 });
    // Each role sets its registers once, before the tile loop, not once per tile.
    const top = r.thread.launch.body.find((s) => s.k === "if");
    if (top?.k !== "if") throw new Error("no role split");
    expect([top.then[0], top.else[0]]).toEqual([{ k: "setmaxnreg", op: "dec", regs: 40 }, { k: "setmaxnreg", op: "inc", regs: 256 }]);
    expect(all(r.thread).filter((s) => s.k === "setmaxnreg")).toHaveLength(2);
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
  });
});

describe("named barriers and setmaxnreg: text and verifier", () => {
  const head = "kernel t()\nlaunch thread grid [1] threads 256 blocks [b] thread tx {\n";
  it("parse and print", () => {
    const src = `${head}  barrier 1, 128\n  setmaxnreg.dec 40\n  setmaxnreg.inc 232\n  barrier\n}\n`;
    const k = parseKernel(src, "t.ir");
    expect(printKernel(k)).toBe(src);
    expect(verifyErrors(k)).toEqual([]);
    expect(() => parseKernel(`${head}  setmaxnreg.up 40\n}\n`, "t.ir")).toThrow(/t\.ir:3:\d+: .*expected 'setmaxnreg\.inc N' or 'setmaxnreg\.dec N'/);
  });
  it("the verifier checks ids, counts and register numbers", () => {
    const errs = (body: string) => verifyErrors(parseKernel(`${head}${body}\n}\n`, "t.ir")).join("\n");
    expect(errs("  barrier 0, 128")).toMatch(/id 0 must be in 1\.\.15/);
    expect(errs("  barrier 1, 48")).toMatch(/count 48 must be a positive multiple of 32/);
    expect(errs("  barrier 1, 512")).toMatch(/waits for 512 threads, but the block has 256/);
    expect(errs("  setmaxnreg.inc 236")).toMatch(/setmaxnreg 236 must be a multiple of 8 in \[24, 256\]/);
    expect(errs("  setmaxnreg.dec 16")).toMatch(/multiple of 8 in \[24, 256\]/);
  });
});

describe("warp specialization in the interpreter: reported mistakes", () => {
  it("the correct lowering runs clean (the baseline of the edits below)", () => {
    expect(() => run(lowered())).not.toThrow();
    expect(() => run(lowered(8))).not.toThrow();
  });

  it("a consumer named barrier counting the producer too never completes: deadlock", () => {
    const k = edit(lowered(), (s) => (s.k === "named_barrier" && s.id === 1 ? { ...s, count: 256 } : undefined));
    expect(() => run(k)).toThrow(/deadlock: 128 of the 256 threads of named barrier 1 wait at it/);
  });

  it("a consumer setmaxnreg.inc beyond the register pool blocks forever: deadlock", () => {
    const k = edit(lowered(8), (s) => (s.k === "setmaxnreg" && s.op === "inc" ? { ...s, regs: 256 } : undefined));
    expect(() => run(k)).toThrow(/deadlock: warpgroup \d blocks in setmaxnreg\.inc 256 \(now 168\): the block's register pool has \d+ free registers, it needs \d+/);
  });

  it("without the producer's setmaxnreg.dec the consumers' inc has no registers to take", () => {
    const k = edit(lowered(8), (s) => (s.k === "setmaxnreg" && s.op === "dec" ? [] : undefined));
    expect(() => run(k)).toThrow(/deadlock: warpgroup \d blocks in setmaxnreg\.inc 232/);
  });

  it("a dec that raises the limit is reported", () => {
    const k = edit(lowered(8), (s) => (s.k === "setmaxnreg" && s.op === "dec" ? { ...s, regs: 200 } : undefined));
    expect(() => run(k)).toThrow(/setmaxnreg\.dec 200 raises its limit \(now 168\)/);
  });

  it("the producer skipping the barrier after the inits uses an mbarrier before its init is ordered", () => {
    let n = 0;
    const k = edit(lowered(), (s) => (s.k === "named_barrier" && s.id === 2 && n++ === 0 ? [] : undefined));
    expect(n).toBe(2);
    expect(() => run(k)).toThrow(/thread 128: mbar\.arrive on bars\[0\], which no mbar\.init has initialised/);
  });

  it("the producer refilling a stage without waiting for its release is caught", () => {
    // Drop the producer's wait on "empty": a refill can land while a wgmma still reads the stage,
    // or the refill overruns a pending copy.
    const k = edit(lowered(), (s) => (s.k === "if" && s.then.length === 1 && s.then[0]!.k === "mbar_wait" && s.else.length === 0 ? [] : undefined));
    expect(() => run(k, { M: 64, N: 64, K: 320 })).toThrow(/released too early|still pending|more arrivals than its count|deliver \d+ bytes/);
  });
});

describe("--ws on the command line", () => {
  it("is for the sm_90a TMA path; other choices are usage errors that say what to change", () => {
    expect(checkWarpSpecialize(undefined, undefined, "sm_80", undefined, undefined)).toBe(false);
    expect(checkWarpSpecialize(true, undefined, "sm_90a", "wgmma", undefined)).toBe(true);
    expect(checkWarpSpecialize(true, undefined, "sm_90a", undefined, "tma")).toBe(true);
    expect(() => checkWarpSpecialize(true, undefined, "sm_80", undefined, undefined)).toThrow(/--ws \(warp specialization\) is for --arch sm_90a, got sm_80/);
    expect(() => checkWarpSpecialize(true, undefined, "wgsl", undefined, undefined)).toThrow(/is for --arch sm_90a, got wgsl/);
    expect(() => checkWarpSpecialize(true, undefined, "sm_90a", "mma", undefined)).toThrow(/drop --mma sync/);
    expect(() => checkWarpSpecialize(true, undefined, "sm_90a", undefined, "cp.async")).toThrow(/use --copy tma/);
  });
  it("is on by default where it applies, and --no-ws turns it off", () => {
    expect(checkWarpSpecialize(undefined, undefined, "sm_90a", "wgmma", undefined)).toBe(true);
    // The default does not apply (no error) where the TMA pipeline is not built.
    expect(checkWarpSpecialize(undefined, undefined, "sm_90a", "mma", undefined)).toBe(false);
    expect(checkWarpSpecialize(undefined, undefined, "sm_90a", undefined, "cp.async")).toBe(false);
    expect(checkWarpSpecialize(undefined, undefined, "wgsl", undefined, undefined)).toBe(false);
    expect(checkWarpSpecialize(undefined, true, "sm_90a", "wgmma", "tma")).toBe(false);
    // The interpreter backend keeps its portable default unless asked.
    expect(checkWarpSpecialize(undefined, undefined, "sm_90a", "wgmma", undefined, false)).toBe(false);
    expect(() => checkWarpSpecialize(true, true, "sm_90a", undefined, undefined)).toThrow(/contradict/);
  });
  it("cudaTarget builds sm_90a TMA pipelines warp-specialized unless told not to", () => {
    expect(cudaTarget("sm_90a").warpSpecialize).toBe(true);
    expect(cudaTarget("sm_90a", "wgmma", "tma", undefined, false).warpSpecialize).toBeUndefined();
    expect(cudaTarget("sm_90a", "wgmma", "cp.async").warpSpecialize).toBeUndefined();
    expect(cudaTarget("sm_80").warpSpecialize).toBeUndefined();
  });
});
