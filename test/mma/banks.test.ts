// Shared-memory traffic of the lowered gemm: the instruction mix (ldmatrix.x4 for A tiles and
// for pairs of B n-tiles) and bank-conflict freedom of every ldmatrix phase on swizzled tiles.
import { describe, expect, it } from "vitest";
import type { Stmt } from "../../src/ir/ir.ts";
import { type Case, buildKernel, caseName } from "./harness.ts";
import { type LdmatrixTrace, traceLdmatrix } from "./trace.ts";

function traces(c: Case): LdmatrixTrace[] {
  const k = buildKernel(c);
  return traceLdmatrix(k.launch.body.filter((s) => s.k !== "for" || s.kind === "unroll"), c.warpsM * c.warpsN * 32);
}

/** Phases (8x8 matrices) whose 8 row addresses share a 16-byte bank group. */
function conflicts(t: LdmatrixTrace[]): string[] {
  const bad: string[] = [];
  for (const x of t)
    for (let q = 0; q < x.num; q++) {
      const rows = x.rowAddrs.slice(8 * q, 8 * q + 8);
      const groups = rows.map((e) => Math.floor((e * 2) / 16) % 8);
      if (new Set(groups).size !== 8) bad.push(`${x.buf} x${x.num}${x.trans ? ".trans" : ""} matrix ${q}: rows ${rows} -> groups ${groups}`);
    }
  return bad;
}

const configs: Case[] = [];
for (const transA of [false, true])
  for (const transB of [false, true])
    for (const [m, n, k, warpsM, warpsN] of [[128, 128, 32, 2, 4], [128, 128, 32, 4, 2], [64, 128, 64, 2, 2], [128, 64, 32, 4, 1], [32, 32, 16, 1, 1], [64, 16, 32, 2, 1]] as const)
      configs.push({ m, n, k, warpsM, warpsN, transA, transB, swizzle: true, atype: "bf16" });

describe("bank conflicts", () => {
  for (const c of configs)
    it(`none with the swizzle: ${caseName(c)}`, () => {
      expect(conflicts(traces(c))).toEqual([]);
    });

  it("row-major tiles with 128-byte rows do conflict (the check can fail)", () => {
    const bad = conflicts(traces({ m: 64, n: 64, k: 64, warpsM: 2, warpsN: 2, transA: false, transB: true, swizzle: false, atype: "bf16" }));
    expect(bad.length).toBeGreaterThan(0);
  });
});

function ldmatrices(body: Stmt[], trips = 1): { s: Extract<Stmt, { k: "ldmatrix" }>; trips: number }[] {
  const res: { s: Extract<Stmt, { k: "ldmatrix" }>; trips: number }[] = [];
  for (const s of body) {
    if (s.k === "ldmatrix") res.push({ s, trips });
    if (s.k === "for" && s.kind === "unroll") {
      const e = s.extents[0]!;
      if (e.k !== "int") throw new Error("fragment loops must have constant trips");
      res.push(...ldmatrices(s.body, trips * e.v));
    }
  }
  return res;
}

describe("instruction mix", () => {
  it("8 warps 128x128x32: per warp and k-step, one x4 per A m-tile and one x4 per pair of B n-tiles", () => {
    for (const [warpsM, warpsN] of [[2, 4], [4, 2]] as const) {
      const c: Case = { m: 128, n: 128, k: 32, warpsM, warpsN, transA: false, transB: true, swizzle: true, atype: "bf16" };
      const mTiles = 128 / warpsM / 16, nTiles = 128 / warpsN / 8;
      // Executed per warp and k-step (2 k-steps of 16): the prefetch of the next k-step's
      // fragments is guarded, so count the trace rather than the statements.
      const t = traces(c);
      expect(t.every((x) => x.num === 4)).toBe(true);
      expect(t.filter((x) => x.buf === "As").length).toBe(8 * 2 * mTiles);
      expect(t.filter((x) => x.buf === "Bs").length).toBe(8 * 2 * (nTiles / 2));
    }
  });
  it("an odd n-tile count ends with one x2 for the last B tile", () => {
    const ld = ldmatrices(buildKernel({ m: 16, n: 24, k: 16, warpsM: 1, warpsN: 1, transA: false, transB: false, swizzle: false, atype: "f16" }).launch.body);
    expect(ld.filter((x) => x.s.addr.buf === "Bs").map((x) => [x.s.num, x.trips, x.s.trans])).toEqual([[4, 1, true], [2, 1, true]]);
  });
});
