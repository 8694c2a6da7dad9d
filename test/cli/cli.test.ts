// The `tilemoe` command as a user runs it: exit codes, located messages, no stack traces.
import { execa } from "execa";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
    const r = await runHere("build", "dsl-examples/gemm.ts", "--kernel", "gemm_f16", "--config", "BM=128,BN=128,BK=32,stages=3,warps=8",
      "--emit", "ir,cu,h", "-o", out);
    expect(r.exitCode, r.stderr).toBe(0);
    const passes = [...r.stdout.matchAll(/^\/\/ ---- after (\w+)$/gm)].map((m) => m[1]);
    expect(passes).toEqual(["specialize", "checkDequantBlocks", "inferTypes", "lowerIntDivision", "inferLayouts", "padPackedTiles", "lowerToThreads", "persistentGrid", "warpSpecialize", "pingPong", "simplify", "overlapClears", "programmaticLaunch"]);
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
    const r = await runHere("build", "dsl-examples/gemm.ts", "--kernel", "gemm_bf16", "--config", "BM=96", "-o", out);
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
    const r = await runHere("build", f, "-o", out);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${f.replace(/[.]/g, "\\.")}:4:5: error: .*while`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("build-layer: the choice table's dispatch in the launcher, --only one entry, and an unknown entry named", async () => {
    const r = await runHere("build-layer", "--model", "qwen3", "--weights", "w4a16", "-o", out);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(programmatic dependent launch; --no-pdl for plain launches\)/);
    expect(r.stdout).toMatch(/^up +moe_gemm_up_w4a16 +decode +.*BM=16/m);
    // Gating and routing: one kernel in the calls with T * top_k <= 64 (Qwen3: T <= 8), two in the others, every entry.
    expect(r.stdout).toMatch(/^gate_align moe_gate_align_softmax decode\+mid\+prefill threads=512 .*BT=16,EMAX=128,KMAX=8,CH=256 \(calls with T \* top_k <= 64\)$/m);
    expect(r.stdout).toMatch(/^gate +moe_gate_softmax +decode\+mid\+prefill .* \(calls with T \* top_k > 64\)$/m);
    expect(r.stdout).toMatch(/^align +moe_align +decode\+mid\+prefill .* \(calls with T \* top_k > 64\)$/m);
    const bf = await runHere("build-layer", "--model", "qwen3", "-o", out);
    expect(bf.stdout).toMatch(/^down +moe_gemm_down_pairs +decode +.*BK=64,stages=4,warps=4,GROUP_M=8 tma=A,W2$/m);
    expect(bf.stdout).toMatch(/^combine +moe_combine +decode\+mid\+prefill +/m);
    expect((await runHere("build-layer", "--model", "qwen3", "--copy", "cp.async", "-o", out)).stdout).not.toMatch(/tma=/);
    const cu = readFileSync(join(out, "moe_layer_qwen3_w4a16.cu"), "utf8");
    expect(cu).toMatch(/if \(T <= 192\) return 0;  \/\/ decode: routing block 16;.*\n  if \(T <= 1024\) return 1;  \/\/ mid: routing block 32;/);
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

  it("build-layer: each entry's combine by default (bf16: prefill reduces), --combine forces one (w4a16 too; reduce_bf16), a bad word is refused", async () => {
    const table = await runHere("build-layer", "--model", "mixtral", "--copy", "cp.async", "-o", out);
    expect(table.exitCode, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^down +moe_gemm_down +decode +/m);
    expect(table.stdout).toMatch(/^down +moe_gemm_down_pairs +prefill +/m);
    expect(table.stdout).toMatch(/^combine +moe_combine +prefill +/m);
    const atomic = await runHere("build-layer", "--model", "mixtral", "--combine", "atomic", "--copy", "cp.async", "-o", out);
    expect(atomic.exitCode, atomic.stderr).toBe(0);
    expect(atomic.stdout).toMatch(/moe_layer_mixtral_bf16_atomic\.cu/);
    expect(atomic.stdout).not.toMatch(/moe_gemm_down_pairs|moe_combine/);
    const w4 = await runHere("build-layer", "--model", "mixtral", "--weights", "w4a16", "--combine", "reduce", "--copy", "cp.async", "-o", out);
    expect(w4.exitCode, w4.stderr).toBe(0);
    expect(w4.stdout).toMatch(/^down +moe_gemm_down_pairs_w4a16 +prefill +/m);
    const word = await runHere("build-layer", "--model", "mixtral", "--combine", "sum", "-o", out);
    expect([word.exitCode, word.stderr]).toEqual([1, expect.stringMatching(/--combine must be atomic, reduce, reduce_bf16, got 'sum'/)]);
    const rb = await runHere("build-layer", "--model", "qwen3", "--combine", "reduce_bf16", "--only", "prefill", "-o", out);
    expect(rb.exitCode, rb.stderr).toBe(0);
    expect(rb.stdout).toMatch(/^down +moe_gemm_down_pairs_bf16 +prefill +/m);
    expect(rb.stdout).toMatch(/^combine +moe_combine_bf16 +prefill +/m);
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

  it("says what is wrong with a missing file, an unknown flag, an unknown kernel and a FILE given to build-all / build-layer (was: ignored; build-all built everything)", async () => {
    const missing = await runHere("build", "nope.ts");
    expect([missing.exitCode, missing.stderr]).toEqual([1, expect.stringMatching(/nope\.ts: no such file/)]);
    const flag = await runHere("check", "dsl-examples/gemm.ts", "--frobnicate");
    expect([flag.exitCode, flag.stderr]).toEqual([1, expect.stringMatching(/frobnicate[\s\S]*usage: tilemoe check/)]);
    const all = await runHere("build-all", "dsl-examples/gemm.ts", "-o", join(out, "all"));
    expect([all.exitCode, all.stderr]).toEqual([1, "build-all compiles every kernel of dsl-examples/ and takes no FILE (got dsl-examples/gemm.ts); for one file: tilemoe build dsl-examples/gemm.ts"]);
    const layer = await runHere("build-layer", "qwen3");
    expect([layer.exitCode, layer.stderr]).toEqual([1, expect.stringMatching(/^build-layer takes no FILE or word \(got qwen3\); the model is --model NAME/)]);
    const kern = await runHere("build", "dsl-examples/gemm.ts", "--kernel", "nope");
    expect([kern.exitCode, kern.stderr]).toEqual([1, expect.stringMatching(/no kernel named 'nope' \(kernels: gemm_bf16, gemm_f16\)/)]);
  });

  it("an -o that is a file, lies under a file or cannot be made is a user error naming -o and the fix (was: internal error)", async () => {
    const file = join(out, "a-file");
    writeFileSync(file, "mine");
    for (const args of [["build", "dsl-examples/gemm_f32.ts"], ["build-all"], ["build-layer", "--model", "qwen3"]]) {
      const r = await runHere(...args, "-o", file);
      expect([r.exitCode, r.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: -o .*a-file: a file of that name exists; give a folder/)]);
      const under = await runHere(...args, "-o", join(file, "sub"));
      expect([under.exitCode, under.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: -o .*a-file\/sub: cannot create the folder: a file stands where a folder is needed \(ENOTDIR\)/)]);
    }
    expect(readFileSync(file, "utf8")).toBe("mine");
    // Node's recursive mkdir never returns here (mkdir answers ENOENT under /proc).
    const proc = await runHere("build", "dsl-examples/gemm_f32.ts", "-o", "/proc/tilemoe-no/such");
    expect([proc.exitCode, proc.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: -o \/proc\/tilemoe-no\/such: cannot create the folder: cannot be created there \(ENOENT\)/)]);
    const rep = await runHere("tune", "dsl-examples/gemm_f32.ts", "--shape", "M=1,N=1,K=1", "--report", file, "--plan", join(out, "plan-rep"));
    expect([rep.exitCode, rep.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: --report .*a-file: a file of that name exists/)]);
  });

  it.skipIf(process.getuid?.() === 0)("a read-only -o folder is a user error (root writes anywhere: skipped as root)", async () => {
    const ro = join(out, "read-only");
    mkdirSync(ro, { recursive: true });
    chmodSync(ro, 0o555);
    const r = await runHere("build", "dsl-examples/gemm_f32.ts", "-o", ro);
    chmodSync(ro, 0o755);
    expect([r.exitCode, r.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: -o .*read-only: cannot write in the folder: permission denied \(EACCES\)/)]);
    expect(readdirSync(ro)).toEqual([]);
  });

  it("tune names a missing kernel file (was: internal error ENOENT)", async () => {
    const r = await runHere("tune", "nope.ts", "--shape", "M=1", "--plan", join(out, "plan-nope"));
    expect([r.exitCode, r.stderr]).toEqual([1, expect.stringMatching(/^nope\.ts: no such file \(give the path of a kernel \.ts file/)]);
  });

  it("number flags: 0 cases is refused (was: '0 passed, 0 failed', exit 0), counts are not clamped, a negative number or a forgotten value is said as such", async () => {
    const zero = await runHere("check", "dsl-examples/gemm_f32.ts", "--cases", "0");
    expect([zero.exitCode, zero.stderr, zero.stdout]).toEqual([1, "--cases takes a whole number of at least 1, got '0'", ""]);
    for (const v of ["", "1e2", "0x10", "2.5", "-1"]) {
      const r = await runHere("check", "dsl-examples/gemm_f32.ts", `--cases=${v}`);
      expect([r.exitCode, r.stderr]).toEqual([1, `--cases takes a whole number of at least 1, got '${v}'`]);
    }
    const neg = await runHere("check", "dsl-examples/gemm_f32.ts", "--seed", "-3");
    expect([neg.exitCode, neg.stderr]).toEqual([1, expect.stringMatching(/^--seed -3: a negative number is not a valid value here\nusage: tilemoe check/)]);
    const forgot = await runHere("build", "dsl-examples/gemm_f32.ts", "-o", "--kernel", "gemm_f32");
    expect([forgot.exitCode, forgot.stderr]).toEqual([1, expect.stringMatching(/^-o has no value: '--kernel' after it is a flag \(give -o VALUE\)/)]);
    for (const flag of ["--gpus", "--reps", "--timeout", "--jobs", "--max-candidates"]) {
      const r = await runHere("tune", "dsl-examples/gemm_f32.ts", "--shape", "M=1,N=1,K=1", flag, "0", "--plan", join(out, "plan-zero"));
      expect([r.exitCode, r.stderr]).toEqual([1, `${flag} takes a whole number of at least 1, got '0'`]);
    }
  });

  it("checks a kernel file outside any ESM package (was: 'Cannot require() ES Module ... in a cycle')", async () => {
    // Spawned: under vitest, vite would load the file itself. The temp folder has no package.json,
    // so Node takes the .ts for CommonJS.
    const f = join(mkdtempSync(join(tmpdir(), "tilemoe-outside-")), "mine.ts");
    writeFileSync(f, readFileSync("dsl-examples/gemm_f32.ts", "utf8"));
    const r = await run("check", f, "--cases", "2");
    expect([r.exitCode, r.stdout, r.stderr]).toEqual([0, "gemm_f32 [interp]: 2 passed, 0 failed", ""]);
    writeFileSync(f, readFileSync("dsl-examples/gemm_f32.ts", "utf8") + "\nthrow new Error(\"boom at load\");\n");
    const bad = await run("check", f, "--cases", "2");
    expect([bad.exitCode, bad.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: .*mine\.ts: could not load the file's check specs: boom at load$/)]);
  });

  it("checks a kernel file from its own project's folder, which has not installed tilemoe, ESM or not (was: 'Cannot find module 'tilemoe'')", async () => {
    const bin = join(process.cwd(), "bin/tilemoe.js");
    for (const esm of [false, true]) {
      const dir = mkdtempSync(join(tmpdir(), "tilemoe-project-"));
      if (esm) writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
      writeFileSync(join(dir, "mine.ts"), readFileSync("dsl-examples/gemm_f32.ts", "utf8"));
      const r = await execa("node", [bin, "check", "mine.ts", "--cases", "2"], { cwd: dir, reject: false, env: { TILEMOE_DEBUG: "" } });
      expect([esm, r.exitCode, r.stdout, r.stderr]).toEqual([esm, 0, "gemm_f32 [interp]: 2 passed, 0 failed", ""]);
    }
  });

  it("inputs that were silently unused or wrote nothing (exit 0) are refused: --emit off its target or empty, no kernels, --shape with an unknown dim or beside --config, a --tune-cache that does not exist, CUDA-only flags on WGSL", async () => {
    const dir = join(out, "unused");
    const cases: [string[], RegExp][] = [
      [["build", "dsl-examples/gemm_f32.ts", "--emit", ""], /^--emit names no artifact, so nothing would be written; give some of ir, cu, h, ptx, cubin$/],
      [["build", "dsl-examples/gemm_f32.ts", "--emit", "cu,wgsl"], /^--emit wgsl is not an artifact of --target cuda \(it writes ir, cu, h, ptx, cubin\); add --target wgsl$/],
      [["build", "dsl-examples/gemm_f32.ts", "--target", "wgsl", "--emit", "h"], /^--emit h is not an artifact of --target wgsl/],
      [["build", "dsl-examples/gemm_f32.ts", "--shape", "Q=5"], /^--shape names Q, not a dim of the kernel \(dims: M, K, N\)$/],
      [["build", "dsl-examples/gemm_f32.ts", "--shape", "M=5", "--config", "BM=32"], /^--shape picks the tuned config; --config names one: drop one or the other$/],
      [["build", "dsl-examples/gemm_f32.ts", "--target", "wgsl", "--tune-cache", "bench/tuned.json"], /^--tune-cache picks a tuned CUDA config; a --target wgsl build takes --config$/],
      [["build", "dsl-examples/gemm_f32.ts", "--tune-cache", "bench/tunde.json"], /^--tune-cache bench\/tunde\.json: no such file \(a cache written by tilemoe tune/],
      [["build", "dsl-examples/gemm_f32.ts", "--target", "wgsl", "--persistent", "132"], /^--persistent chooses how a CUDA kernel is built; --target wgsl ignores it: drop it$/],
      [["check", "dsl-examples/gemm_f32.ts", "--backend", "webgpu", "--arch", "sm_80", "--mma", "sync"], /^--arch, --mma choose how a CUDA kernel is built; --backend webgpu ignores them: drop them$/],
      [["check", "dsl-examples/gemm_f32.ts", "--level", "tile", "--persistent", "8"], /^--persistent chooses how a CUDA kernel is built; --level tile \(the kernel before lowering\) ignores it: drop it$/],
      [["check", "dsl-examples/gemm_w4a16.ts", "--level", "tile", "--ws", "--dequant", "wgmma"], /^--ws, --dequant choose how a CUDA kernel is built; --level tile \(the kernel before lowering\) ignores them: drop them$/],
      [["build", "dsl-examples/gemm_f32.ts", "--target", "wgsl", "--no-ws"], /^--no-ws chooses how a CUDA kernel is built; --target wgsl ignores it: drop it$/],
      [["check", "dsl-examples/gemm_f32.ts", "--shape", "M=4,k=3"], /^--shape names k, not a dim of the kernel \(dims: M, K, N\)$/],
      [["tune", "dsl-examples/gemm_f32.ts", "--shape", "M=1,N=1,K=1,Q=4", "--plan", join(out, "plan-q")], /^tilemoe: --shape M=1,N=1,K=1,Q=4 names Q, not a dim of gemm_f32/],
    ];
    const empty = join(out, "empty.ts");
    writeFileSync(empty, 'import { T } from "tilemoe";\nconst notExported = 1;\n');
    for (const cmd of ["build", "check"]) cases.push([[cmd, empty], /empty\.ts: no kernels \(a kernel file exports each one as `export const NAME = T\.kernel\(\.\.\.\)`/]);
    for (const [args, msg] of cases) {
      const r = await runHere(...args, ...(args[0] === "build" ? ["-o", dir] : []));
      expect([args.join(" "), r.exitCode, r.stderr]).toEqual([args.join(" "), 1, expect.stringMatching(msg)]);
    }
    // A check spec's own dims (beyond the kernel's) may be pinned.
    const spec = await runHere("check", "dsl-examples/gemm_f32.ts", "--shape", "M=3,N=5,K=7", "--cases", "1");
    expect([spec.exitCode, spec.stderr]).toEqual([0, ""]);
  });

  it("check refuses a shape too large to hold, naming the tensor and its size (was: internal error 'Invalid typed array length')", async () => {
    const r = await runHere("check", "dsl-examples/gemm_f32.ts", "--shape", "M=100000,N=100000,K=100000", "--cases", "1");
    expect([r.exitCode, r.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: gemm_f32: 'A' would hold 1\.00e\+10 elements at M=100000,K=100000,N=100000, too many to check here .*pass a smaller --shape$/)]);
  });

  it("a --config or --shape giving a name twice is refused (was: the last one silently won)", async () => {
    const cfg = await runHere("build", "dsl-examples/gemm_f32.ts", "--config", "BM=32,BN=32,BM=64", "-o", join(out, "twice"));
    expect([cfg.exitCode, cfg.stderr]).toEqual([1, "--config gives BM twice (BM=32 and BM=64); give it once"]);
    const shape = await runHere("check", "dsl-examples/gemm_f32.ts", "--shape", "M=3, M=4");
    expect([shape.exitCode, shape.stderr]).toEqual([1, "--shape gives M twice (M=3 and M=4); give it once"]);
  });

  it("never overwrites a file in -o that tilemoe did not write (was: a user's own gemm_f32.h replaced); its own outputs are rebuilt in place", async () => {
    const dir = join(out, "users-folder");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "gemm_f32.h"), "// my own header\n");
    const r = await runHere("build", "dsl-examples/gemm_f32.ts", "-o", dir);
    expect([r.exitCode, r.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: .*users-folder\/gemm_f32\.h exists and was not written by tilemoe .*refusing to overwrite it: move it, or give another -o folder$/)]);
    expect(readFileSync(join(dir, "gemm_f32.h"), "utf8")).toBe("// my own header\n");
    // Refused before anything is written: no new .cu beside the user's .h (was: the .cu written first).
    expect(existsSync(join(dir, "gemm_f32.cu"))).toBe(false);
    writeFileSync(join(dir, "moe_layer_qwen3_bf16.h"), "// my own layer header\n");
    const byH = await runHere("build-layer", "--model", "qwen3", "-o", dir);
    expect([byH.exitCode, existsSync(join(dir, "moe_layer_qwen3_bf16.cu"))]).toEqual([1, false]);
    rmSync(join(dir, "moe_layer_qwen3_bf16.h"));
    writeFileSync(join(dir, "moe_layer_qwen3_bf16.cu"), "int main() {}\n");
    const layer = await runHere("build-layer", "--model", "qwen3", "--only", "decode", "-o", dir);
    expect(layer.exitCode).toBe(0); // another name: the decode-only layer is moe_layer_qwen3_bf16_decode
    const full = await runHere("build-layer", "--model", "qwen3", "-o", dir);
    expect([full.exitCode, full.stderr]).toEqual([1, expect.stringMatching(/moe_layer_qwen3_bf16\.cu exists and was not written by tilemoe/)]);
    expect(readFileSync(join(dir, "moe_layer_qwen3_bf16.cu"), "utf8")).toBe("int main() {}\n");
    const again = await runHere("build-layer", "--model", "qwen3", "--only", "decode", "-o", dir);
    expect([again.exitCode, again.stderr]).toEqual([0, ""]);
    const wgsl = await runHere("build", "dsl-examples/gemm_f32.ts", "--target", "wgsl", "--emit", "wgsl,json,ir", "-o", dir);
    const rebuilt = await runHere("build", "dsl-examples/gemm_f32.ts", "--target", "wgsl", "--emit", "wgsl,json,ir", "-o", dir);
    expect([wgsl.exitCode, rebuilt.exitCode, rebuilt.stderr]).toEqual([0, 0, ""]);
  }, 120_000);

  it("a kernel whose block cannot launch on the arch fails its build (was: an 'ok' row, exit 0, for 400 MB of shared memory)", async () => {
    const f = join(out, "huge_smem.ts");
    writeFileSync(f, [
      'import { T, type Tensor } from "tilemoe";',
      'export const huge = T.kernel({ tune: { R: [64, 1024] } }, function huge(A: Tensor<"N", "f32">, { R }: T.Config) {',
      "  T.launch([1], { threads: 32 }, (bx) => {",
      '    const s = T.shared([R, 64], "f32");',
      "  });",
      "});",
    ].join("\n"));
    const fits = await runHere("build", f, "-o", join(out, "huge"));
    expect([fits.exitCode, fits.stderr]).toEqual([0, ""]);
    const r = await runHere("build", f, "--config", "R=1024", "--arch", "sm_80", "-o", join(out, "huge"));
    expect([r.exitCode, r.stderr]).toEqual([1, "tilemoe: huge (R=1024) cannot launch on sm_80: shared memory 256 KiB per block exceeds 163 KiB (sm_80 table); pick a config with smaller tiles or fewer stages"]);
  });

  it("bench scripts: a bad flag or value is a one-line message and exit 1 (was: Node's stack trace; --reps abc was taken as NaN)", async () => {
    const tsx = (...args: string[]) => execa("node_modules/.bin/tsx", args, { reject: false });
    // The four scripts start in parallel: each is a tsx start-up of a few seconds (serial, this
    // test was the slowest of the suite).
    writeFileSync(join(out, "a-file"), "mine");
    const cases = [
      [["bench/run.ts", "--frob"], /^bench\/run\.ts: Unknown option '--frob'.*\(the flags are listed at the top of the script\)$/],
      [["bench/run.ts", "--reps", "abc", "--out", join(out, "bench")], /^bench\/run\.ts: --reps takes a whole number of at least 1, got 'abc'/],
      [["bench/w4a16.ts", "--arch", "sm_70", "--out", join(out, "bench")], /^bench\/w4a16\.ts: --arch must be sm_90a or sm_80, got 'sm_70'/],
      [["bench/run.ts", "--out", join(out, "a-file")], /^bench\/run\.ts: --out .*a-file\/plan: cannot create the folder: a file stands where a folder is needed \(ENOTDIR\); give a folder you can write$/],
    ] as [string[], RegExp][];
    const runs = await Promise.all(cases.map(([args]) => tsx(...args)));
    cases.forEach(([args, msg], i) =>
      expect([args.join(" "), runs[i]!.exitCode, runs[i]!.stderr]).toEqual([args.join(" "), 1, expect.stringMatching(msg)]));
  }, 120_000);

  it("checks a kernel on the interpreter and prints the pass/fail count", async () => {
    const r = await runHere("check", "dsl-examples/gemm.ts", "--kernel", "gemm_f16", "--cases", "3", "--seed", "5");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^gemm_f16 \[interp\]: 3 passed, 0 failed$/m);
  });

  it("check refuses a config its kernel refuses once, before any case (not as every case failing)", async () => {
    const r = await runHere("check", "dsl-examples/moe_permute.ts", "--config", "BR=64,BH=512,stages=2,warps=8", "--cases", "2");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/moe_permute\.ts:\d+:\d+: error: config \{ BR: 64, BH: 512, stages: 2, warps: 8 \} violates the 'where' constraint of kernel 'moe_permute'/);
    expect(r.stdout).not.toMatch(/passed|FAIL/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("without nvcc, says so and still writes the CUDA source", async () => {
    const dir = join(out, "nonvcc");
    // Both processes at once (each a Node start and a TypeScript load).
    const noNvcc = (args: string[]) => execa(process.execPath, ["bin/tilemoe.js", ...args],
      { reject: false, env: { PATH: "/usr/bin:/bin", TILEMOE_DEBUG: "" }, extendEnv: false });
    const [r, tune] = await Promise.all([noNvcc(["build", "dsl-examples/gemm_f32.ts", "--emit", "cu,cubin", "-o", dir]),
      noNvcc(["tune", "dsl-examples/gemm_f32.ts", "--shape", "M=1,N=1,K=1", "--plan", join(out, "plan-nonvcc")])]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^tilemoe: nvcc not found on PATH; install the CUDA toolkit or pass --emit cu/m);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(readFileSync(join(dir, "gemm_f32.cu"), "utf8")).toMatch(/__global__/);
    // tune has no --emit: its message says what tune needs (was: 'pass --emit cu').
    expect([tune.exitCode, tune.stderr]).toEqual([1, expect.stringMatching(/^tilemoe: nvcc not found on PATH: tune compiles every candidate with nvcc; install the CUDA toolkit/m)]);
    expect(tune.stderr).not.toMatch(/--emit/);
  });

  it("refuses the CUDA backend without a GPU, clearly", async () => {
    const r = await runHere("check", "dsl-examples/gemm.ts", "--backend", "cuda", "--cases", "1");
    if (r.exitCode === 0) return; // a GPU machine: the cuda backend really ran
    expect(r.stderr).toMatch(/--backend cuda needs a GPU: .*; run it on a GPU machine \(scripts\/gpu-run\.sh\), or check here with --backend interp \(the default\) or --backend webgpu$/);
  });

  it("refuses the WebGPU backend without an adapter as the machine's fact, exit 1 (was: 'internal error ... a bug in tilemoe', exit 2)", async () => {
    const r = await execa("node", ["bin/tilemoe.js", "check", "dsl-examples/gemm_f32.ts", "--backend", "webgpu", "--cases", "1"],
      { reject: false, env: { TILEMOE_DEBUG: "", VK_ICD_FILENAMES: "/nonexistent/icd.json" } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^tilemoe: no WebGPU adapter: /m);
    expect(r.stderr).not.toMatch(/internal error/);
  });
});
