import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { decode, encode, FORMATS, fromBits, rounder, roundFloatExact, roundTo, toBits } from "../../src/numeric/dtype.ts";
import { randomTensor } from "../../src/numeric/random.ts";
import { firstMismatch, tolerance } from "../../src/numeric/tolerance.ts";

const f32bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;

// An independent bf16 rounding for f32 inputs: the usual integer trick on the f32 bits.
function bf16ViaBits(x: number): number {
  const b = f32bits(x);
  const r = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  return r;
}

describe("16-bit floats", () => {
  for (const dt of ["f16", "bf16"] as const) {
    it(`${dt}: every bit pattern round-trips decode -> encode`, () => {
      const bytes = new Uint8Array(65536 * 2);
      for (let i = 0; i < 65536; i++) { bytes[2 * i] = i & 0xff; bytes[2 * i + 1] = i >> 8; }
      const vals = decode(dt, bytes);
      const back = encode(dt, vals);
      const dv = new DataView(back.buffer);
      for (let i = 0; i < 65536; i++) {
        const got = dv.getUint16(2 * i, true);
        if (Number.isNaN(vals[i]!)) { expect(Number.isNaN(fromBits(dt, got))).toBe(true); continue; }
        if (got !== i) throw new Error(`${dt} pattern ${i.toString(16)} -> ${vals[i]} -> ${got.toString(16)}`);
        expect(roundTo(dt, vals[i]!)).toBe(vals[i]);
      }
    });

    it(`${dt}: midpoints between neighbours round to the even pattern`, () => {
      for (let i = 1; i < 0x7c00 - 1; i += 7) {
        const lo = fromBits(dt, i), hi = fromBits(dt, i + 1);
        if (!Number.isFinite(hi)) break;
        const mid = (lo + hi) / 2;
        const even = i % 2 === 0 ? i : i + 1;
        expect(toBits(dt, mid)).toBe(even);
        expect(toBits(dt, -mid)).toBe(even | 0x8000);
        // just off the midpoint goes to the nearer neighbour
        expect(toBits(dt, mid + (hi - lo) * 1e-3)).toBe(i + 1);
        expect(toBits(dt, mid - (hi - lo) * 1e-3)).toBe(i);
      }
    });
  }

  it("bf16 rounding agrees with the f32 bit trick on random f32 values", () => {
    fc.assert(fc.property(fc.float({ noNaN: true }), (x) => {
      const b = bf16ViaBits(x);
      const want = fromBits("bf16", b);
      expect(roundTo("bf16", x)).toBe(want);
    }), { numRuns: 20000 });
  });

  for (const dt of ["bf16", "f16"] as const) {
    it(`the fast ${dt} rounder equals roundTo on doubles, f32 values, bit patterns and midpoints`, () => {
      const fast = rounder(dt);
      const same = (x: number) => Object.is(fast(x), roundTo(dt, x)) || (Number.isNaN(fast(x)) && Number.isNaN(x));
      fc.assert(fc.property(fc.oneof(fc.double(), fc.float(), fc.float({ min: Math.fround(-1e-4), max: Math.fround(1e-4) })), (x) => { expect(same(x)).toBe(true); }), { numRuns: 20000 });
      for (let i = 0; i < 65535; i++) {
        const x = fromBits(dt, i), y = fromBits(dt, i + 1);
        if (!same(x) || !same(Math.fround((x + y) / 2)) || !same(Math.fround(x + (y - x) / 3))) throw new Error(`${dt} fast rounder differs near pattern ${i}`);
      }
    });
  }

  // roundTo takes the double's bits where the result is normal: the same value as the exact
  // rounding (powers of two and a half-even floor) for every double, ties and carries included.
  for (const dt of ["bf16", "f16", "fp8e4m3", "fp8e5m2"] as const) {
    it(`${dt}: roundTo on the bit pattern equals the exact rounding on doubles, ties, near-ties and the range's ends`, () => {
      const f = FORMATS[dt]!;
      const same = (x: number) => {
        const got = roundTo(dt, x), want = roundFloatExact(f, x);
        if (!(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)))) throw new Error(`${dt}: roundTo(${x}) = ${got}, exact ${want}`);
      };
      fc.assert(fc.property(fc.oneof(fc.double(), fc.double({ min: -4 * f.max, max: 4 * f.max }), fc.double({ min: -(2 ** (f.emin + 2)), max: 2 ** (f.emin + 2) })), (x) => { same(x); }), { numRuns: 20000 });
      // Every representable value, the midpoint to its neighbour (a tie), and a double's ulp
      // either side of the midpoint (the sticky bits in the low word).
      for (let b = 0; b < 2 ** (f.mant + f.exp) - 1; b++) {
        const x = fromBits(dt, b), y = fromBits(dt, b + 1);
        if (!Number.isFinite(y) || Number.isNaN(y)) continue;
        const mid = (x + y) / 2;
        for (const v of [x, mid, mid * (1 + 2 ** -52), mid * (1 - 2 ** -52), y * 1.5, y * 2 ** 20]) { same(v); same(-v); }
      }
    });
  }

  it("overflow: at max + half an ulp (a tie, max is odd) goes to Inf, just below stays max", () => {
    expect(roundTo("f16", 65504)).toBe(65504);
    expect(roundTo("f16", 65519.99)).toBe(65504);
    expect(roundTo("f16", 65520)).toBe(Infinity);
    expect(roundTo("f16", -70000)).toBe(-Infinity);
    const bmax = fromBits("bf16", 0x7f7f);
    expect(roundTo("bf16", bmax)).toBe(bmax);
    expect(roundTo("bf16", bmax + 2 ** 119)).toBe(Infinity); // half an ulp above max
    expect(roundTo("bf16", bmax + 0.99 * 2 ** 119)).toBe(bmax);
  });

  it("subnormals, signed zero, NaN", () => {
    expect(roundTo("f16", 2 ** -24)).toBe(2 ** -24);
    expect(roundTo("f16", 2 ** -25)).toBe(0);            // tie with 0 -> even (0)
    expect(roundTo("f16", 2 ** -25 * 1.0001)).toBe(2 ** -24);
    expect(roundTo("f16", 3 * 2 ** -25)).toBe(2 ** -23); // tie between 1 and 2 quanta -> 2
    expect(Object.is(roundTo("bf16", -1e-300), -0)).toBe(true);
    expect(toBits("f16", -0)).toBe(0x8000);
    expect(Number.isNaN(roundTo("bf16", NaN))).toBe(true);
    expect(fromBits("bf16", 0x0001)).toBe(2 ** -133);
  });
});

describe("fp8", () => {
  it("e4m3: 448 max, saturates, only S.1111.111 is NaN", () => {
    expect(fromBits("fp8e4m3", 0x7e)).toBe(448);
    expect(Number.isNaN(fromBits("fp8e4m3", 0x7f))).toBe(true);
    expect(fromBits("fp8e4m3", 0x78)).toBe(256); // exponent all-ones is a normal binade
    expect(roundTo("fp8e4m3", 1000)).toBe(448);
    expect(roundTo("fp8e4m3", -Infinity)).toBe(-448);
    expect(roundTo("fp8e4m3", 2 ** -9)).toBe(2 ** -9);
    expect(roundTo("fp8e4m3", 1.0625)).toBe(1);     // tie -> even mantissa
    expect(roundTo("fp8e4m3", 1.1875)).toBe(1.25);  // tie between 1.125 and 1.25 -> even (1.25)
  });
  it("e5m2: 57344 max, saturates, Inf pattern decodes to Inf", () => {
    expect(fromBits("fp8e5m2", 0x7b)).toBe(57344);
    expect(fromBits("fp8e5m2", 0x7c)).toBe(Infinity);
    expect(roundTo("fp8e5m2", 1e6)).toBe(57344);
  });
  for (const dt of ["fp8e4m3", "fp8e5m2"] as const) {
    it(`${dt}: every pattern round-trips`, () => {
      for (let i = 0; i < 256; i++) {
        const x = fromBits(dt, i);
        if (Number.isNaN(x)) continue;
        if (!Number.isFinite(x)) continue; // saturating conversion maps Inf to max
        expect(toBits(dt, x)).toBe(i);
      }
    });
  }
});

describe("integers and bytes", () => {
  it("wrap like C fixed-width types, truncating floats", () => {
    expect(roundTo("i8", 128)).toBe(-128);
    expect(roundTo("u8", -1)).toBe(255);
    expect(roundTo("i16", 40000)).toBe(40000 - 65536);
    expect(roundTo("i32", 2 ** 31)).toBe(-(2 ** 31));
    expect(roundTo("u32", -1)).toBe(2 ** 32 - 1);
    expect(roundTo("i32", -3.7)).toBe(-3);
    expect(roundTo("i64", 2 ** 63)).toBe(-(2 ** 63));
    expect(roundTo("bool", NaN)).toBe(1);
    expect(roundTo("bool", 0)).toBe(0);
  });
  it("encode/decode are little-endian and inverse for every dtype", () => {
    expect([...encode("i32", [0x01020304])]).toEqual([4, 3, 2, 1]);
    expect([...encode("bf16", [1])]).toEqual([0x80, 0x3f]);
    for (const dt of ["i8", "u8", "i16", "u16", "i32", "u32", "f32", "f64", "f16", "bf16", "fp8e4m3", "fp8e5m2", "bool"] as const) {
      const t = randomTensor(dt, [37], 5, -100, 100);
      expect([...decode(dt, encode(dt, t.data))]).toEqual([...t.data]);
    }
  });
});

describe("randomTensor and tolerance", () => {
  it("is deterministic, representable, in range, and seed-dependent", () => {
    const a = randomTensor("bf16", [8, 16], 42);
    const b = randomTensor("bf16", [8, 16], 42);
    const c = randomTensor("bf16", [8, 16], 43);
    expect([...a.data]).toEqual([...b.data]);
    expect([...a.data]).not.toEqual([...c.data]);
    for (const x of a.data) { expect(roundTo("bf16", x)).toBe(x); expect(Math.abs(x)).toBeLessThanOrEqual(1); }
    expect(new Set(a.data).size).toBeGreaterThan(50);
  });
  it("never all zeros", () => {
    const t = randomTensor("i8", [4], 1, 0, 0.5); // only 0 is in range for ints... (no non-zero exists)
    expect(t.data.length).toBe(4);
    const u = randomTensor("bool", [1], 3, 0, 1);
    for (let s = 0; s < 20; s++) expect([...randomTensor("bool", [1], s, 0, 1).data]).not.toEqual([0]);
    expect(u.data.length).toBe(1);
  });
  it("tolerance admits f32 accumulation noise and rejects a layout-sized error", () => {
    const k = 256;
    const tol = tolerance("bf16", k);
    const want = [3.0, -0.01, 0];
    expect(firstMismatch([roundTo("bf16", 3.0 + 0.01), -0.01, 1e-5], want, tol)).toBeUndefined();
    expect(firstMismatch([3.0, 0.5, 0], want, tol)?.index).toBe(1);
    expect(firstMismatch([NaN], [1], tol)).toBeDefined();
    expect(tolerance("i32", 64)).toEqual({ atol: 0, rtol: 0 });
    expect(firstMismatch([3], [4], tolerance("i32", 1))?.index).toBe(0);
  });
});
