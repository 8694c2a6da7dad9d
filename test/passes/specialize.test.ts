import { describe, expect, it } from "vitest";
import { parseKernel } from "../../src/ir/parse.ts";
import { printKernel } from "../../src/ir/print.ts";
import { CompileError } from "../../src/ir/ir.ts";
import { specialize } from "../../src/passes/specialize.ts";
import { WGSL } from "../../src/passes/pipeline.ts";

const src = `
kernel k(A: global f32[M, K])
  dims M, K
  tune BM = [64, 128], BK = [32, 16], swz = [true, false]
  where (BM + BK) * 4 <= 600
launch tile grid [cdiv(M, BM)] threads 128 blocks [bx] {
  alloc S: shared f32[BM, BK]
  if (swz) {
    fill S[0 : +BM, 0 : +BK] = 1.0
  } else {
    fill S[0 : +BM, 0 : +BK] = 2.0
  }
  for k in pipelined(0, cdiv(K, BK)) stages 2 {
    copy A[bx * BM : +BM, k * BK : +BK] -> S[0 : +BM, 0 : +BK]
  }
}
`;
const run = (config: Record<string, number | boolean | string>) => specialize(parseKernel(src, "k.ir"), { config, target: WGSL });

describe("specialize", () => {
  it("substitutes the config, fills defaults, folds and prunes constant ifs", () => {
    expect(printKernel(run({ BK: 16, swz: false }))).toBe(`kernel k(A: global f32[M, K])
  dims M, K
  tune BM = [64, 128], BK = [32, 16], swz = [true, false]
  where (BM + BK) * 4 <= 600
  config BM = 64, BK = 16, swz = false
launch tile grid [cdiv(M, 64)] threads 128 blocks [bx] {
  alloc S: shared f32[64, 16]
  fill S[0 : +64, 0 : +16] = 2.0
  for k in pipelined(0, cdiv(K, 16)) stages 2 {
    copy A[bx * 64 : +64, k * 16 : +16] -> S[0 : +64, 0 : +16]
  }
}
`);
  });
  const err = (config: Record<string, number | boolean | string>) => {
    try { run(config); } catch (e) { if (e instanceof CompileError) return e.message; throw e; }
    throw new Error("no error");
  };
  it("rejects unknown tunables, naming the known ones", () => {
    expect(err({ BN: 64 })).toMatch(/kernel 'k' has no tunable 'BN' \(tunables: BM, BK, swz\)/);
  });
  it("rejects values outside the space, naming the allowed ones", () => {
    expect(err({ BM: 96 })).toMatch(/'BM' = 96 is not allowed.*allowed values: 64, 128/);
    expect(err({ swz: "yes" })).toMatch(/allowed values: true, false/);
  });
  it("checks the where constraint", () => {
    expect(err({ BM: 128, BK: 32 })).toMatch(/config \{ BM: 128, BK: 32, swz: true \} violates the 'where' constraint/);
    expect(run({ BM: 128, BK: 16 }).config).toEqual({ BM: 128, BK: 16, swz: true });
  });
  it("folds a tunable pipeline depth into stages", () => {
    const k = parseKernel(src);
    const loop = k.launch.body[2]!;
    if (loop.k !== "for") throw new Error("shape of test kernel");
    loop.stages = undefined;
    loop.stagesExpr = { k: "bin", op: "+", a: { k: "var", name: "BM" }, b: { k: "int", v: -62 } };
    const out = specialize(k, { config: {}, target: WGSL }).launch.body[2]!;
    expect(out).toMatchObject({ k: "for", stages: 2 });
    expect("stagesExpr" in out).toBe(false);
  });
  it("applies integer-only identities to integers only", () => {
    const k = parseKernel(`kernel f(Y: global f32[N], x: f32, i: i32)
  dims N
launch tile grid [1] threads 32 blocks [bx] {
  let a: f32 = x / 3 / 5
  let b: f32 = x * 0
  let c: i32 = i / 3 / 5
  let d: i32 = i * 0
  store Y[0] = a + b + cast<f32>(c + d)
}
`);
    const body = printKernel(specialize(k, { config: {}, target: WGSL })).split("{\n")[1]!;
    expect(body).toContain("let a: f32 = x / 3 / 5");
    expect(body).toContain("let b: f32 = x * 0");
    expect(body).toContain("let c: i32 = i / 15");
    expect(body).toContain("let d: i32 = 0");
  });
});
