// Errors raised while interpreting. Helpers throw a Fault carrying the statement site; the
// block runner turns it into one message naming kernel, block, thread and statement.
import type { Stmt } from "../ir/ir.ts";
import { printStmt } from "../ir/print.ts";

export class Fault extends Error {
  constructor(message: string, public readonly site: number) { super(message); }
}

/** The first line of a statement's text (loops and ifs without their bodies). */
export function stmtHead(s: Stmt | undefined): string {
  if (!s) return "<unknown statement>";
  try {
    const text = printStmt(s).split("\n")[0]!;
    return text.length > 200 ? text.slice(0, 200) + " ..." : text;
  } catch {
    return s.k;
  }
}

export class InterpError extends Error {
  constructor(message: string) { super(message); this.name = "InterpError"; }
}

export function where(kernel: string, block: number[], thread: number | string | undefined): string {
  const b = `block (${block.join(", ")})`;
  return `kernel ${kernel}, ${b}${thread === undefined ? "" : `, thread ${thread}`}`;
}
