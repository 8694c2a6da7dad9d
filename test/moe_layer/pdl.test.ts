// Programmatic dependent launch along the layer's kernel chain (docs/LAYER.md, PDL): on sm_90a by
// default every stage kernel waits for its predecessor first thing and is launched through its
// _ex launcher with the layer's `pdl`; the outputs stages only add into (logits, out) are cleared
// by the layer launcher before its first kernel, so no memset separates two kernels; the table
// with plain launches of the same kernels is exported for the bench (_nopdl). Without PDL (sm_80,
// or pdl off) the launcher is the one it was. Text checks only: the layer compiles for sm_90a in
// layer.test.ts (PDL on), and runs on the GPU in scripts/gpu-check-pdl.sh.
import { describe, expect, it } from "vitest";
import { hoistedClears, emitLayerCuda } from "../../src/moe/host.ts";
import { type LayerSpec, stageKernels, stageKey } from "../../src/moe/layer.ts";
import { cudaTarget, lower } from "../../src/passes/pipeline.ts";
import { stageBuild } from "../../src/moe/stage-build.ts";
import { tinyMixedConfigs } from "./tiny.ts";

const mixed: LayerSpec = { name: "tiny_mixed", experts: 4, hidden: 64, intermediate: 72, topK: 2, activation: "silu", weights: "bf16",
  renormalize: true, configs: tinyMixedConfigs() };
const at = (cu: string, name: string) => cu.slice(cu.indexOf(`static int moe_layer_${name}_at(`), cu.indexOf("\n}\n", cu.indexOf(`static int moe_layer_${name}_at(`)));
/** The stage launchers' bodies (each `extern "C" int NAME(_ex)?(...) {` up to its closing brace). */
const launchers = (cu: string) => [...cu.matchAll(/\nextern "C" int (moe_layer_\w+?)(?:_ex)?\([^\n]*\{\n([\s\S]*?)\n\}\n/g)].map((m) => ({ name: m[1]!, body: m[2]! }));

describe("the layer with PDL (sm_90a's default)", () => {
  const l = emitLayerCuda(mixed, "sm_90a", "tma");
  const a = at(l.cu, "tiny_mixed");

  it("every stage kernel starts with the wait and the trigger", () => {
    for (const u of l.lowered) expect(u.kernel.launch.body.slice(0, 2).map((s) => s.k === "griddep" && s.op)).toEqual(["wait", "launch_dependents"]);
    expect(l.cu.match(/asm volatile\("griddepcontrol\.wait;" ::: "memory"\);/g)).toHaveLength(l.lowered.length);
  });
  it("calls every stage through its _ex launcher with the layer's pdl, and the entry points pass 1, _nopdl 0", () => {
    const calls = [...a.matchAll(/err = (moe_layer_tiny_mixed_\w+)\(([^\n]*)\);/g)];
    expect(calls.length).toBe(l.lowered.length);
    for (const c of calls) expect([c[1]!.endsWith("_ex"), c[2]!.endsWith(", stream, pdl")]).toEqual([true, true]);
    expect(a).toMatch(/^static int moe_layer_tiny_mixed_at\(int config, .*cudaStream_t stream, int pdl\) \{/);
    expect(l.cu).toMatch(/extern "C" int moe_layer_tiny_mixed\([^\n]*\{\n  return moe_layer_tiny_mixed_at\(moe_layer_tiny_mixed_config\(T\), [^\n]*, stream, 1\);/);
    expect(l.cu).toMatch(/extern "C" int moe_layer_tiny_mixed_nopdl_buffers\([^\n]*\{\n[^\n]*\n  return moe_layer_tiny_mixed_at\(moe_layer_tiny_mixed_config\(T\), [^\n]*, stream, 0\);/);
    expect(l.h).toContain("int moe_layer_tiny_mixed_nopdl_buffers(void* const* buffers, int count, int64_t T, void* workspace, size_t workspace_bytes, cudaStream_t stream);");
    expect(l.h).toMatch(/Programmatic dependent launch \(sm_90\): each kernel waits/);
  });
  it("clears logits (every entry) and out (the atomic entry) before the first kernel; no stage launcher clears", () => {
    const first = a.indexOf("int err;");
    expect(a.slice(0, first)).toMatch(/\n  \{\n    const cudaError_t e = cudaMemsetAsync\(logits, 0, \(size_t\)\(\(int64_t\)T \* \(int64_t\)4 \* 4\), stream\);\n    if \(e != cudaSuccess\) return 1 \* MOE_LAYER_TINY_MIXED_STAGE \+ MOE_LAYER_TINY_MIXED_ROUTER_DECODE_ERR_CUDA \+ \(int\)e;\n  \}/);
    // out: only the decode entry's down kernel adds into it; the prefill entry's combine overwrites it.
    // Stage 6: router, gate_align (calls with T * top_k <= 256), gate, align (the others), up, down.
    expect(a.slice(0, first)).toMatch(/\n  if \(config == 0\) \{\n    const cudaError_t e = cudaMemsetAsync\(out, 0, \(size_t\)\(\(int64_t\)T \* \(int64_t\)64 \* 4\), stream\);\n    if \(e != cudaSuccess\) return 6 \* MOE_LAYER_TINY_MIXED_STAGE \+ MOE_LAYER_TINY_MIXED_DOWN_DECODE_ERR_CUDA/);
    expect(a.slice(first)).not.toContain("cudaMemsetAsync");
    const ls = launchers(l.cu).filter((x) => !x.name.startsWith("moe_layer_tiny_mixed_at"));
    expect(ls.length).toBeGreaterThan(l.lowered.length);
    for (const x of ls) expect({ launcher: x.name, memset: x.body.includes("cudaMemsetAsync") }).toEqual({ launcher: x.name, memset: false });
    expect(l.cu).toContain("  // out: the kernel only adds into it; the caller clears it before the kernel runs (not here).");
  });
});

describe("the layer without PDL", () => {
  for (const [arch, pdl] of [["sm_80", false], ["sm_90a", false]] as const) {
    it(`${arch}${arch === "sm_90a" ? " with pdl off" : ""}: no griddepcontrol, plain launches, the clears in the stage launchers`, () => {
      const l = emitLayerCuda(mixed, arch, "tma", pdl);
      expect(l.cu).not.toMatch(/griddepcontrol|cudaLaunchKernelEx|_ex\(|_nopdl|int pdl/);
      expect(l.cu.match(/cudaMemsetAsync\(logits, 0, /g)).toHaveLength(2);
      expect(at(l.cu, "tiny_mixed")).not.toContain("cudaMemsetAsync");
      // The same helper as above finds the clears in the launchers here.
      expect(launchers(l.cu).filter((x) => x.body.includes("cudaMemsetAsync")).map((x) => x.name))
        .toEqual(["moe_layer_tiny_mixed_router_decode", "moe_layer_tiny_mixed_router_prefill", "moe_layer_tiny_mixed_down_decode"]);
    });
  }
  it("asking for PDL on sm_80 is a user error naming the fix", () => {
    const e = (() => { try { emitLayerCuda(mixed, "sm_80", "tma", true); } catch (x) { return x as Error & { userFacing?: boolean }; } })();
    expect(e?.message).toMatch(/layer tiny_mixed: programmatic dependent launch needs sm_90a .*build-layer --no-pdl/);
    expect(e?.userFacing).toBe(true);
  });
});

describe("hoistedClears", () => {
  const table = stageKernels(mixed);
  const target = cudaTarget("sm_80");
  const units = table[0]!.stages.map(({ stage, kernel }) => { const b = stageBuild(stage, target); return { key: stageKey(stage), kernel: lower(kernel, b.config, b.target), configs: ["decode"] }; });
  const decodeOnly = [{ ...table[0]! }];
  it("hoists a buffer that no earlier stage of the entry binds: logits (router, first) and out (down)", () => {
    const h = hoistedClears(decodeOnly, units);
    expect([...h.values()]).toEqual([["logits"], ["out"]]);
  });
  it("keeps the clear in the launcher where an earlier stage reads or writes the same buffer", () => {
    // The same entry with the gating stage gate_align (of the calls with T * top_k <= 256; the
    // check counts every stage before down, whatever its condition) bound to read `out` as its logits: out may not be cleared before it runs.
    const bent = [{ ...table[0]!, stages: table[0]!.stages.map((s) => (s.stage.stage === "gate_align" ? { ...s, stage: { ...s.stage, bind: { ...s.stage.bind, logits: "out" } } } : s)) }];
    const h = hoistedClears(bent, units);
    expect([...h.values()]).toEqual([["logits"]]);
  });
});
