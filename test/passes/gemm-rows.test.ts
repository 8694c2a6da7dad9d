// The gemm's `rows` (only the accumulator's first `rows` rows are needed, the rest may be
// skipped): the DSL option, the IR text, the interpreter (the skipped rows become NaN, so a
// kernel that reads them fails its check) and the tensor-core lowerings (a warpgroup or warp
// whose rows all lie past `rows` skips its wgmma / mma). The MoE GEMMs use it for the padded
// tail of an expert's last routing block (dsl-examples/lib/moe_tiles.ts liveRows).
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { CompileError } from "../../src/ir/ir.ts";
import { inferLayouts } from "../../src/passes/infer-layouts.ts";
import { lowerToThreads } from "../../src/passes/lower-threads.ts";
import { simplify } from "../../src/passes/simplify.ts";
import { unswitchWgmma } from "../../src/passes/unswitch-wgmma.ts";
import { specialize } from "../../src/passes/specialize.ts";
import { SM80, SM90A, type Target } from "../../src/passes/pipeline.ts";
import { runKernel } from "../../src/interp/index.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { zeros } from "../../src/numeric/tensor.ts";

/** A 128 x 32 tile gemm on `threads` threads whose accumulator rows past the scalar n are not needed. */
const tile = (threads: number) => `kernel g(A: global bf16[M, K], B: global bf16[N, K], n: i32, C: global f32[M, N] out)
  dims M, N, K
launch tile grid [cdiv(N, 32), cdiv(M, 128)] threads ${threads} blocks [bx, by] {
  alloc As: shared bf16[128, 32]
  alloc Bs: shared bf16[32, 32]
  alloc acc: fragment f32[128, 32]
  fill acc[0 : +128, 0 : +32] = 0.0
  for k in serial(0, cdiv(K, 32)) {
    copy A[by * 128 : +128, k * 32 : +32] -> As[0 : +128, 0 : +32]
    copy B[bx * 32 : +32, k * 32 : +32] -> Bs[0 : +32, 0 : +32]
    gemm As[0 : +128, 0 : +32], Bs[0 : +32, 0 : +32] -> acc[0 : +128, 0 : +32] transB rows n
  }
  copy acc[0 : +128, 0 : +32] -> C[by * 128 : +128, bx * 32 : +32]
}
`;

const lowered = (src: string, target: Target) => {
  const k = inferLayouts(specialize(parseKernel(src, "k.ir"), { config: {}, target }), { config: {}, target });
  return printKernel(simplify(lowerToThreads(k, { config: {}, target })));
};
/** The lines from the first matching `from` through the first later one matching `to`. */
const section = (text: string, from: RegExp, to: RegExp) => {
  const lines = text.split("\n");
  const i = lines.findIndex((l) => from.test(l));
  const j = lines.findIndex((l, n) => n > i && to.test(l));
  return lines.slice(i, j + 1).join("\n") + "\n";
};

describe("gemm rows: IR text", () => {
  it("prints and parses `rows E` after the flags; a next line assigning a variable named rows stays an assignment", () => {
    const k = parseKernel(tile(256), "k.ir");
    expect(printKernel(k)).toContain("-> acc[0 : +128, 0 : +32] transB rows n\n");
    expect(printKernel(parseKernel(printKernel(k), "k.ir"))).toBe(printKernel(k));
    const assign = tile(256).replace("alloc As", "var rows: i32 = 0\n  alloc As").replace("transB rows n\n", "transB\n    rows = rows + 1\n");
    expect(printKernel(parseKernel(assign, "k.ir"))).toContain("transB\n    rows = rows + 1\n");
  });
});

describe("gemm rows: lowering", () => {
  it("wgmma: each warpgroup's 64 rows are skipped whole when they start at or past rows; the group is still committed", () => {
    expect(section(lowered(tile(256), SM90A), /wgmma\.fence/, /wgmma\.wait/)).toBe(`    wgmma.fence
    if (tx / 128 * 64 < n) {
      for kk in unroll(0, 2) {
        wgmma.m64n32k16.bf16 acc[0] += As[wga + kk * 16] sw64 lbo 16 sbo 512, Bs[kk * 16] sw64 lbo 16 sbo 512
      }
    }
    wgmma.commit
    wgmma.wait 0
`);
  });
  it("wgmma: one warpgroup of two m64 tiles is skipped whole only (a test per tile would stay inside the K loop)", () => {
    expect(section(lowered(tile(128), SM90A), /wgmma\.fence/, /wgmma\.wait/)).toBe(`    wgmma.fence
    if (tx / 128 * 128 < n) {
      for kk in unroll(0, 2) {
        for t in unroll(0, 2) {
          wgmma.m64n32k16.bf16 acc[t * 16] += As[tx / 128 * 4096 + t * 2048 + kk * 16] sw64 lbo 16 sbo 512, Bs[kk * 16] sw64 lbo 16 sbo 512
        }
      }
    }
    wgmma.commit
    wgmma.wait 0
`);
  });
  it("mma.sync: a warp whose first row is at or past rows skips its k-steps (fragment loads and mma)", () => {
    const text = lowered(tile(256), SM80);

    const at = text.indexOf("< n) {");
    expect(at).toBeGreaterThan(0);
    expect(text.slice(text.lastIndexOf("\n", at), at + 6)).toMatch(/if \(warp \/ 2 \* 32 < n\) \{$/);
    // Everything that loads A fragments or multiplies is inside it.
    const inner = text.slice(at);
    expect(inner).toMatch(/ldmatrix/);
    expect(inner).toMatch(/mma\.bf16 acc/);
    expect(text.slice(0, at)).not.toMatch(/mma\.bf16|ldmatrix/);
  });
});

describe("gemm rows: interpreter", () => {
  it("rows past `rows` come out NaN, the others exact", () => {
    const M = 128, N = 32, K = 64, n = 37;
    const A = randomTensor("bf16", [M, K], 1), B = randomTensor("bf16", [N, K], 2), C = zeros("f32", [M, N]);
    runKernel(parseKernel(tile(256), "k.ir"), { tensors: { A, B, C }, scalars: { n, M, N, K } });
    for (let m = 0; m < M; m++) {
      let want = 0;
      for (let k = 0; k < K; k++) want += A.data[m * K + k]! * B.data[5 * K + k]!;
      if (m < n) expect(C.data[m * N + 5]).toBeCloseTo(Math.fround(want), 4);
      else expect(C.data[m * N + 5]).toBeNaN();
    }
  });
});

describe("gemm rows: the DSL option", () => {
  const src = (opts: string, decl = "const n = 3;") => `import { T, type Tensor } from "tilemoe";
export const k = T.kernel({}, function k(A: Tensor<"M, K", "bf16">, B: Tensor<"N, K", "bf16">, C: Tensor<"M, N", "f32">) {
  T.launch([1], { threads: 128 }, (bx) => {
    const As = T.shared([64, 32], "bf16");
    const Bs = T.shared([32, 32], "bf16");
    const acc = T.fragment([64, 32], "f32");
    T.copy(A.tile([0, 0], [64, 32]), As);
    T.copy(B.tile([0, 0], [32, 32]), Bs);
    ${decl}
    T.gemm(As, Bs, acc, ${opts});
    T.copy(acc, C.tile([0, 0], [64, 32]));
  });
});
`;
  const ir = (s: string) => printKernel(parseKernels("k.ts", s)[0]!);
  it("takes `rows: expr` and the shorthand `{ rows }`", () => {
    expect(ir(src("{ transB: true, rows: n + 1 }"))).toMatch(/-> acc\[0 : \+64, 0 : \+32\] transB rows n \+ 1\n/);
    expect(ir(src("{ transB: true, rows }", "const rows = 5;"))).toMatch(/transB rows rows\n/);
  });
  it("refuses a float and an unknown option, naming the place", () => {
    expect(() => ir(src("{ transB: true, rows: 2.5 }"))).toThrow(CompileError);
    expect(() => ir(src("{ transB: true, rows: 2.5 }"))).toThrow(/k\.ts:\d+:\d+: error: gemm option rows must be an integer/);
    expect(() => ir(src("{ transB: true, row: 3 }"))).toThrow(/unknown gemm option 'row: 3'; the options are transA, transB and rows/);
  });
});

// ptxas serializes every wgmma of a kernel (C7520) when one sits under a branch inside the
// loop, so the guard moves out of the outermost loop whose iterations leave its condition alone.
describe("unswitchWgmma", () => {
  const run = (src: string) => printKernel(unswitchWgmma(parseKernel(src, "k.ir"), { config: {}, target: SM90A }));
  const kernel = (body: string) => `kernel u(n: i32)
launch thread grid [1] threads 256 blocks [bx] thread tx {
  alloc acc: local f32[16]
  alloc As: shared bf16[4096]
${body}}
`;
  const wg = "wgmma.m64n32k16.bf16 acc[0] += As[k * 16] sw64 lbo 16 sbo 512, As[0] sw64 lbo 16 sbo 512";
  it("moves an invariant guard out of its loop: taken, the loop with the wgmma; not taken, the loop without, barriers and waits in both", () => {
    expect(run(kernel(`  for k in serial(0, 4) {
    barrier
    wgmma.fence
    if (tx / 128 * 64 < n) {
      ${wg}
    }
    wgmma.commit
    wgmma.wait 0
  }
`))).toBe(kernel(`  if (tx / 128 * 64 < n) {
    for k in serial(0, 4) {
      barrier
      wgmma.fence
      ${wg}
      wgmma.commit
      wgmma.wait 0
    }
  } else {
    for k in serial(0, 4) {
      barrier
      wgmma.fence
      wgmma.commit
      wgmma.wait 0
    }
  }
`));
  });
  it("stops at a loop that changes the condition (a persistent tile loop assigning n) and unswitches the loop inside", () => {
    const out = run(kernel(`  var m: i32 = n
  for tile in serial(0, 3) {
    m = n - tile * 64
    for k in serial(0, 4) {
      if (tx / 128 * 64 < m) {
        ${wg}
      }
    }
  }
`));
    expect(out).toContain(`  for tile in serial(0, 3) {
    m = n - tile * 64
    if (tx / 128 * 64 < m) {
      for k in serial(0, 4) {
        ${wg}
      }
    } else {
      for k in serial(0, 4) {
      }
    }
  }
`);
  });
  it("leaves alone a guard that reads memory, one with an else, and one that changes with the loop", () => {
    for (const body of [
      `  for k in serial(0, 4) {
    if (k < n) {
      ${wg}
    }
  }
`,
      `  for k in serial(0, 4) {
    if (tx < n) {
      ${wg}
    } else {
      barrier
    }
  }
`,
    ]) expect(run(kernel(body))).toBe(kernel(body));
  });
});
