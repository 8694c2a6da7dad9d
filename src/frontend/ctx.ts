// State shared by the translation of one kernel.
import type { Node } from "ts-morph";
import { HelperTable } from "./modules.ts";
import type { DType, Loc } from "../ir/ir.ts";
import { failAt, locOf } from "./diag.ts";
import { Scope } from "./scope.ts";

export class Ctx {
  /** Global tensors the kernel writes (they become `out` params). */
  readonly written = new Set<string>();
  /** Module-level functions kernel code may call, inlined where called (helpers.ts). */
  helpers = new HelperTable();
  /** Helpers being inlined, innermost last. */
  readonly inlining: string[] = [];
  constructor(
    /** The file being translated: the kernel's, or an imported helper's module while its body is inlined. */
    public file: string,
    /** Local name of the imported `T` namespace (in `file`). */
    public tName: string,
    /** Names whose call would be recursion (the kernel's own names). */
    readonly selfNames: Set<string>,
    public scope: Scope,
    /** Module constants: all that a helper's body sees besides its parameters. */
    public moduleScope: Scope = scope,
  ) {}

  /** The dtype of every scalar IR name declared so far anywhere in the kernel. The IR's type
   *  environment is one per kernel (inferTypes, typeOf), not per scope, so two variables of
   *  sibling scopes may share a name only if they share its dtype. */
  private readonly scalarTypes = new Map<string, DType>();

  /**
   * The IR name of a variable or buffer the source names `name`: the source name, unless an
   * enclosing IR scope already declares it, which happens only where a helper's statements
   * landed in this scope, or (with `dtype`, a scalar variable) a variable of another scope of
   * the kernel has the name with another dtype (name_1, ...). The scoping rules keep source
   * names apart otherwise.
   */
  irName(name: string, dtype?: DType): string {
    const taken = (n: string) => this.scope.irVisible(n) || (dtype !== undefined && (this.scalarTypes.get(n) ?? dtype) !== dtype);
    let fresh = name;
    for (let i = 1; taken(fresh); i++) fresh = `${name}_${i}`;
    this.scope.irDeclare(fresh);
    if (dtype !== undefined) this.scalarTypes.set(fresh, dtype);
    return fresh;
  }

  /** Names the kernel has before its body: params, dims, tunables. */
  reserve(names: Iterable<string>): void {
    for (const n of names) this.scope.irDeclare(n);
  }

  loc(node: Node): Loc {
    return locOf(node, this.file);
  }

  fail(node: Node, message: string): never {
    return failAt(this.loc(node), message);
  }

  /** Runs `f` in a nested scope. */
  nested<R>(f: () => R): R {
    const saved = this.scope;
    this.scope = saved.child();
    try {
      return f();
    } finally {
      this.scope = saved;
    }
  }
}
