// The running pipeline of warp-specialized persistent blocks as CUDA: a golden of the emitted
// kernel, and nvcc compile-only checks for sm_90a of the configs that use it (the bench's ws
// persistent GEMM row, the layer candidates' persistent up/down stages in
// bench/candidates/bf16-prefill-persistent.json): mbarrier try_wait, cp.async.bulk.tensor and
// wgmma in the PTX, setmaxnreg accepted, no spills, the wgmma not serialized. The bf16-output
// builds (the GEMM rows, the up stage) stage their epilogue through a shared tile of their own
// (lower-epilogue.ts), so the spill check covers the staging addresses in the tile loop.
// UPDATE_GOLDEN=1 npx vitest run test/tma/persist-nvcc.test.ts rewrites the golden (review the diff).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import type { Kernel, TunableValue } from "../../src/ir/ir.ts";
import { cudaTarget, lower } from "../../src/passes/pipeline.ts";
import { stageBuild } from "../../src/moe/stage-build.ts";
import { candidateSpecs } from "../../bench/layer-plan.ts";
import { stages } from "../../src/moe/layer.ts";
import { TMA_CONFIGS } from "../../bench/plan.ts";
import { nvccWarning } from "../cuda/kernels.ts";
import { gemmText } from "../wgmma/gemm-text.ts";

const nvcc = await nvccAvailable();
nvccWarning(nvcc, "persistent warp-specialized compile tests (test/tma/persist-nvcc.test.ts)");
const SM90 = cudaTarget("sm_90a");
const kernelOf = (file: string, name: string): Kernel => parseKernels(file).find((k) => k.name === name)!;

describe("the running pipeline: emitted CUDA", () => {
  it("matches the golden (gemm 64x64x32, 3 stages, one consumer warpgroup, 132 blocks)", () => {
    const out = emitCuda(lower(parseKernel(gemmText(3), "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, { ...SM90, persistentBlocks: 132 }));
    const url = new URL("./golden/gemm_ws_persistent.cu", import.meta.url);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(url, out.cu);
    else {
      if (!existsSync(url)) throw new Error("missing golden gemm_ws_persistent.cu; run with UPDATE_GOLDEN=1 to create it");
      expect(out.cu).toBe(readFileSync(url, "utf8"));
    }
    // One mbarrier init a block, before the tile loop; the producer's only barrier is the role barrier.
    // (The consumers' branch comes second: its inits precede its tile loop.)
    expect(out.cu.lastIndexOf("mbarrier.init")).toBeLessThan(out.cu.lastIndexOf("for (int tile_it"));
    expect(out.cu.match(/mbarrier\.init/g)?.length).toBeGreaterThan(0);
    expect(out.cu.match(/bar\.sync 2, 256/g)).toHaveLength(2);
  });
});

describe("the staged epilogue of warp-specialized persistent blocks: emitted CUDA", () => {
  it("matches the golden (gemm, bf16 C, 64x64x32, 3 stages, 132 blocks)", () => {
    const out = emitCuda(lower(parseKernel(gemmText(3, "bf16"), "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, { ...SM90, persistentBlocks: 132 }));
    const url = new URL("./golden/gemm_ws_persistent_staged.cu", import.meta.url);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(url, out.cu);
    else {
      if (!existsSync(url)) throw new Error("missing golden gemm_ws_persistent_staged.cu; run with UPDATE_GOLDEN=1 to create it");
      expect(out.cu).toBe(readFileSync(url, "utf8"));
    }
    // The staging tile inside the tile loop, after the main loop: one bf16x2 store a pair in,
    // 16-byte vectors out, then the consumers' barrier (the producer's only one is bar 2).
    const loop = out.cu.slice(out.cu.lastIndexOf("for (int tile_it"));
    expect(loop).toMatch(/acc_out/);
    expect(loop.lastIndexOf("bar.sync 1, 128")).toBeGreaterThan(loop.lastIndexOf("acc_out"));
    expect(out.cu.match(/bar\.sync 2, 256/g)).toHaveLength(2);
  });
});

// Each distinct build: the bench's ws persistent GEMM rows, and the candidates' up/down stages.
const builds: { name: string; kernel: Kernel; config: Record<string, TunableValue>; P: number }[] = [];
for (const c of TMA_CONFIGS.filter((x) => x.ws && x.persistent && !x.pingpong)) {
  const { cores: _c, copy: _p, persistent, ws: _w, ...tunables } = c;
  builds.push({ name: `gemm_bf16 ${JSON.stringify(tunables)}`, kernel: kernelOf("dsl-examples/gemm.ts", "gemm_bf16"), config: tunables, P: persistent! });
}
const seen = new Set<string>();
for (const spec of candidateSpecs(JSON.parse(readFileSync("bench/candidates/bf16-prefill-persistent.json", "utf8"))))
  for (const st of stages(spec)) {
    if (st.stage !== "up" && st.stage !== "down") continue;
    const b = stageBuild(st, SM90);
    if (b.target.persistentBlocks === undefined) continue; // a candidate's plain stage (p132up's down)
    const key = `${st.kernel} ${JSON.stringify(b.config)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    builds.push({ name: key, kernel: kernelOf(st.file, st.kernel), config: b.config, P: b.target.persistentBlocks! });
  }

describe("the running pipeline: the bench's and the layer candidates' builds", () => {
  it("are the two GEMM rows, the up config, two down configs and the reduce combine's down, all persistent at 132 and on the running pipeline", () => {
    expect(builds.map((b) => b.name.split(" ")[0])).toEqual(["gemm_bf16", "gemm_bf16", "moe_gemm_up_permuted", "moe_gemm_down", "moe_gemm_down", "moe_gemm_down_pairs"]);
    for (const b of builds) {
      expect(b.P).toBe(132);
      expect(printKernel(lower(b.kernel, b.config, { ...SM90, persistentBlocks: b.P }))).toContain("pipe = pipe + ");
    }
  });
  it("the GEMM rows and the up stage (bf16 outputs) stage their epilogue through a tile of their own", () => {
    const staging = builds.filter((b) => !b.name.startsWith("moe_gemm_down")).map((b) => {
      const text = printKernel(lower(b.kernel, b.config, { ...SM90, persistentBlocks: b.P }));
      return text.match(/alloc \w+_out: shared bf16\[\d+\] layout xor_swizzle\(7, 0\)\n/)?.[0].trim();
    });
    expect(staging).toEqual([
      "alloc acc_out: shared bf16[32768] layout xor_swizzle(7, 0)",
      "alloc acc_out: shared bf16[16384] layout xor_swizzle(7, 0)",
      "alloc gate_out: shared bf16[16384] layout xor_swizzle(7, 0)",
    ]);
  });
});

describe.skipIf(!nvcc)("the running pipeline: nvcc compile-only for sm_90a", () => {
  for (const b of builds) {
    it(`${b.name}: try_wait, TMA and wgmma in the PTX; setmaxnreg accepted; no spills, not serialized`, async () => {
      const out = emitCuda(lower(b.kernel, b.config, { ...SM90, persistentBlocks: b.P }));
      const res = await compileCuda(out.cu, { arch: "sm_90a", outputs: ["cubin", "ptx"] });
      const ptx = res.ptx ?? "";
      expect(ptx).toContain("mbarrier.try_wait.parity.shared::cta.b64");
      expect(ptx).toContain("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes");
      expect(ptx).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n\d+k16\.f32\.bf16\.bf16/);
      expect(ptx).toContain("setmaxnreg.dec.sync.aligned.u32 40;");
      expect(ptx).toMatch(/setmaxnreg\.inc\.sync\.aligned\.u32 \d+;/);
      expect(res.log).not.toMatch(/setmaxnreg ignored/i);
      expect(res.log).not.toMatch(/serializ/i);
      const r = res.resources[out.kernelSymbol]!;
      expect({ regs: r.registers, spills: r.spillStores + r.spillLoads }).toEqual({ regs: r.registers, spills: 0 });
    }, 300_000);
  }
});
