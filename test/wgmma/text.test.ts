// The wgmma statements and the wgmma_acc layout in the IR text form: parse, print, verify.
import { describe, expect, it } from "vitest";
import { parseKernel, parseStmts } from "../../src/ir/parse.ts";
import { printKernel, printStmts } from "../../src/ir/print.ts";
import { verifyErrors } from "../../src/ir/verify.ts";

const KERNEL = `kernel k(A: global bf16[M, K])
  dims M, K
launch thread grid [1] threads 128 blocks [bx] thread tx {
  alloc As: shared bf16[1024] layout xor_swizzle(7, 0)
  alloc Bs: shared bf16[512]
  alloc acc: local f32[32] layout wgmma_acc(1, 1)
  fence.proxy.async
  wgmma.fence
  wgmma.m64n64k16.bf16 acc[0] = As[0] sw128 lbo 16 sbo 1024, Bs[tx * 0] sw0 lbo 128 sbo 256
  wgmma.m64n64k16.bf16 acc[0] += As[16] sw128 lbo 16 sbo 1024, Bs[64] sw0 lbo 128 sbo 256
  wgmma.commit
  wgmma.wait 0
}
`;

describe("wgmma IR text", () => {
  it("round-trips and verifies", () => {
    const k = parseKernel(KERNEL);
    expect(printKernel(k)).toBe(KERNEL);
    expect(verifyErrors(k)).toEqual([]);
    const body = k.launch.body;
    const w = body.find((s) => s.k === "wgmma")!;
    expect(w).toMatchObject({ k: "wgmma", n: 64, atype: "bf16", scaleD: false, a: { swizzle: 128, lbo: 16, sbo: 1024 }, b: { swizzle: 0, lbo: 128, sbo: 256 } });
    expect(body.filter((s) => s.k === "wgmma").map((s) => (s as { scaleD: boolean }).scaleD)).toEqual([false, true]);
  });

  it("the transposed accumulator layout round-trips", () => {
    const t = KERNEL.replace("layout wgmma_acc(1, 1)", "layout wgmma_acc_t(1, 1)");
    const k = parseKernel(t);
    expect(printKernel(k)).toBe(t);
    expect(k.launch.body.find((s) => s.k === "alloc" && s.buf.name === "acc")).toMatchObject({ buf: { layout: { kind: "wgmma_acc", trans: true } } });
  });

  it("rejects malformed statements at their position", () => {
    expect(() => parseStmts("wgmma.m64n64k32.bf16 d[0] = a[0] sw128 lbo 16 sbo 1024, b[0] sw128 lbo 16 sbo 1024")).toThrow(/1:7.*m64nNk16/);
    expect(() => parseStmts("wgmma.m64n64k16.bf16 d[0] = a[0] sw96 lbo 16 sbo 1024, b[0] sw128 lbo 16 sbo 1024")).toThrow(/swizzle/);
    expect(() => parseStmts("fence.proxi.async")).toThrow(/'proxy'/);
  });

  it("verifier checks operand scopes, types and n", () => {
    const bad = KERNEL.replace("m64n64k16.bf16 acc[0] =", "m64n60k16.f16 acc[0] =").replace("Bs[64] sw0 lbo 128", "Bs[64] sw0 lbo 100");
    const errs = verifyErrors(parseKernel(bad)).join("\n");
    expect(errs).toMatch(/n = 60/);
    expect(errs).toMatch(/must be f16, it is bf16/);
    expect(errs).toMatch(/lbo 100/);
  });
});
