// The `tilemoe` command as a user runs it: exit codes, located messages, no stack traces.
import { execa } from "execa";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.ts";

const run = (...args: string[]) => execa("node", ["bin/tilemoe.js", ...args], { reject: false, env: { TILEMOE_DEBUG: "" } });
/** The same command through main() in this process, output captured: what bin/tilemoe.js runs,
 *  without a Node start and a TypeScript load per call (2-3 s each on two busy cores). The
 *  tests of process-level behaviour (exit codes seen by a shell, no stack traces, PATH) spawn. */
async function runHere(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const out: string[] = [], err: string[] = [];
  const text = (a: unknown[]) => a.map(String).join(" ") + "\n";
  const spies = [vi.spyOn(console, "log").mockImplementation((...a) => { out.push(text(a)); }),
    vi.spyOn(console, "error").mockImplementation((...a) => { err.push(text(a)); }),
    vi.spyOn(console, "warn").mockImplementation((...a) => { err.push(text(a)); })];
  const debug = process.env.TILEMOE_DEBUG;
  process.env.TILEMOE_DEBUG = "";
  try {
    const exitCode = await main(args);
    return { exitCode, stdout: out.join("").replace(/\n$/, ""), stderr: err.join("").replace(/\n$/, "") };
  } finally {
    for (const x of spies) x.mockRestore();
    if (debug === undefined) delete process.env.TILEMOE_DEBUG; else process.env.TILEMOE_DEBUG = debug;
  }
}
const out = mkdtempSync(join(tmpdir(), "tilemoe-cli-"));

describe("tilemoe CLI", () => {
  it("builds one kernel with a config and prints the IR after every pass", async () => {
    const r = await run("build", "dsl-examples/gemm.ts", "--kernel", "gemm_f16", "--config", "BM=128,BN=128,BK=32,stages=3,warps=8",
      "--emit", "ir,cu,h", "-o", out);
    expect(r.exitCode, r.stderr).toBe(0);
    const passes = [...r.stdout.matchAll(/^\/\/ ---- after (\w+)$/gm)].map((m) => m[1]);
    expect(passes).toEqual(["specialize", "checkDequantBlocks", "inferTypes", "inferLayouts", "padPackedTiles", "lowerToThreads", "persistentGrid", "warpSpecialize", "pingPong", "simplify", "overlapClears", "programmaticLaunch"]);
    expect(r.stdout).toMatch(/launch thread grid/);
    const cu = readFileSync(join(out, "gemm_f16.cu"), "utf8");
    // The default arch is sm_90a: the gemm goes through wgmma (docs/HOPPER.md).
    expect(cu).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n\d+k16\.f32\.f16\.f16/);
    expect(readFileSync(join(out, "gemm_f16.h"), "utf8")).toMatch(/int gemm_f16\(const __half\* A, const __half\* B, __half\* C/);
  });

  it("--pingpong: two consumer warpgroups in the IR; without --persistent, or with --no-ws, a usage error naming the fix", async () => {
    const cfg = ["--config", "BM=128,BN=128,BK=64,stages=4,warps=4,GROUP_M=8"];
    const r = await runHere("build", "dsl-examples/gemm.ts", "--kernel", "gemm_bf16", ...cfg, "--persistent", "132", "--pingpong", "--emit", "ir", "-o", out);
    expect(r.exitCode, r.stderr).toBe(0);
    const last = r.stdout.slice(r.stdout.lastIndexOf("// ---- after simplify"));
    expect(last).toMatch(/threads 384 blocks/);
    expect(last).toContain("mbar.wait order[1] parity (tile_it - 1) / 2 & 1");
    const noP = await runHere("build", "dsl-examples/gemm.ts", "--kernel", "gemm_bf16", ...cfg, "--pingpong", "-o", out);
    expect(noP.exitCode).toBe(1);
    expect(noP.stderr).toMatch(/--pingpong .*add --persistent P/);
    const noWs = await runHere("build", "dsl-examples/gemm.ts", "--kernel", "gemm_bf16", ...cfg, "--persistent", "132", "--no-ws", "--pingpong", "-o", out);
    expect(noWs.exitCode).toBe(1);
    expect(noWs.stderr).toMatch(/--pingpong .*add --ws/);
    const w8 = await runHere("build", "dsl-examples/gemm.ts", "--kernel", "gemm_bf16", "--config", "BM=128,BN=128,BK=64,stages=4,warps=8,GROUP_M=8", "--persistent", "132", "--pingpong", "-o", out);
    expect(w8.stdout + w8.stderr).toMatch(/use warps = 4/);
    expect(w8.stderr).not.toMatch(/\n\s+at /);
  });

  it("rejects a config value outside the kernel's space, naming the allowed values", async () => {
    const r = await run("build", "dsl-examples/gemm.ts", "--kernel", "gemm_bf16", "--config", "BM=96", "-o", out);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/BM.*96.*allowed values: 128, 64/s);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("reports an unsupported construct at file:line:col with exit code 1", async () => {
    const f = join(out, "bad.ts");
    writeFileSync(f, [
      'import { T, type Tensor } from "tilemoe";',
      "export const k = T.kernel({ tune: {} }, function k(A: Tensor<\"N\", \"f32\">) {",
      "  T.launch([1], { threads: 32 }, (bx) => {",
      "    while (bx < 3) {}",
      "  });",
      "});",
    ].join("\n"));
    const r = await run("build", f, "-o", out);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${f.replace(/[.]/g, "\\.")}:4:5: error: .*while`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("build-layer: the choice table's dispatch in the launcher, --only one entry, and an unknown entry named", async () => {
    const r = await runHere("build-layer", "--model", "qwen3", "--weights", "w4a16", "-o", out);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(programmatic dependent launch; --no-pdl for plain launches\)/);
    expect(r.stdout).toMatch(/^up +moe_gemm_up_w4a16 +decode +.*BM=16/m);
    // Gating and routing: one kernel in the calls with T * top_k <= 256 (Qwen3: T <= 32), two in the others, every entry.
    expect(r.stdout).toMatch(/^gate_align moe_gate_align_softmax decode\+mid\+prefill threads=512 .*BT=16,EMAX=128,KMAX=8,CH=256 \(calls with T \* top_k <= 256\)$/m);
    expect(r.stdout).toMatch(/^gate +moe_gate_softmax +decode\+mid\+prefill .* \(calls with T \* top_k > 256\)$/m);
    expect(r.stdout).toMatch(/^align +moe_align +decode\+mid\+prefill .* \(calls with T \* top_k > 256\)$/m);
    const bf = await runHere("build-layer", "--model", "qwen3", "-o", out);
    expect(bf.stdout).toMatch(/^down +moe_gemm_down_pairs +decode +.*BK=64,stages=4,warps=4,GROUP_M=8 tma=A,W2$/m);
    expect(bf.stdout).toMatch(/^combine +moe_combine +decode\+mid\+prefill +/m);
    expect((await runHere("build-layer", "--model", "qwen3", "--copy", "cp.async", "-o", out)).stdout).not.toMatch(/tma=/);
    const cu = readFileSync(join(out, "moe_layer_qwen3_w4a16.cu"), "utf8");
    expect(cu).toMatch(/if \(T <= 512\) return 0;  \/\/ decode: routing block 16;.*\n  if \(T <= 2048\) return 1;  \/\/ mid: routing block 32;/);
    // On sm_90a the layer launches its kernels with PDL by default (the stages' _ex launchers).
    expect(cu).toMatch(/if \(config == 0\) err = moe_layer_qwen3_w4a16_down_decode_ex\(.*, stream, pdl\);/);
    expect(cu).toMatch(/else err = moe_layer_qwen3_w4a16_down_prefill_ex\(/);
    const one = await runHere("build-layer", "--model", "qwen3", "--weights", "w4a16", "--only", "prefill", "-o", out);
    expect(one.exitCode, one.stderr).toBe(0);
    expect(readFileSync(join(out, "moe_layer_qwen3_w4a16_prefill.cu"), "utf8")).not.toMatch(/config == /);
    const bad = await runHere("build-layer", "--model", "qwen3", "--only", "turbo", "-o", out);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/qwen3 bf16 has no layer config 'turbo' \(its choice table: decode, mid, prefill\)/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 120_000);

  it("build-layer: each entry's combine by default (bf16: prefill reduces), --combine forces one, w4a16 cannot reduce", async () => {
    const table = await runHere("build-layer", "--model", "mixtral", "--copy", "cp.async", "-o", out);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^down +moe_gemm_down +decode +/m);
    expect(table.stdout).toMatch(/^down +moe_gemm_down_pairs +prefill +/m);
    expect(table.stdout).toMatch(/^combine +moe_combine +prefill +/m);
    const atomic = await runHere("build-layer", "--model", "mixtral", "--combine", "atomic", "--copy", "cp.async", "-o", out);
    expect(atomic.exitCode, atomic.stderr).toBe(0);
    expect(atomic.stdout).toMatch(/moe_layer_mixtral_bf16_atomic\.cu/);
    expect(atomic.stdout).not.toMatch(/moe_gemm_down_pairs|moe_combine/);
    const w4 = await runHere("build-layer", "--model", "mixtral", "--weights", "w4a16", "--combine", "reduce", "-o", out);
    expect(w4.exitCode).toBe(1);
    expect(w4.stderr).toMatch(/layer mixtral_w4a16_reduce: config 'decode': the reduce combine has a bf16 down kernel only .*use combine "atomic" for w4a16 weights/);
    expect(w4.stderr).not.toMatch(/\n\s+at /);
    const word = await runHere("build-layer", "--model", "mixtral", "--combine", "sum", "-o", out);
    expect([word.exitCode, word.stderr]).toEqual([1, expect.stringMatching(/--combine must be atomic or reduce, got 'sum'/)]);
  }, 120_000);

  it("--pdl: build emits the wait and the PDL launch, check runs it, and sm_80 / WGSL refuse it", async () => {
    const b = await runHere("build", "dsl-examples/moe_gate.ts", "--kernel", "moe_gate_softmax", "--pdl", "--emit", "ir,cu", "-o", out);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/^\/\/ ---- after programmaticLaunch\n[\s\S]*thread tx \{\n  griddepcontrol\.wait\n  griddepcontrol\.launch_dependents\n/m);
    expect(readFileSync(join(out, "moe_gate_softmax.cu"), "utf8")).toMatch(/griddepcontrol\.wait[\s\S]*cudaLaunchKernelExC/);
    for (const args of [["build", "dsl-examples/moe_gate.ts", "--pdl", "--arch", "sm_80"], ["build-layer", "--model", "qwen3", "--pdl", "--arch", "sm_80"]]) {
      const r = await runHere(...args, "-o", out);
      expect([r.exitCode, r.stderr]).toEqual([1, expect.stringMatching(/--pdl \(programmatic dependent launch\) needs --arch sm_90a: .*got --arch sm_80; drop --pdl/)]);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const chk = await runHere("check", "dsl-examples/moe_gate.ts", "--kernel", "moe_gate_softmax", "--pdl", "--cases", "2");
    expect([chk.exitCode, chk.stdout]).toEqual([0, expect.stringMatching(/^moe_gate_softmax \[interp\]: 2 passed, 0 failed$/m)]);
    const web = await runHere("check", "dsl-examples/moe_gate.ts", "--pdl", "--backend", "webgpu");
    expect([web.exitCode, web.stderr]).toEqual([1, expect.stringMatching(/--pdl \(programmatic dependent launch\) needs --arch sm_90a: .*got --target wgsl/)]);
  }, 180_000);

  it("build-layer: PDL on by default on sm_90a (first test), --no-pdl and sm_80 without griddepcontrol or the attribute", async () => {
    const off = await runHere("build-layer", "--model", "qwen3", "--weights", "w4a16", "--no-pdl", "-o", out);
    expect(off.exitCode, off.stderr).toBe(0);
    expect(off.stdout).not.toMatch(/programmatic/);
    expect(readFileSync(join(out, "moe_layer_qwen3_w4a16.cu"), "utf8")).not.toMatch(/griddepcontrol|cudaLaunchKernelEx|_nopdl/);
    const sm80 = await runHere("build-layer", "--model", "qwen3", "--weights", "w4a16", "--arch", "sm_80", "-o", out);
    expect(sm80.exitCode, sm80.stderr).toBe(0);
    expect(readFileSync(join(out, "moe_layer_qwen3_w4a16.cu"), "utf8")).not.toMatch(/griddepcontrol|cudaLaunchKernelEx/);
  }, 180_000);

  it("says what is wrong with a missing file, an unknown flag and an unknown kernel", async () => {
    const missing = await runHere("build", "nope.ts");
    expect([missing.exitCode, missing.stderr]).toEqual([1, expect.stringMatching(/nope\.ts: no such file/)]);
    const flag = await runHere("check", "dsl-examples/gemm.ts", "--frobnicate");
    expect([flag.exitCode, flag.stderr]).toEqual([1, expect.stringMatching(/frobnicate[\s\S]*usage: tilemoe check/)]);
    const kern = await runHere("build", "dsl-examples/gemm.ts", "--kernel", "nope");
    expect([kern.exitCode, kern.stderr]).toEqual([1, expect.stringMatching(/no kernel named 'nope' \(kernels: gemm_bf16, gemm_f16\)/)]);
  });

  it("checks a kernel on the interpreter and prints the pass/fail count", async () => {
    const r = await runHere("check", "dsl-examples/gemm.ts", "--kernel", "gemm_f16", "--cases", "3", "--seed", "5");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^gemm_f16 \[interp\]: 3 passed, 0 failed$/m);
  });

  it("check refuses a config its kernel refuses once, before any case (not as every case failing)", async () => {
    const r = await run("check", "dsl-examples/moe_permute.ts", "--config", "BR=64,BH=512,stages=2,warps=8", "--cases", "2");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/moe_permute\.ts:\d+:\d+: error: config \{ BR: 64, BH: 512, stages: 2, warps: 8 \} violates the 'where' constraint of kernel 'moe_permute'/);
    expect(r.stdout).not.toMatch(/passed|FAIL/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("without nvcc, says so and still writes the CUDA source", async () => {
    const dir = join(out, "nonvcc");
    const r = await execa(process.execPath, ["bin/tilemoe.js", "build", "dsl-examples/gemm_f32.ts", "--emit", "cu,cubin", "-o", dir],
      { reject: false, env: { PATH: "/usr/bin:/bin", TILEMOE_DEBUG: "" }, extendEnv: false });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^tilemoe: nvcc not found on PATH; install the CUDA toolkit or pass --emit cu/m);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(readFileSync(join(dir, "gemm_f32.cu"), "utf8")).toMatch(/__global__/);
  });

  it("refuses the CUDA backend without a GPU, clearly", async () => {
    const r = await run("check", "dsl-examples/gemm.ts", "--backend", "cuda", "--cases", "1");
    if (r.exitCode === 0) return; // a GPU machine: the cuda backend really ran
    expect(r.stderr).toMatch(/--backend cuda needs a GPU/);
  });
});
