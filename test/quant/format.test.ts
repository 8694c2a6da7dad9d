// The dequant semantics (src/quant/format.ts) and the packer, checked against values
// written out by hand, not recomputed by the same formulas.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decodeWord, dequantValue, dequantWord, fieldOf, kOf, positionOf, slotOf, wordsPerRow } from "../../src/quant/format.ts";
import { dequantMatrix, packWeights, packZeros, unpackWeights } from "../../src/quant/pack.ts";

describe("int4 fields, signed and unsigned", () => {
  it("decodes every 4-bit value in every slot, with and without sign extension", () => {
    for (let f = 0; f < 16; f++)
      for (let slot = 0; slot < 8; slot++) {
        const word = (f << (4 * slot)) >>> 0;
        const u = decodeWord("u4", "linear", word), s = decodeWord("s4", "linear", word);
        expect(u[slot]).toBe(f);
        expect(s[slot]).toBe(f < 8 ? f : f - 16); // 0x8 -> -8, 0xf -> -1
        expect(u.filter((_, i) => i !== slot).every((x) => x === 0)).toBe(true);
      }
  });

  it("the top nibble of a word is not sign-extended into its neighbours", () => {
    expect(decodeWord("s4", "linear", 0xf0000000)).toEqual([0, 0, 0, 0, 0, 0, 0, -1]);
    expect(decodeWord("u4", "linear", 0x80000000)).toEqual([0, 0, 0, 0, 0, 0, 0, 8]);
    expect(decodeWord("s8", "linear", 0x80ff7f01)).toEqual([1, 127, -1, -128]);
    expect(decodeWord("u8", "linear", 0x80ff7f01)).toEqual([1, 127, 255, 128]);
  });

  it("interleaved order puts values 2j, 2j+1 in slots j, j+4 (4-bit) and bytes j, j+2 (8-bit)", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((i) => slotOf("u4", "interleaved", i))).toEqual([0, 4, 1, 5, 2, 6, 3, 7]);
    expect([0, 1, 2, 3].map((i) => slotOf("u8", "interleaved", i))).toEqual([0, 2, 1, 3]);
    // Nibbles 0..7 in slots 0..7 read back in the order 0,4,1,5,2,6,3,7.
    expect(decodeWord("u4", "interleaved", 0x76543210)).toEqual([0, 4, 1, 5, 2, 6, 3, 7]);
    expect(fieldOf("u4", "interleaved", 0x000f0000, 1)).toBe(15);
  });

  it("e4m3: zero, subnormals, the largest finite value, and the NaN pattern", () => {
    expect(decodeWord("e4m3", "linear", 0x7e017f00)).toEqual([0, NaN, 2 ** -9, 448]);
    const neg = decodeWord("e4m3", "linear", 0x800000ff);
    expect(Object.is(neg[3], -0)).toBe(true);
    expect(Number.isNaN(neg[0])).toBe(true);
    expect(decodeWord("e4m3", "linear", 0x38)).toEqual([1, 0, 0, 0]);
  });
});

describe("dequantValue: round(round(q - zero) * scale)", () => {
  it("covers every 4-bit value with every scale sign", () => {
    for (let q = 0; q < 16; q++)
      for (const s of [0.5, -0.5, 0, -0]) {
        const got = dequantValue(q, 8, s, "bf16");
        const want = (q - 8) * s; // exact: small integers times a power of two
        expect(Object.is(got, want) || (got === 0 && want === 0 && Object.is(got, (q - 8) * s))).toBe(true);
      }
    expect(Object.is(dequantValue(8, 8, -0.5, "bf16"), -0)).toBe(true); // (+0) * (-0.5) = -0
  });

  it("NaN and infinite scales propagate as IEEE says", () => {
    expect(dequantValue(3, 8, Infinity, "bf16")).toBe(-Infinity);
    expect(dequantValue(9, 8, -Infinity, "f16")).toBe(-Infinity);
    expect(dequantValue(8, 8, Infinity, "bf16")).toBeNaN(); // 0 * inf
    expect(dequantValue(1, 0, NaN, "bf16")).toBeNaN();
    expect(dequantValue(NaN, 0, 1, "f16")).toBeNaN(); // e4m3 NaN weight
  });

  it("rounds twice in the destination type", () => {
    // bf16 keeps 8 significant bits: 3 - 0.00390625 rounds back to 3, then * 1.
    expect(dequantValue(3, 2 ** -8, 1, "bf16")).toBe(3);
    // f16: (15 - 0) * 4097/4096 = 15.0036..., nearest f16 is 15.0 (spacing 2^-7).
    expect(dequantValue(15, 0, 1 + 2 ** -12, "f16")).toBe(15);
    // f16 overflow: 15 * 65504 -> inf.
    expect(dequantValue(15, 0, 65504, "f16")).toBe(Infinity);
  });
});

describe("packer", () => {
  it("packs a hand-written row in both orders", () => {
    const row = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const lin = packWeights(row, 1, 9, "u4", "linear");
    expect([...lin.words]).toEqual([0x87654321, 0x9]);
    const il = packWeights(row, 1, 9, "u4", "interleaved");
    expect([...il.words]).toEqual([0x86427531, 0x9]);
    expect([...packWeights([-1, -8, 7, 0], 1, 4, "s4", "linear").words]).toEqual([0x78f]);
    expect([...packWeights([1, 2, 3, 4], 1, 4, "u8", "interleaved").words]).toEqual([0x04020301]);
    expect(() => packWeights([16], 1, 1, "u4", "linear")).toThrow(/not a u4 value/);
    expect(() => packWeights([-9], 1, 1, "s4", "linear")).toThrow(/not a s4 value/);
  });

  it("mma order: word 4b + t of a row holds k = 32b + 2t, 2t+1, 2t+8, 2t+9, 2t+16, 2t+17, 2t+24, 2t+25 in interleaved slots", () => {
    // Row of 40 values (ragged: the second block has 8), value k = k % 16.
    const row = Array.from({ length: 40 }, (_, k) => k % 16);
    const p = packWeights(row, 1, 40, "u4", "mma");
    expect(p.wordsPerRow).toBe(8);
    // Word 1 (t = 1): k = 2, 3, 10, 11, 18, 19, 26, 27 -> values 2, 3, 10, 11, 2, 3, 10, 11;
    // element i in slot (i >> 1) + 4 (i & 1): slots 0..3 hold 2, 10, 2, 10; slots 4..7 hold 3, 11, 3, 11.
    expect(p.words[1]).toBe(0xb3b3a2a2 >>> 0);
    // Word 0: k = 0, 1, 8, 9, 16, 17, 24, 25 -> 0, 1, 8, 9, 0, 1, 8, 9.
    expect(p.words[0]).toBe(0x91918080 >>> 0);
    // Word 5 (block 1, t = 1): k = 34, 35 (values 2, 3) and 42.. past K (0).
    expect(p.words[5]).toBe(0x00030002);
    // Words 6, 7: k = 36, 37 and 38, 39 (4, 5 / 6, 7).
    expect([p.words[6], p.words[7]]).toEqual([0x00050004, 0x00070006]);
    // Pair p of word t is (w >> 4p) & 0x000f000f: k-step p >> 1, fragment half p & 1.
    for (let t = 0; t < 4; t++)
      for (let pr = 0; pr < 4; pr++) {
        const x = (p.words[t]! >>> (4 * pr)) & 0x000f000f;
        const k0 = 16 * (pr >> 1) + 8 * (pr & 1) + 2 * t;
        expect([x & 0xf, x >>> 16]).toEqual([row[k0]!, row[k0 + 1]!]);
      }
    expect(() => packWeights([1, 2, 3, 4], 1, 4, "u8", "mma")).toThrow(/4-bit formats/);
  });

  it("mma order: positionOf and kOf are inverse over whole blocks, every (word, element) once", () => {
    for (const K of [1, 31, 32, 33, 64, 100]) {
      const W = wordsPerRow("u4", "mma", K);
      expect(W).toBe(4 * Math.ceil(K / 32));
      const seen = new Set<string>();
      for (let k = 0; k < W * 8; k++) {
        const { word, i } = positionOf("s4", "mma", k);
        expect(kOf("s4", "mma", word, i)).toBe(k);
        seen.add(`${word},${i}`);
      }
      expect(seen.size).toBe(W * 8);
    }
  });

  it("mma order: every 4-bit value at every position round-trips, signed and unsigned, ragged K", () => {
    for (const f of ["u4", "s4"] as const)
      for (const K of [7, 32, 45, 96, 130]) {
        const N = 16;
        const lo = f === "u4" ? 0 : -8;
        // Row n holds value (n + k) mod 16 (shifted into range): each position sees all 16 values over the rows.
        const q = Array.from({ length: N * K }, (_, i) => lo + ((Math.floor(i / K) + (i % K)) % 16));
        const p = packWeights(q, N, K, f, "mma");
        expect(p.wordsPerRow).toBe(4 * Math.ceil(K / 32));
        expect([...unpackWeights(p, K, f, "mma")]).toEqual(q);
        // Fields past K are 0 (padding).
        for (let n = 0; n < N; n++)
          for (let k = K; k < p.wordsPerRow * 8; k++) {
            const { word, i } = positionOf(f, "mma", k);
            expect(fieldOf(f, "mma", p.words[n * p.wordsPerRow + word]!, i)).toBe(0);
          }
      }
  });

  it("round-trips random matrices in every format and order", () => {
    const ranges = { u4: [0, 15], s4: [-8, 7], u8: [0, 255], s8: [-128, 127] } as const;
    fc.assert(fc.property(
      fc.constantFrom(...(Object.keys(ranges) as (keyof typeof ranges)[])), fc.constantFrom("linear" as const, "interleaved" as const, "mma" as const),
      fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 70 }), fc.integer(),
      (f, order, N, K, seed) => {
        if (order === "mma" && !f.endsWith("4")) return;
        const [lo, hi] = ranges[f];
        const q = Array.from({ length: N * K }, (_, i) => lo + (Math.abs(seed * 31 + i * 7919) % (hi - lo + 1)));
        const p = packWeights(q, N, K, f, order);
        expect(p.wordsPerRow).toBe(order === "mma" ? 4 * Math.ceil(K / 32) : Math.ceil(K / (f.endsWith("4") ? 8 : 4)));
        expect([...unpackWeights(p, K, f, order)]).toEqual(q);
      }), { numRuns: 200 });
  });

  it("dequantMatrix: group boundaries at ragged K, packed zeros per group", () => {
    // K = 70 with group 32: groups 0..31, 32..63, 64..69 (ragged last group).
    const N = 2, K = 70, G = 3;
    const q = Array.from({ length: N * K }, (_, i) => i % 16);
    const p = packWeights(q, N, K, "u4", "interleaved");
    const scales = [1, 2, 4, -1, -2, -4];
    const zeros = [0, 1, 2, 3, 4, 5];
    const z = packZeros(zeros, N, G);
    expect([...z.words]).toEqual([0x210, 0x543]);
    const w = dequantMatrix(p.words, N, K, { format: "u4", order: "interleaved", scales, zeros: { packed: z.words }, group: 32 }, "bf16");
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        const g = Math.floor(k / 32);
        expect(w[n * K + k]).toBe((q[n * K + k]! - zeros[n * G + g]!) * scales[n * G + g]!);
      }
    // The same matrix in the mma order dequantizes to the same values (groups of 32 are whole blocks).
    const pm = packWeights(q, N, K, "u4", "mma");
    expect([...dequantMatrix(pm.words, N, K, { format: "u4", order: "mma", scales, zeros: { packed: z.words }, group: 32 }, "bf16")]).toEqual([...w]);
    // Per channel (group 0): one scale per row.
    const pc = dequantMatrix(p.words, N, K, { format: "u4", order: "interleaved", scales: [2, -3], zeros: 8, group: 0 }, "f16");
    expect(pc[K + 31]).toBe(((K + 31) % 16 - 8) * -3);
  });

  it("dequantWord matches decodeWord + dequantValue", () => {
    expect(dequantWord("s4", "interleaved", 0x89abcdef, 1, 2, "bf16")).toEqual(
      decodeWord("s4", "interleaved", 0x89abcdef).map((x) => (x - 1) * 2));
  });
});
