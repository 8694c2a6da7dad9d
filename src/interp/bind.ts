// Symbolic dims from actual tensor shapes: every bare-symbol shape entry binds its dim,
// every shape expression is then checked against the tensor it describes.
import { CompileError, type Expr, type Kernel } from "../ir/ir.ts";
import { evalConst, numericConfig, walkExpr } from "../ir/expr.ts";
import { printExpr } from "../ir/print.ts";
import type { TensorValue } from "../numeric/tensor.ts";

function fail(k: Kernel, message: string): never {
  throw new CompileError([{ loc: k.loc, severity: "error", message: `kernel ${k.name}: ${message}` }]);
}

/** Integer divisions inside a shape must be exact: `K/8` with K = 20 is a caller error. */
function inexactDivision(e: Expr, env: Record<string, number>): string | undefined {
  let bad: string | undefined;
  walkExpr(e, (x) => {
    if (bad || x.k !== "bin" || x.op !== "/") return;
    const a = evalConst(x.a, env), b = evalConst(x.b, env);
    if (a !== undefined && b !== undefined && b !== 0 && a % b !== 0) bad = `${printExpr(x.a)} = ${a} is not a multiple of ${b}`;
  });
  return bad;
}

export function bindDims(k: Kernel, tensors: Record<string, TensorValue>, scalars: Record<string, number> = {}): Record<string, number> {
  const dims: Record<string, number> = {};
  const from: Record<string, string> = {};
  const dimSet = new Set(k.dims);
  for (const p of k.params) {
    if (p.kind !== "tensor") continue;
    const t = tensors[p.name];
    if (!t) fail(k, `missing tensor argument '${p.name}'`);
    if (t.dtype !== p.dtype) fail(k, `tensor '${p.name}' is ${t.dtype}, the kernel expects ${p.dtype}`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) fail(k, `tensor '${p.name}' has ${t.data.length} values for shape [${t.shape.join(", ")}]`);
    if (!p.shape) continue;
    if (p.shape.length !== t.shape.length)
      fail(k, `tensor '${p.name}' has rank ${t.shape.length} ([${t.shape.join(", ")}]), the kernel expects [${p.shape.map(printExpr).join(", ")}]`);
    p.shape.forEach((e, i) => {
      if (e.k !== "var" || !dimSet.has(e.name)) return;
      const have = t.shape[i]!;
      if (e.name in dims && dims[e.name] !== have)
        fail(k, `dim ${e.name} is ${dims[e.name]} from ${from[e.name]} but ${have} from ${p.name} (dim ${i})`);
      dims[e.name] = have;
      from[e.name] = `${p.name} (dim ${i})`;
    });
  }
  for (const d of k.dims) {
    if (d in dims) continue;
    if (d in scalars) { dims[d] = scalars[d]!; continue; }
    fail(k, `dim ${d} is not the bare size of any tensor dimension; pass it as a scalar argument`);
  }
  const env: Record<string, number> = { ...numericConfig(k.config), ...dims };
  for (const p of k.params) {
    if (p.kind !== "tensor" || !p.shape) continue;
    const t = tensors[p.name]!;
    p.shape.forEach((e, i) => {
      const want = evalConst(e, env);
      if (want === undefined) fail(k, `shape ${printExpr(e)} of '${p.name}' (dim ${i}) does not evaluate with dims ${JSON.stringify(dims)}`);
      const bad = inexactDivision(e, env);
      if (bad) fail(k, `tensor '${p.name}' dim ${i} (${printExpr(e)}): ${bad}`);
      if (want !== t.shape[i])
        fail(k, `tensor '${p.name}' dim ${i} is ${t.shape[i]}, expected ${printExpr(e)} = ${want}`);
    });
  }
  return dims;
}

