// The runner's tensorMap plan argument (runtime/cuda/runner.cpp, plan.h) on the fake driver
// (test/runtime/mock): the map is encoded with cuTensorMapEncodeTiled over the case's tensor
// (dims and box innermost first, pitch in bytes, the swizzle, zero OOB fill) and passed by
// value; a tensor TMA cannot take gets a zeroed map; malformed maps are plan errors.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { readTensor, runPlan, writePlan, type KernelCase } from "../../src/runtime/cuda.ts";
import { mockLibs, planDir, runner } from "../runtime/helpers.ts";

let bin = "", mock = "";
beforeAll(async () => { [bin, mock] = await Promise.all([runner(), mockLibs()]); }, 120_000);

const echo = (name: string, M: number, K: number, swizzle: 0 | 32 | 64 | 128): KernelCase => ({
  name, module: "m.cubin", kernel: "tensormap_echo", grid: [1], block: [32],
  args: [
    { tensor: "out", dtype: "i64", shape: [16], init: { zeros: true }, save: `${name}.bin` },
    { tensorMap: { tensor: "X", box: [4, 16], swizzle } },
    { tensor: "X", dtype: "bf16", shape: [M, K], init: { zeros: true } },
  ],
});

describe("runner: tensorMap arguments", () => {
  it("encodes the map over the tensor: dims and box innermost first, byte pitch, swizzle, zero fill", async () => {
    const dir = planDir();
    writePlan(dir, [echo("ok", 5, 24, 32), echo("pitch", 5, 23, 32)]);
    const res = await runPlan(dir, { runner: bin, env: { LD_LIBRARY_PATH: mock } });
    expect(res.cases.map((c) => c.status)).toEqual(["ok", "ok"]);
    const w = Array.from(readTensor(join(dir, "ok.bin"), "i64"));
    // address, BFLOAT16 (9), rank, dims (K, M), pitch, box (16, 4), estr, interleave, SWIZZLE_32B (1), L2_256B (3), OOB NONE (0)
    expect(w[0]).not.toBe(0);
    expect(w.slice(1, 14)).toEqual([9, 2, 24, 5, 48, 16, 4, 1, 1, 0, 1, 3, 0]);
    // K = 23: a 46-byte pitch, which TMA cannot take: a zeroed map (the kernel uses cp.async then).
    expect(Array.from(readTensor(join(dir, "pitch.bin"), "i64")).every((x) => x === 0)).toBe(true);
  });

  it("rejects a map over a tensor the case does not have, or of the wrong rank, with the JSON path", async () => {
    const dir = planDir();
    const bad = echo("x", 5, 24, 32);
    (bad.args[1] as { tensorMap: { tensor: string } }).tensorMap.tensor = "Y";
    writeFileSync(join(dir, "plan.json"), JSON.stringify({ cases: [bad] }));
    const r = await execa(bin, [join(dir, "plan.json")], { reject: false, env: { LD_LIBRARY_PATH: mock } });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain("cases[0].args[1].tensorMap.tensor: no tensor 'Y' among this case's args");
    const rank = echo("x", 5, 24, 32);
    (rank.args[1] as { tensorMap: { box: number[] } }).tensorMap.box = [16];
    writeFileSync(join(dir, "plan.json"), JSON.stringify({ cases: [rank] }));
    const r2 = await execa(bin, [join(dir, "plan.json")], { reject: false, env: { LD_LIBRARY_PATH: mock } });
    expect(r2.exitCode).toBe(3);
    expect(r2.stderr).toContain("cases[0].args[1].tensorMap.box: must have one extent per dim of tensor 'X'");
  });
});
