// The nvcc driver: compile-only builds of the emitted kernels and launchers for sm_80 and
// sm_90a, the ptxas report, the cache, and the failure paths.
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { NVCC_MISSING, NvccError, NvccNotFoundError, compileCuda, invocations, nvccAvailable, parsePtxasInfo, runnerModule } from "../../src/driver/nvcc.ts";
import { KERNELS, loadKernel, nvccWarning } from "./kernels.ts";

const nvcc = await nvccAvailable();
nvccWarning(nvcc, "nvcc compile tests (test/cuda/nvcc.test.ts)");
const scratch = mkdtempSync(join(tmpdir(), "tilemoe-nvcc-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("ptxas report parsing", () => {
  it("reads registers, spills, smem and stack per entry function", () => {
    const log = [
      "ptxas info    : 0 bytes gmem",
      "ptxas info    : Compiling entry function 'a_kernel' for 'sm_80'",
      "ptxas info    : Function properties for a_kernel",
      "    8 bytes stack frame, 12 bytes spill stores, 16 bytes spill loads",
      "ptxas info    : Used 255 registers, used 1 barriers, 1024 bytes smem, 376 bytes cmem[0]",
      "ptxas info    : Compile time = 63.390 ms",
      "ptxas info    : Compiling entry function 'b_kernel' for 'sm_90a'",
      "ptxas info    : Function properties for b_kernel",
      "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads",
      "ptxas info    : Used 24 registers, used 0 barriers",
    ].join("\n");
    const r = parsePtxasInfo(log);
    expect(r.a_kernel).toEqual({ arch: "sm_80", registers: 255, smemStatic: 1024, spillStores: 12, spillLoads: 16, stackFrame: 8, barriers: 1, lmem: 0, cmem: 376 });
    expect(r.b_kernel).toMatchObject({ arch: "sm_90a", registers: 24, spillStores: 0, smemStatic: 0, barriers: 0 });
    expect(Object.keys(r)).toEqual(["a_kernel", "b_kernel"]);
  });
});

describe("nvcc invocations", () => {
  it("runs one compile for obj, cubin and ptx together, and a fatbin on its own", () => {
    expect(invocations(["cubin", "ptx", "obj"])).toEqual([{ primary: "obj", kept: ["cubin", "ptx"] }]);
    expect(invocations(["ptx", "cubin"])).toEqual([{ primary: "cubin", kept: ["ptx"] }]);
    expect(invocations(["ptx"])).toEqual([{ primary: "ptx", kept: [] }]);
    expect(invocations(["fatbin", "ptx"])).toEqual([{ primary: "ptx", kept: [] }, { primary: "fatbin", kept: [] }]);
    expect(invocations([])).toEqual([]);
  });
});

describe("missing nvcc", () => {
  it("reports a typed, actionable error and nvccAvailable() is false", async () => {
    const saved = process.env.PATH;
    process.env.PATH = join(scratch, "empty-bin");
    try {
      expect(await nvccAvailable()).toBe(false);
      const err = await compileCuda("__global__ void f() {}", { arch: "sm_80", outputs: ["cubin"], cacheDir: scratch }).catch((e) => e);
      expect(err).toBeInstanceOf(NvccNotFoundError);
      expect(err.code).toBe("NVCC_NOT_FOUND");
      expect(err.message).toBe(NVCC_MISSING);
      expect(err.message).toContain("--emit cu");
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe.skipIf(!nvcc)("compile-only builds", () => {
  for (const arch of ["sm_80", "sm_90a"] as const) {
    for (const name of KERNELS) {
      // The launcher object (host code, the same for either arch) is built and checked once, for sm_90a.
      const withObj = arch === "sm_90a";
      it(`${name} for ${arch}: cubin, ptx${withObj ? " and the launcher object" : ""}, no spills`, async () => {
        const out = emitCuda(loadKernel(name));
        const res = await compileCuda(out.cu, { arch, outputs: withObj ? ["cubin", "ptx", "obj"] : ["cubin", "ptx"] });
        expect(res.cubin!.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46])); // ELF
        const r = res.resources[out.kernelSymbol];
        expect(r, res.log).toBeDefined();
        expect(r.arch).toBe(arch);
        expect(r.registers).toBeGreaterThan(0);
        expect(r.spillStores + r.spillLoads).toBe(0);
        expect(res.ptx).toContain(`.entry ${out.kernelSymbol}`);
        expect(res.ptx).toContain(`.target ${arch}`);
        // The object holds the host launcher and its error-string companion, unmangled.
        if (withObj) {
          const nm = await execa("nm", [res.objPath!]);
          expect(nm.stdout).toMatch(new RegExp(`\\bT ${out.launcher}\\b`));
          expect(nm.stdout).toMatch(new RegExp(`\\bT ${out.launcher}_error_string\\b`));
        }
        if (name === "mma16x8") {
          expect(res.ptx).toContain("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
          expect(res.ptx).toContain("ldmatrix.sync.aligned.m8n8.x4.shared.b16");
          expect(res.ptx).not.toMatch(/\.local|ld\.local|st\.local/); // register views stayed in registers
        }
        if (name === "warp_reduce") {
          // Butterflies stay shuffles (one per step: 5 + 3 + 2 + 4), nothing goes through memory.
          expect(res.ptx!.match(/shfl\.sync\.bfly\.b32/g)?.length).toBe(14);
          expect(res.ptx).not.toMatch(/\.shared|st\.local|ld\.local/);
        }
        if (name === "topk") {
          // A round of the lowered topk (lower-moe.ts topkWarpRows): the max and the min-index
          // butterflies over 32 lanes, 5 shuffles each, as shuffles (nvcc unrolls the round
          // loop by 2: 20 on sm_80 and sm_90a with CUDA 12).
          const shuffles = res.ptx!.match(/shfl\.sync\.bfly\.b32/g)?.length ?? 0;
          expect(shuffles).toBeGreaterThanOrEqual(10);
          expect(shuffles % 10).toBe(0);
          expect(res.ptx).not.toMatch(/st\.local|ld\.local/);
        }
        if (name === "dequant_gemm") {
          // B fragments come from the packed words in registers: lop3 + packed bf16 math, the
          // ldmatrix are A's (one in each copy of the k-step loop: whole tile and ragged K),
          // nothing goes through local memory, and no literal is converted at run time.
          expect(res.ptx).toContain("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32");
          expect(res.ptx).toMatch(/lop3\.b32/);
          expect(res.ptx!.match(/ldmatrix\.sync/g)?.length).toBe(2);
          expect(res.ptx).not.toMatch(/ld\.local|st\.local/);
        }
        if (name === "dequant_gemm_mma") {
          // The mma order: each lane reads its own 32-bit word (no 128-bit broadcast read), and
          // every shift that places a pair is by a constant (no lane-variable shift amount).
          expect(res.ptx).toMatch(/ld\.shared\.u32/);
          expect(res.ptx).not.toMatch(/ld\.shared\.v[24]\.u32/);
          const shifts = res.ptx!.match(/sh[rl]\.[bu]32\s+%r\d+, %r\d+, [^;]+;/g) ?? [];
          expect(shifts.filter((x) => /, %r\d+;$/.test(x) && x.startsWith("shr"))).toEqual([]);
          expect(res.ptx).not.toMatch(/ld\.local|st\.local/);
        }
        if (name === "dequant_gemm_partial") {
          // Group scales on partial sums (the biased fold): a pair is one lop3 (128 + q), with no
          // packed bf16 subtract or multiply anywhere; per k-step one more mma (the row sums of A
          // against ones), in each copy of the k-step loop (2 k-steps, whole tile and ragged K).
          expect(res.ptx).toMatch(/lop3\.b32/);
          expect(res.ptx).not.toMatch(/(sub|mul|fma)\.(rn\.)?bf16x2/);
          expect(res.ptx!.match(/mma\.sync\.aligned\.m16n8k16/g)?.length).toBe(2 * 2 * 2);
          expect(res.ptx).not.toMatch(/cvt\.rn\.bf16\.f32/);
          expect(res.ptx).not.toMatch(/ld\.local|st\.local/);
        }
        if (name === "rowsum") {
          expect(res.ptx).toContain("cp.async.cg.shared.global");
          expect(res.ptx).toContain("cp.async.wait_group 1");
        }
      }, 120_000);
    }
  }

  it("the runner's sm_80 module is a fatbin with the sm_80 SASS and its PTX (JIT on newer GPUs)", async () => {
    expect(runnerModule("sm_80")).toBe("fatbin");
    expect(runnerModule("sm_90a")).toBe("cubin");
    const out = emitCuda(loadKernel("copy2d"));
    const res = await compileCuda(out.cu, { arch: "sm_80", outputs: ["fatbin"], cacheDir: join(scratch, "fatbin") });
    expect(fatbinEntries(res.fatbin!)).toEqual([{ kind: "elf", arch: 80 }, { kind: "ptx", arch: 80 }]);
    expect(res.resources[out.kernelSymbol]?.registers).toBeGreaterThan(0);
  }, 120_000);

  for (const arch of ["sm_80", "sm_90a"] as const) {
    it(`one nvcc run serves cubin, ptx and obj for ${arch}: its kept cubin and ptx equal their own compiles`, async () => {
      const cu = emitCuda(loadKernel("copy2d")).cu;
      const all = await compileCuda(cu, { arch, outputs: ["cubin", "ptx", "obj"], cacheDir: join(scratch, `keep-${arch}`) });
      const cubin = await compileCuda(cu, { arch, outputs: ["cubin"], cacheDir: join(scratch, `cubin-${arch}`) });
      const ptx = await compileCuda(cu, { arch, outputs: ["ptx"], cacheDir: join(scratch, `ptx-${arch}`) });
      expect(all.cubin).toEqual(cubin.cubin);
      expect(all.ptx).toBe(ptx.ptx);
      expect(existsSync(all.objPath!)).toBe(true);
      expect(all.resources).toEqual(cubin.resources);
      // The intermediates are not left in the cache entry.
      expect(readdirSync(all.dir).filter((f) => f.startsWith("keep"))).toEqual([]);
    }, 120_000);
  }

  it("hits the cache on the second compile of the same source and flags", async () => {
    const cacheDir = join(scratch, "cache");
    const cu = emitCuda(loadKernel("copy2d")).cu;
    const first = await compileCuda(cu, { arch: "sm_80", outputs: ["cubin"], cacheDir });
    const again = await compileCuda(cu, { arch: "sm_80", outputs: ["cubin"], cacheDir });
    expect(first.cached).toBe(false);
    expect(again.cached).toBe(true);
    expect(again.cubin).toEqual(first.cubin);
    expect(again.resources).toEqual(first.resources);
    // Other flags are another entry.
    const other = await compileCuda(cu, { arch: "sm_80", outputs: ["cubin"], cacheDir, extraFlags: ["-lineinfo"] });
    expect(other.cached).toBe(false);
    expect(other.dir).not.toBe(first.dir);
  }, 120_000);

  it("fails with nvcc's message, the kept source and a command that reproduces it", async () => {
    const cu = `${emitCuda(loadKernel("copy2d")).cu}\n__global__ void broken() { undeclared_thing = 1; }\n`;
    const err = await compileCuda(cu, { arch: "sm_90a", outputs: ["cubin"], cacheDir: join(scratch, "cache") }).catch((e) => e);
    expect(err).toBeInstanceOf(NvccError);
    expect(err.message).toContain('identifier "undeclared_thing" is undefined');
    expect(err.message).toContain(err.cuPath);
    expect(existsSync(err.cuPath)).toBe(true);
    expect(err.message).toContain(err.command);
    const rerun = await execa(err.command, { shell: true, reject: false, all: true });
    expect(rerun.exitCode).not.toBe(0);
    expect(rerun.all).toContain('identifier "undeclared_thing" is undefined');
  }, 120_000);
});

/** The entries of a fatbin: a 16-byte header (magic 0xBA55ED50, version, header size, body
 *  size), then entries of a header (kind 1 = PTX, 2 = ELF; its size at +4, the payload's at
 *  +8, the SM number at +28) and the payload. */
function fatbinEntries(b: Buffer): { kind: string; arch: number }[] {
  expect(b.readUInt32LE(0)).toBe(0xba55ed50);
  const out: { kind: string; arch: number }[] = [];
  const start = b.readUInt16LE(6), end = start + Number(b.readBigUInt64LE(8));
  for (let p = start; p < end;) {
    const kind = b.readUInt16LE(p);
    out.push({ kind: kind === 1 ? "ptx" : kind === 2 ? "elf" : `kind ${kind}`, arch: b.readUInt32LE(p + 28) });
    p += b.readUInt32LE(p + 4) + Number(b.readBigUInt64LE(p + 8));
  }
  return out;
}
