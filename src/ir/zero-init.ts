// Which outputs start at zero. A kernel that writes an output tensor ONLY through atomic adds
// (split-K: every block adds its partial sum) computes `out = sum of the adds`, which is
// exact for any content the caller passes only if the content is cleared first. Launchers
// (the generated C launcher, the check backends, bench plans) clear exactly these tensors
// before every launch, so the kernel's contract stays "out = f(inputs)".
// Decided on the specialized kernel: a tunable (splitK = 1) may turn the adds into stores.
import type { Kernel, Stmt } from "./ir.ts";
import { walkStmts } from "./expr.ts";

/** Names of the output tensors whose every write is an atomic add, in parameter order. */
export function zeroInitOutputs(k: Kernel): string[] {
  const adds = new Set<string>(), others = new Set<string>();
  const written = (s: Stmt): string[] => {
    switch (s.k) {
      case "store": return [s.buf];
      case "copy": case "fill": return [s.dst.buf];
      case "reduce": case "scan": return [s.dst.buf];
      case "topk": return [s.values.buf, s.indices.buf];
      case "vcopy": case "cp_async": return [s.dst.buf];
      case "ldmatrix": case "dequant": return [s.dst.buf];
      default: return [];
    }
  };
  walkStmts(k.launch.body, (s) => {
    if (s.k === "atomic") (s.op === "add" ? adds : others).add(s.buf);
    else for (const b of written(s)) others.add(b);
  });
  return k.params.filter((p) => p.kind === "tensor" && adds.has(p.name) && !others.has(p.name)).map((p) => p.name);
}
