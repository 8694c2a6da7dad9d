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
  /** A helper function passed as an argument to another helper (helpers.ts). */
  | { kind: "helper"; fn: import("ts-morph").FunctionDeclaration }
  /** A module-level const that could not be translated; the reason surfaces on use. */
  | { kind: "bad"; reason: string };

export class Scope {
  private readonly names = new Map<string, Sym>();
  /** IR names declared in this IR scope (see `home`). */
  private readonly irNames = new Set<string>();
  /**
   * @param parent the lexically enclosing scope (name lookup).
   * @param landsIn for a helper's body: the caller's scope, where its statements land in the
   *   IR. Its IR names are declared there, so later caller names stay apart from them.
   */
  constructor(private readonly parent?: Scope, private readonly landsIn?: Scope) {}

  /** A helper body's scope: it sees `lexical` (module constants), its IR lands in this scope. */
  helperBody(lexical: Scope): Scope {
    return new Scope(lexical, this);
  }

  /** The scope whose IR names this one's declarations join. */
  private home(): Scope {
    return this.landsIn ? this.landsIn.home() : this;
  }

  /** Whether an IR name is declared in this IR scope or one enclosing it. */
  irVisible(name: string): boolean {
    for (let s: Scope | undefined = this.home(); s; s = s.parent?.home()) if (s.irNames.has(name)) return true;
    return false;
  }

  irDeclare(name: string): void {
    this.home().irNames.add(name);
  }

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
    case "helper": return "function";
    case "bad": return "constant";
  }
}
