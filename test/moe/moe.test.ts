// MoE gating and routing: the vocabulary's IR text form, the semantics of topk's tie rule,
// and every MoE example against its float64 / exact reference at the corner shapes the
// issue names (one token, experts with no tokens, all tokens on one expert, top-k = E),
// at tile level and lowered (thread level).
import { describe, expect, it } from "vitest";
import { parseKernels } from "../../src/frontend/index.ts";
import { parseStmts } from "../../src/ir/parse.ts";
import { printStmts } from "../../src/ir/print.ts";
import { checkKernel } from "../../src/check/run.ts";
import { backendFor } from "../../src/check/backends.ts";
import { loadSpecs } from "../../src/cli/check.ts";
import { topkRow } from "../../dsl-examples/moe_gate.ts";
import { alignRef } from "../../dsl-examples/moe_align.ts";

describe("MoE IR text", () => {
  it("round-trips reduce, topk, scan and atomic", () => {
    const text = [
      "reduce.max s[0 : +4, 0 : +E] -> m[0 : +4] axis 1",
      "reduce.sum s[0 : +4, 0 : +E] -> m[0 : +4] axis 1 accumulate",
      "topk s[0 : +4, 0 : +E] -> v[0 : +4, 0 : +8], i[0 : +4, 0 : +8] count min(K, 8)",
      "scan.sum c[0 : +16] -> c[0 : +16] exclusive",
      "atomic.add cnt[e], 1 -> old",
      "atomic.max O[t, j], x",
      "",
    ].join("\n");
    expect(printStmts(parseStmts(text))).toBe(text);
  });
});

describe("references", () => {
  it("topk: larger first, ties to the lower index", () => {
    expect(topkRow([1, 3, 3, 2, 3], 4)).toEqual([1, 2, 4, 3]);
  });
  it("align: pads hold P, empty experts get no block, pairs keep their order", () => {
    const ids = [2, 0, 2, 2];
    const r = alignRef(4, 3, 4, 2, (p) => ids[p]!);
    expect([...r.counts]).toEqual([1, 0, 3]);
    expect([...r.sorted]).toEqual([1, 4, 0, 2, 3, 4, 4, 4]);
    expect([...r.block_expert]).toEqual([0, 2, 2, -1]);
    expect([...r.total]).toEqual([6]);
  });
});

// Fixed corner shapes per kernel; data and configs are drawn.
const corners: Record<string, { file: string; shapes: Record<string, number>[] }> = {
  moe_gate_softmax: { file: "dsl-examples/moe_gate.ts", shapes: [{ T: 1, E: 8, K: 2 }, { T: 5, E: 1, K: 1 }, { T: 9, E: 6, K: 6 }] },
  moe_gate_sigmoid: { file: "dsl-examples/moe_gate.ts", shapes: [{ T: 1, E: 8, K: 2 }, { T: 6, E: 5, K: 5 }] },
  moe_gate_grouped: { file: "dsl-examples/moe_gate_grouped.ts", shapes: [{ T: 1, G: 4, S: 4, K: 4 }, { T: 5, G: 1, S: 8, K: 8 }] },
  // E = 1: all pairs on one expert; E = 20 with P = 3: most experts get nothing.
  moe_align: { file: "dsl-examples/moe_align.ts", shapes: [{ P: 1, E: 4, BS: 4, NB: 2 }, { P: 12, E: 1, BS: 4, NB: 4 }, { P: 3, E: 20, BS: 2, NB: 5 }] },
  moe_align_ep: { file: "dsl-examples/moe_align.ts", shapes: [{ P: 7, E: 6, L: 3, BS: 2, NB: 8 }, { P: 1, E: 2, L: 1, BS: 1, NB: 2 }] },
};

describe("MoE examples against their references", () => {
  for (const [name, { file, shapes }] of Object.entries(corners)) {
    it(`${name}: random and corner shapes, tile level and lowered`, async () => {
      const kernel = parseKernels(file).find((k) => k.name === name)!;
      const spec = (await loadSpecs(file)).get(name)!;
      for (const level of ["tile", "thread"] as const) {
        const backend = await backendFor("interp", { level, arch: "sm_80" });
        const r = await checkKernel(kernel, spec, { backendName: "interp", backend, cases: 3, seed: 5, reproduce: "x" });
        expect(r, `${level} random`).toMatchObject({ failed: 0 });
        for (const shape of shapes) {
          const c = await checkKernel(kernel, spec, { backendName: "interp", backend, cases: 1, seed: 7, shape, reproduce: "x" });
          expect(c, `${level} ${JSON.stringify(shape)}`).toMatchObject({ passed: 1, failed: 0 });
        }
      }
    }, 120_000);
  }

  // The routing runs one block per chunk of CH pairs, each counting all P ids in rounds of
  // STAGE = 4096 (double-buffered copies: 16-byte cp.async when P % 4 == 0, scalar otherwise):
  // several blocks at CH 32, and P past one and two rounds at CH 256, E = 3 (long groups,
  // several routing blocks an expert, owned by different blocks) and E = 20 (ids 20..23 dropped).
  const spans: [string, Record<string, number>, Record<string, number>][] = [
    ["moe_align", { EMAX: 256, CH: 32 }, { P: 100, E: 3, BS: 1, NB: 103 }],
    ["moe_align", { EMAX: 256, CH: 32 }, { P: 97, E: 20, BS: 4, NB: 45 }],
    ["moe_align", { EMAX: 256, CH: 256 }, { P: 4099, E: 20, BS: 16, NB: 277 }],
    // BS 32: the w4a16 tables' mid entry (src/moe/layer.ts).
    ["moe_align", { EMAX: 256, CH: 32 }, { P: 300, E: 20, BS: 32, NB: 30 }],
    ["moe_align", { EMAX: 256, CH: 256 }, { P: 8200, E: 3, BS: 64, NB: 132 }],
    ["moe_align_ep", { EMAX: 256, CH: 32 }, { P: 100, E: 20, L: 7, BS: 2, NB: 57 }],
    ["moe_align_ep", { EMAX: 256, CH: 256 }, { P: 4100, E: 20, L: 12, BS: 16, NB: 269 }],
  ];
  for (const [name, config, shape] of spans) {
    const rounds = Math.ceil(shape.P! / 4096);
    it(`${name} over ${Math.ceil(shape.P! / config.CH!)} blocks, ${rounds} counting round${rounds > 1 ? "s" : ""}: ${JSON.stringify(shape)}`, async () => {
      const file = "dsl-examples/moe_align.ts";
      const kernel = parseKernels(file).find((k) => k.name === name)!;
      const spec = (await loadSpecs(file)).get(name)!;
      for (const level of ["tile", "thread"] as const) {
        const backend = await backendFor("interp", { level, arch: "sm_80" });
        const r = await checkKernel(kernel, spec, { backendName: "interp", backend, cases: 1, seed: 11, shape, config, reproduce: "x" });
        expect(r, level).toMatchObject({ passed: 1, failed: 0 });
      }
    }, 120_000);
  }

  it("a wrong reference fails the check (the check can fail)", async () => {
    const file = "dsl-examples/moe_gate.ts";
    const kernel = parseKernels(file).find((k) => k.name === "moe_gate_softmax")!;
    const spec = (await loadSpecs(file)).get("moe_gate_softmax")!;
    // A reference that sees rounded logits picks and weighs differently.
    const wrong = {
      ...spec, inputs: { logits: { lo: -2, hi: 2 } },
      reference: (a: Parameters<typeof spec.reference>[0], s: Record<string, number>, d: Record<string, number>) => {
        const x = a.logits!.data.map(Math.round);
        const out = spec.reference({ ...a, logits: { ...a.logits!, data: x.map((v, i) => v - i * 1e-9) } }, s, d);
        return out;
      },
    };
    const backend = await backendFor("interp", { level: "tile", arch: "sm_80" });
    const r = await checkKernel(kernel, { ...wrong }, { backendName: "interp", backend, cases: 4, seed: 1, shape: { T: 4, E: 8, K: 8 }, reproduce: "x" });
    expect(r.failed).toBeGreaterThan(0);
  });
});
