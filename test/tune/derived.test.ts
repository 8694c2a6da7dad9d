// Tuning a kernel whose check spec derives inputs from dims of its own (the MoE kernels: sorted
// pair ids and block experts from T, E, TOPK, skew through the routing reference). The timing
// cases used to fill those with random integers in [-1, 1] (most blocks skipped, two experts read
// from L2: another kernel's time), and the correctness case could not be drawn at all ("could
// not draw check dims": the spec's own dims were never drawn).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { preparePlan } from "../../src/tune/tune.ts";
import { chooseCheckDims } from "../../src/tune/plan.ts";
import { derivedTensor } from "../../src/check/run.ts";
import { parseKernels } from "../../src/frontend/index.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { planOptions, tmp } from "./helpers.ts";

const FILE = "dsl-examples/moe_permute.ts";
const SHAPE = { T: 64, H: 256, BS: 16, NB: 48, E: 16, TOPK: 4, skew: 0 };

describe("tune: inputs a check spec derives (routing)", () => {
  it("draws the correctness case with the spec's own dims (E, TOPK, skew) inside its dimsWhere", async () => {
    const k = parseKernels(FILE).find((x) => x.name === "moe_permute")!;
    const spec = (await loadSpecs(FILE)).get("moe_permute")!;
    const d = chooseCheckDims(k, spec);
    expect(Object.keys(d).sort()).toEqual(["BS", "E", "H", "NB", "T", "TOPK", "skew"]);
    expect(spec.dimsWhere!(d)).toBe(true);
  });

  it("a --shape without the routing dims is refused, naming them; an unknown name lists every dim", async () => {
    const { E: _e, TOPK: _k, skew: _s, ...bare } = SHAPE;
    await expect(preparePlan(tmp("derived-bare"), planOptions({ file: FILE, shapes: [bare] })))
      .rejects.toThrow(/--shape T=64,H=256,BS=16,NB=48 lacks E, TOPK, skew: moe_permute's check spec derives its index inputs \(routing\) from them/);
    await expect(preparePlan(tmp("derived-extra"), planOptions({ file: FILE, shapes: [{ ...SHAPE, Q: 3 }] })))
      .rejects.toThrow(/names Q, not a dim of moe_permute \(dims: T, H, NB, BS, E, TOPK, skew\)/);
  });

  it("times on the derived routing: its files in every candidate's timing case, the derived top_k, the cache keyed by the kernel's dims", async () => {
    const dir = tmp("derived-plan");
    const meta = await preparePlan(dir, planOptions({ file: FILE, shapes: [SHAPE], maxCandidates: 2 }));
    expect(meta.shapes.map((s) => [s.label, s.dims, s.data])).toEqual([
      ["T=64,H=256,NB=48,BS=16 (E=16,TOPK=4,skew=0)", { T: 64, H: 256, NB: 48, BS: 16 }, { E: 16, TOPK: 4, skew: 0 }]]);
    const plan = JSON.parse(readFileSync(join(dir, "plans", readdirSync(join(dir, "plans"))[0]!), "utf8"));
    const time = plan.cases.find((c: { name: string }) => c.name.startsWith("time "));
    const arg = (n: string) => time.args.find((a: { tensor?: string }) => a.tensor === n);
    expect(arg("sorted").init).toEqual({ file: "../timing/0/sorted.bin" });
    expect(arg("block_expert").init).toEqual({ file: "../timing/0/block_expert.bin" });
    expect(arg("X").init.random).toBeDefined();
    expect(time.args).toContainEqual({ i32: 4 }); // top_k, as derived
    // The files hold a whole routing: every pair once, pads past P, blocks' experts in [-1, E).
    const i32 = (f: string) => Array.from(new Int32Array(new Uint8Array(readFileSync(join(dir, "timing", "0", f))).buffer));
    const sorted = i32("sorted.bin"), experts = i32("block_expert.bin");
    const P = SHAPE.T * SHAPE.TOPK;
    expect(sorted).toHaveLength(SHAPE.NB * SHAPE.BS);
    expect(sorted.filter((p) => p < P).sort((a, b) => a - b)).toEqual([...Array(P).keys()]);
    expect(experts.every((e) => e >= -1 && e < SHAPE.E)).toBe(true);
    expect(new Set(experts.filter((e) => e >= 0)).size).toBeGreaterThan(8);
  });

  it("a derive that names an output or gives the wrong count is refused, naming the tensor (checks and timing share the rule)", () => {
    const k = parseKernels(FILE).find((x) => x.name === "moe_permute")!;
    expect(() => derivedTensor(k, "Xp", [1], () => 1)).toThrow(/check spec for moe_permute: derive names 'Xp', which is not an input tensor/);
    expect(() => derivedTensor(k, "sorted", [1, 2], () => 3, " at T=1")).toThrow(/derive gives 2 values for 'sorted', which holds 3 at T=1/);
    expect(derivedTensor(k, "sorted", [1.7, -2], () => 2).values).toEqual([1, -2]);
  });
});
