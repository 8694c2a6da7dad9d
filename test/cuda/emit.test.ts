// What the CUDA emitter writes for individual IR constructs (kernel text in, C++ fragments out).
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { CompileError } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";

function kernel(body: string, opts: { params?: string; dims?: string; extra?: string; threads?: number; grid?: string } = {}): string {
  const params = opts.params ?? "A: global bf16[M, K] align 16, O: global bf16[M, K] out, x: f32";
  const dims = opts.dims ?? "M, K";
  return [
    `kernel k(${params})`,
    `  dims ${dims}`,
    ...(opts.extra ? [opts.extra] : []),
    `launch thread grid [${opts.grid ?? "cdiv(M, 4)"}] threads ${opts.threads ?? 128} blocks [bx] thread tx {`,
    ...body.trim().split("\n").map((l) => `  ${l.trim()}`),
    "}",
  ].join("\n");
}

const emit = (body: string, opts = {}) => emitCuda(parseKernel(kernel(body, opts)));
const kernelBody = (cu: string) => cu.slice(cu.indexOf("__global__"), cu.indexOf("\n}\n", cu.indexOf("__global__")));

describe("kernel signature (the runner's ABI)", () => {
  it("takes params in order, const unless output, scalars by value, then one int per dim", () => {
    const out = emit("barrier", {
      params: "A: global bf16[M, K], s: i32, O: global f32[M] out, y: f16", dims: "K, M",
    });
    expect(out.kernelSymbol).toBe("k_kernel");
    expect(out.cu).toContain(
      'extern "C" __global__ void __launch_bounds__(128) k_kernel(const __nv_bfloat16* __restrict__ A, int s, float* __restrict__ O, __half y, int K, int M)');
  });
});

describe("expressions", () => {
  it("does 16-bit float arithmetic in float and rounds once on store", () => {
    const b = kernelBody(emit("store O[0, tx] = A[0, tx] * A[1, tx] + x").cu);
    expect(b).toContain("O[(int64_t)0 * K + tx] = __float2bfloat16_rn(__bfloat162float(A[(int64_t)0 * K + tx]) * __bfloat162float(A[(int64_t)1 * K + tx]) + x);");
  });

  it("copies same-typed 16-bit values without a round trip through float", () => {
    const b = kernelBody(emit("store O[bx, tx] = A[bx, tx]").cu);
    expect(b).toContain("O[(int64_t)bx * K + tx] = A[(int64_t)bx * K + tx];");
  });

  it("rounds 16-bit float literals to their dtype", () => {
    const b = kernelBody(emit("let a: f32 = 0.1_bf16 + 0.1_f16").cu);
    // 0.1 in bf16 is 0.10009765625, in f16 0.0999755859375 (printed as the shortest f32 text).
    expect(b).toContain("0.100097656f + 0.099975586f");
    expect(Math.fround(0.100097656)).toBe(0.10009765625);
    expect(Math.fround(0.099975586)).toBe(0.0999755859375);
  });

  it("writes integer / and % as C and float % as fmodf, cdiv as a ceiling", () => {
    const b = kernelBody(emit(`let q: i32 = tx / 3
      let r: i32 = tx % 3
      let f: f32 = x % 2.0
      let c: i32 = cdiv(tx, 8)`).cu);
    expect(b).toContain("const int q = tx / 3;");
    expect(b).toContain("const int r = tx % 3;");
    expect(b).toContain("const float f = fmodf(x, 2.0f);");
    expect(b).toContain("const int c = (tx + 8 - 1) / 8;");
  });

  it("calls the accurate f32 math functions, not the fast intrinsics", () => {
    const b = kernelBody(emit("let e: f32 = exp(x) + log(x) + tanh(x) + sqrt(x)").cu);
    expect(b).toContain("expf(x) + logf(x) + tanhf(x) + sqrtf(x)");
    expect(b).not.toContain("__expf");
  });

  it("keeps the parentheses the tree needs and no others", () => {
    const b = kernelBody(emit(`let a: i32 = (tx + 1) * (tx - 2)
      let b: i32 = tx - (tx - 1)
      let c: i32 = tx * 2 + 1
      let d: i32 = (tx & 3) << 1`).cu);
    expect(b).toContain("const int a = (tx + 1) * (tx - 2);");
    expect(b).toContain("const int b = tx - (tx - 1);");
    expect(b).toContain("const int c = tx * 2 + 1;");
    expect(b).toContain("const int d = (tx & 3) << 1;");
  });

  it("computes f64 with double functions and double literals", () => {
    const b = kernelBody(emit("let d: f64 = exp(cast<f64>(x)) * 0.1").cu);
    expect(b).toContain("const double d = exp((double)x) * 0.1;");
  });

  it("renames identifiers that are C keywords or emitter names", () => {
    const b = kernelBody(emit(`let int: i32 = tx
      let smem: i32 = int + 1`).cu);
    expect(b).toContain("const int int_ = tx;");
    expect(b).toContain("const int smem_ = int_ + 1;");
  });
});

describe("statements", () => {
  it("unrolls with #pragma unroll and keeps serial loops plain", () => {
    const b = kernelBody(emit(`for i in unroll(0, 4) {
        store O[i, tx] = 0.0
      }
      for j in serial(2, M) {
        barrier
      }`).cu);
    expect(b).toMatch(/#pragma unroll\n\s+for \(int i = 0; i < 4; \+\+i\) \{/);
    expect(b).toMatch(/[^\n]\n\s+for \(int j = 2; j < 2 \+ M; \+\+j\)/);
    expect(b.match(/#pragma unroll/g)).toHaveLength(1);
  });

  it("parenthesizes a loop end that binds looser than `<` (was: `k < c ? a : b`, a test that is never false)", () => {
    const b = kernelBody(emit(`for k in serial(0, select(M > 4, M / 4, 1)) {
        barrier
      }
      for j in serial(M, M & 7) {
        barrier
      }`).cu);
    expect(b).toContain("for (int k = 0; k < (M > 4 ? M / 4 : 1); ++k)");
    expect(b).toContain("for (int j = M; j < M + (M & 7); ++j)");
  });

  it("carves shared buffers from one dynamic array at 128-byte boundaries", () => {
    const out = emit(`alloc S: shared bf16[100]
      alloc T: shared f32[3]
      store T[0] = cast<f32>(S[tx])`);
    expect(out.cu).toContain("extern __shared__ __align__(128) unsigned char smem[];");
    expect(out.cu).toContain("__nv_bfloat16* const S = reinterpret_cast<__nv_bfloat16*>(smem + 0);");
    expect(out.cu).toContain("float* const T = reinterpret_cast<float*>(smem + 256);");
    expect(out.smemBytes).toBe(384);
  });

  it("zero-fills a predicated-off vcopy into shared but skips one into global", () => {
    const b = kernelBody(emit(`alloc S: shared bf16[1024]
      vcopy S[tx * 8] <- A[bx, tx * 8] lanes 8 if (tx * 8 < K)
      vcopy O[bx, tx * 4] <- S[tx * 4] lanes 4 if (tx * 4 < K)`).cu);
    expect(b).toContain("if (tx * 8 < K) *reinterpret_cast<uint4*>(&S[tx * 8]) = *reinterpret_cast<const uint4*>(&A[(int64_t)bx * K + tx * 8]);");
    expect(b).toContain("else *reinterpret_cast<uint4*>(&S[tx * 8]) = make_uint4(0u, 0u, 0u, 0u);");
    expect(b).toContain("if (tx * 4 < K) *reinterpret_cast<uint2*>(&O[(int64_t)bx * K + tx * 4]) = *reinterpret_cast<const uint2*>(&S[tx * 4]);");
    expect(b.match(/else/g)).toHaveLength(1);
  });

  it("emits cp.async .cg for 16 bytes with src-size for the predicate, .ca for 4", () => {
    const b = kernelBody(emit(`alloc S: shared bf16[1024]
      cp.async S[tx * 8] <- A[bx, tx * 8] bytes 16 if (tx < K)
      cp.async S[tx * 2] <- A[bx, tx * 2] bytes 4 if (true)
      cp.commit
      cp.wait 2`).cu);
    expect(b).toContain('asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\\n" :: "r"((unsigned)__cvta_generic_to_shared(&S[tx * 8])), "l"(&A[(int64_t)bx * K + tx * 8]), "r"((tx < K) ? 16 : 0));');
    expect(b).toContain('asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\\n"');
    expect(b).toContain('asm volatile("cp.async.commit_group;\\n" ::: "memory");');
    expect(b).toContain('asm volatile("cp.async.wait_group 2;\\n" ::: "memory");');
  });

  it("gives 16-bit local arrays 4-byte (here 16-byte) alignment for the register views", () => {
    const b = kernelBody(emit(`alloc S: shared bf16[1024]
      alloc af: local bf16[8]
      alloc c: local f32[4]
      alloc d: local f32[4]
      ldmatrix.x4.trans af[0] <- S[tx * 8]
      mma.bf16 d[0] = af[0] * af[4] + c[0]`).cu);
    expect(b).toContain("__align__(16) __nv_bfloat16 af[8];");
    expect(b).toContain("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];");
    // d and c differ: outputs are write-only, c comes in as inputs %10..%13.
    expect(b).toContain("{%8, %9}, {%10, %11, %12, %13};");
    expect(b).toContain('"=f"(tm_d[0])');
  });

  it("refuses tile-level kernels with a located diagnostic", () => {
    const text = `kernel t(A: global f32[M] out)
  dims M
launch tile grid [1] threads 32 blocks [bx] {
  fill A[0 : +32] = 0.0
}`;
    expect(() => emitCuda(parseKernel(text, "t.ir"))).toThrow(CompileError);
  });
});

describe("host launcher", () => {
  it("derives shape constraints from the param shapes and checks dims, pointers and grid", () => {
    const out = emit("barrier", { params: "Q: global u8[N, K / 8] align 16, O: global f32[N] align 4 out", dims: "N, K", grid: "cdiv(N, 128), 1, 70000" });
    expect(out.cu).toContain("if (K % 8 != 0) return K_ERR_SHAPE;");
    expect(out.cu).toContain("if (N < 0 || N > INT32_MAX) return K_ERR_DIM;");
    expect(out.cu).toContain("} else if (reinterpret_cast<uintptr_t>(O) % 4 != 0) {");
    expect(out.cu).toContain("if (tm_grid0 == 0 || tm_grid1 == 0 || tm_grid2 == 0) return K_OK;");
    expect(out.cu).toContain("const int64_t tm_grid2 = 70000;");
    expect(out.h).toContain("// Q: u8 [N, K / 8] (input)");
    expect(out.h).toContain("int k(const uint8_t* Q, float* O, int64_t N, int64_t K, cudaStream_t stream);");
  });

  it("raises the dynamic shared memory limit only above 48 KiB", () => {
    const small = emit("alloc S: shared f32[12288]\nstore S[tx] = 0.0");
    const big = emit("alloc S: shared f32[12289]\nstore S[tx] = 0.0");
    expect(small.cu).not.toContain("cudaFuncSetAttribute");
    expect(big.cu).toContain("cudaFuncSetAttribute((const void*)k_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 49280);");
  });

  it("launches with the larger of the carved size and kernel.smemBytes", () => {
    const out = emit("alloc S: shared f32[16]\nstore S[tx] = 0.0", { extra: "  smem 1000" });
    expect(out.smemBytes).toBe(1000);
  });
});
