// What a name in kernel source stands for. Scopes nest like the source's blocks; a name
// may not shadow a visible one, so every IR variable name is unambiguous.
import type { Buffer, DType, Expr, Region } from "../ir/ir.ts";

export type Sym =
  /** Replaced by its expression wherever it is used (shape aliases, compile-time consts). */
  | { kind: "value"; expr: Expr; dtype: DType; what: string }
  /** A scalar IR variable. `what` names it in messages ("loop variable", "tunable", ...). */
  | { kind: "var"; name: string; dtype: DType; mutable: boolean; what: string }
  | { kind: "buffer"; buf: Buffer }
  | { kind: "tile"; region: Region; dtype: DType }
  /** A module-level const that could not be translated; the reason surfaces on use. */
  | { kind: "bad"; reason: string };

export class Scope {
  private readonly names = new Map<string, Sym>();
  constructor(private readonly parent?: Scope) {}

  lookup(name: string): Sym | undefined {
    return this.names.get(name) ?? this.parent?.lookup(name);
  }

  /** Binds a name; returns the kind of an existing visible binding it would shadow. */
  define(name: string, sym: Sym): Sym | undefined {
    const old = this.lookup(name);
    if (old) return old;
    this.names.set(name, sym);
    return undefined;
  }

  child(): Scope {
    return new Scope(this);
  }
}

export function describe(sym: Sym): string {
  switch (sym.kind) {
    case "value": return sym.what;
    case "var": return sym.what;
    case "buffer": return sym.buf.scope === "global" ? "tensor" : `${sym.buf.scope} buffer`;
    case "tile": return "tile view";
    case "bad": return "constant";
  }
}
