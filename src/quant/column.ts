// kOf (format.ts) as an IR expression: the front end's T.dequant expansion stores element j of
// word w at this column of the tile, and the register-fused dequant-gemm recognizes its stores
// by it (passes/fuse-dequant-gemm.ts). Not part of the public `tilemoe/quant` (index.ts).
import { type Expr, bin, int } from "../ir/ir.ts";
import type { QOrder } from "./format.ts";

/**
 * The tile column (k offset from the tile's origin) of element j of word w of a row: w * per + j,
 * or for the mma order (src/quant/format.ts kOf) 32 (w >> 2) + 2 (w & 3) + (j & 1) + 8 (j >> 1).
 * passes/fuse-dequant-gemm.ts recognizes the front end's stores by this expression.
 */
export function dequantColumn(order: QOrder, per: number, w: Expr, j: Expr): Expr {
  if (order !== "mma") return bin("+", bin("*", w, int(per)), j);
  return bin("+", bin("+", bin("*", bin(">>", w, int(2)), int(32)), bin("*", bin("&", w, int(3)), int(2))),
    bin("+", bin("&", j, int(1)), bin("*", bin(">>", j, int(1)), int(8))));
}

