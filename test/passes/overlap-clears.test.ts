// overlapClears (Target.clearKernel, sm_90a): IR text in -> IR text out (the wait right before the
// first top-level statement that touches an output written only by atomic adds), what it leaves
// alone (sm_80, --pdl's chain mode, nothing to clear, a kernel that already waits),
// clearsByKernel (the launcher's test of the IR), and the decode kernels lowered for sm_90a:
// the wait between the main loop and the split-K atomics, the same outputs in the interpreter.
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { cudaTarget, PASSES, SM80, SM90A, type Target } from "../../src/passes/pipeline.ts";
import { clearsByKernel, overlapClears } from "../../src/passes/overlap-clears.ts";
import { waitsForPredecessor } from "../../src/passes/programmatic-launch.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { runKernel } from "../../src/interp/index.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { lowerChecked } from "./harness.ts";

const k = (body: string) => `kernel k(X: global f32[N], Y: global f32[N] out)
  dims N
launch thread grid [cdiv(N, 32), 4] threads 32 blocks [bx, bz] thread tx {
${body}}
`;
// A split-K-like body: a partial sum from X, then added into Y (Y is written only by adds).
const LOOP = `  alloc acc: local f32[1]
  store acc[0] = 0.0
  for kk in serial(0, 4) {
    let i: i32 = bx * 32 + tx
    if (i < N) {
      store acc[0] = acc[0] + X[i] * cast<f32>(kk + bz)
    }
  }
`;
const LET = "  let o: i32 = bx * 32 + tx\n";
const GUARDED = `  if (o < N) {
    atomic.add Y[o], acc[0]
  }
`;
const ADD = LET + GUARDED;
const WAIT = "  griddepcontrol.wait\n";
const CLEAR: Target = { ...SM90A, clearKernel: true };
const run = (src: string, target: Target = CLEAR) => printKernel(overlapClears(parseKernel(src), { config: {}, target }));

describe("overlapClears", () => {
  it("puts the wait right before the first top-level statement that touches the cleared output", () => {
    expect(run(k(LOOP + ADD))).toBe(k(LOOP + LET + WAIT + GUARDED));
    expect(verifyErrors(parseKernel(run(k(LOOP + ADD))))).toEqual([]);
  });
  it("a read of the cleared output counts as an access: the wait goes before it", () => {
    const read = "  let y0: f32 = Y[0]\n";
    expect(run(k(LOOP + read + ADD))).toBe(k(LOOP + WAIT + read + ADD));
    expect(run(k(LOOP + LET + read + GUARDED))).toBe(k(LOOP + LET + WAIT + read + GUARDED));
  });
  it("never under an if or inside a loop: a nested access puts the wait before the top-level statement", () => {
    const nested = `  for kk in serial(0, 4) {
    let i: i32 = bx * 32 + tx
    if (i < N) {
      atomic.add Y[i], X[i]
    }
  }
`;
    expect(run(k(nested))).toBe(k(WAIT + nested));
    expect(verifyErrors(parseKernel(run(k(nested))))).toEqual([]);
  });
  it("leaves alone: no clearKernel, sm_80, --pdl (chain mode waits at the top), nothing to clear, a kernel that already waits", () => {
    expect(run(k(LOOP + ADD), SM90A)).toBe(k(LOOP + ADD));
    expect(run(k(LOOP + ADD), { ...SM80, clearKernel: true })).toBe(k(LOOP + ADD));
    expect(run(k(LOOP + ADD), { ...CLEAR, pdl: true })).toBe(k(LOOP + ADD));
    const stored = ADD.replace("atomic.add Y[o], acc[0]", "store Y[o] = acc[0]");
    expect(run(k(LOOP + stored))).toBe(k(LOOP + stored));
    const chain = "  griddepcontrol.wait\n  griddepcontrol.launch_dependents\n";
    expect(run(k(chain + LOOP + ADD))).toBe(k(chain + LOOP + ADD));
  });
  it("runs after simplify and before programmaticLaunch (still the last pass)", () => {
    const names = PASSES.map((p) => p.name);
    expect(names.slice(-3)).toEqual(["simplify", "overlapClears", "programmaticLaunch"]);
  });
  it("cudaTarget turns it on for sm_90a only; clearKernel: false turns it off", () => {
    expect(cudaTarget("sm_90a").clearKernel).toBe(true);
    expect(cudaTarget("sm_80").clearKernel).toBeUndefined();
    expect(cudaTarget("sm_90a", "wgmma", "tma", undefined, true, { clearKernel: false }).clearKernel).toBeUndefined();
  });
});

describe("clearsByKernel (the launcher's test on the IR)", () => {
  const is = (src: string) => clearsByKernel(parseKernel(src));
  it("holds when every access to the cleared outputs comes after a top-level wait", () => {
    expect(is(run(k(LOOP + ADD)))).toBe(true);
    expect(is(k(WAIT + LOOP + ADD))).toBe(true);
  });
  it("fails without a wait, with an access before the wait, without anything to clear, and for chain mode", () => {
    expect(is(k(LOOP + ADD))).toBe(false);
    expect(is(k(ADD.replace("acc[0]", "1.0") + WAIT + ADD.replace("let o", "let o2").replaceAll("o <", "o2 <").replace("Y[o]", "Y[o2]")))).toBe(false);
    const stored = ADD.replace("atomic.add Y[o], acc[0]", "store Y[o] = acc[0]");
    expect(is(k(LOOP + WAIT + stored))).toBe(false);
    expect(is(k("  griddepcontrol.wait\n  griddepcontrol.launch_dependents\n" + LOOP + ADD))).toBe(false);
  });
  it("a lone wait at the top is not the chain-mode prologue: no _ex launcher", () => {
    const nested = `  for kk in serial(0, 1) {\n    atomic.add Y[tx], X[tx]\n  }\n`;
    const low = parseKernel(run(k(nested)));
    expect(low.launch.body[0]).toMatchObject({ k: "griddep", op: "wait" });
    expect(waitsForPredecessor(low)).toBe(false);
    expect(clearsByKernel(low)).toBe(true);
  });
});

describe("the split-K decode kernels lowered for sm_90a", () => {
  const file = parseKernels("dsl-examples/gemm_w4a16.ts");
  const decode = { BM: 16, BN: 64, BK: 128, stages: 2, warps: 4 };
  for (const name of ["gemm_w4a16", "gemm_w4a16_mma"]) {
    const kernel = file.find((x) => x.name === name)!;
    it(`${name}: one wait, between the main loop and the epilogue's atomics; none at splitK 1, on sm_80 or added under --pdl`, () => {
      const low = lowerChecked(kernel, { ...decode, splitK: 4 }, cudaTarget("sm_90a"));
      const text = printKernel(low);
      expect(text.match(/griddepcontrol/g)).toHaveLength(1);
      const body = low.launch.body;
      const at = body.findIndex((s) => s.k === "griddep");
      const before = printKernel({ ...low, launch: { ...low.launch, body: body.slice(0, at) } });
      expect(before).toMatch(/cp\.async[\s\S]*mma\.bf16/);
      expect(before).not.toContain("atomic");
      expect(printKernel({ ...low, launch: { ...low.launch, body: [body[at + 1]!] } })).toMatch(/atomic\.add C\[/);
      expect(clearsByKernel(low)).toBe(true);
      expect(printKernel(lowerChecked(kernel, { ...decode, splitK: 1 }, cudaTarget("sm_90a")))).not.toContain("griddepcontrol");
      expect(printKernel(lowerChecked(kernel, { ...decode, splitK: 4 }, cudaTarget("sm_80")))).not.toContain("griddepcontrol");
      const chain = lowerChecked(kernel, { ...decode, splitK: 4 }, cudaTarget("sm_90a", "wgmma", "tma", undefined, true, { pdl: true }));
      expect(printKernel(chain).match(/griddepcontrol/g)).toHaveLength(2);
      expect(waitsForPredecessor(chain) && !clearsByKernel(chain)).toBe(true);
    });
  }
  it("runs in the interpreter exactly as the lowering without the wait (a dirty C cleared by the caller)", () => {
    const kernel = file.find((x) => x.name === "gemm_w4a16")!;
    const config = { ...decode, splitK: 4 };
    const plain = lowerChecked(kernel, config, cudaTarget("sm_90a", "wgmma", "tma", undefined, true, { clearKernel: false }));
    const clear = lowerChecked(kernel, config, cudaTarget("sm_90a"));
    expect(printKernel(plain)).not.toContain("griddepcontrol");
    const M = 3, N = 64, K = 392;
    const a = { A: randomTensor("bf16", [M, K], 1, -1, 1), W: randomTensor("u32", [N, K / 8], 2, 0, 0xffffffff),
      S: randomTensor("bf16", [N, Math.ceil(K / 128)], 3, -0.25, 0.25), C: randomTensor("f32", [M, N], 4, 0, 0) };
    const b = Object.fromEntries(Object.entries(a).map(([n, v]) => [n, { ...v, data: v.data.slice() }]));
    runKernel(plain, { tensors: a, scalars: {} });
    runKernel(clear, { tensors: b, scalars: {} });
    expect(Array.from(b.C!.data)).toEqual(Array.from(a.C!.data));
    expect(Array.from(a.C!.data).some((v) => v !== 0)).toBe(true);
  }, 60_000);
});
