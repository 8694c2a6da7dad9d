// Programmatic dependent launch in the emitted CUDA of a standalone kernel (`tilemoe build --pdl`):
// the golden of the kernel and launcher (the wait and trigger at the top, cudaLaunchKernelEx with
// the PDL attribute, the _ex launcher), nvcc compile-only for sm_90a, and the sm_80 build with
// neither griddepcontrol nor the attribute.
// UPDATE_GOLDEN=1 npx vitest run test/cuda/pdl.test.ts rewrites the golden (review the diff).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { emitCuda } from "../../src/codegen/cuda/emit.ts";
import { compileCuda, nvccAvailable } from "../../src/driver/nvcc.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { cudaTarget, lower } from "../../src/passes/pipeline.ts";
import { nvccWarning } from "./kernels.ts";

const [gate] = parseKernels("dsl-examples/moe_gate.ts").filter((k) => k.name === "moe_gate_softmax");
const config = { BT: 4, EMAX: 128, KMAX: 8 };
const pdl = emitCuda(lower(gate!, config, cudaTarget("sm_90a", "wgmma", "tma", undefined, true, { pdl: true })));
const sm80 = emitCuda(lower(gate!, config, cudaTarget("sm_80")));

describe("a kernel built with --pdl", () => {
  it("matches the golden (kernel and launcher)", () => {
    const url = new URL("./golden/moe_gate_softmax_pdl.cu", import.meta.url);
    if (process.env.UPDATE_GOLDEN === "1") writeFileSync(url, pdl.cu);
    if (!existsSync(url)) throw new Error("missing golden moe_gate_softmax_pdl.cu; run with UPDATE_GOLDEN=1 to create it");
    expect(pdl.cu).toBe(readFileSync(url, "utf8"));
  });
  it("waits first thing in the kernel, launches with the PDL attribute, and keeps a plain launch behind programmatic = 0", () => {
    const kernel = pdl.cu.slice(pdl.cu.indexOf("__global__"), pdl.cu.indexOf("\n}\n", pdl.cu.indexOf("__global__")));
    const body = kernel.split("\n").filter((l) => !/^\s*(const int \w+ = (blockIdx|threadIdx)\.\w;|extern __shared__|\w+\* const \w+ = reinterpret_cast)/.test(l)).slice(1);
    expect(body.slice(0, 2)).toEqual(['  asm volatile("griddepcontrol.wait;" ::: "memory");', '  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");']);
    expect(pdl.cu).toContain("tm_attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;");
    expect(pdl.cu).toContain("tm_attr[0].val.programmaticStreamSerializationAllowed = programmatic ? 1 : 0;");
    expect(pdl.cu).toContain("cudaLaunchKernelExC(&tm_cfg, (const void*)moe_gate_softmax_kernel, tm_args)");
    expect(pdl.cu).toMatch(/extern "C" int moe_gate_softmax\(const float\* logits, float\* weights, int\* ids, int renorm, int64_t T, int64_t E, int64_t K, cudaStream_t stream\) \{\n  return moe_gate_softmax_ex\(logits, weights, ids, renorm, T, E, K, stream, 1\);\n\}/);
    expect(pdl.h).toContain("int moe_gate_softmax_ex(const float* logits, float* weights, int* ids, int renorm, int64_t T, int64_t E, int64_t K, cudaStream_t stream, int programmatic);");
    expect(pdl.cu).not.toContain("cudaLaunchKernel((const void*)");
  });
  it("an sm_80 build has neither griddepcontrol nor the attribute (PTX JIT-compiled on sm_90 would race)", () => {
    expect(sm80.cu).not.toMatch(/griddepcontrol|cudaLaunchKernelEx|Programmatic|_ex\(/);
    expect(sm80.cu).toContain("cudaLaunchKernel((const void*)moe_gate_softmax_kernel");
  });
});

const nvcc = await nvccAvailable();
nvccWarning(nvcc, "PDL nvcc compile tests (test/cuda/pdl.test.ts)");
describe.skipIf(!nvcc)("nvcc compile-only", () => {
  it("the PDL kernel and launcher for sm_90a, the plain one for sm_80", async () => {
    const a = await compileCuda(pdl.cu, { arch: "sm_90a", outputs: ["obj", "ptx"] });
    expect(a.ptx).toMatch(/griddepcontrol\.wait;\s*\n[\s\S]*griddepcontrol\.launch_dependents;/);
    const b = await compileCuda(sm80.cu, { arch: "sm_80", outputs: ["obj", "ptx"] });
    expect(b.ptx).not.toContain("griddepcontrol");
  }, 120_000);
});
