// programmaticLaunch (Target.pdl): IR text in -> IR text out, the sm_90a-only refusal, the text
// form round trip, and the interpreter running a PDL kernel as the plain one (no other grid).
import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";
import { cudaTarget, PASSES, SM80, SM90A, type Target, WGSL } from "../../src/passes/pipeline.ts";
import { programmaticLaunch, waitsForPredecessor } from "../../src/passes/programmatic-launch.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { runKernel } from "../../src/interp/index.ts";
import { inputs, lowerChecked } from "./harness.ts";

const k = (body: string) => `kernel k(X: global f32[N], Y: global f32[N] out)
  dims N
launch thread grid [cdiv(N, 32)] threads 32 blocks [bx] thread tx {
${body}}
`;
const BODY = `  let i: i32 = bx * 32 + tx
  if (i < N) {
    store Y[i] = X[i] * 2.0
  }
`;
const PDL = `  griddepcontrol.wait
  griddepcontrol.launch_dependents
`;
const run = (src: string, target: Target = { ...SM90A, pdl: true }) => printKernel(programmaticLaunch(parseKernel(src), { config: {}, target }));

describe("programmaticLaunch", () => {
  it("puts the wait, then the trigger, before everything else of the body", () => {
    expect(run(k(BODY))).toBe(k(PDL + BODY));
  });
  it("leaves the kernel alone without Target.pdl, and a kernel that already has them", () => {
    expect(run(k(BODY), SM90A)).toBe(k(BODY));
    expect(run(k(PDL + BODY))).toBe(k(PDL + BODY));
  });
  it("is refused for sm_80 and WGSL with a message naming the fix", () => {
    for (const target of [{ ...SM80, pdl: true }, { ...WGSL, pdl: true }]) {
      const e = (() => { try { run(k(BODY), target); } catch (x) { return x as Error & { userFacing?: boolean }; } })();
      expect(e?.message).toMatch(/kernel k: programmatic dependent launch \(--pdl\) needs sm_90a .*drop --pdl or build with --arch sm_90a/);
      expect(e?.userFacing).toBe(true);
    }
  });
  it("is the last pass: after it, nothing moves a statement above the wait", () => {
    expect(PASSES[PASSES.length - 1]!.name).toBe("programmaticLaunch");
  });
  it("the statements print, parse back and verify; under an if they do not verify", () => {
    const src = k(PDL + BODY);
    expect(printKernel(parseKernel(src))).toBe(src);
    expect(verifyErrors(parseKernel(src))).toEqual([]);
    expect(verifyErrors(parseKernel(k(`  if (bx < 1) {\n    griddepcontrol.wait\n  }\n`))).join("\n")).toMatch(/griddepcontrol.wait is reached by every thread .* cannot sit under an 'if'/);
    expect(() => parseKernel(k("  griddepcontrol.launch\n"))).toThrow(/expected 'griddepcontrol.wait' or 'griddepcontrol.launch_dependents', got 'griddepcontrol.launch'/);
  });
  it("waitsForPredecessor says whether the launcher may launch the kernel with PDL", () => {
    expect(waitsForPredecessor(parseKernel(k(PDL + BODY)))).toBe(true);
    expect(waitsForPredecessor(parseKernel(k(BODY)))).toBe(false);
  });
});

describe("a DSL kernel lowered with --pdl", () => {
  const [gate] = parseKernels("dsl-examples/moe_gate.ts").filter((x) => x.name === "moe_gate_softmax");
  const config = { BT: 4, EMAX: 128, KMAX: 8 };
  it("starts with the wait and the trigger on sm_90a (warp-specialized TMA GEMM too), has none without pdl", () => {
    const low = lowerChecked(gate!, config, cudaTarget("sm_90a", "wgmma", "tma", undefined, true, { pdl: true }));
    expect(low.launch.body.slice(0, 2)).toEqual([{ k: "griddep", op: "wait" }, { k: "griddep", op: "launch_dependents" }]);
    expect(printKernel(lowerChecked(gate!, config, cudaTarget("sm_90a"))).includes("griddepcontrol")).toBe(false);
    const [gemm] = parseKernels("dsl-examples/gemm.ts");
    const ws = lowerChecked(gemm!, { BM: 128, BN: 128, BK: 64, stages: 3, warps: 8, GROUP_M: 1 }, cudaTarget("sm_90a", "wgmma", "tma", 132, true, { pdl: true }));
    expect(printKernel(ws)).toMatch(/thread tx \{\n  griddepcontrol\.wait\n  griddepcontrol\.launch_dependents\n/);
    expect(printKernel(ws).match(/griddepcontrol/g)?.length).toBe(2);
  });
  it("runs in the interpreter exactly as the plain lowering (one kernel: no grid to wait for)", () => {
    const plain = lowerChecked(gate!, config, cudaTarget("sm_90a"));
    const pdl = lowerChecked(gate!, config, cudaTarget("sm_90a", "wgmma", "tma", undefined, true, { pdl: true }));
    for (const [T, E, K] of [[5, 16, 4], [9, 128, 8]] as const) {
      const a = inputs(plain, { T, E, K }, 7);
      const b = Object.fromEntries(Object.entries(a).map(([n, v]) => [n, { ...v, data: v.data.slice() }]));
      runKernel(plain, { tensors: a, scalars: { renorm: 1 } });
      runKernel(pdl, { tensors: b, scalars: { renorm: 1 } });
      for (const n of ["weights", "ids"]) expect(Array.from(b[n]!.data)).toEqual(Array.from(a[n]!.data));
      expect(Array.from(a.ids!.data).some((v) => v !== 0)).toBe(true);
    }
  });
});
