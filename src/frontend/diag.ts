// Located errors about kernel source. Every rejection in the front end goes through here
// so that users see `file:line:col: error: ...`, never a stack trace.
import type { Node } from "ts-morph";
import { CompileError, type Loc } from "../ir/ir.ts";

export function locOf(node: Node, file: string): Loc {
  const sf = node.getSourceFile();
  const { line, column } = sf.getLineAndColumnAtPos(node.getStart());
  return { file, line, col: column };
}

export function failAt(loc: Loc | undefined, message: string): never {
  throw new CompileError([{ loc, message, severity: "error" }]);
}

/** A short quote of the offending source for messages. */
export function quote(node: Node, max = 40): string {
  const text = node.getText().replace(/\s+/g, " ");
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
