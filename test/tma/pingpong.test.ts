// Ping-pong consumers in warp-specialized persistent blocks (issue 7; src/passes/ping-pong.ts):
// two consumer warpgroups take alternate tiles, each owning a whole tile's accumulator, their
// main loops ordered through two mbarriers, the other's tiles advancing the running counter.
// The pass as IR text in -> out, the lowered gemm's shape (threads, register split, barriers,
// a staging tile each), the user errors, the interpreter against the tile level (more tiles
// than blocks, odd tile counts, a consumer with no tile, trip counts not a multiple of S, fewer
// K tiles than stages, tiles that skip the loop, the cp.async fallback, the MoE grouped GEMMs)
// with the race check on, and the mistake that the main-loop order prevents.
import { describe, expect, it } from "vitest";
import { inputs, lowerChecked, maxRelErr, tileLevel } from "../passes/harness.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { mapStmts, walkStmts } from "../../src/ir/expr.ts";
import type { Kernel, Stmt, TunableValue } from "../../src/ir/ir.ts";
import { runKernel } from "../../src/interp/index.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { cudaTarget, lower, type Target } from "../../src/passes/pipeline.ts";
import { pingPong } from "../../src/passes/ping-pong.ts";
import { checkPingpong } from "../../src/cli/args.ts";
import { gemmText } from "../wgmma/gemm-text.ts";
import { stageBuild } from "../../src/moe/stage-build.ts";
import type { LayerConfig, LayerSpec } from "../../src/moe/layer.ts";
import { lowerLayer, runLayerInterp } from "../../src/moe/interp.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { tinyPermutedConfigs } from "../moe_layer/tiny.ts";

const WS = cudaTarget("sm_90a", "wgmma", "tma", undefined, true);
const PP = (P: number): Target => ({ ...WS, persistentBlocks: P, pingpong: true });
const all = (ss: Stmt[]) => { const out: Stmt[] = []; walkStmts(ss, (s) => { out.push(s); }); return out; };
const clone = <T>(x: T): T => structuredClone(x);

/** Tile level and lowered on the same inputs, the lowered one with the race check on. */
function against(src: string | Kernel, cfg: Record<string, TunableValue>, target: Target, dims: Record<string, number>, seed = 7,
  edit?: (k: Kernel) => Kernel) {
  const k = typeof src === "string" ? parseKernel(src, "g.ir") : src;
  const tile = tileLevel(k, cfg, target);
  const low0 = lowerChecked(k, cfg, target);
  const low = edit ? edit(low0) : low0;
  const ins = inputs(tile, dims, seed);
  const a = clone(ins), b = clone(ins);
  runKernel(tile, { tensors: a });
  runKernel(low, { tensors: b }, { raceCheck: true });
  const outs = tile.params.filter((p) => p.output).map((p) => p.name);
  return { err: maxRelErr(outs, a, b), low };
}

// A warp-specialized persistent kernel with its running pipeline, as warpSpecialize leaves
// it: the input of the pass tests below.
const WS_KERNEL = `kernel t(A: global bf16[N, K], C: global f32[N, 64] out)
  dims N, K
launch thread grid [min(cdiv(N, 64), 2)] threads 256 blocks [pid_blk] thread tx {
  alloc bars: shared i64[4]
  alloc As: shared bf16[4096]
  alloc Cs: shared f32[64]
  if (tx >= 128) {
    setmaxnreg.dec 40
    var pipe: i32 = 0
    barrier 2, 256
    for tile_it in serial(0, cdiv(cdiv(N, 64) - pid_blk, 2)) {
      let pid: i32 = pid_blk + tile_it * 2
      if (K > 0) {
        if (tx == 128) {
          for j in serial(0, cdiv(K, 32)) {
            if (pipe + j >= 2) {
              mbar.wait bars[(pipe + j) % 2 + 2] parity (pipe + j) / 2 - 1 & 1
            }
            mbar.arrive bars[(pipe + j) % 2]
          }
        }
        pipe = pipe + cdiv(K, 32)
      }
    }
  } else {
    setmaxnreg.inc 232
    var pipe: i32 = 0
    if (tx == 0) {
      mbar.init bars[0] count 1
      mbar.init bars[1] count 1
      mbar.init bars[2] count 1
      mbar.init bars[3] count 1
      mbar.fence_init
    }
    barrier 2, 256
    for tile_it in serial(0, cdiv(cdiv(N, 64) - pid_blk, 2)) {
      let pid: i32 = pid_blk + tile_it * 2
      if (K > 0) {
        for k in serial(0, cdiv(K, 32)) {
          mbar.wait bars[(pipe + k) % 2] parity (pipe + k) / 2 & 1
          if (tx % 128 == 0) {
            mbar.arrive bars[(pipe + k) % 2 + 2]
          }
        }
        pipe = pipe + cdiv(K, 32)
        barrier 1, 128
      }
      store Cs[tx % 64] = 1.0
      barrier 1, 128
      store C[pid, tx % 64] = Cs[tx % 64]
      barrier 1, 128
    }
  }
}
`;

describe("pingPong: IR text in -> out", () => {
  it("duplicates the tile loop by role, orders the main loops, gives each consumer its barrier and tiles", () => {
    const k = parseKernel(WS_KERNEL, "t.ir");
    expect(printKernel(pingPong(k, { config: {}, target: PP(2) }))).toBe(`kernel t(A: global bf16[N, K], C: global f32[N, 64] out)
  dims N, K
launch thread grid [min(cdiv(N, 64), 2)] threads 384 blocks [pid_blk] thread tx {
  alloc bars: shared i64[4]
  alloc As: shared bf16[4096]
  alloc Cs: shared f32[64]
  alloc order: shared i64[2]
  alloc Cs_1: shared f32[64]
  if (tx >= 256) {
    setmaxnreg.dec 40
    var pipe: i32 = 0
    barrier 2, 384
    for tile_it in serial(0, cdiv(cdiv(N, 64) - pid_blk, 2)) {
      let pid: i32 = pid_blk + tile_it * 2
      if (K > 0) {
        if (tx == 256) {
          for j in serial(0, cdiv(K, 32)) {
            if (pipe + j >= 2) {
              mbar.wait bars[(pipe + j) % 2 + 2] parity (pipe + j) / 2 - 1 & 1
            }
            mbar.arrive bars[(pipe + j) % 2]
          }
        }
        pipe = pipe + cdiv(K, 32)
      }
    }
  } else {
    setmaxnreg.inc 232
    var pipe: i32 = 0
    if (tx == 0) {
      mbar.init bars[0] count 1
      mbar.init bars[1] count 1
      mbar.init bars[2] count 1
      mbar.init bars[3] count 1
      mbar.init order[0] count 128
      mbar.init order[1] count 128
      mbar.fence_init
    }
    barrier 2, 384
    if (tx < 128) {
      for tile_it in serial(0, cdiv(cdiv(N, 64) - pid_blk, 2)) {
        if (tile_it % 2 == 0) {
          let pid: i32 = pid_blk + tile_it * 2
          var signalled: i32 = 0
          if (tile_it > 0) {
            mbar.wait order[0] parity (tile_it - 1) / 2 & 1
          }
          if (K > 0) {
            for k in serial(0, cdiv(K, 32)) {
              mbar.wait bars[(pipe + k) % 2] parity (pipe + k) / 2 & 1
              if (tx % 128 == 0) {
                mbar.arrive bars[(pipe + k) % 2 + 2]
              }
            }
            if (tile_it + 1 < cdiv(cdiv(N, 64) - pid_blk, 2)) {
              mbar.arrive order[1]
            }
            signalled = 1
            pipe = pipe + cdiv(K, 32)
            barrier 3, 128
          }
          if (signalled == 0 && tile_it + 1 < cdiv(cdiv(N, 64) - pid_blk, 2)) {
            mbar.arrive order[1]
          }
          store Cs[tx % 64] = 1.0
          barrier 3, 128
          store C[pid, tx % 64] = Cs[tx % 64]
          barrier 3, 128
        } else {
          let pid: i32 = pid_blk + tile_it * 2
          if (K > 0) {
            pipe = pipe + cdiv(K, 32)
          }
        }
      }
    } else {
      for tile_it in serial(0, cdiv(cdiv(N, 64) - pid_blk, 2)) {
        if (tile_it % 2 == 1) {
          let pid: i32 = pid_blk + tile_it * 2
          var signalled: i32 = 0
          if (tile_it > 0) {
            mbar.wait order[1] parity (tile_it - 1) / 2 & 1
          }
          if (K > 0) {
            for k in serial(0, cdiv(K, 32)) {
              mbar.wait bars[(pipe + k) % 2] parity (pipe + k) / 2 & 1
              if ((tx - 128) % 128 == 0) {
                mbar.arrive bars[(pipe + k) % 2 + 2]
              }
            }
            if (tile_it + 1 < cdiv(cdiv(N, 64) - pid_blk, 2)) {
              mbar.arrive order[0]
            }
            signalled = 1
            pipe = pipe + cdiv(K, 32)
            barrier 4, 128
          }
          if (signalled == 0 && tile_it + 1 < cdiv(cdiv(N, 64) - pid_blk, 2)) {
            mbar.arrive order[0]
          }
          store Cs_1[(tx - 128) % 64] = 1.0
          barrier 4, 128
          store C[pid, (tx - 128) % 64] = Cs_1[(tx - 128) % 64]
          barrier 4, 128
        } else {
          let pid: i32 = pid_blk + tile_it * 2
          if (K > 0) {
            pipe = pipe + cdiv(K, 32)
          }
        }
      }
    }
  }
}
`);
  });

  it("leaves a kernel alone without the option", () => {
    const k = parseKernel(WS_KERNEL, "t.ir");
    expect(pingPong(k, { config: {}, target: { ...WS, persistentBlocks: 2 } })).toBe(k);
  });
});

describe("ping-pong: the lowered gemm", () => {
  const lowered = (cfg: Record<string, TunableValue> = { BM: 64, BN: 64, BK: 32, warps: 4 }, cdt = "bf16") =>
    lowerChecked(parseKernel(gemmText(3, cdt), "g.ir"), cfg, PP(2));

  it("384 threads: consumers 0 and 1, the producer after them with its elected thread 256", () => {
    const k = lowered();
    expect(printKernel(k)).toMatch(/threads 384 blocks/);
    const top = k.launch.body.find((s) => s.k === "if")!;
    if (top.k !== "if") throw new Error("no role split");
    expect(printKernel({ ...k, launch: { ...k.launch, body: [{ ...top, then: [], else: [] }] } })).toContain("if (tx >= 256) {");
    expect(all(top.then).some((s) => s.k === "if" && /^tx == 256$/.test(printKernel({ ...k, launch: { ...k.launch, body: [{ ...s, then: [], else: [] }] } }).match(/if \((.*)\) \{/)![1]!))).toBe(true);
    // The register split of two consumer warpgroups and a producer (launch 168: 232 / 40).
    expect(all(k.launch.body).filter((s) => s.k === "setmaxnreg").map((s) => s.k === "setmaxnreg" && `${s.op} ${s.regs}`)).toEqual(["dec 40", "inc 232"]);
  });

  it("each consumer syncs alone (bar 3 / 4, 128 threads), the role barrier counts all 384", () => {
    const k = lowered();
    const named = all(k.launch.body).filter((s) => s.k === "named_barrier").map((s) => s.k === "named_barrier" && `${s.id},${s.count}`);
    expect(new Set(named)).toEqual(new Set(["2,384", "3,128", "4,128"]));
    expect(all(k.launch.body).filter((s) => s.k === "barrier")).toEqual([]);
  });

  it("a staging tile for each consumer's epilogue, and two order mbarriers; smem counts them", () => {
    const plain = lowerChecked(parseKernel(gemmText(3, "bf16"), "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, { ...WS, persistentBlocks: 2 });
    const k = lowered();
    const text = printKernel(k);
    expect(text).toContain("alloc acc_out: shared bf16[4096] layout xor_swizzle(7, 0)\n");
    expect(text).toContain("alloc acc_out_1: shared bf16[4096] layout xor_swizzle(7, 0)\n");
    expect(text).toContain("alloc order: shared i64[2]\n");
    expect(text).toContain("mbar.init order[0] count 128\n      mbar.init order[1] count 128\n      mbar.fence_init");
    expect(k.smemBytes).toBe(plain.smemBytes! + 8192 + 128);
    // Consumer 1's epilogue writes its own tile, with its thread index in the warpgroup.
    expect(text).toMatch(/vcopy acc_out_1\[.*\] <- acc\[s_\d+ \* 2\] lanes 2 convert/);
    expect(text).toContain("(tx - 128) % 32 / 4");
  });

  it("the main loop of each tile waits for the other consumer's and signals the next", () => {
    const text = printKernel(lowered());
    for (const c of [0, 1]) {
      expect(text).toContain(`if (tile_it % 2 == ${c}) {`);
      expect(text).toContain(`if (tile_it > 0) {\n            mbar.wait order[${c}] parity (tile_it - 1) / 2 & 1`);
      expect(text).toMatch(new RegExp(`if \\(tile_it \\+ 1 < cdiv\\(cdiv\\(N, 64\\) \\* cdiv\\(M, 64\\) - bx_blk, 2\\)\\) \\{\\n\\s*mbar\\.arrive order\\[${1 - c}\\]`));
    }
    // The signal follows the TMA path's K loop (the last wgmma issued, not yet retired); the
    // fallback and a tile that skips the loop signal after it.
    expect(text).toMatch(/wgmma\.wait 1\n(.*\n){3}\s*\}\n\s*if \(tile_it \+ 1 < .*\) \{\n\s*mbar\.arrive order\[1\]\n\s*\}\n\s*signalled = 1\n\s*wgmma\.wait 0/);
    expect(text).toMatch(/if \(signalled == 0 && tile_it \+ 1 < .*\) \{\n\s*mbar\.arrive order\[1\]/);
    // The other consumer's tile: only the counter moves.
    expect(text).toMatch(/\} else \{\n\s*let tile: i32 = bx_blk \+ tile_it \* 2\n\s*let bx: i32 = tile % cdiv\(N, 64\)\n\s*let by: i32 = tile \/ cdiv\(N, 64\)\n\s*if \(.*\) \{\n\s*pipe = pipe \+ cdiv\(K, 32\)\n\s*\}\n\s*\}/);
  });

  it("the IR text round-trips", () => {
    const k = lowered();
    expect(printKernel(parseKernel(printKernel(k), "rt.ir"))).toBe(printKernel(k));
  });
});

describe("ping-pong: user errors", () => {
  const k = parseKernel(gemmText(3, "bf16"), "g.ir");
  it("only with warp specialization and persistent blocks (the pass and the CLI say the fix)", () => {
    expect(() => lower(k, { BM: 64, BN: 64, BK: 32, warps: 4 }, { ...WS, pingpong: true })).toThrow(/ping-pong \(--pingpong\) of 'gemm' alternates the tiles of warp-specialized persistent blocks; add --ws and --persistent P/);
    expect(() => checkPingpong(true, false, 132)).toThrow(/--pingpong .*add --ws/);
    expect(() => checkPingpong(true, true, undefined)).toThrow(/--pingpong .*add --persistent P/);
    expect(checkPingpong(undefined, false, undefined)).toBe(false);
    expect(checkPingpong(true, true, 132)).toBe(true);
  });
  it("one consumer warpgroup's tile code: warps = 4", () => {
    expect(() => lower(k, { BM: 128, BN: 64, BK: 32, warps: 8 }, PP(2))).toThrow(/ping-pong \(--pingpong\) of 'gemm': .*the kernel has 256 \(warps = 8\); use warps = 4/);
  });
  it("a kernel without the running pipeline (a buffer over a stage tile) is refused with the fix", () => {
    const src = gemmText(3).replace("  alloc acc:", "  alloc Cs: shared bf16[BM, BK] over As\n  alloc acc:")
      .replace("  copy acc[0 : +BM, 0 : +BN]", "  copy A[by * BM : +BM, 0 : +BK] -> Cs[0 : +BM, 0 : +BK]\n  copy Cs[0 : +BM, 0 : +BK] -> C[by * BM : +BM, bx * BN : +BK]\n  copy acc[0 : +BM, 0 : +BN]");
    expect(() => lower(parseKernel(src, "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, PP(2))).toThrow(/needs the running pipeline .*build without --pingpong/);
  });
  it("a kernel with no TMA pipeline is refused with the fix", () => {
    expect(() => lower(parseKernel(gemmText(2, "bf16"), "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, PP(2))).toThrow(/needs a warp-specialized TMA pipeline .*build without --pingpong/);
  });
});

describe("ping-pong in the interpreter: against the tile level (race check on)", () => {
  const cfg = { BM: 64, BN: 64, BK: 32, warps: 4 };
  const cases: [string, number, number, Record<string, number>, string][] = [
    ["9 tiles on 2 blocks (5 and 4: consumer 0 one tile more), 3 K tiles a tile (= S)", 3, 2, { M: 190, N: 130, K: 96 }, "bf16"],
    ["6 tiles on 4 blocks (blocks of one tile: consumer 1 has none), 5 K tiles (not a multiple of S)", 3, 4, { M: 130, N: 70, K: 160 }, "bf16"],
    ["7 tiles on 1 block, 4 stages, 7 K tiles, f32 C (per-element stores)", 4, 1, { M: 130, N: 150, K: 200 }, "f32"],
    ["fewer K tiles than stages: one a tile, 6 tiles on 1 block", 4, 1, { M: 130, N: 100, K: 24 }, "bf16"],
    ["K % 8 != 0: the cp.async fallback in both consumers, serialised by the order", 3, 2, { M: 130, N: 100, K: 90 }, "bf16"],
    ["more blocks than tiles: 2 tiles on 2 of 5 blocks", 3, 5, { M: 64, N: 100, K: 64 }, "bf16"],
    ["no tiles at all (M = 0): no block", 3, 2, { M: 0, N: 100, K: 64 }, "bf16"],
  ];
  for (const [name, stages, P, dims, cdt] of cases) it(`${name}: matches`, () => {
    const r = against(gemmText(stages, cdt), cfg, PP(P), dims);
    expect(printKernel(r.low)).toContain("mbar.wait order[1]");
    expect(r.err).toBeLessThan(1e-5);
  });

  it("tiles that skip the loop still advance the counter in both consumers and the producer", () => {
    const k = parseKernel(skipText(3), "skip.ir");
    const dims = { M: 320, N: 70, K: 160, R: 5 };
    const low = lowerChecked(k, cfg, PP(3));
    // Skipped or not, the other consumer's tile moves the counter under the same condition.
    expect(printKernel(low)).toMatch(/let e: i32 = flags\[by\]\n\s*if \(e >= 0\) \{\n\s*if \(.*\) \{\n\s*pipe = pipe \+ cdiv\(K, 32\)/);
    for (const flags of [[0, -1, 2, -1, 1], [-1, -1, 0, 1, -1], [-1, -1, -1, -1, -1], [1, 1, -1, 1, 1]]) {
      const ins = inputs(tileLevel(k, cfg, WS), dims, 3);
      ins.flags!.data.set(flags);
      const a = clone(ins), b = clone(ins);
      runKernel(tileLevel(k, cfg, WS), { tensors: a });
      runKernel(low, { tensors: b }, { raceCheck: true });
      expect({ flags, ok: maxRelErr(["C"], a, b) < 1e-5 }).toEqual({ flags, ok: true });
    }
  });
});

describe("ping-pong in the interpreter: the mistake the order prevents", () => {
  it("consumers whose main loops are not ordered free a stage the other still reads: reported", () => {
    // Without the wait, consumer 1 waits on "full" for its tile's phase at once; parity tells
    // phases apart only one ahead, so it passes on an earlier phase of the stage.
    const unordered = (k: Kernel): Kernel => ({ ...k, launch: { ...k.launch, body: mapStmts(k.launch.body, (s) =>
      s.k === "if" && s.then.length === 1 && s.then[0]!.k === "mbar_wait" && s.then[0]!.bar.buf === "order" ? [] : undefined) } });
    const cfg = { BM: 64, BN: 64, BK: 32, warps: 4 };
    expect(() => against(gemmText(3, "bf16"), cfg, PP(1), { M: 190, N: 130, K: 96 })).not.toThrow();
    // Consumer 1 runs its main loop at once: its early "full" waits pass and its releases let
    // the producer refill a stage consumer 0's wgmma still reads.
    expect(() => against(gemmText(3, "bf16"), cfg, PP(1), { M: 190, N: 130, K: 96 }, 7, unordered))
      .toThrow(/tma\.load refills As\[\d+\.\.\] while a wgmma of warpgroup [01] that reads it has not retired: the stage was released too early/);
  });
});

// The gemm whose row tiles of an unused routing block skip the pipelined loop (the MoE
// kernels' `if (e >= 0)`): flags[by] < 0 leaves acc at zero (as in persist.test.ts).
const skipText = (stages: number) => `
kernel gemm(A: global bf16[M, K], B: global bf16[N, K], flags: global i32[R], C: global bf16[M, N])
  dims M, N, K, R
  tune BM = [64], BN = [64], BK = [32], warps = [4]
launch tile grid [cdiv(N, BN), cdiv(M, BM)] threads warps * 32 blocks [bx, by] {
  let e: i32 = flags[by]
  alloc As: shared bf16[BM, BK]
  alloc Bs: shared bf16[BN, BK]
  alloc acc: fragment f32[BM, BN]
  fill acc[0 : +BM, 0 : +BN] = 0.0
  if (e >= 0) {
    for k in pipelined(0, cdiv(K, BK)) stages ${stages} {
      copy A[by * BM : +BM, k * BK : +BK] -> As[0 : +BM, 0 : +BK]
      copy B[bx * BN : +BN, k * BK : +BK] -> Bs[0 : +BN, 0 : +BK]
      gemm As[0 : +BM, 0 : +BK], Bs[0 : +BN, 0 : +BK] -> acc[0 : +BM, 0 : +BN] transB
    }
  }
  copy acc[0 : +BM, 0 : +BN] -> C[by * BM : +BM, bx * BN : +BN]
}
`;

describe("ping-pong: other GEMM examples against their references", () => {
  // An epilogue with a bias and ReLU (per-element math before the staged store), and the
  // register-A dequant gemm (w8a16: the consumers dequantize the weights into wgmma's A).
  const cases: [string, string, Record<string, number>][] = [
    ["dsl-examples/gemm_relu_bias.ts", "gemm_relu_bias", { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4 }],
    ["dsl-examples/gemm_w8a16.ts", "gemm_w8a16", { BM: 128, BN: 128, BK: 64, stages: 3, warps: 4 }],
  ];
  for (const [file, name, config] of cases) it(`${name} ${JSON.stringify(config)} on 3 blocks`, async () => {
    const k = parseKernels(file).find((x) => x.name === name)!;
    expect(printKernel(lower(k, config, PP(3)))).toContain("mbar.wait order[1]");
    const spec = (await loadSpecs(file)).get(name)!;
    const backend = await backendFor("interp", { level: "thread", arch: "sm_90a", copy: "tma", ws: true, persistent: 3, pingpong: true });
    const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 3, seed: 5, config,
      reproduce: `tilemoe check ${file} --kernel ${name} --ws --persistent 3 --pingpong` });
    expect(r.failures).toEqual([]);
  }, 300_000);
});

describe("ping-pong: the MoE grouped GEMMs against their references", () => {
  const UP = "dsl-examples/moe_gemm_up.ts", DOWN = "dsl-examples/moe_gemm_down.ts", PAIRS = "dsl-examples/moe_gemm_down_reduce.ts";
  // Six routing blocks of 64 rows, some unused (block_expert -1: their tiles skip the loop and
  // still move both consumers' counters).
  const cases: [string, string, Record<string, number>, Record<string, number>, number][] = [
    ["moe_gemm_up_permuted", UP, { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, GROUP_M: 8 }, { T: 40, K: 136, N: 136, E: 4, E2N: 1088, TOPK: 2, skew: 0, BS: 64, NB: 6 }, 4],
    ["moe_gemm_up_permuted", UP, { BM: 64, BN: 64, BK: 64, stages: 4, warps: 4, GROUP_M: 1 }, { T: 40, K: 200, N: 70, E: 4, E2N: 560, TOPK: 2, skew: 2, BS: 64, NB: 6 }, 3],
    ["moe_gemm_down", DOWN, { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 1, GROUP_M: 8 }, { T: 40, N: 136, H: 192, E: 4, TOPK: 2, skew: 0, BS: 64, NB: 6, EH: 768 }, 5],
    ["moe_gemm_down", DOWN, { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, splitK: 2, GROUP_M: 1 }, { T: 40, N: 200, H: 128, E: 4, TOPK: 2, skew: 2, BS: 64, NB: 6, EH: 512 }, 3],
  ];
  // The reduce combine's down kernel (one f32 row a pair), on its check spec's random shapes.
  it("moe_gemm_down_pairs on 3 blocks", async () => {
    const k = parseKernels(PAIRS).find((x) => x.name === "moe_gemm_down_pairs")!;
    const config = { BM: 64, BN: 64, BK: 64, stages: 3, warps: 4, GROUP_M: 8 };
    expect(printKernel(lower(k, config, PP(3)))).toContain("mbar.wait order[1]");
    const backend = await backendFor("interp", { level: "thread", arch: "sm_90a", copy: "tma", ws: true, persistent: 3, pingpong: true });
    const r = await checkKernel(k, (await loadSpecs(PAIRS)).get("moe_gemm_down_pairs")!, { backendName: "interp", backend, cases: 3, seed: 4, config,
      reproduce: `tilemoe check ${PAIRS} --kernel moe_gemm_down_pairs --ws --persistent 3 --pingpong` });
    expect(r.failures).toEqual([]);
  }, 300_000);
  for (const [name, file, config, shape, P] of cases) it(`${name} ${JSON.stringify(config)} on ${P} blocks`, async () => {
    const k = parseKernels(file).find((x) => x.name === name)!;
    const text = printKernel(lower(k, config, PP(P)));
    expect(text).toContain("mbar.wait order[1]");
    expect(text.includes("alloc gate_out_1: shared bf16")).toBe(name === "moe_gemm_up_permuted");
    const spec = (await loadSpecs(file)).get(name)!;
    const backend = await backendFor("interp", { level: "thread", arch: "sm_90a", copy: "tma", ws: true, persistent: P, pingpong: true });
    const r = await checkKernel(k, spec, { backendName: "interp", backend, cases: 1, seed: 9, shape, config,
      reproduce: `tilemoe check ${file} --kernel ${name} --ws --persistent ${P} --pingpong` });
    expect(r.failures).toEqual([]);
  }, 300_000);
});

describe("ping-pong: a layer entry's up/down option (src/moe/stage-build.ts)", () => {
  const SM90 = cudaTarget("sm_90a", "wgmma", "tma");
  it("`pingpong: true` beside `persistent: P` reaches the target, not the tunables; alone it is an error naming the fix", () => {
    const up = { stage: "up", file: "f", kernel: "moe_gemm_up_permuted", config: { BM: 128, persistent: 132, pingpong: true }, bind: {} };
    const b = stageBuild(up, SM90);
    expect(b.config).toEqual({ BM: 128 });
    expect(b.target).toMatchObject({ persistentBlocks: 132, pingpong: true });
    expect(stageBuild({ ...up, config: { BM: 128, persistent: 132, pingpong: false } }, SM90).target.pingpong).toBeUndefined();
    expect(() => stageBuild({ ...up, config: { pingpong: true } }, SM90)).toThrow(/layer stage 'up' \(moe_gemm_up_permuted\): 'pingpong' .*needs 'persistent: P' beside it/);
    expect(() => stageBuild({ ...up, config: { persistent: 132, pingpong: "yes" } }, SM90)).toThrow(/'pingpong' is true or false/);
  });

  // The tiny permuted prefill entry with ping-pong up and down stages (warps 4) on 3 blocks
  // against the same entry without: the same output (the down GEMM's f32 atomics may add in
  // another order).
  for (const T of [64, 200]) it(`T = ${T}: the layer on 3 ping-pong blocks gives the plain entry's output`, () => {
    const base: LayerConfig = { ...tinyPermutedConfigs()[1]!, maxTokens: null, combine: "atomic" };
    const plain: LayerConfig = { ...base, up: { ...base.up, warps: 4 }, down: { ...base.down, warps: 4 } };
    const pp: LayerConfig = { ...plain, up: { ...plain.up, persistent: 3, pingpong: true }, down: { ...plain.down, persistent: 3, pingpong: true } };
    const spec = (c: LayerConfig, name: string): LayerSpec => ({ name, experts: 8, hidden: 64, intermediate: 72, topK: 2, activation: "silu", weights: "bf16", renormalize: true, configs: [c] });
    const H = 64, N = 72, E = 8;
    const inp = {
      x: randomTensor("bf16", [T, H], T, 0, 1), w_router: randomTensor("bf16", [E, H], T + 1, -0.5, 0.5),
      w2: randomTensor("bf16", [E * H, N], T + 2, -0.25, 0.25), w13: randomTensor("bf16", [E * 2 * N, H], T + 3, -0.25, 0.25),
    };
    const lowPP = lowerLayer(spec(pp, "tiny_pp"), SM90);
    for (const name of ["up", "down"]) expect(printKernel(lowPP.get("prefill")!.find(({ stage }) => stage.stage === name)!.kernel)).toContain("mbar.wait order[1]");
    const want = runLayerInterp(spec(plain, "tiny_plain"), inp, lowerLayer(spec(plain, "tiny_plain"), SM90));
    const got = runLayerInterp(spec(pp, "tiny_pp"), inp, lowPP);
    expect([...got.block_expert!.data].some((e) => e < 0)).toBe(true);
    let scale = 0, worst = 0;
    want.out!.data.forEach((w, i) => { scale = Math.max(scale, Math.abs(w)); worst = Math.max(worst, Math.abs(w - got.out!.data[i]!)); });
    expect(scale).toBeGreaterThan(0);
    expect(worst).toBeLessThanOrEqual(1e-5 * scale);
    expect([...got.y!.data]).toEqual([...want.y!.data]);
  }, 300_000);
});

describe("ping-pong: a tile with two pipelined K loops", () => {
  it("is refused with the fix (one main loop a tile is ordered)", () => {
    // Two K loops a tile, each its own running pipeline: ordering one would leave the other's
    // parity waits unordered.
    const src = gemmText(3, "bf16").replace("  copy acc[0 : +BM, 0 : +BN]", `  alloc As2: shared bf16[BM, BK]
  alloc Bs2: shared bf16[BN, BK]
  for k2 in pipelined(0, cdiv(K, BK)) stages 3 {
    copy A[by * BM : +BM, k2 * BK : +BK] -> As2[0 : +BM, 0 : +BK]
    copy B[bx * BN : +BN, k2 * BK : +BK] -> Bs2[0 : +BN, 0 : +BK]
    gemm As2[0 : +BM, 0 : +BK], Bs2[0 : +BN, 0 : +BK] -> acc[0 : +BM, 0 : +BN] transB
  }
  copy acc[0 : +BM, 0 : +BN]`);
    const k = parseKernel(src, "g.ir");
    expect(printKernel(lower(k, { BM: 64, BN: 64, BK: 32, warps: 4 }, { ...WS, persistentBlocks: 2 })).match(/pipe(_\d+)? = pipe(_\d+)? \+/g)?.length).toBeGreaterThanOrEqual(4);
    expect(() => lower(k, { BM: 64, BN: 64, BK: 32, warps: 4 }, PP(2))).toThrow(/ping-pong \(--pingpong\) of 'gemm': the tile code runs 2 pipelined K loops; .*build without --pingpong/);
  });
});
