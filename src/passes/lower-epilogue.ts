// The epilogue of a wgmma GEMM through shared memory: `T.copy(acc, C.tile(...))` from a
// wgmma accumulator to a 16-bit global tile. Each thread holds pairs of neighbouring columns
// spread over 8-row groups, so storing straight from the accumulator writes 2-byte elements
// with a quarter of each 32-byte sector used per instruction. Instead the block converts its
// accumulator into a shared staging tile (the 16-byte-chunk XOR swizzle: the fragment's
// writes hit 32 distinct banks), then copies the tile out in coalesced 16-byte vectors.
//
// Measured on an H200 (bench/RESULTS.md, hand-edited variants of the emitted gemm_bf16,
// 128x256x64, 3 stages, warp-specialized): 4096^3 0.228 ms storing per element, 0.199 ms with
// bf16x2 pairs, 0.184 ms staged, 0.178 ms with no epilogue at all; 8192^3 1.566 / 1.507 /
// 1.413 / 1.401 ms (cuBLAS: 0.174 and 1.386 ms).
//
// Outside persistent blocks the staging tile costs no shared memory of its own: it is placed
// `over` an operand tile of the main loop that nothing after the copy mentions (same dtype, at
// least as large), chosen at the tile level where statement order is plain (`epilogueHosts`:
// copies at top level or inside block-uniform `if`s, as the MoE kernels' stores under
// `if (e >= 0)`). A copy without such a host, or inside an `if`, takes a tile of its own where
// the block already holds more than half of an SM's shared memory (one block per SM whatever it
// adds) and the tile fits beside the rest.
//
// A row scatter (`T.copy(acc, Y.rows(yrow, c0, BN))`, the MoE pairs kernels) into a 16-bit
// tensor is staged the same way: its copy-out sends each tile row's 16-byte chunks to global row
// yrow[i] (lower-copy.ts scatterShared). Straight from the accumulator, a bf16 row leaves as
// 4-byte pairs, a quad of threads filling half a 32-byte sector per row.
// The barrier in front of the staging writes orders them after every thread's last use of the
// host (the interpreter models the overlay: it shares the host's elements and access history,
// so a missing barrier is a reported race), and the one after the copy-out orders the reads
// before anything that writes the host again.
//
// Warp-specialized persistent blocks (the running pipeline, lower-pipeline-tma.ts) cannot
// borrow an operand tile: the producer refills the stages with the next tile's K tiles while
// the consumers run this tile's epilogue. There the staging tile is one of its own, taken only
// where the operand stages, the mbarriers and it fit one block's opt-in shared memory (227 KB
// on sm_90a); else the per-element stores stay. It needs no barrier in front (nothing else
// writes it); the consumers' named barrier after the copy-out (the producer never takes it)
// orders this tile's reads before the next tile's staging writes. Persistent blocks without
// warp specialization keep the per-element stores. nvcc 13.0 compiles the bench's ws
// persistent GEMM rows and the MoE up stage staged this way with no spills (ptxas: 168
// registers at launch, setmaxnreg accepted; test/tma/persist-nvcc.test.ts); the decline this replaces recorded 336 bytes of
// spills there for the form over a host (gemm_bf16 128x256x64).
import { type Region, type Stmt, bin, byteSize, int } from "../ir/ir.ts";
import { TRUE, bufferMentions, evalConst, fold } from "../ir/expr.ts";
import { swizzleFor } from "../layout/swizzle.ts";
import { type Ctx, addr, constExtents, fragLayout, guard, inBounds, info, regionIdx, slotPairLoop } from "./lower-ctx.ts";
import { wholeBuffer } from "./infer-layouts.ts";
import { BLOCK_RESERVED_SHARED, SM_SHARED_BYTES, WGMMA_SMEM_ALIGN } from "../ir/registers.ts";

/** A dead shared buffer: its name, dtype and bytes given its stage count. */
export interface EpilogueHost {
  name: string; dtype: string; bytes: (stages: number) => number;
  /** Found for a copy inside an `if` (where a tile of its own, if free, is preferred). */
  nested?: boolean;
}

/**
 * For each copy of a tile-level launch body, at top level or inside `if`s there (block-uniform
 * at the tile level: the MoE kernels' `if (e >= 0)`), the shared buffers allocated before it at
 * top level (all stages counted) that no statement from the copy on mentions, in its branch or
 * after the `if`s around it: dead there, so a staging tile may be placed over one of them.
 */
export function epilogueHosts(body: Stmt[]): Map<Stmt, EpilogueHost[]> {
  const out = new Map<Stmt, EpilogueHost[]>();
  const allocs = new Map<string, EpilogueHost>();
  const visit = (list: Stmt[], after: Stmt[], top: boolean) => list.forEach((s, i) => {
    if (top && s.k === "alloc" && s.buf.scope === "shared") {
      const n = s.buf.shape.reduce((p, d) => p * (evalConst(d) ?? NaN), 1);
      if (Number.isFinite(n)) allocs.set(s.buf.name, { name: s.buf.name, dtype: s.buf.dtype as string, bytes: (stages: number) => n * stages * byteSize(s.buf.dtype) });
    }
    if (s.k === "if") {
      const rest = [...list.slice(i + 1), ...after];
      visit(s.then, rest, false);
      if (s.else) visit(s.else, rest, false);
    }
    if (s.k !== "copy") return;
    const later = new Set(bufferMentions([...list.slice(i), ...after]));
    const hosts = [...allocs.values()].filter((h) => !later.has(h.name)).map((h) => (top ? h : { ...h, nested: true }));
    if (hosts.length) out.set(s, hosts);
  });
  visit(body, [], true);
  return out;
}

/**
 * The staged form of a fragment -> global copy, or undefined where it does not apply (not a
 * whole wgmma accumulator, not a 16-bit 2-d global tile, rows that are not whole 16-byte chunks
 * with a swizzle; outside warp-specialized persistent blocks no dead host large enough; in them,
 * no room for a tile of its own, or not warp-specialized).
 */
export function stagedEpilogue(c: Ctx, s: { src: Region; dst: Region; rows?: string }, hosts: EpilogueHost[] | undefined,
  copy: (c: Ctx, s: { src: Region; dst: Region }) => Stmt[]): Stmt[] | undefined {
  if (!c.target.wgmma) return undefined;
  // Persistent blocks stage only under warp specialization, through a tile of their own (see
  // the header); a persistent block without it keeps the per-element stores.
  const persistent = c.target.persistentBlocks !== undefined;
  if (persistent && !c.target.warpSpecialize) return undefined;
  const f = info(c, s.src.buf), o = info(c, s.dst.buf);
  const fl = fragLayout(f);
  if (fl.kind !== "wgmma_acc" || fl.trans || o.buf.scope !== "global" || byteSize(o.buf.dtype) !== 2) return undefined;
  const ext = constExtents(s.dst);
  if (ext.length !== 2 || !wholeBuffer(s.src, f.buf) || ext[0] !== f.shape[0] || ext[1] !== f.shape[1]) return undefined;
  const [rows, cols] = ext as [number, number];
  const layout = swizzleFor(cols);
  if (!layout || layout.mask !== 7) return undefined;
  const bytes = rows * cols * 2;
  // Inside an `if`, a tile of its own where it costs no occupancy (the block alone on its SM)
  // goes first: it needs no barrier in front, and the MoE up kernel's 128x128 tiles measured
  // 0.5-1% faster that way than over As (bench/RESULTS.md, twelfth session).
  const own = c.target.pingpong ? 2 * bytes + 128 : bytes;
  const ownFree = ownStagingFits(c, own) && aloneOnSM(c);
  const host = persistent || (ownFree && hosts?.some((h) => h.nested)) ? undefined
    : hosts?.find((h) => h.dtype === o.buf.dtype && h.bytes(info(c, h.name).stages) >= bytes);
  // A tile of its own: in persistent blocks (see the header), and where no dead host is taken
  // but the block already holds more than half an SM's shared memory, so no second block ever
  // fit beside it and the tile costs no occupancy.
  // Ping-pong consumers (ping-pong.ts) each get a copy of the tile, beside the 128 bytes of
  // their order mbarriers: both fit, or neither.
  if (!host && !(ownStagingFits(c, own) && (persistent || aloneOnSM(c)))) return undefined;
  const over = host ? { over: host.name } : {};
  const name = c.fresh(`${f.buf.name}_out`);
  const buf = { name, scope: "shared" as const, dtype: o.buf.dtype, shape: [int(rows), int(cols)], layout, ...over };
  c.bufs.set(name, { buf, shape: [rows, cols], size: rows * cols, stages: 1 });
  const alloc: Stmt = { k: "alloc", buf: { ...buf, shape: [int(rows * cols)] } };
  const whole: Region = { buf: name, offsets: [int(0), int(0)], extents: [int(rows), int(cols)] };
  // Fragment -> staging, only the elements that will leave (inside the global): besides the
  // saved work, the guard keeps ptxas from hoisting the conversions above the final
  // wgmma.wait (unguarded, it serializes the main loop's wgmma: warning C7514, measured on
  // the 128x128 cp.async configs; test/wgmma/nvcc.test.ts checks every bench config).
  // Slots 2i and 2i+1 are neighbouring columns: one converting 4-byte store per pair (the
  // pair never crosses a 16-byte chunk, so the swizzle keeps it contiguous).
  const stage = slotPairLoop(c, f, ({ slot, row, col, valid, pre }) => {
    // A row scatter's tile row i leaves for global row rows[i]: only its columns are known here.
    const inside = s.rows === undefined ? inBounds(c, o.buf.name, regionIdx(s.dst, [row, col]))
      : bin("<", fold(bin("+", s.dst.offsets[1]!, col)), o.buf.shape[1]!);
    const pred = fold(valid ? bin("&&", valid, inside) : inside);
    return [...pre, ...guard(pred, [{ k: "vcopy", dst: addr(c, name, [row, col]), src: { buf: f.buf.name, idx: [slot] }, lanes: 2, pred: TRUE, convert: true }])];
  });
  // The barriers: before, every thread is done with the host (a tile of its own has no host:
  // none); after the staging writes, all of them are visible; after the copy-out (global
  // writes only, so lowerCopy adds none), the reads are done before anything writes the
  // staging tile again (a persistent block's next tile; with a host, the host's next use).
  const before: Stmt[] = host ? [{ k: "barrier" }] : [];
  return [alloc, ...before, ...stage, { k: "barrier" }, ...copy(c, { src: whole, dst: s.dst }), { k: "barrier" }];
}

/** Does the block (its shared buffers so far) already take more than half of an SM's shared
 *  memory, so that one block runs per SM whatever is added? */
function aloneOnSM(c: Ctx): boolean {
  const used = c.sharedBytes?.();
  return used !== undefined && 2 * (used + BLOCK_RESERVED_SHARED) > SM_SHARED_BYTES;
}

/** Does a staging tile of `bytes` of its own fit beside the block's other shared buffers (the
 *  operand stages and the mbarriers, already lowered) within one block's opt-in limit? */
function ownStagingFits(c: Ctx, bytes: number): boolean {
  const used = c.sharedBytes?.();
  if (used === undefined) return false;
  // Plus one alignment of slack: the CUDA emitter starts the wgmma operand tiles on such a
  // boundary (codegen/cuda/smem.ts), which the 128-byte rounding of c.sharedBytes does not count.
  return used + Math.ceil(bytes / 128) * 128 + WGMMA_SMEM_ALIGN <= SM_SHARED_BYTES - BLOCK_RESERVED_SHARED;
}
