// Small IR builders for hand-written test kernels (until IR text parsing is available).
import type { BinOp, DType, Expr, Kernel, Param, Region, Stmt } from "../../src/ir/ir.ts";
import { bin, int, v } from "../../src/ir/ir.ts";

export const e = (x: Expr | number | string): Expr => (typeof x === "number" ? int(x) : typeof x === "string" ? v(x) : x);
export const op = (o: BinOp, a: Expr | number | string, b: Expr | number | string) => bin(o, e(a), e(b));
export const region = (buf: string, offs: (Expr | number | string)[], exts: number[]): Region =>
  ({ buf, offsets: offs.map(e), extents: exts.map((x) => int(x)) });
export const tensor = (name: string, dtype: DType, shape: (Expr | string | number)[], output = false): Param =>
  ({ name, kind: "tensor", dtype, shape: shape.map(e), output });
export const alloc = (name: string, scope: "shared" | "local" | "fragment", dtype: DType, shape: number[]): Stmt =>
  ({ k: "alloc", buf: { name, scope, dtype, shape: shape.map((x) => int(x)) } });
export const loop = (name: string, start: Expr | number | string, extent: Expr | number | string, body: Stmt[], kind: "serial" | "parallel" | "unroll" = "serial"): Stmt =>
  ({ k: "for", vars: [name], starts: [e(start)], extents: [e(extent)], kind, body });
export const store = (buf: string, idx: (Expr | number | string)[], value: Expr): Stmt => ({ k: "store", buf, idx: idx.map(e), value });
export const let_ = (name: string, dtype: DType, value: Expr | number | string, mutable = false): Stmt =>
  ({ k: "let", name, dtype, value: e(value), mutable });

export function kernel(name: string, params: Param[], dims: string[], launch: Partial<Kernel["launch"]> & { body: Stmt[] }): Kernel {
  return {
    name, params, dims, tunables: {}, config: {},
    launch: { grid: [int(1)], threads: int(1), blockVars: ["bx", "by", "bz"].slice(0, (launch.grid ?? [int(1)]).length), level: "tile", ...launch },
  };
}
