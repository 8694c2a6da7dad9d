// fast-check generators of IR. These are syntactic: names come from a small pool and
// need not be defined, so the output exercises the text form (every node kind, dtype,
// literal corner and precedence mix) rather than semantics. Use `arbScopedKernel` for
// kernels that also pass the verifier.
import fc from "fast-check";
import {
  type BinOp, type Buffer, type DType, type Expr, type Kernel, type Layout, type LoopKind, type MathFn, type Param,
  type Ref, type Region, type Scope, type Stmt, type TunableValue, type UnOp, DTYPES,
} from "./ir.ts";

export type Level = "tile" | "thread";

/** Names, some of them keywords of the text form, which must still work as names. */
const NAMES = ["a", "b", "i", "j", "M", "N", "x_1", "acc", "As", "copy", "max", "for", "else", "layout", "transB", "tile"];
export const arbName = (): fc.Arbitrary<string> => fc.constantFrom(...NAMES);

const BINOPS: BinOp[] = ["+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "&&", "||", "&", "|", "^", "<<", ">>", "min", "max", "cdiv", "floordiv"];
const UNOPS: UnOp[] = ["neg", "not", "bitnot"];
const MATH_FNS: MathFn[] = ["exp", "exp2", "log", "log2", "sqrt", "rsqrt", "abs", "tanh", "sin", "cos", "floor", "ceil", "round", "erf", "sigmoid", "pow", "fma"];
const LOOP_KINDS: LoopKind[] = ["serial", "unroll", "parallel", "pipelined"];
const SCOPES: Scope[] = ["global", "shared", "fragment", "local"];

export const arbDType = (): fc.Arbitrary<DType> => fc.constantFrom(...DTYPES);
const optDType = () => fc.option(arbDType(), { nil: undefined, freq: 2 });

function withDType<T extends { dtype?: DType }>(e: T, dtype: DType | undefined): T {
  if (dtype !== undefined) e.dtype = dtype;
  return e;
}

export function arbIntLit(): fc.Arbitrary<Expr> {
  const value = fc.oneof(fc.integer({ min: -5, max: 300 }), fc.integer(), fc.constantFrom(0, 1, -1, 2 ** 31 - 1, -(2 ** 31)));
  return fc.tuple(value, optDType()).map(([v, dt]) => withDType({ k: "int", v } as Expr & { k: "int" }, dt));
}

export function arbFloatLit(): fc.Arbitrary<Expr> {
  const value = fc.oneof(
    fc.double(),
    fc.constantFrom(0, -0, 1, -0.5, 1e-7, 1.5e-5, 3.4028234663852886e38, Infinity, -Infinity, NaN, 1e21, 123456789012345680000),
  );
  return fc.tuple(value, optDType()).map(([v, dt]) => withDType({ k: "float", v } as Expr & { k: "float" }, dt));
}

const INFIX: BinOp[] = BINOPS.filter((op) => op !== "min" && op !== "max" && op !== "cdiv" && op !== "floordiv");

/** Trees of infix operators only, so that precedence and associativity get stressed
 *  (a - (b - c), (a + b) * c, a << b + c, ...); the general generator nests them rarely. */
export function arbInfixExpr(depth = 4): fc.Arbitrary<Expr> {
  const leaf = fc.oneof(
    arbName().map((name): Expr => ({ k: "var", name })),
    fc.integer({ min: -3, max: 9 }).map((v): Expr => ({ k: "int", v })),
    fc.constantFrom<Expr>({ k: "float", v: -0.5 }, { k: "un", op: "neg", a: { k: "var", name: "a" } }),
  );
  const { expr } = fc.letrec<{ expr: Expr }>((tie) => ({
    expr: fc.oneof(
      { depthSize: "medium", maxDepth: depth, withCrossShrink: true },
      leaf,
      fc.record({ k: fc.constant("bin" as const), op: fc.constantFrom(...INFIX), a: tie("expr"), b: tie("expr") }),
    ),
  }));
  return expr;
}

export function arbExpr(depth = 4): fc.Arbitrary<Expr> {
  const { expr } = fc.letrec<{ expr: Expr }>((tie) => {
    const sub = tie("expr");
    return {
      expr: fc.oneof(
        { depthSize: "small", maxDepth: depth, withCrossShrink: true },
        arbIntLit(),
        arbFloatLit(),
        arbName().map((name): Expr => ({ k: "var", name })),
        arbInfixExpr(depth),
        fc.record({ k: fc.constant("bin" as const), op: fc.constantFrom(...BINOPS), a: sub, b: sub }),
        fc.record({ k: fc.constant("un" as const), op: fc.constantFrom(...UNOPS), a: sub }),
        fc.record({ k: fc.constant("call" as const), fn: fc.constantFrom(...MATH_FNS), args: fc.array(sub, { minLength: 1, maxLength: 3 }) }),
        fc.record({ k: fc.constant("select" as const), cond: sub, a: sub, b: sub }),
        fc.record({ k: fc.constant("load" as const), buf: arbName(), idx: fc.array(sub, { maxLength: 3 }) }),
        fc.record({ k: fc.constant("cast" as const), dtype: arbDType(), a: sub }),
      ),
    };
  });
  return expr;
}

/** Small expressions for indices, shapes and bounds. */
const small = () => arbExpr(2);

export function arbLayout(): fc.Arbitrary<Layout> {
  const n = fc.integer({ min: 0, max: 16 });
  return fc.oneof(
    fc.constant<Layout>({ kind: "cyclic" }),
    fc.tuple(n, n).map(([warpsM, warpsN]): Layout => ({ kind: "mma_acc", warpsM, warpsN })),
    fc.tuple(n, n).map(([mask, shift]): Layout => ({ kind: "xor_swizzle", mask, shift })),
  );
}

export function arbBuffer(): fc.Arbitrary<Buffer> {
  return fc.record(
    {
      name: arbName(), scope: fc.constantFrom(...SCOPES), dtype: arbDType(), shape: fc.array(small(), { maxLength: 3 }),
      layout: arbLayout(), align: fc.constantFrom(4, 8, 16, 128),
    },
    { requiredKeys: ["name", "scope", "dtype", "shape"] },
  );
}

function arbRegion(): fc.Arbitrary<Region> {
  return fc.tuple(arbName(), fc.array(fc.tuple(small(), small()), { maxLength: 3 }))
    .map(([buf, dims]) => ({ buf, offsets: dims.map((d) => d[0]), extents: dims.map((d) => d[1]) }));
}

function arbRef(): fc.Arbitrary<Ref> {
  return fc.record({ buf: arbName(), idx: fc.array(small(), { maxLength: 2 }) });
}

function leafStmts(level: Level | undefined): fc.Arbitrary<Stmt>[] {
  const both: fc.Arbitrary<Stmt>[] = [
    arbBuffer().map((buf): Stmt => ({ k: "alloc", buf })),
    fc.record({ k: fc.constant("let" as const), name: arbName(), dtype: arbDType(), value: arbExpr(3), mutable: fc.boolean() }),
    fc.record({ k: fc.constant("assign" as const), name: arbName(), value: arbExpr(3) }),
    fc.record({ k: fc.constant("store" as const), buf: arbName(), idx: fc.array(small(), { maxLength: 3 }), value: arbExpr(3) }),
  ];
  const tile: fc.Arbitrary<Stmt>[] = [
    fc.record({ k: fc.constant("copy" as const), src: arbRegion(), dst: arbRegion() }),
    fc.record({ k: fc.constant("copy" as const), src: arbRegion(), dst: arbRegion(), rows: arbName() }),
    fc.record({ k: fc.constant("copy" as const), src: arbRegion(), dst: arbRegion(), dstRows: arbName() }),
    fc.record({ k: fc.constant("fill" as const), dst: arbRegion(), value: small() }),
    fc.record({ k: fc.constant("gemm" as const), a: arbRegion(), b: arbRegion(), c: arbRegion(), transA: fc.boolean(), transB: fc.boolean() }),
  ];
  const thread: fc.Arbitrary<Stmt>[] = [
    fc.constant<Stmt>({ k: "barrier" }),
    fc.record({ k: fc.constant("vcopy" as const), dst: arbRef(), src: arbRef(), lanes: fc.constantFrom(1, 2, 4, 8), pred: small() }),
    fc.record({ k: fc.constant("cp_async" as const), dst: arbRef(), src: arbRef(), bytes: fc.constantFrom(4, 8, 16), pred: small() }),
    fc.constant<Stmt>({ k: "cp_commit" }),
    fc.record({ k: fc.constant("cp_wait" as const), n: fc.nat(7) }),
    fc.record({ k: fc.constant("ldmatrix" as const), dst: arbRef(), addr: arbRef(), num: fc.constantFrom(1 as const, 2 as const, 4 as const), trans: fc.boolean() }),
    fc.record({ k: fc.constant("mma" as const), atype: fc.constantFrom("bf16" as const, "f16" as const), d: arbRef(), a: arbRef(), b: arbRef(), c: arbRef() }),
    fc.record({ k: fc.constant("warp_reduce" as const), op: fc.constantFrom("sum" as const, "max" as const, "min" as const),
      dtype: fc.constantFrom<DType>("f32", "i32", "u32"), value: arbExpr(3), width: fc.constantFrom(2, 4, 8, 16, 32), result: arbName() }),
  ];
  return [...both, ...(level !== "thread" ? tile : []), ...(level !== "tile" ? thread : [])];
}

/** Any statement; `level` restricts to the statements legal at that level. */
export function arbStmt(level?: Level, depth = 3): fc.Arbitrary<Stmt> {
  const { stmt } = fc.letrec<{ stmt: Stmt }>((tie) => {
    const body = fc.array(tie("stmt"), { maxLength: 3 });
    const forStmt = fc.tuple(
      fc.array(fc.tuple(arbName(), small(), small()), { minLength: 1, maxLength: 3 }),
      fc.constantFrom(...LOOP_KINDS), fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }), body,
    ).map(([dims, kind, stages, b]): Stmt => {
      const s: Stmt & { k: "for" } = { k: "for", vars: dims.map((d) => d[0]), starts: dims.map((d) => d[1]), extents: dims.map((d) => d[2]), kind, body: b };
      if (stages !== undefined) s.stages = stages;
      return s;
    });
    const ifStmt = fc.record({ k: fc.constant("if" as const), cond: small(), then: body, else: body });
    return {
      stmt: fc.oneof({ depthSize: "small", maxDepth: depth, withCrossShrink: true }, ...leafStmts(level), forStmt, ifStmt),
    };
  });
  return stmt;
}

const tunableValue = (): fc.Arbitrary<TunableValue> =>
  fc.oneof(fc.integer({ min: -4, max: 1024 }), fc.constantFrom(0.5, -1.25, 1e-7), fc.string({ maxLength: 6 }), fc.boolean());

function arbParam(): fc.Arbitrary<Param> {
  const tensor = fc.record(
    { name: arbName(), kind: fc.constant("tensor" as const), dtype: arbDType(), shape: fc.array(small(), { maxLength: 3 }),
      align: fc.constantFrom(4, 16), output: fc.constant(true) },
    { requiredKeys: ["name", "kind", "dtype"] },
  );
  const scalar = fc.record({ name: arbName(), kind: fc.constant("scalar" as const), dtype: arbDType() });
  return fc.oneof(tensor, scalar);
}

export function arbKernel(level?: Level): fc.Arbitrary<Kernel> {
  const lvl = level ? fc.constant(level) : fc.constantFrom<Level>("tile", "thread");
  return fc.record({
    name: arbName(),
    params: fc.array(arbParam(), { maxLength: 4 }),
    dims: fc.uniqueArray(arbName(), { maxLength: 3 }),
    tunables: fc.uniqueArray(fc.tuple(arbName(), fc.array(tunableValue(), { maxLength: 3 })), { maxLength: 3, selector: (t) => t[0] }),
    where: fc.option(small(), { nil: undefined }),
    config: fc.uniqueArray(fc.tuple(arbName(), tunableValue()), { maxLength: 2, selector: (t) => t[0] }),
    smemBytes: fc.option(fc.nat(228 * 1024), { nil: undefined }),
    level: lvl,
    grid: fc.array(small(), { minLength: 1, maxLength: 3 }),
    threads: small(),
    blockVars: fc.array(arbName(), { minLength: 1, maxLength: 3 }),
    threadVar: fc.option(arbName(), { nil: undefined }),
    body: fc.array(arbStmt(level), { maxLength: 5 }),
  }).map((r): Kernel => {
    const k: Kernel = {
      name: r.name, params: r.params, dims: r.dims,
      tunables: Object.fromEntries(r.tunables), config: Object.fromEntries(r.config),
      launch: { grid: r.grid, threads: r.threads, blockVars: r.blockVars, level: r.level, body: r.body },
    };
    if (r.where) k.where = r.where;
    if (r.smemBytes !== undefined) k.smemBytes = r.smemBytes;
    if (r.threadVar !== undefined) k.launch.threadVar = r.threadVar;
    return k;
  });
}

// ---------------------------------------------------------------- well-formed kernels

/** What is in scope while generating a well-formed body. */
interface Env {
  ints: string[];
  floats: string[];
  mutables: string[];
  bufs: { name: string; rank: number; dtype: DType; scope: Scope }[];
  fresh: number;
}

const lit = (v: number): Expr => ({ k: "int", v });

function arbIntOf(env: Env, depth = 2): fc.Arbitrary<Expr> {
  const leaf = fc.oneof(fc.constantFrom(...env.ints).map((name): Expr => ({ k: "var", name })), fc.integer({ min: -4, max: 64 }).map(lit));
  if (depth === 0) return leaf;
  const sub = arbIntOf(env, depth - 1);
  return fc.oneof(
    { depthSize: "small" },
    leaf,
    fc.record({ k: fc.constant("bin" as const), op: fc.constantFrom<BinOp>("+", "-", "*", "/", "%", "min", "max", "cdiv", "floordiv", "<<", "&"), a: sub, b: sub }),
  );
}

function arbCondOf(env: Env): fc.Arbitrary<Expr> {
  const cmp = fc.record({ k: fc.constant("bin" as const), op: fc.constantFrom<BinOp>("<", "<=", "==", "!="), a: arbIntOf(env, 1), b: arbIntOf(env, 1) });
  return fc.oneof(cmp, fc.tuple(cmp, cmp, fc.constantFrom<BinOp>("&&", "||")).map(([a, b, op]): Expr => ({ k: "bin", op, a, b })),
    cmp.map((a): Expr => ({ k: "un", op: "not", a })));
}

function arbLoadOf(env: Env, pred: (b: Env["bufs"][number]) => boolean): fc.Arbitrary<Expr> | undefined {
  const bufs = env.bufs.filter(pred);
  if (bufs.length === 0) return undefined;
  return fc.constantFrom(...bufs).chain((b) => fc.array(arbIntOf(env, 1), { minLength: b.rank, maxLength: b.rank })
    .map((idx): Expr => ({ k: "load", buf: b.name, idx })));
}

function arbFloatOf(env: Env, depth = 2): fc.Arbitrary<Expr> {
  const leaves: fc.Arbitrary<Expr>[] = [
    fc.constantFrom(0, 1, -0.5, 1e-7, 2.5).map((v): Expr => ({ k: "float", v })),
    arbIntOf(env, 1).map((a): Expr => ({ k: "cast", dtype: "f32", a })),
  ];
  if (env.floats.length > 0) leaves.push(fc.constantFrom(...env.floats).map((name): Expr => ({ k: "var", name })));
  const ld = arbLoadOf(env, (b) => isFloatDType(b.dtype));
  if (ld) leaves.push(ld);
  const leaf = fc.oneof(...leaves);
  if (depth === 0) return leaf;
  const sub = arbFloatOf(env, depth - 1);
  return fc.oneof(
    { depthSize: "small" },
    leaf,
    fc.record({ k: fc.constant("bin" as const), op: fc.constantFrom<BinOp>("+", "-", "*", "/", "min", "max"), a: sub, b: sub }),
    fc.record({ k: fc.constant("call" as const), fn: fc.constantFrom<MathFn>("exp", "tanh", "sigmoid", "abs", "sqrt"), args: fc.tuple(sub).map((t) => [...t]) }),
    fc.record({ k: fc.constant("call" as const), fn: fc.constant<MathFn>("fma"), args: fc.tuple(sub, sub, sub).map((t) => [...t]) }),
    fc.record({ k: fc.constant("select" as const), cond: arbCondOf(env), a: sub, b: sub }),
    fc.record({ k: fc.constant("un" as const), op: fc.constant<UnOp>("neg"), a: sub }),
  );
}

const isFloatDType = (t: DType) => ["f16", "bf16", "f32", "f64", "fp8e4m3", "fp8e5m2"].includes(t);

function fullRegion(b: Env["bufs"][number], ext: number[]): Region {
  return { buf: b.name, offsets: ext.map(() => lit(0)), extents: ext.map(lit) };
}

type Gen = fc.Arbitrary<[Stmt, Env]>;

function scopedStmt(env: Env, level: Level, depth: number): Gen {
  const name = `t${env.fresh}`;
  const next = { ...env, fresh: env.fresh + 1 };
  const gens: Gen[] = [
    arbFloatOf(env).map((value): [Stmt, Env] => [{ k: "let", name, dtype: "f32", value, mutable: false }, { ...next, floats: [...env.floats, name] }]),
    arbIntOf(env).map((value): [Stmt, Env] => [{ k: "let", name, dtype: "i32", value, mutable: false }, { ...next, ints: [...env.ints, name] }]),
    arbFloatOf(env).map((value): [Stmt, Env] => [{ k: "let", name, dtype: "f32", value, mutable: true },
      { ...next, floats: [...env.floats, name], mutables: [...env.mutables, name] }]),
  ];
  if (env.mutables.length > 0) {
    gens.push(fc.tuple(fc.constantFrom(...env.mutables), arbFloatOf(env)).map(([n, value]): [Stmt, Env] => [{ k: "assign", name: n, value }, env]));
  }
  const stores = env.bufs.filter((b) => isFloatDType(b.dtype) && (level === "tile" || b.scope !== "fragment"));
  if (stores.length > 0) {
    gens.push(fc.constantFrom(...stores).chain((b) => fc.tuple(fc.array(arbIntOf(env, 1), { minLength: b.rank, maxLength: b.rank }), arbFloatOf(env))
      .map(([idx, value]): [Stmt, Env] => [{ k: "store", buf: b.name, idx, value }, env])));
  }
  if (depth > 0) {
    const loopVar = `i${env.fresh}`;
    const inner = { ...next, ints: [...env.ints, loopVar] };
    gens.push(fc.tuple(fc.constantFrom<LoopKind>("serial", "unroll", "pipelined", "parallel"), arbIntOf(env, 1), scopedBody(inner, level, depth - 1))
      .map(([kind, extent, body]): [Stmt, Env] => {
        const s: Stmt & { k: "for" } = { k: "for", vars: [loopVar], starts: [lit(0)], extents: [extent], kind, body };
        if (kind === "pipelined") s.stages = 2;
        return [s, next];
      }));
    gens.push(fc.tuple(arbCondOf(env), scopedBody(next, level, depth - 1), scopedBody(next, level, depth - 1))
      .map(([cond, then, els]): [Stmt, Env] => [{ k: "if", cond, then, else: els }, next]));
  }
  const byName = (n: string) => env.bufs.find((b) => b.name === n)!;
  if (level === "tile") {
    gens.push(
      arbIntOf(env, 1).map((row): [Stmt, Env] => [{ k: "copy", src: { buf: "A", offsets: [row, lit(0)], extents: [lit(16), lit(32)] }, dst: fullRegion(byName("As"), [16, 32]) }, env]),
      arbFloatOf(env, 1).map((value): [Stmt, Env] => [{ k: "fill", dst: fullRegion(byName("acc"), [32, 16]), value }, env]),
      fc.constant<[Stmt, Env]>([{ k: "gemm", a: fullRegion(byName("Fa"), [32, 32]), b: fullRegion(byName("As"), [16, 32]), c: fullRegion(byName("acc"), [32, 16]), transA: false, transB: true }, env]),
    );
  } else {
    const ref = (buf: string, idx: Expr): Ref => ({ buf, idx: [idx] });
    gens.push(
      fc.constant<[Stmt, Env]>([{ k: "barrier" }, env]),
      fc.constant<[Stmt, Env]>([{ k: "cp_commit" }, env]),
      fc.nat(3).map((n): [Stmt, Env] => [{ k: "cp_wait", n }, env]),
      fc.tuple(arbIntOf(env, 1), fc.constantFrom(4, 8, 16), arbCondOf(env)).map(([i, bytes, pred]): [Stmt, Env] =>
        [{ k: "cp_async", dst: ref("Ss", i), src: { buf: "B", idx: [i] }, bytes, pred }, env]),
      fc.tuple(arbIntOf(env, 1), fc.constantFrom(1, 2, 4), arbCondOf(env)).map(([i, lanes, pred]): [Stmt, Env] =>
        [{ k: "vcopy", dst: ref("r", lit(0)), src: ref("Ss", i), lanes, pred }, env]),
      fc.tuple(arbIntOf(env, 1), fc.constantFrom(1 as const, 2 as const, 4 as const), fc.boolean()).map(([i, num, trans]): [Stmt, Env] =>
        [{ k: "ldmatrix", dst: ref("af", lit(0)), addr: ref("Ss", i), num, trans }, env]),
      fc.constant<[Stmt, Env]>([{ k: "mma", atype: "bf16", d: ref("c4", lit(0)), a: ref("af", lit(0)), b: ref("af", lit(4)), c: ref("c4", lit(0)) }, env]),
    );
  }
  return fc.oneof(...gens);
}

function scopedBody(env: Env, level: Level, depth: number, n = 3): fc.Arbitrary<Stmt[]> {
  return fc.nat(n).chain((len) => {
    const go = (e: Env, left: number): fc.Arbitrary<Stmt[]> => left === 0 ? fc.constant([])
      : scopedStmt(e, level, depth).chain(([s, e2]) => go(e2, left - 1).map((rest) => [s, ...rest]));
    return go(env, len);
  });
}

/** Kernels that pass verifyKernel: every name defined, ranks and levels right, intrinsic
 *  operands in the right memories. Fixed header and buffers, random body. */
export function arbScopedKernel(level: Level = "tile"): fc.Arbitrary<Kernel> {
  const tile = level === "tile";
  const allocs: Buffer[] = tile
    ? [
      { name: "As", scope: "shared", dtype: "bf16", shape: [lit(16), lit(32)], layout: { kind: "xor_swizzle", mask: 3, shift: 1 } },
      { name: "Fa", scope: "fragment", dtype: "bf16", shape: [lit(32), lit(32)], layout: { kind: "cyclic" } },
      { name: "acc", scope: "fragment", dtype: "f32", shape: [lit(32), lit(16)], layout: { kind: "mma_acc", warpsM: 2, warpsN: 1 } },
    ]
    : [
      { name: "Ss", scope: "shared", dtype: "bf16", shape: [lit(512)] },
      { name: "af", scope: "local", dtype: "bf16", shape: [lit(8)] },
      { name: "c4", scope: "local", dtype: "f32", shape: [lit(4)] },
      { name: "r", scope: "local", dtype: "bf16", shape: [lit(4)] },
    ];
  const params: Param[] = [
    { name: "A", kind: "tensor", dtype: "f32", shape: [{ k: "var", name: "M" }, { k: "var", name: "N" }], output: true },
    { name: "B", kind: "tensor", dtype: "bf16", shape: [{ k: "var", name: "M" }], align: 16 },
    { name: "s", kind: "scalar", dtype: "f32" },
  ];
  const env: Env = {
    ints: ["M", "N", "BM", "bx", ...(tile ? [] : ["tx"])],
    floats: ["s"],
    mutables: [],
    bufs: [
      { name: "A", rank: 2, dtype: "f32", scope: "global" },
      { name: "B", rank: 1, dtype: "bf16", scope: "global" },
      ...allocs.map((b) => ({ name: b.name, rank: b.shape.length, dtype: b.dtype, scope: b.scope })),
    ],
    fresh: 0,
  };
  return scopedBody(env, level, 2, 6).map((body): Kernel => ({
    name: "scoped", params, dims: ["M", "N"], tunables: { BM: [16, 32] }, config: {},
    launch: {
      grid: [{ k: "bin", op: "cdiv", a: { k: "var", name: "M" }, b: { k: "var", name: "BM" } }],
      threads: lit(tile ? 64 : 32), blockVars: ["bx"], level, ...(tile ? {} : { threadVar: "tx" }),
      body: [...allocs.map((buf): Stmt => ({ k: "alloc", buf })), ...body],
    },
  }));
}
