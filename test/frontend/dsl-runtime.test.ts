// Kernel files are never run, but importing one must be harmless (the checker imports them
// for their exports), and calling the vocabulary by mistake must say why it fails.
import { describe, expect, it } from "vitest";
import { T } from "../../src/dsl/index.ts";

describe("DSL runtime stubs", () => {
  it("T.kernel returns an inert handle named after the function", async () => {
    const mod = await import("../../dsl-examples/gemm.ts");
    expect(mod.gemm_bf16).toEqual({ kind: "tilemoe.kernel", name: "gemm_bf16" });
  });

  it("every other T.* function throws 'compiled, not run'", () => {
    expect(() => T.copy({ dtype: "f32" }, { dtype: "f32" })).toThrow(/tilemoe kernels are compiled, not run/);
    expect(() => T.launch([1], { threads: 32 }, () => {})).toThrow(/compiled, not run/);
    expect(() => T.serial(4)).toThrow(/compiled, not run/);
    expect(() => T.cdiv(4, 2)).toThrow(/compiled, not run/);
  });
});
