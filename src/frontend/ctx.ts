// State shared by the translation of one kernel.
import type { Node } from "ts-morph";
import type { Loc } from "../ir/ir.ts";
import { failAt, locOf } from "./diag.ts";
import { Scope } from "./scope.ts";

export class Ctx {
  /** Global tensors the kernel writes (they become `out` params). */
  readonly written = new Set<string>();
  constructor(
    readonly file: string,
    /** Local name of the imported `T` namespace. */
    readonly tName: string,
    /** Names whose call would be recursion (the kernel's own names). */
    readonly selfNames: Set<string>,
    public scope: Scope,
  ) {}

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
