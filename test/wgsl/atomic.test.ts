// The atomic statement on the adapter, bit-exact: N threads update M slots (many threads per
// slot, so they really contend), each storing the value it saw before its update. Where values
// are chosen so that every order of the updates gives the same bits (small integers and halves
// for sums, any values for max/min), the final slots must equal the fold that the interpreter
// computes (round into the dtype after each step, JS Math.max/min: NaN wins, +0 > -0). The old
// values of adds are checked as a chain: sorted by old, each add of a slot must lead from the
// initial value through the others' olds to the final value. The bf16 / f16 sums past 256 / 2048
// round away halves, so their result depends on the order the adapter ran them in (the chain
// is then the whole check: it failed once in a loaded CI run where the fold was compared too).
import { describe, expect } from "vitest";
import type { AtomicOp, DType } from "../../src/ir/ir.ts";
import { parseKernel } from "../../src/ir/parse.ts";
import { emitWgsl } from "../../src/codegen/wgsl/index.ts";
import { runCompiled } from "../../runtime/webgpu/host.ts";
import { roundTo } from "../../src/numeric/dtype.ts";
import { rng } from "../../src/numeric/random.ts";
import { gpuHandle, gpuIt } from "./gpu.ts";

const globalKernel = (t: DType, op: AtomicOp) => parseKernel(`kernel atom(X: global ${t}[N], O: global ${t}[M] out, R: global ${t}[N] out)
  dims N, M
launch thread grid [cdiv(N, 64)] threads 64 blocks [bx] thread tx {
  let i: i32 = bx * 64 + tx
  if (i < N) {
    atomic.${op} O[i % M], X[i] -> old
    store R[i] = old
  }
}`);

const COMBINE: Record<AtomicOp, (a: number, b: number) => number> = { add: (a, b) => a + b, max: Math.max, min: Math.min };
const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

function expected(t: DType, op: AtomicOp, init: number[], xs: number[]): number[] {
  const o = [...init];
  xs.forEach((x, i) => { o[i % init.length] = roundTo(t, COMBINE[op](o[i % init.length]!, x)); });
  return o;
}

async function run(t: DType, op: AtomicOp, init: number[], xs: number[], f16 = false) {
  const k = globalKernel(t, op);
  const wk = emitWgsl(k, { f16, subgroups: false });
  const X = { dtype: t, shape: [xs.length], data: Float64Array.from(xs, (x) => roundTo(t, x)) };
  const O = { dtype: t, shape: [init.length], data: Float64Array.from(init, (x) => roundTo(t, x)) };
  const r = await runCompiled(gpuHandle(), k, wk, { X, O }, {}, { dims: { N: xs.length, M: init.length } });
  return { O: [...r.outputs.O!.data], R: [...r.outputs.R!.data], X: [...X.data], init: [...O.data] };
}

function chainErrors(t: DType, init: number[], xs: number[], olds: number[], final: number[]): string[] {
  const bad: string[] = [];
  init.forEach((v0, j) => {
    // Among updates that saw the same value, those that left it as it was (rounded away) came
    // before the one that moved it (values only grow: the sums add non-negative numbers).
    const moves = (s: { x: number; old: number }) => Number(!same(roundTo(t, s.old + s.x), s.old));
    const steps = xs.map((x, i) => ({ x, old: olds[i]! })).filter((_, i) => i % init.length === j).sort((a, b) => a.old - b.old || moves(a) - moves(b));
    let cur = v0;
    for (const s of steps) {
      if (!same(s.old, cur)) { bad.push(`slot ${j}: an update saw ${s.old}, the chain is at ${cur}`); return; }
      cur = roundTo(t, cur + s.x);
    }
    if (!same(cur, final[j]!)) bad.push(`slot ${j}: chain ends at ${cur}, slot holds ${final[j]}`);
  });
  return bad;
}

const r = rng(11);
const N = 300, M = 7;
const small = (lo: number, hi: number) => Array.from({ length: N }, () => lo + Math.floor(r() * (hi - lo + 1)));
const halves = () => small(0, 16).map((x) => x / 2);
const spread = () => Array.from({ length: N }, () => (r() - 0.5) * 2 ** Math.floor(r() * 20 - 10));

interface Case { t: DType; op: AtomicOp; xs: number[]; init: number[]; f16?: boolean; chain?: boolean; orderDependent?: boolean }
const CASES: Case[] = [
  { t: "i32", op: "add", xs: small(0, 1000), init: [0, 5, -7, 2147483000, 0, 1, 2], chain: false }, // wraps past 2^31
  { t: "i32", op: "add", xs: small(1, 9), init: [0, 5, -7, 100, 0, 1, 2], chain: true },
  { t: "i32", op: "max", xs: small(-500, 500), init: [0, -1000, 1000, 3, -3, 0, 7] },
  { t: "i32", op: "min", xs: small(-500, 500), init: [0, -1000, 1000, 3, -3, 0, 7] },
  { t: "u32", op: "add", xs: small(1, 9), init: [0, 5, 7, 4294967000, 0, 1, 2] },
  { t: "u32", op: "max", xs: small(0, 4000000000), init: [0, 1, 4294967295, 3, 2147483648, 0, 7] },
  { t: "u32", op: "min", xs: small(0, 4000000000), init: [0, 1, 4294967295, 3, 2147483648, 0, 7] },
  { t: "f32", op: "add", xs: halves(), init: [0, -0, 1.5, -100, 1e6, 0.25, 3], chain: true },
  { t: "f32", op: "max", xs: [...spread(), NaN, -0, 0, Infinity, -Infinity], init: [-Infinity, -0, 0, 1, -1, 1e-30, 5] },
  { t: "f32", op: "min", xs: [...spread(), NaN, -0, 0, Infinity, -Infinity], init: [Infinity, -0, 0, 1, -1, 1e-30, 5] },
  // Signed zeros only: +0 must win max and -0 min whatever the order (Math.max/min).
  { t: "f32", op: "max", xs: [-0, 0, -0, -0, -0, -0, 0, -0, -0, -0, -0, -0], init: [-0, -0, 0, -0, -0, -0] },
  { t: "f32", op: "min", xs: [0, -0, 0, 0, 0, 0, -0, 0, 0, 0, 0, 0], init: [0, 0, -0, 0, 0, 0] },
  { t: "bf16", op: "add", xs: halves(), init: [0, 1, -3, 256, 0.5, 2, 0], chain: true, orderDependent: true }, // 256 + 0.5 rounds in bf16
  { t: "bf16", op: "max", xs: spread(), init: [-Infinity, -0, 0, 1, -1, 1e-30, 5] },
  { t: "f16", op: "add", xs: halves(), init: [0, 1, -3, 2048, 0.5, 2, 0], chain: true, orderDependent: true },
  { t: "f16", op: "add", xs: halves(), init: [0, 1, -3, 2048, 0.5, 2, 0], chain: true, orderDependent: true, f16: true },
  { t: "f16", op: "min", xs: spread(), init: [Infinity, -0, 0, 1, -1, 1e-3, 5], f16: true },
  { t: "i8", op: "add", xs: small(-100, 100), init: [0, 1, -3, 127, -128, 2, 0] }, // wraps mod 256
  { t: "u16", op: "max", xs: small(0, 65535), init: [0, 1, 65535, 3, 0, 2, 0] },
];

describe("atomic statement on WebGPU, bit-exact against the interpreter's fold", () => {
  for (const c of CASES) {
    gpuIt(`${c.t}${c.f16 ? " (shader-f16)" : ""} atomic.${c.op}, ${c.xs.length} threads on ${c.init.length} slots`, async () => {
      const got = await run(c.t, c.op, c.init, c.xs, c.f16);
      const want = expected(c.t, c.op, got.init, got.X);
      if (!c.orderDependent) expect(got.O.map((v, j) => same(v, want[j]!) ? "ok" : `slot ${j}: got ${v}, want ${want[j]}`)).toEqual(want.map(() => "ok"));
      if (c.chain) expect(chainErrors(c.t, got.init, got.X, got.R, got.O)).toEqual([]);
      else {
        // max/min and wrapping adds: every old is the initial value or came from an update.
        const seen = (j: number) => [got.init[j]!, ...got.X.filter((_, i) => i % c.init.length === j), ...got.R.filter((_, i) => i % c.init.length === j)];
        if (c.op !== "add") got.R.forEach((old, i) => expect(seen(i % c.init.length).some((v) => same(v, old))).toBe(true));
      }
    }, 60_000);
  }

  const sharedKernel = parseKernel(`kernel sh(X: global f32[N], Y: global i32[N], O: global f32[4] out, C: global i32[4] out)
  dims N
launch thread grid [1] threads 64 blocks [bx] thread tx {
  alloc S: shared f32[4]
  alloc K: shared i32[4]
  if (tx < 4) {
    store S[tx] = 0.0
    store K[tx] = -1000
  }
  barrier
  for j in serial(0, cdiv(N, 64)) {
    if (j * 64 + tx < N) {
      atomic.add S[(j * 64 + tx) % 4], X[j * 64 + tx]
      atomic.max K[(j * 64 + tx) % 4], Y[j * 64 + tx]
    }
  }
  barrier
  if (tx < 4) {
    store O[tx] = S[tx]
    store C[tx] = K[tx]
  }
}`);

  gpuIt("workgroup (shared) atomics: f32 add and i32 max, then read back after a barrier", async () => {
    const xs = halves(), ys = small(-900, 900);
    const X = { dtype: "f32" as DType, shape: [N], data: Float64Array.from(xs) };
    const Y = { dtype: "i32" as DType, shape: [N], data: Float64Array.from(ys) };
    const wk = emitWgsl(sharedKernel, { f16: false, subgroups: false });
    const got = await runCompiled(gpuHandle(), sharedKernel, wk, { X, Y }, {}, { dims: { N } });
    expect([...got.outputs.O!.data]).toEqual(expected("f32", "add", [0, 0, 0, 0], xs));
    expect([...got.outputs.C!.data]).toEqual(expected("i32", "max", [-1000, -1000, -1000, -1000], ys));
  }, 60_000);
});
