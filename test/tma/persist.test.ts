// Warp-specialized persistent blocks whose producer runs ahead across tiles (issue 7): the
// running TMA pipeline of lower-pipeline-tma.ts (mbarriers set up once a block, a running
// stage counter `pipe` in both roles, the last stage of a tile released too), persistentGrid
// keeping the launch's setup in front of its tile loop and linearising 2-d/3-d grids,
// warpSpecialize's role barrier at the end of the setup; IR text in -> out, the interpreter
// against the tile level (more tiles than blocks, trip counts not a multiple of S, tiles that
// skip the loop, 1 and 2 consumer warpgroups), and the mistakes it must report.
import { describe, expect, it } from "vitest";
import { inputs, lowerChecked, maxRelErr, runBoth, tileLevel } from "../passes/harness.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printExpr, printKernel } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { mapStmts, walkStmts } from "../../src/ir/expr.ts";
import type { Expr, Kernel, Stmt } from "../../src/ir/ir.ts";
import { runKernel } from "../../src/interp/index.ts";
import { cudaTarget } from "../../src/passes/pipeline.ts";
import { persistentGrid } from "../../src/passes/persistent-grid.ts";
import { warpSpecialize } from "../../src/passes/warp-specialize.ts";
import { gemmText } from "../wgmma/gemm-text.ts";

const WS = cudaTarget("sm_90a", "wgmma", "tma", undefined, true);
const wsP = (P: number) => ({ ...WS, persistentBlocks: P });
const all = (ss: Stmt[]) => { const out: Stmt[] = []; walkStmts(ss, (s) => { out.push(s); }); return out; };
const edit = (k: Kernel, f: (s: Stmt) => Stmt | Stmt[] | undefined): Kernel => ({ ...k, launch: { ...k.launch, body: mapStmts(k.launch.body, f) } });
const roles = (k: Kernel) => {
  const top = k.launch.body.find((s) => s.k === "if");
  if (top?.k !== "if") throw new Error("no role split");
  return { producer: top.then, consumer: top.else };
};
const parseExpr = (text: string): Expr => {
  const s = parseKernel(`kernel e()\nlaunch thread grid [1] threads 1 blocks [b] thread tx {\n  let x: i32 = ${text}\n}\n`, "e.ir").launch.body[0]!;
  if (s.k !== "let") throw new Error("not an expression");
  return s.value;
};
const tileLoop = (ss: Stmt[]) => ss.find((s) => s.k === "for" && s.vars[0]!.startsWith("tile_it"));

describe("persistentGrid: IR text in -> out", () => {
  it("keeps the launch's setup statements in front of the tile loop and drops the count", () => {
    const k = parseKernel(`kernel t(X: global f32[N] out)
  dims N
launch thread grid [cdiv(N, 64)] threads 64 blocks [pid] thread tx setup 2 {
  alloc bars: shared i64[2]
  var pipe: i32 = 0
  store X[pid * 64 + tx] = 1.0
  pipe = pipe + 1
}
`, "t.ir");
    expect(printKernel(persistentGrid(k, { config: {}, target: wsP(132) }))).toBe(`kernel t(X: global f32[N] out)
  dims N
launch thread grid [min(cdiv(N, 64), 132)] threads 64 blocks [pid_blk] thread tx {
  alloc bars: shared i64[2]
  var pipe: i32 = 0
  for tile_it in serial(0, cdiv(cdiv(N, 64) - pid_blk, 132)) {
    let pid: i32 = pid_blk + tile_it * 132
    store X[pid * 64 + tx] = 1.0
    pipe = pipe + 1
    barrier
  }
}
`);
    // Without persistent blocks the statements stay where they are; only the count goes.
    const plain = printKernel(persistentGrid(k, { config: {}, target: WS }));
    expect(plain).toContain("blocks [pid] thread tx {\n  alloc bars: shared i64[2]\n  var pipe: i32 = 0\n  store");
  });

  it("linearises a 2-d and a 3-d grid x fastest (the MoE grouped GEMMs' [cdiv(N, BN), NB * cdiv(BS, BM)(, splitK)])", () => {
    const src = (grid: string, vars: string) => parseKernel(`kernel t(X: global f32[N] out)
  dims N, R
launch thread grid [${grid}] threads 32 blocks [${vars}] thread tx {
  store X[gx] = 1.0
}
`, "t.ir");
    expect(printKernel(persistentGrid(src("cdiv(N, 64), R", "gx, gy"), { config: {}, target: wsP(8) }))).toContain(`launch thread grid [min(cdiv(N, 64) * R, 8)] threads 32 blocks [gx_blk] thread tx {
  for tile_it in serial(0, cdiv(cdiv(N, 64) * R - gx_blk, 8)) {
    let tile: i32 = gx_blk + tile_it * 8
    let gx: i32 = tile % cdiv(N, 64)
    let gy: i32 = tile / cdiv(N, 64)
    store X[gx] = 1.0`);
    expect(printKernel(persistentGrid(src("cdiv(N, 64), R, 4", "gx, gy, gz"), { config: {}, target: wsP(8) }))).toContain(`    let gx: i32 = tile % cdiv(N, 64)
    let gy: i32 = tile / cdiv(N, 64) % R
    let gz: i32 = tile / (cdiv(N, 64) * R)`);
  });

  it("every tile of a 2-d and a 3-d grid runs once, with P below, at and above the tile count", () => {
    const k = parseKernel(`kernel t(X: global f32[N, R] out)
  dims N, R
launch thread grid [cdiv(N, 4), R, 2] threads 32 blocks [gx, gy, gz] thread tx {
  if (tx < 4 && gx * 4 + tx < N) {
    store X[gx * 4 + tx, gy] = X[gx * 4 + tx, gy] + 1.0 + cast<f32>(gz) * 10.0
  }
}
`, "t.ir");
    for (const P of [1, 5, 7, 100]) {
      const low = persistentGrid(k, { config: {}, target: wsP(P) });
      const X = { dtype: "f32" as const, shape: [10, 3], data: new Float64Array(30) };
      runKernel(low, { tensors: { X } });
      expect({ P, x: [...X.data] }).toEqual({ P, x: new Array(30).fill(12) });
    }
  });
});

describe("the running pipeline: lowering", () => {
  const lowered = (warps = 4, stages = 3, P = 2) => lowerChecked(parseKernel(gemmText(stages), "g.ir"), { BM: 64 * (warps / 4), BN: 64, BK: 32, warps }, wsP(P));

  it("inits the mbarriers once a block, before the tile loop; the producer takes no barrier inside it", () => {
    const k = lowered();
    const { producer, consumer } = roles(k);
    for (const role of [producer, consumer]) {
      const loop = tileLoop(role)!;
      expect(loop).toBeDefined();
      const before = role.slice(0, role.indexOf(loop));
      expect(before.some((s) => s.k === "let" && s.mutable && s.name === "pipe")).toBe(true);
      expect(before.some((s) => s.k === "named_barrier" && s.id === 2)).toBe(true);
      const inside = all([loop]);
      expect(inside.filter((s) => s.k === "mbar_init" || (s.k === "named_barrier" && s.id === 2))).toEqual([]);
      // Both roles advance the counter by the tile's trip count after the loop.
      expect(inside.filter((s) => s.k === "assign" && s.name === "pipe").map((s) => s.k === "assign" && printExpr(s.value))).toEqual(["pipe + cdiv(K, 32)"]);
    }
    expect(all(consumer).filter((s) => s.k === "mbar_init")).toHaveLength(6);
    expect(all(producer).filter((s) => s.k === "named_barrier" || s.k === "barrier").map((s) => s.k === "named_barrier" && s.id)).toEqual([2]);
    expect(all(k.launch.body).filter((s) => s.k === "barrier")).toEqual([]);
    expect(k.launch.setup).toBeUndefined();
  });

  it("stage and phase follow the running index pipe + j; the consumers release the tile's last stage", () => {
    const text = printKernel(lowered());
    expect(text).toContain("if (pipe + j >= 3) {\n              mbar.wait bars[(pipe + j) % 3 + 3] parity (pipe + j) / 3 - 1 & 1");
    expect(text).toContain("tma.load As[(pipe + j) % 3 * 2048] <- tmap_A[by * 64, j * 32] bar bars[(pipe + j) % 3]");
    expect(text).toContain("mbar.wait bars[(pipe + k) % 3] parity (pipe + k) / 3 & 1");
    expect(text).toContain("mbar.arrive bars[(pipe + k - 1) % 3 + 3]");
    expect(text).toMatch(/wgmma\.wait 0\n\s*if \(cdiv\(K, 32\) > 0 && tx % 128 == 0\) \{\n\s*mbar\.arrive bars\[\(pipe \+ cdiv\(K, 32\) - 1\) % 3 \+ 3\]\n\s*\}\n\s*pipe = pipe \+ cdiv\(K, 32\)/);
  });

  it("without persistent blocks, or without warp specialization, the pipeline is the per-tile one", () => {
    const plainWs = lowerChecked(parseKernel(gemmText(3), "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, WS);
    expect(printKernel(plainWs)).not.toContain("pipe");
    const noWs = lowerChecked(parseKernel(gemmText(3), "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, { ...cudaTarget("sm_90a", "wgmma", "tma", undefined, false), persistentBlocks: 2 });
    const text = printKernel(noWs);
    expect(text).not.toContain("pipe");
    // mbar.init stays inside the tile loop.
    expect(text.indexOf("for tile_it")).toBeLessThan(text.indexOf("mbar.init"));
  });

  it("the IR text round-trips and verifies", () => {
    const k = lowered(8, 4);
    const back = parseKernel(printKernel(k), "back.ir");
    expect(printKernel(back)).toBe(printKernel(k));
    expect(verifyErrors(back)).toEqual([]);
  });
});

describe("warpSpecialize: the setup's barrier is the role barrier", () => {
  it("IR text in -> out", () => {
    const src = `kernel t(A: global bf16[M, K])
  dims M, K
  tensormap tmap_A = A box [64, 32] swizzle 64
launch thread grid [4] threads 128 blocks [b_blk] thread tx {
  alloc bars: shared i64[2]
  var pipe: i32 = 0
  if (tx == 0) {
    mbar.init bars[0] count 1
    mbar.fence_init
  }
  barrier
  for tile_it in serial(0, 2) {
    let b: i32 = b_blk + tile_it * 4
    alloc As: shared bf16[4096]
    if (tx >= 128) {
      setmaxnreg.dec 40
      if (tx == 128) {
        mbar.arrive bars[0] tx 4096
        tma.load As[0] <- tmap_A[b * 64, 0] bar bars[0]
      }
      pipe = pipe + 1
    } else {
      mbar.wait bars[0] parity pipe & 1
      pipe = pipe + 1
    }
    barrier
  }
}
`;
    expect(printKernel(warpSpecialize(parseKernel(src, "t.ir"), { config: {}, target: WS }))).toBe(`kernel t(A: global bf16[M, K])
  dims M, K
  tensormap tmap_A = A box [64, 32] swizzle 64
launch thread grid [4] threads 256 blocks [b_blk] thread tx {
  alloc bars: shared i64[2]
  alloc As: shared bf16[4096]
  if (tx >= 128) {
    setmaxnreg.dec 40
    var pipe: i32 = 0
    barrier 2, 256
    for tile_it in serial(0, 2) {
      let b: i32 = b_blk + tile_it * 4
      if (tx == 128) {
        mbar.arrive bars[0] tx 4096
        tma.load As[0] <- tmap_A[b * 64, 0] bar bars[0]
      }
      pipe = pipe + 1
    }
  } else {
    var pipe: i32 = 0
    if (tx == 0) {
      mbar.init bars[0] count 1
      mbar.fence_init
    }
    barrier 2, 256
    for tile_it in serial(0, 2) {
      let b: i32 = b_blk + tile_it * 4
      mbar.wait bars[0] parity pipe & 1
      pipe = pipe + 1
      barrier 1, 128
    }
  }
}
`);
  });
});

// The gemm whose row tiles of an unused routing block skip the pipelined loop (the MoE
// kernels' `if (e >= 0)`): flags[by] < 0 leaves acc at zero.
const skipText = (stages: number) => `
kernel gemm(A: global bf16[M, K], B: global bf16[N, K], flags: global i32[R], C: global f32[M, N])
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

describe("the running pipeline in the interpreter: against the tile level", () => {
  const cases: [string, Record<string, number>, number, number, Record<string, number>][] = [
    ["1 consumer warpgroup, 9 tiles on 2 blocks, 3 K tiles a tile (a multiple of S)", { BM: 64, BN: 64, BK: 32, warps: 4 }, 3, 2, { M: 190, N: 130, K: 96 }],
    ["1 consumer warpgroup, 6 tiles on 4 blocks, 5 K tiles (not a multiple of S)", { BM: 64, BN: 64, BK: 32, warps: 4 }, 3, 4, { M: 130, N: 70, K: 160 }],
    ["2 consumer warpgroups, 4 stages, 7 K tiles, 4 tiles on 3 blocks", { BM: 128, BN: 32, BK: 32, warps: 8 }, 4, 3, { M: 200, N: 40, K: 200 }],
    ["fewer K tiles than stages: one a tile, 6 tiles on 1 block", { BM: 64, BN: 64, BK: 32, warps: 4 }, 4, 1, { M: 130, N: 100, K: 24 }],
  ];
  for (const [name, cfg, stages, P, dims] of cases) it(`${name}: matches`, () => {
    const r = runBoth(gemmText(stages), cfg, wsP(P), { dims, seed: 7 });
    expect(printKernel(r.thread)).toContain("pipe = pipe + ");
    expect(maxRelErr(r.outs, r.want, r.got)).toBeLessThan(1e-5);
  });

  it("tiles that skip the loop leave the counter unchanged in both roles", () => {
    const k = parseKernel(skipText(3), "skip.ir");
    const cfg = { BM: 64, BN: 64, BK: 32, warps: 4 };
    const dims = { M: 256, N: 70, K: 160, R: 4 };
    const low = lowerChecked(k, cfg, wsP(3));
    // The producer evaluates the same condition around its loads.
    expect(printKernel({ ...low, launch: { ...low.launch, body: roles(low).producer } })).toMatch(/let e: i32 = flags\[by\]\n\s*if \(e >= 0\) \{/);
    for (const flags of [[0, -1, 2, -1], [-1, -1, 0, 1], [-1, -1, -1, -1]]) {
      const ins = inputs(tileLevel(k, cfg, WS), dims, 3);
      ins.flags!.data.set(flags);
      const a = structuredClone(ins), b = structuredClone(ins);
      runKernel(tileLevel(k, cfg, WS), { tensors: a });
      runKernel(low, { tensors: b });
      expect({ flags, ok: maxRelErr(["C"], a, b) < 1e-5 }).toEqual({ flags, ok: true });
      // Row tiles of a skipped block are zero, the others are not.
      const rowTile = (t: number) => [...b.C!.data.slice(t * 64 * 70, Math.min(256, (t + 1) * 64) * 70)];
      flags.forEach((f, t) => expect({ t, zero: rowTile(t).every((x) => x === 0) }).toEqual({ t, zero: f < 0 }));
    }
  });
});

describe("the running pipeline in the interpreter: reported mistakes", () => {
  const cfg = { BM: 64, BN: 64, BK: 32, warps: 4 };
  const dims = { M: 130, N: 70, K: 96 };
  const low = () => lowerChecked(parseKernel(gemmText(3), "g.ir"), cfg, wsP(2));
  const run = (k: Kernel) => runKernel(k, { tensors: inputs(k, dims, 1) }, { raceCheck: true });

  it("the correct lowering runs clean (the baseline of the edits below)", () => {
    expect(() => run(low())).not.toThrow();
  });

  it("a consumer that does not release the last stage of a tile deadlocks the producer", () => {
    let n = 0;
    const k = edit(low(), (s) => (s.k === "if" && s.then.length === 1 && s.then[0]!.k === "mbar_arrive" && printExpr(s.cond).startsWith("cdiv(K, 32) > 0") && ++n ? [] : undefined));
    expect(n).toBe(1);
    expect(() => run(k)).toThrow(/deadlock: thread \d+ waits on mbarrier bars\[\d\] for the phase of parity \d .*which can never complete/);
  });

  it("a producer that waits on 'empty' with the wrong parity refills a stage still in use", () => {
    let n = 0;
    const wrong = parseExpr("(pipe + j) / 3 & 1"); // the phase of this fill, not the previous one
    const k = edit(low(), (s) => (s.k === "mbar_wait" && printExpr(s.bar.idx[0]!).endsWith("% 3 + 3") && ++n ? { ...s, parity: wrong } : undefined));
    expect(n).toBe(1);
    expect(() => run(k)).toThrow(/released too early|still pending|deliver \d+ bytes/);
  });

  it("a consumer write into a stage tile after the loop races the next tile's TMA loads: reported", () => {
    // What the lowering must never produce (it keeps the per-tile pipeline where anything
    // outside the loop touches a stage tile): the epilogue writing As while the producer
    // already fills it for the block's next tile.
    const k = edit(low(), (s) => (s.k === "assign" && s.name === "pipe" && printExpr(s.value) === "pipe + cdiv(K, 32)"
      ? [s, { k: "store", buf: "As", idx: [{ k: "var", name: "tx" }], value: { k: "float", v: 0 } } as Stmt] : undefined));
    expect(() => run(k)).toThrow(/writes shared As\[\d+\] while an async copy into it \(cp\.async or tma\.load, issued by thread 128\) is still pending/);
  });

  it("a buffer laid over a stage tile keeps the per-tile pipeline (no running counter)", () => {
    // Stage tiles themselves cannot be used outside their loop (a located error); an overlay
    // written after the loop would race the producer's next loads, so the loop declines.
    const src = gemmText(3).replace("  alloc acc:", "  alloc Cs: shared bf16[BM, BK] over As\n  alloc acc:")
      .replace("  copy acc[0 : +BM, 0 : +BN]", "  copy A[by * BM : +BM, 0 : +BK] -> Cs[0 : +BM, 0 : +BK]\n  copy Cs[0 : +BM, 0 : +BK] -> C[by * BM : +BM, bx * BN : +BK]\n  copy acc[0 : +BM, 0 : +BN]");
    const k = lowerChecked(parseKernel(src, "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, wsP(2));
    const text = printKernel(k);
    expect(text).not.toContain("pipe");
    expect(text.indexOf("for tile_it")).toBeLessThan(text.indexOf("mbar.init"));
  });
});
