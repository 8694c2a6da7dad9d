// Physical placement of 2-d tiles of 16-bit elements in shared memory.
import { type Expr, type Layout, bin, int } from "../ir/ir.ts";

/** The XOR swizzle that spreads 16-byte chunks of consecutive rows over all 32 banks,
 *  for a tile whose rows hold `cols` 16-bit elements. Undefined when rows are not a
 *  whole number of 16-byte chunks (the tile then stays row-major). */
export function swizzleFor(cols: number): Extract<Layout, { kind: "xor_swizzle" }> | undefined {
  if (cols % 8 !== 0) return undefined;
  const chunks = cols / 8; // 16-byte chunks per row
  // The XOR must permute chunks within a row: with mask 7 that needs whole groups of 8
  // chunks (cols 80, 96, ... would send chunks past the row's end and collide).
  if (chunks % 8 === 0) return { kind: "xor_swizzle", mask: 7, shift: 0 };
  if (chunks === 4) return { kind: "xor_swizzle", mask: 3, shift: 1 };
  if (chunks === 2) return { kind: "xor_swizzle", mask: 1, shift: 2 };
  return undefined;
}

/** Flat element index of (r, c) in a [rows, cols] shared tile with the given layout. */
export function sharedIndex(layout: Layout | undefined, cols: number, r: Expr, c: Expr): Expr {
  if (!layout || layout.kind !== "xor_swizzle") return bin("+", bin("*", r, int(cols)), c);
  const chunk = bin("^", bin("/", c, int(8)), bin("&", bin(">>", r, int(layout.shift)), int(layout.mask)));
  return bin("+", bin("+", bin("*", r, int(cols)), bin("*", chunk, int(8))), bin("%", c, int(8)));
}
