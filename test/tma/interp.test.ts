// The interpreter's mbarrier/TMA model reports the synchronisation mistakes a TMA pipeline can
// make (src/interp/tma.ts): each test breaks one thing in the correctly lowered gemm and
// expects the matching report, never a silently wrong result.
import { describe, expect, it } from "vitest";
import { inputs, lowerChecked } from "../passes/harness.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { cudaTarget } from "../../src/passes/pipeline.ts";
import { mapStmts } from "../../src/ir/expr.ts";
import { type Kernel, type Stmt, int } from "../../src/ir/ir.ts";
import { printExpr } from "../../src/ir/print.ts";
import { runKernel } from "../../src/interp/index.ts";
import { gemmText } from "../wgmma/gemm-text.ts";

// The plain TMA pipeline (warp specialization, the sm_90a default, has its own tests: ws.test.ts).
const TMA = cudaTarget("sm_90a", "wgmma", "tma", undefined, false);
const lowered = (warps = 4) => lowerChecked(parseKernel(gemmText(3), "g.ir"), { BM: 64 * (warps / 4), BN: 64, BK: 32, warps }, TMA);
const run = (k: Kernel) => runKernel(k, { tensors: inputs(k, { M: 64, N: 64, K: 128 }, 1) }, { raceCheck: true });
/** The consumer's wait on a stage's full barrier (bars[j % S]; the empty ones are bars[S + ...]). */
const isFullWait = (s: Stmt): s is Extract<Stmt, { k: "mbar_wait" }> => s.k === "mbar_wait" && !printExpr(s.bar.idx[0]!).includes("+");
const edit = (k: Kernel, f: (s: Stmt) => Stmt | Stmt[] | undefined): Kernel => ({ ...k, launch: { ...k.launch, body: mapStmts(k.launch.body, f) } });

describe("TMA and mbarriers in the interpreter: reported mistakes", () => {
  it("the correct lowering runs clean (the baseline of the edits below)", () => {
    expect(() => run(lowered())).not.toThrow();
    expect(() => run(lowered(8))).not.toThrow();
  });

  it("a wait on the wrong phase parity lets the wgmma read a stage before its copies land", () => {
    const k = edit(lowered(), (s) => (isFullWait(s) ? { ...s, parity: { k: "bin", op: "^", a: s.parity, b: int(1) } } : undefined));
    expect(() => run(k)).toThrow(/async copy into it \(cp\.async or tma\.load.*still pending: missing cp\.wait, or mbar\.wait on the right phase/s);
  });

  it("a missing mbar.wait on the full barrier is a read of a pending TMA copy", () => {
    let dropped = 0;
    const k = edit(lowered(), (s) => {
      if (isFullWait(s)) { dropped++; return []; }
      return undefined;
    });
    expect(dropped).toBe(1);
    expect(() => run(k)).toThrow(/still pending: missing cp\.wait, or mbar\.wait/);
  });

  it("a missing expect_tx (a plain arrive) is reported", () => {
    const k = edit(lowered(), (s) => (s.k === "mbar_arrive" && s.tx !== undefined ? { ...s, tx: undefined } : undefined));
    expect(() => run(k)).toThrow(/deliver \d+ bytes on mbarrier bars\[\d+\] in a phase whose arrive\.expect_tx announced 0: missing or short expect_tx/);
  });

  it("a short expect_tx completes the phase early: the other operand's copy is still pending when read", () => {
    const k = edit(lowered(), (s) => (s.k === "mbar_arrive" && s.tx !== undefined ? { ...s, tx: s.tx / 2 } : undefined));
    expect(() => run(k)).toThrow(/reads shared Bs\[\d+\] while an async copy into it .*still pending/);
  });

  it("a too large expect_tx never completes: a deadlock naming the barrier", () => {
    const k = edit(lowered(), (s) => (s.k === "mbar_arrive" && s.tx !== undefined ? { ...s, tx: s.tx + 16 } : undefined));
    expect(() => run(k)).toThrow(/deadlock: thread \d+ waits on mbarrier bars\[\d+\] for the phase of parity 0 .*bytes delivered\), which can never complete/);
  });

  it("a missing release (no arrive on the empty barrier) deadlocks the producer", () => {
    const k = edit(lowered(), (s) => (s.k === "mbar_arrive" && s.tx === undefined ? [] : undefined));
    expect(() => run(k)).toThrow(/deadlock: thread 0 waits on mbarrier bars\[\d+\]/);
  });

  it("releasing a stage before its wgmma retired lets the refill race the wgmma's reads", () => {
    let moved = false;
    const k = edit(lowered(8), (s) => {
      if (s.k !== "for" || !s.body.some(isFullWait)) return undefined;
      const wait = s.body.findIndex((t) => t.k === "wgmma_wait");
      const release = s.body.findIndex((t) => t.k === "if" && t.then.some((u) => u.k === "mbar_arrive" && u.tx === undefined));
      if (wait < 0 || release < wait) return undefined;
      const body = [...s.body];
      const [r] = body.splice(release, 1);
      body.splice(wait, 0, r!);
      moved = true;
      return { ...s, body };
    });
    expect(moved).toBe(true);
    expect(() => run(k)).toThrow(/tma\.load refills (As|Bs)\[\d+\.\.\] while a wgmma of warpgroup \d+ that reads it has not retired: the stage was released too early/);
  });

  it("TMA on a barrier whose init was not fenced is reported", () => {
    const k = edit(lowered(), (s) => (s.k === "mbar_fence_init" ? [] : undefined));
    expect(() => run(k)).toThrow(/was not followed by mbar\.fence_init/);
  });

  it("use of a barrier nobody initialised is reported", () => {
    const k = edit(lowered(), (s) => (s.k === "mbar_init" ? [] : undefined));
    expect(() => run(k)).toThrow(/which no mbar\.init has initialised/);
  });

  it("the barrier after the inits is needed: other threads would use them unsynchronised", () => {
    let first = true;
    const k = edit(lowered(), (s) => {
      if (s.k === "if" && s.then.some((t) => t.k === "mbar_fence_init")) return s;
      if (s.k === "barrier" && first) { first = false; return []; }
      return undefined;
    });
    expect(() => run(k)).toThrow(/data race on shared bars\[\d+\]/);
  });
});
