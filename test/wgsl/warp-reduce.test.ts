// warp_reduce in WGSL: golden shaders for both expansions (subgroup shuffles with the
// run-time fallback, workgroup memory only), and on the adapter the same bits as the
// interpreter (test/interp/warp-reduce-ref.ts) on every path: subgroups chosen at run time,
// each branch forced by editing the shader, and the workgroup-memory build.
import { readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitWgsl, type WgslKernel } from "../../src/codegen/wgsl/index.ts";
import { zeros } from "../../src/numeric/tensor.ts";
import { runCompiled } from "../../runtime/webgpu/host.ts";
import { warpReduceInputs, warpReduceKernel, warpReduceRef } from "../interp/warp-reduce-ref.ts";
import { gpu, gpuHandle, gpuIt } from "./gpu.ts";

const here = (f: string) => new URL(f, import.meta.url);
const SG = { f16: false, subgroups: true }, WG = { f16: false, subgroups: false };

function golden(file: string, got: string): void {
  if (process.env.UPDATE_GOLDEN) writeFileSync(here(file), got);
  expect(got).toBe(readFileSync(here(file), "utf8"));
}

describe("warp_reduce in the WGSL emitter", () => {
  it("with subgroups: enable, builtins, the per-workgroup layout check, shuffles with the fallback (golden)", () => {
    const w = emitWgsl(warpReduceKernel(), SG);
    golden("golden/warp_reduce.subgroups.wgsl", w.wgsl);
    expect(w.features).toEqual(["subgroups"]);
    expect(w.warpReduce).toBe("subgroups");
    expect(w.wgsl).toContain("enable subgroups;");
    expect(w.wgsl).toContain("let _sg_size = workgroupUniformLoad(&_sg_ok);");
    expect(w.wgsl).toContain("s = s + subgroupShuffleXor(s, 16u);");
    expect(w.wgsl).toContain("if (_sg_size == 4u) {\n    j = subgroupAdd(j);\n  } else if (_sg_size >= 4u) {");
    // f32 sums never use subgroupAdd: its order is unspecified.
    expect(w.wgsl).not.toMatch(/subgroupAdd\(s\)|subgroupMax\(m\)/);
    expect(w.workgroupBytes).toBe(3 * 64 * 4 + 8);
  });

  it("without subgroups: workgroup memory only, no enable, no subgroup builtins (golden)", () => {
    const w = emitWgsl(warpReduceKernel(), WG);
    golden("golden/warp_reduce.workgroup.wgsl", w.wgsl);
    expect(w.features).toEqual([]);
    expect(w.warpReduce).toBe("workgroup");
    expect(w.wgsl).not.toMatch(/subgroup/);
    expect(w.wgsl).toContain("_wr_f32[_lid.x] = s;\n  workgroupBarrier();\n  s = s + _wr_f32[_lid.x ^ 1u];");
  });

  it("a kernel without warp_reduce is unchanged by the feature", () => {
    const k = warpReduceKernel();
    const none = { ...k, launch: { ...k.launch, body: k.launch.body.filter((s) => s.k !== "warp_reduce" && s.k !== "if") } };
    expect(emitWgsl(none, SG).wgsl).toBe(emitWgsl(none, WG).wgsl);
    expect(emitWgsl(none, SG).warpReduce).toBeUndefined();
  });
});

async function runAndCompare(wk: WgslKernel, N: number, seed: number): Promise<void> {
  const k = warpReduceKernel();
  const { X, I } = warpReduceInputs(N, seed);
  const r = await runCompiled(gpuHandle(), k, wk, { X, I, S: zeros("f32", [N]), M: zeros("f32", [N]), J: zeros("i32", [N]), U: zeros("u32", [N]) }, {});
  const want = warpReduceRef(X, I);
  for (const n of ["S", "M", "J", "U"] as const) expect(Array.from(r.outputs[n]!.data), `${n}, N = ${N}`).toEqual(want[n]);
}

const hasSubgroups = gpu.ok && gpu.gpu.hasSubgroups;
describe("warp_reduce on the adapter: the interpreter's bits on every path", () => {
  gpuIt("workgroup-memory build", async () => {
    const wk = emitWgsl(warpReduceKernel(), WG);
    for (const N of [1, 64, 100, 192]) await runAndCompare(wk, N, N);
  }, 120_000);

  it.skipIf(!hasSubgroups)(`subgroups build, path chosen at run time${hasSubgroups ? "" : " [skipped: the adapter has no subgroups]"}`, async () => {
    const wk = emitWgsl(warpReduceKernel(), SG);
    for (const N of [1, 64, 100, 192]) await runAndCompare(wk, N, N + 1);
  }, 120_000);

  it.skipIf(!hasSubgroups)("each branch forced: every warp_reduce through shuffles (sizes this adapter can hold), then every one through the fallback", async () => {
    const wk = emitWgsl(warpReduceKernel(), SG);
    const size = await subgroupSize();
    // Shuffles only where the subgroup holds the group; the others would read other lanes.
    const shuffles = wk.wgsl.replace(/if \(_sg_size >= (\d+)u\)/g, (all, w) => (+w <= size ? "if (true)" : "if (false)"))
      .replace(/if \(_sg_size == (\d+)u\)/g, (all, w) => (+w === size ? "if (true)" : "if (false)"));
    const fallback = wk.wgsl.replace(/if \(_sg_size [>=]=+ \d+u\)/g, "if (false)");
    expect(shuffles).not.toBe(wk.wgsl);
    expect(fallback).not.toMatch(/if \(_sg_size/);
    for (const N of [64, 100]) {
      await runAndCompare({ ...wk, wgsl: shuffles }, N, 3 * N);
      await runAndCompare({ ...wk, wgsl: fallback }, N, 5 * N);
    }
  }, 120_000);

  it.skipIf(!hasSubgroups)("the run-time check: on this adapter subgroups are consecutive lanes, and their size is reported", async () => {
    const size = await subgroupSize();
    expect([4, 8, 16, 32, 64, 128]).toContain(size); // 0 would mean the layout check failed
    const info = gpuHandle().adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
    if (info.subgroupMinSize !== undefined && info.subgroupMinSize === info.subgroupMaxSize) expect(size).toBe(info.subgroupMinSize);
  }, 120_000);
});

/** The usable subgroup size the shader's check finds (0: layout not as assumed): the
 *  subgroups build with J[0] overwritten by _sg_size at the end of main. */
async function subgroupSize(): Promise<number> {
  const wk = emitWgsl(warpReduceKernel(), SG);
  const probe = wk.wgsl.replace(/\n\}\n$/, "\n  if (_lid.x == 0u && _wid.x == 0u) { J[0] = i32(_sg_size); }\n}\n");
  expect(probe).not.toBe(wk.wgsl);
  const N = 64;
  const { X, I } = warpReduceInputs(N, 1);
  const r = await runCompiled(gpuHandle(), warpReduceKernel(), { ...wk, wgsl: probe }, { X, I, S: zeros("f32", [N]), M: zeros("f32", [N]), J: zeros("i32", [N]), U: zeros("u32", [N]) }, {});
  return r.outputs.J!.data[0]!;
}
