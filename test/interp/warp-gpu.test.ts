// The interpreter's ldmatrix and mma, replayed on inputs whose outputs an H200 produced
// (test/interp/gpu/warp_probe.cu; per-lane raw registers and arbitrary row addresses, so
// the GPU side assumes no fragment layout). Exact agreement pins warp.ts to the hardware.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { DType } from "../../src/ir/ir.ts";
import { newBuf, newTrack, SharedChecker } from "../../src/interp/memory.ts";
import { ldmatrix, mma } from "../../src/interp/warp.ts";
import type { MmaArrival } from "../../src/interp/warp.ts";
import { fromBits, roundTo } from "../../src/numeric/dtype.ts";
import { f32TowardZero } from "../../src/interp/warp.ts";

const gold = JSON.parse(readFileSync(new URL("./gpu/warp-golden.json", import.meta.url), "utf8"));

describe("warp collectives agree with the GPU", () => {
  for (const [name, num, trans] of [["x1", 1, false], ["x2", 2, false], ["x4", 4, false], ["x1t", 1, true], ["x2t", 2, true], ["x4t", 4, true]] as const) {
    it(`ldmatrix.${name}`, () => {
      const S = newBuf("S", "u16", "shared", [512], 0, Float64Array.from(gold.smem));
      S.track = newTrack(512);
      const lanes = Array.from({ length: 32 }, (_, l) => ({ sid: 0, dst: newBuf("r", "u16", "local", [8], 0), dOff: 0, src: S, addr: gold.addr[l] }));
      ldmatrix({ k: "ldmatrix", num, trans, dst: { buf: "r", idx: [] }, addr: { buf: "S", idx: [] } }, lanes, 0, new SharedChecker(true));
      const got = lanes.flatMap((x) => [...x.dst.data]);
      expect(got).toEqual(gold[name]);
    });
  }

  for (const atype of ["bf16", "f16"] as const) {
    it(`mma.m16n8k16 ${atype}`, () => {
      const g = gold[`mma_${atype}`];
      const lanes = Array.from({ length: 32 }, (_, l) => {
        const buf = (dtype: DType, vals: number[]) => newBuf("x", dtype, "local", [vals.length], 0, Float64Array.from(vals, (v) => roundTo(dtype, v)));
        const a = buf(atype, g.a_eighths.slice(8 * l, 8 * l + 8).map((v: number) => v / 8));
        const b = buf(atype, g.b_eighths.slice(4 * l, 4 * l + 4).map((v: number) => v / 8));
        const c = buf("f32", g.c.slice(4 * l, 4 * l + 4));
        return { sid: 0, a, aOff: 0, b, bOff: 0, c, cOff: 0, d: buf("f32", [0, 0, 0, 0]), dOff: 0 };
      });
      const r = { buf: "x", idx: [] };
      mma({ k: "mma", atype, a: r, b: r, c: r, d: r }, lanes);
      expect(lanes.flatMap((x) => [...x.d.data])).toEqual(g.d);
    });
  }

  it("mma rounding: random bf16 operands; toward-zero rounding of the exact sum matches nearly all, nearest fewer", () => {
    const g = gold.mma_bf16_random;
    const buf = (dtype: DType, vals: number[]) => newBuf("x", dtype, "local", [vals.length], 0, Float64Array.from(vals));
    const lanes: MmaArrival[] = Array.from({ length: 32 }, (_, l) => ({
      sid: 0, a: buf("bf16", g.a_bits.slice(8 * l, 8 * l + 8).map((b: number) => fromBits("bf16", b))), aOff: 0,
      b: buf("bf16", g.b_bits.slice(4 * l, 4 * l + 4).map((b: number) => fromBits("bf16", b))), bOff: 0,
      // %.9g identifies an f32 but parses to a nearby double: round back to f32
      c: buf("f32", g.c.slice(4 * l, 4 * l + 4).map(Math.fround)), cOff: 0, d: buf("f32", [0, 0, 0, 0]), dOff: 0,
    }));
    const r = { buf: "x", idx: [] };
    mma({ k: "mma", atype: "bf16", a: r, b: r, c: r, d: r }, lanes, true);
    const got = lanes.flatMap((x) => [...x.d.data]), want = g.d.map(Math.fround);
    const ulps = got.map((v: number, i: number) => Math.abs(v - want[i]) / 2 ** (Math.floor(Math.log2(Math.abs(want[i]))) - 23));
    expect(ulps.filter((u: number) => u === 0).length).toBeGreaterThanOrEqual(125);
    expect(Math.max(...ulps)).toBeLessThanOrEqual(2);
    mma({ k: "mma", atype: "bf16", a: r, b: r, c: r, d: r }, lanes); // nearest: fewer exact, same bound
    const near = lanes.flatMap((x) => [...x.d.data]);
    expect(near.filter((v, i) => v === want[i]).length).toBeLessThan(125);
    expect(Math.max(...near.map((v, i) => Math.abs(v - want[i]) / 2 ** (Math.floor(Math.log2(Math.abs(want[i]))) - 23)))).toBeLessThanOrEqual(2);
  });

  it("f32TowardZero truncates", () => {
    expect(f32TowardZero(1 + 2 ** -24 + 2 ** -30)).toBe(1);
    expect(f32TowardZero(-(1 + 2 ** -23 - 2 ** -30))).toBe(-1);
    expect(f32TowardZero(1e39)).toBe(3.4028234663852886e38);
    expect(f32TowardZero(0.5)).toBe(0.5);
  });
});
