// Shape strings of tensor params (`Tensor<"E, N, cdiv(K, 128)", "bf16">`) -> IR expressions.
// Shapes are integer arithmetic over symbolic dims, so `/` here is integer division and
// the only calls are the integer BinOps cdiv/min/max.
import { createToken, EmbeddedActionsParser, Lexer, type IToken } from "chevrotain";
import { type Expr, type BinOp, type Loc, CompileError, bin, int, v } from "./ir.ts";

const WS = createToken({ name: "WS", pattern: /\s+/, group: Lexer.SKIPPED });
const Int = createToken({ name: "Int", pattern: /\d+/ });
const Ident = createToken({ name: "Ident", pattern: /[A-Za-z_][A-Za-z0-9_]*/ });
const Plus = createToken({ name: "Plus", pattern: /\+/ });
const Minus = createToken({ name: "Minus", pattern: /-/ });
const Star = createToken({ name: "Star", pattern: /\*/ });
const Slash = createToken({ name: "Slash", pattern: /\// });
const Percent = createToken({ name: "Percent", pattern: /%/ });
const LParen = createToken({ name: "LParen", pattern: /\(/ });
const RParen = createToken({ name: "RParen", pattern: /\)/ });
const Comma = createToken({ name: "Comma", pattern: /,/ });

const allTokens = [WS, Int, Ident, Plus, Minus, Star, Slash, Percent, LParen, RParen, Comma];
const lexer = new Lexer(allTokens, { positionTracking: "onlyOffset" });

const CALLS: Record<string, BinOp> = { cdiv: "cdiv", min: "min", max: "max" };

class ShapeParser extends EmbeddedActionsParser {
  constructor() {
    super(allTokens);
    this.performSelfAnalysis();
  }

  shape = this.RULE("shape", (): Expr[] => {
    const dims: Expr[] = [];
    this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => { dims.push(this.SUBRULE(this.sum)); } });
    return dims;
  });

  private sum = this.RULE("sum", (): Expr => {
    let e = this.SUBRULE(this.product);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(Plus) }, { ALT: () => this.CONSUME(Minus) }]);
      const r = this.SUBRULE2(this.product);
      e = this.ACTION(() => bin(op.image as BinOp, e, r));
    });
    return e;
  });

  private product = this.RULE("product", (): Expr => {
    let e = this.SUBRULE(this.unary);
    this.MANY(() => {
      const op = this.OR([
        { ALT: () => this.CONSUME(Star) },
        { ALT: () => this.CONSUME(Slash) },
        { ALT: () => this.CONSUME(Percent) },
      ]);
      const r = this.SUBRULE2(this.unary);
      e = this.ACTION(() => bin(op.image as BinOp, e, r));
    });
    return e;
  });

  private unary = this.RULE("unary", (): Expr => this.OR([
    { ALT: () => {
      this.CONSUME(Minus);
      const a = this.SUBRULE(this.unary);
      // A negated literal stays a literal so `-1` prints and folds as one.
      return this.ACTION(() => (a.k === "int" ? int(-a.v) : ({ k: "un", op: "neg", a } as Expr)));
    } },
    { ALT: () => this.SUBRULE(this.primary) },
  ]));

  private primary = this.RULE("primary", (): Expr => this.OR([
    { ALT: () => int(Number(this.CONSUME(Int).image)) },
    { ALT: () => {
      this.CONSUME(LParen);
      const e = this.SUBRULE(this.sum);
      this.CONSUME(RParen);
      return e;
    } },
    { ALT: () => {
      const id = this.CONSUME(Ident);
      let args: Expr[] | undefined;
      this.OPTION(() => {
        this.CONSUME2(LParen);
        args = [];
        this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => { args!.push(this.SUBRULE2(this.sum)); } });
        this.CONSUME2(RParen);
      });
      return this.ACTION(() => (args ? makeCall(id, args) : v(id.image)));
    } },
  ]));
}

class CallError extends Error {
  constructor(message: string, public readonly offset: number) { super(message); }
}

function makeCall(id: IToken, args: Expr[]): Expr {
  const op = CALLS[id.image];
  if (!op) throw new CallError(`unknown function '${id.image}' in shape; shapes may call cdiv, min and max`, id.startOffset);
  if (args.length !== 2) throw new CallError(`${id.image} takes 2 arguments, got ${args.length}`, id.startOffset);
  return bin(op, args[0]!, args[1]!);
}

const parser = new ShapeParser();

/**
 * Parses a shape string. `at` is the location of the string's first character (inside the
 * quotes), so errors point at the offending column of the source line.
 */
export function parseShape(text: string, at?: Loc): Expr[] {
  const fail = (offset: number, message: string): never => {
    const loc = at ? { file: at.file, line: at.line, col: at.col + offset } : undefined;
    throw new CompileError([{ loc, message: `bad shape "${text}": ${message}`, severity: "error" }]);
  };
  const lexed = lexer.tokenize(text);
  if (lexed.errors.length > 0) {
    const e = lexed.errors[0]!;
    fail(e.offset, `unexpected character '${text.slice(e.offset, e.offset + e.length)}'`);
  }
  parser.input = lexed.tokens;
  let dims: Expr[];
  try {
    dims = parser.shape();
  } catch (e) {
    if (e instanceof CallError) return fail(e.offset, e.message);
    throw e;
  }
  if (parser.errors.length > 0) {
    const tok = parser.errors[0]!.token;
    const offset = Number.isFinite(tok.startOffset) ? tok.startOffset : text.length;
    const what = tok.image ? `unexpected '${tok.image}'` : "unexpected end of shape";
    fail(offset, `${what}; expected a list of dims like "M, K/8"`);
  }
  return dims;
}

/** Names a shape expression mentions, in order of first appearance. */
export function shapeVars(e: Expr, out: string[] = []): string[] {
  if (e.k === "var") { if (!out.includes(e.name)) out.push(e.name); }
  else if (e.k === "bin") { shapeVars(e.a, out); shapeVars(e.b, out); }
  else if (e.k === "un") shapeVars(e.a, out);
  return out;
}
