// Ping-pong consumers (src/passes/ping-pong.ts) as CUDA: a golden of the emitted bf16 GEMM,
// and nvcc compile-only checks for sm_90a of the builds the bench and the layer candidates
// time (bench/plan.ts's pingpong row, bench/candidates/bf16-prefill-pingpong.json's ping-pong
// up/down stages): 384 threads, each consumer's bar.sync 3 / 4 of 128 threads, the role
// barrier of 384, the order mbarriers, setmaxnreg accepted, wgmma not serialized, no spills.
// UPDATE_GOLDEN=1 npx vitest run test/tma/pingpong-nvcc.test.ts rewrites the golden (review the diff).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import type { Kernel, TunableValue } from "../../src/ir/ir.ts";
import { cudaTarget, lower, type Target } from "../../src/passes/pipeline.ts";
import { stageBuild } from "../../src/moe/stage-build.ts";
import { candidateSpecs } from "../../bench/layer-plan.ts";
import { stages } from "../../src/moe/layer.ts";
import { TMA_CONFIGS } from "../../bench/plan.ts";
import { nvccWarning } from "../cuda/kernels.ts";
import { gemmText } from "../wgmma/gemm-text.ts";

const nvcc = await nvccAvailable();
nvccWarning(nvcc, "ping-pong compile tests (test/tma/pingpong-nvcc.test.ts)");
const SM90 = cudaTarget("sm_90a");
const kernelOf = (file: string, name: string): Kernel => parseKernels(file).find((k) => k.name === name)!;

describe("ping-pong: emitted CUDA", () => {
  it("matches the golden (gemm, bf16 C, 64x64x32 a consumer, 3 stages, 132 blocks)", () => {
    const out = emitCuda(lower(parseKernel(gemmText(3, "bf16"), "g.ir"), { BM: 64, BN: 64, BK: 32, warps: 4 }, { ...SM90, persistentBlocks: 132, pingpong: true }));
    const url = new URL("./golden/gemm_ws_pingpong.cu", import.meta.url);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(url, out.cu);
    else {
      if (!existsSync(url)) throw new Error("missing golden gemm_ws_pingpong.cu; run with UPDATE_GOLDEN=1 to create it");
      expect(out.cu).toBe(readFileSync(url, "utf8"));
    }
    expect(out.threads).toBe(384);
    expect(out.cu).toContain("__launch_bounds__(384, 1)");
    // Each consumer's own barrier and staging tile; the role barrier counts every thread.
    expect(out.cu.match(/bar\.sync 3, 128/g)?.length).toBeGreaterThan(0);
    expect(out.cu.match(/bar\.sync 4, 128/g)?.length).toBe(out.cu.match(/bar\.sync 3, 128/g)?.length);
    expect(out.cu.match(/bar\.sync 2, 384/g)).toHaveLength(2);
    expect(out.cu).not.toMatch(/bar\.sync 1,/);
    expect(out.cu).toMatch(/acc_out_1/);
  });
});

// Each distinct build: the bench's ping-pong GEMM row, and the candidates' ping-pong stages.
const builds: { name: string; kernel: Kernel; config: Record<string, TunableValue>; target: Target }[] = [];
for (const c of TMA_CONFIGS.filter((x) => x.pingpong)) {
  const { cores: _c, copy: _p, persistent, ws, pingpong, ...tunables } = c;
  builds.push({ name: `gemm_bf16 ${JSON.stringify(tunables)}`, kernel: kernelOf("dsl-examples/gemm.ts", "gemm_bf16"), config: tunables,
    target: cudaTarget("sm_90a", "wgmma", "tma", persistent, ws, { pingpong }) });
}
const seen = new Set<string>();
for (const spec of candidateSpecs(JSON.parse(readFileSync("bench/candidates/bf16-prefill-pingpong.json", "utf8"))))
  for (const st of stages(spec)) {
    if (st.stage !== "up" && st.stage !== "down") continue;
    const b = stageBuild(st, SM90);
    if (!b.target.pingpong) continue; // a candidate's cooperative stage (tested in persist-nvcc)
    const key = `${st.kernel} ${JSON.stringify(b.config)}`;
    if (seen.has(key)) continue;
    seen.add(key);
    builds.push({ name: key, kernel: kernelOf(st.file, st.kernel), config: b.config, target: b.target });
  }

describe("ping-pong: the bench's and the layer candidates' builds", () => {
  it("are the GEMM row, two up configs, the down kernel and two reduce-combine down configs, all at 132 blocks", () => {
    expect(builds.map((b) => b.name.split(" ")[0])).toEqual(["gemm_bf16", "moe_gemm_up_permuted", "moe_gemm_down_pairs", "moe_gemm_down", "moe_gemm_up_permuted", "moe_gemm_down_pairs"]);
    for (const b of builds) expect(b.target.persistentBlocks).toBe(132);
  });
});

// One build per kernel here (each nvcc run is ~5 s of npm test); scripts/gpu-check-pingpong.sh
// builds every one of them and checks it on the GPU.
const firstOfKernel = builds.filter((b, i) => builds.findIndex((x) => x.kernel.name === b.kernel.name) === i);
describe.skipIf(!nvcc)("ping-pong: nvcc compile-only for sm_90a", () => {
  for (const b of firstOfKernel) {
    it(`${b.name}: both consumers' barriers, TMA, wgmma; setmaxnreg accepted; no spills, not serialized`, async () => {
      const out = emitCuda(lower(b.kernel, b.config, b.target));
      const res = await compileCuda(out.cu, { arch: "sm_90a", outputs: ["cubin", "ptx"] });
      const ptx = res.ptx ?? "";
      expect(out.threads).toBe(384);
      for (const bar of ["bar.sync 2, 384;", "bar.sync 3, 128;", "bar.sync 4, 128;"]) expect(ptx).toContain(bar);
      expect(ptx).toContain("mbarrier.try_wait.parity.shared::cta.b64");
      expect(ptx).toContain("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes");
      expect(ptx).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n\d+k16\.f32\.bf16\.bf16/);
      expect(ptx).toContain("setmaxnreg.dec.sync.aligned.u32 40;");
      expect(ptx).toContain("setmaxnreg.inc.sync.aligned.u32 232;");
      expect(res.log).not.toMatch(/setmaxnreg ignored/i);
      expect(res.log).not.toMatch(/serializ/i);
      const r = res.resources[out.kernelSymbol]!;
      expect({ regs: r.registers, spills: r.spillStores + r.spillLoads }).toEqual({ regs: 168, spills: 0 });
      // The block fits the sm_90a opt-in (227 KB).
      expect(out.smemBytes).toBeLessThanOrEqual(227 * 1024);
    }, 300_000);
  }
});
