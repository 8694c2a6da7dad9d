// The IR text form, reading side (docs/IR.md is the spec, print.ts the other half).
// Keywords lex as their own tokens but also belong to the Name category, so IR names
// may coincide with keywords (user variables called `copy` or `max` are legal).
import { createToken, EmbeddedActionsParser, EOF, Lexer, type IParserErrorMessageProvider, type IToken, type TokenType } from "chevrotain";
import {
  type BinOp, type Buffer, type DType, type Expr, type Kernel, type Launch, type Layout, type Loc, type LoopKind,
  type MathFn, type Param, type Ref, type Region, type Scope, type Stmt, type TunableValue, type UnOp, type WgmmaOperand, type WgmmaRegs,
  CompileError, DTYPES,
} from "./ir.ts";

const Name = createToken({ name: "Name", label: "a name", pattern: Lexer.NA });
const Ident = createToken({ name: "Ident", label: "a name", pattern: /[A-Za-z_][A-Za-z0-9_]*/, categories: [Name] });

function kw(word: string): TokenType {
  return createToken({ name: `Kw_${word}`, label: `'${word}'`, pattern: new RegExp(word), longer_alt: Ident, categories: [Name] });
}
const K = {
  // Before `grid`: a keyword that another one prefixes must come first in the lexer.
  griddepcontrol: kw("griddepcontrol"),
  kernel: kw("kernel"), dims: kw("dims"), tune: kw("tune"), where: kw("where"), config: kw("config"),
  smem: kw("smem"), launch: kw("launch"), grid: kw("grid"), threads: kw("threads"), blocks: kw("blocks"),
  thread: kw("thread"), global: kw("global"), align: kw("align"), out: kw("out"), layout: kw("layout"),
  alloc: kw("alloc"), let: kw("let"), var: kw("var"), store: kw("store"), for: kw("for"), in: kw("in"),
  stages: kw("stages"), if: kw("if"), else: kw("else"), copy: kw("copy"), fill: kw("fill"), gemm: kw("gemm"),
  transA: kw("transA"), transB: kw("transB"), barrier: kw("barrier"), vcopy: kw("vcopy"), lanes: kw("lanes"),
  cp: kw("cp"), async: kw("async"), commit: kw("commit"), wait: kw("wait"), bytes: kw("bytes"),
dequant: kw("dequant"),
  ldmatrix: kw("ldmatrix"), mma: kw("mma"), cast: kw("cast"), wgmma: kw("wgmma"), fence: kw("fence"),
  reduce: kw("reduce"), topk: kw("topk"), scan: kw("scan"), atomic: kw("atomic"), axis: kw("axis"),
  count: kw("count"), accumulate: kw("accumulate"), exclusive: kw("exclusive"), warp_reduce: kw("warp_reduce"),
  mbar: kw("mbar"), tma: kw("tma"), tensormap: kw("tensormap"), setmaxnreg: kw("setmaxnreg"), rows: kw("rows"),
  over: kw("over"), convert: kw("convert"), per_sm: kw("per_sm"), min_blocks: kw("min_blocks"), setup: kw("setup"),
};

const WS = createToken({ name: "WS", pattern: /\s+/, group: Lexer.SKIPPED });
const Comment = createToken({ name: "Comment", pattern: /#[^\n\r]*/, group: Lexer.SKIPPED });
const Num = createToken({ name: "Num", label: "a number", pattern: /\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:_[A-Za-z0-9]+)?/ });
const Str = createToken({ name: "Str", label: "a string", pattern: /"(?:[^"\\]|\\.)*"/ });
const p = (name: string, re: RegExp) => createToken({ name, label: `'${re.source.replace(/\\/g, "")}'`, pattern: re });
const Arrow = p("Arrow", /->/), LArrow = p("LArrow", /<-/);
const Shl = p("Shl", /<</), Shr = p("Shr", />>/), Le = p("Le", /<=/), Ge = p("Ge", />=/);
const EqEq = p("EqEq", /==/), Ne = p("Ne", /!=/), AndAnd = p("AndAnd", /&&/), OrOr = p("OrOr", /\|\|/);
const Lt = p("Lt", /</), Gt = p("Gt", />/), Eq = p("Eq", /=/), Bang = p("Bang", /!/), Tilde = p("Tilde", /~/);
const Amp = p("Amp", /&/), Pipe = p("Pipe", /\|/), Caret = p("Caret", /\^/);
const Plus = p("Plus", /\+/), Minus = p("Minus", /-/), Star = p("Star", /\*/), Slash = p("Slash", /\//), Percent = p("Percent", /%/);
const LParen = p("LParen", /\(/), RParen = p("RParen", /\)/), LBrack = p("LBrack", /\[/), RBrack = p("RBrack", /\]/);
const LCurly = p("LCurly", /\{/), RCurly = p("RCurly", /\}/);
const Comma = p("Comma", /,/), Semi = p("Semi", /;/), Colon = p("Colon", /:/), Dot = p("Dot", /\./);

const allTokens: TokenType[] = [
  WS, Comment, Num, Str, Arrow, LArrow, Shl, Shr, Le, Ge, EqEq, Ne, AndAnd, OrOr,
  Lt, Gt, Eq, Bang, Tilde, Amp, Pipe, Caret, Plus, Minus, Star, Slash, Percent,
  LParen, RParen, LBrack, RBrack, LCurly, RCurly, Comma, Semi, Colon, Dot,
  ...Object.values(K), Ident, Name,
];
const lexer = new Lexer(allTokens);

const MATH_FNS: readonly MathFn[] = [
  "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "abs", "tanh", "sin", "cos",
  "floor", "ceil", "round", "erf", "sigmoid", "pow", "fma",
];
const CALL_BINOPS: readonly BinOp[] = ["min", "max", "cdiv", "floordiv"];
const LOOP_KINDS: readonly LoopKind[] = ["serial", "unroll", "parallel", "pipelined"];
const SCOPES: readonly Scope[] = ["global", "shared", "fragment", "local"];
/** Words that are literals, not names: `inf`, `nan`, `true`, `false`, with optional dtype suffix. */
const LITERAL_WORD = /^(inf|nan)(?:_([A-Za-z0-9]+))?$|^(true|false)$/;

function fail(file: string, tok: IToken | { startLine?: number; startColumn?: number }, message: string): never {
  throw new CompileError([{ loc: locOf(file, tok), message, severity: "error" }]);
}
function locOf(file: string, tok: { startLine?: number; startColumn?: number }): Loc {
  return { file, line: tok.startLine ?? 0, col: tok.startColumn ?? 0 };
}

const found = (t: IToken) => (t.tokenType === EOF ? "the end of the input" : `'${t.image}'`);
const label = (t: TokenType) => t.LABEL ?? t.name;
const firsts = (paths: TokenType[][][]) => [...new Set(paths.flat().map((path) => label(path[0]!)))].join(", ");

/** Chevrotain's default messages name token types; these read as the text form. */
const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual }) => `expected ${label(expected)}, found ${found(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `unexpected ${found(firstRedundant)}`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual }) => `expected one of ${firsts(expectedPathsPerAlt)}; found ${found(actual[0]!)}`,
  buildEarlyExitMessage: ({ expectedIterationPaths, actual }) => `expected ${firsts([expectedIterationPaths])}; found ${found(actual[0]!)}`,
};

class IrParser extends EmbeddedActionsParser {
  file = "<ir>";

  constructor() {
    super(allTokens, { maxLookahead: 3, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  /** A trailing keyword (`else`, `layout`, `transB`, ...) followed by `=` starts the next
   *  statement, an assignment to a variable of that name. */
  private notAssign = () => this.LA(2).tokenType !== Eq;

  atEnd(): IToken | undefined {
    const t = this.LA(1);
    return t.tokenType === EOF ? undefined : t;
  }

  private dtypeOf(tok: IToken, text = tok.image): DType {
    return this.ACTION(() => {
      if (!(DTYPES as readonly string[]).includes(text)) fail(this.file, tok, `unknown dtype '${text}'`);
      return text as DType;
    });
  }

  private oneOf<T extends string>(tok: IToken, allowed: readonly T[], what: string): T {
    return this.ACTION(() => {
      if (!(allowed as readonly string[]).includes(tok.image)) fail(this.file, tok, `expected ${what} (${allowed.join(", ")}), got '${tok.image}'`);
      return tok.image as T;
    });
  }

  private intOf(tok: IToken): number {
    return this.ACTION(() => {
      if (!/^\d+$/.test(tok.image)) fail(this.file, tok, `expected a plain integer, got '${tok.image}'`);
      return Number(tok.image);
    });
  }

  // ------------------------------------------------------------ expressions

  expr = this.RULE("expr", (): Expr => this.SUBRULE(this.orExpr));

  private binLevel(name: string, ops: TokenType[], sub: () => Expr) {
    return this.RULE(name, (): Expr => {
      let e = this.SUBRULE(sub);
      this.MANY(() => {
        const op = this.OR(ops.map((t) => ({ ALT: () => this.CONSUME(t) })));
        const r = this.SUBRULE2(sub);
        e = this.ACTION(() => ({ k: "bin", op: op.image as BinOp, a: e, b: r }));
      });
      return e;
    });
  }

  private atom = this.RULE("atom", (): Expr => this.OR([
    { ALT: () => this.literal(this.CONSUME(Num), false) },
    { ALT: () => {
      const m = this.CONSUME(Minus);
      return this.OR2([
        { ALT: () => this.literal(this.CONSUME2(Num), true) },
        { ALT: () => {
          const id = this.CONSUME(Name);
          return this.ACTION(() => {
            const lit = this.wordLiteral(id, true);
            if (!lit) fail(this.file, m, `unary minus needs parentheses: -(${id.image})`);
            return lit;
          });
        } },
        { ALT: () => this.unary("neg", () => this.SUBRULE(this.paren)) },
      ]);
    } },
    { ALT: () => { this.CONSUME(Bang); return this.unary("not", () => this.SUBRULE2(this.paren)); } },
    { ALT: () => { this.CONSUME(Tilde); return this.unary("bitnot", () => this.SUBRULE3(this.paren)); } },
    { ALT: () => this.SUBRULE4(this.paren) },
    { ALT: () => this.SUBRULE(this.nameExpr) },
  ]));

  private paren = this.RULE("paren", (): Expr => {
    this.CONSUME(LParen);
    const e = this.SUBRULE(this.expr);
    this.CONSUME(RParen);
    return e;
  });

  private nameExpr = this.RULE("nameExpr", (): Expr => {
    const id = this.CONSUME(Name);
    return this.OR([
      { ALT: () => {
        this.CONSUME(LParen);
        const args = this.SUBRULE(this.exprList);
        this.CONSUME(RParen);
        return this.ACTION(() => this.call(id, args));
      } },
      { ALT: () => {
        this.CONSUME(LBrack);
        const idx = this.SUBRULE2(this.exprList);
        this.CONSUME(RBrack);
        return this.ACTION((): Expr => ({ k: "load", buf: id.image, idx }));
      } },
      { GATE: () => id.image === "cast", ALT: () => {
        this.CONSUME(Lt);
        const dt = this.CONSUME2(Name);
        this.CONSUME(Gt);
        const a = this.SUBRULE(this.paren);
        return this.ACTION((): Expr => ({ k: "cast", dtype: this.dtypeOf(dt), a }));
      } },
      { ALT: () => this.ACTION((): Expr => this.wordLiteral(id, false) ?? { k: "var", name: id.image }) },
    ]);
  });

  private exprList = this.RULE("exprList", (): Expr[] => {
    const es: Expr[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => { es.push(this.SUBRULE(this.expr)); } });
    return es;
  });

  private unary(op: UnOp, operand: () => Expr): Expr {
    const a = operand();
    return this.ACTION((): Expr => ({ k: "un", op, a }));
  }

  private call(id: IToken, args: Expr[]): Expr {
    const fn = id.image;
    const arity = (n: number) => {
      if (args.length !== n) fail(this.file, id, `${fn} takes ${n} arguments, got ${args.length}`);
    };
    if ((CALL_BINOPS as readonly string[]).includes(fn)) {
      arity(2);
      return { k: "bin", op: fn as BinOp, a: args[0]!, b: args[1]! };
    }
    if (fn === "select") {
      arity(3);
      return { k: "select", cond: args[0]!, a: args[1]!, b: args[2]! };
    }
    if ((MATH_FNS as readonly string[]).includes(fn)) return { k: "call", fn: fn as MathFn, args };
    return fail(this.file, id, `unknown function '${fn}'`);
  }

  private literal(tok: IToken, negative: boolean): Expr {
    return this.ACTION((): Expr => {
      const [num, sfx] = tok.image.split("_") as [string, string | undefined];
      const dtype = sfx === undefined ? undefined : this.dtypeOf(tok, sfx);
      const isFloat = /[.eE]/.test(num);
      let v = isFloat ? parseFloat(num) : Number(num);
      if (negative) v = isFloat ? -v : v === 0 ? 0 : -v;
      const e = { k: isFloat ? "float" : "int", v } as Expr & { k: "int" | "float" };
      if (dtype) e.dtype = dtype;
      return e;
    });
  }

  /** `inf`, `nan`, `true`, `false` (optionally suffixed), or undefined for a plain name. */
  private wordLiteral(id: IToken, negative: boolean): Expr | undefined {
    const m = LITERAL_WORD.exec(id.image);
    if (!m) return undefined;
    if (m[3]) {
      if (negative) fail(this.file, id, `'-${id.image}' is not a literal`);
      return { k: "int", v: m[3] === "true" ? 1 : 0, dtype: "bool" };
    }
    const v = m[1] === "inf" ? (negative ? -Infinity : Infinity) : NaN;
    const e: Expr & { k: "float" } = { k: "float", v };
    if (m[2] !== undefined) e.dtype = this.dtypeOf(id, m[2]);
    return e;
  }

  // Precedence levels, loosest first; each is `next (op next)*`.
  private mulExpr = this.binLevel("mulExpr", [Star, Slash, Percent], this.atom);
  private addExpr = this.binLevel("addExpr", [Plus, Minus], this.mulExpr);
  private shiftExpr = this.binLevel("shiftExpr", [Shl, Shr], this.addExpr);
  private relExpr = this.binLevel("relExpr", [Le, Ge, Lt, Gt], this.shiftExpr);
  private eqExpr = this.binLevel("eqExpr", [EqEq, Ne], this.relExpr);
  private bandExpr = this.binLevel("bandExpr", [Amp], this.eqExpr);
  private xorExpr = this.binLevel("xorExpr", [Caret], this.bandExpr);
  private borExpr = this.binLevel("borExpr", [Pipe], this.xorExpr);
  private andExpr = this.binLevel("andExpr", [AndAnd], this.borExpr);
  private orExpr = this.binLevel("orExpr", [OrOr], this.andExpr);

  // ------------------------------------------------------------ statements

  private region = this.RULE("region", (): Region => {
    const buf = this.CONSUME(Name).image;
    const offsets: Expr[] = [];
    const extents: Expr[] = [];
    this.CONSUME(LBrack);
    this.MANY_SEP({ SEP: Comma, DEF: () => {
      offsets.push(this.SUBRULE(this.expr));
      this.CONSUME(Colon);
      this.CONSUME(Plus);
      extents.push(this.SUBRULE2(this.expr));
    } });
    this.CONSUME(RBrack);
    return { buf, offsets, extents };
  });

  private ref = this.RULE("ref", (): Ref => {
    const buf = this.CONSUME(Name).image;
    this.CONSUME(LBrack);
    const idx = this.SUBRULE(this.exprList);
    this.CONSUME(RBrack);
    return { buf, idx };
  });

  private block = this.RULE("block", (): Stmt[] => {
    const body: Stmt[] = [];
    this.CONSUME(LCurly);
    this.MANY(() => { body.push(this.SUBRULE(this.stmt)); });
    this.CONSUME(RCurly);
    return body;
  });

  private pred = this.RULE("pred", (): Expr => {
    this.CONSUME(K.if);
    return this.SUBRULE(this.paren);
  });

  private layout = this.RULE("layout", (): Layout => {
    const id = this.CONSUME(Name);
    const args: number[] = [];
    this.OPTION(() => {
      this.CONSUME(LParen);
      this.MANY_SEP({ SEP: Comma, DEF: () => { args.push(this.intOf(this.CONSUME(Num))); } });
      this.CONSUME(RParen);
    });
    return this.ACTION((): Layout => {
      const want = (n: number) => {
        if (args.length !== n) fail(this.file, id, `layout ${id.image} takes ${n} arguments, got ${args.length}`);
      };
      if (id.image === "cyclic") { want(0); return { kind: "cyclic" }; }
      if (id.image === "mma_acc") { want(2); return { kind: "mma_acc", warpsM: args[0]!, warpsN: args[1]! }; }
      if (id.image === "xor_swizzle") { want(2); return { kind: "xor_swizzle", mask: args[0]!, shift: args[1]! }; }
      if (id.image === "wgmma_acc") { want(2); return { kind: "wgmma_acc", wgM: args[0]!, wgN: args[1]! }; }
      if (id.image === "wgmma_acc_t") { want(2); return { kind: "wgmma_acc", wgM: args[0]!, wgN: args[1]!, trans: true }; }
      return fail(this.file, id, `unknown layout '${id.image}'`);
    });
  });

  stmt = this.RULE("stmt", (): Stmt => {
    const first = this.LA(1);
    // Keywords are names too: `barrier = 1` assigns a variable called barrier.
    const s = this.OR({ IGNORE_AMBIGUITIES: true, DEF: [
      { GATE: () => this.LA(2).tokenType === Eq, ALT: () => {
        const name = this.CONSUME3(Name).image;
        this.CONSUME4(Eq);
        const value = this.SUBRULE4(this.expr);
        return { k: "assign", name, value } as Stmt;
      } },
      { ALT: () => this.SUBRULE(this.allocStmt) },
      { ALT: () => {
        const mutable = this.OR2([
          { ALT: () => { this.CONSUME(K.let); return false; } },
          { ALT: () => { this.CONSUME(K.var); return true; } },
        ]);
        const name = this.CONSUME(Name).image;
        this.CONSUME(Colon);
        const dtype = this.dtypeOf(this.CONSUME2(Name));
        this.CONSUME(Eq);
        const value = this.SUBRULE(this.expr);
        return { k: "let", name, dtype, value, mutable } as Stmt;
      } },
      { ALT: () => {
        this.CONSUME(K.store);
        const r = this.SUBRULE(this.ref);
        this.CONSUME2(Eq);
        const value = this.SUBRULE2(this.expr);
        return { k: "store", buf: r.buf, idx: r.idx, value } as Stmt;
      } },
      { ALT: () => this.SUBRULE(this.forStmt) },
      { ALT: () => {
        this.CONSUME(K.if);
        const cond = this.SUBRULE(this.paren);
        const then = this.SUBRULE(this.block);
        let els: Stmt[] = [];
        this.OPTION({ GATE: this.notAssign, DEF: () => { this.CONSUME(K.else); els = this.SUBRULE2(this.block); } });
        return { k: "if", cond, then, else: els } as Stmt;
      } },
      { ALT: () => {
        this.CONSUME(K.copy);
        const src = this.SUBRULE(this.region);
        let rows: string | undefined;
        this.OPTION9(() => { this.CONSUME(K.rows); rows = this.CONSUME9(Name).image; });
        this.CONSUME(Arrow);
        const dst = this.SUBRULE2(this.region);
        let dstRows: string | undefined;
        this.OPTION6(() => { this.CONSUME2(K.rows); dstRows = this.CONSUME6(Name).image; });
        return { k: "copy", src, dst, ...(rows === undefined ? {} : { rows }), ...(dstRows === undefined ? {} : { dstRows }) } as Stmt;
      } },
      { ALT: () => {
        this.CONSUME(K.fill);
        const dst = this.SUBRULE3(this.region);
        this.CONSUME3(Eq);
        const value = this.SUBRULE3(this.expr);
        return { k: "fill", dst, value } as Stmt;
      } },
      { ALT: () => this.SUBRULE(this.gemmStmt) },
      { ALT: () => {
        // barrier | barrier ID, COUNT (a named barrier)
        this.CONSUME(K.barrier);
        let named: Stmt | undefined;
        this.OPTION8(() => {
          const id = this.intOf(this.CONSUME6(Num));
          this.CONSUME6(Comma);
          named = { k: "named_barrier", id, count: this.intOf(this.CONSUME7(Num)) };
        });
        return named ?? ({ k: "barrier" } as Stmt);
      } },
      { ALT: () => {
        // setmaxnreg.inc 232 | setmaxnreg.dec 40
        this.CONSUME(K.setmaxnreg);
        this.CONSUME7(Dot);
        const op = this.CONSUME7(Name);
        const regs = this.intOf(this.CONSUME8(Num));
        return this.ACTION(() => {
          if (op.image !== "inc" && op.image !== "dec") fail(this.file, op, `expected 'setmaxnreg.inc N' or 'setmaxnreg.dec N', got 'setmaxnreg.${op.image}'`);
          return { k: "setmaxnreg", op: op.image, regs } as Stmt;
        });
      } },
      { ALT: () => {
        this.CONSUME(K.vcopy);
        const dst = this.SUBRULE2(this.ref);
        this.CONSUME(LArrow);
        const src = this.SUBRULE3(this.ref);
        this.CONSUME(K.lanes);
        const lanes = this.intOf(this.CONSUME(Num));
        let convert = false;
        this.OPTION7(() => { this.CONSUME(K.convert); convert = true; });
        const pred = this.SUBRULE(this.pred);
        return { k: "vcopy", dst, src, lanes, pred, ...(convert ? { convert } : {}) } as Stmt;
      } },
      { ALT: () => this.SUBRULE(this.cpStmt) },
      { ALT: () => this.SUBRULE(this.moeStmt) },
      { ALT: () => this.SUBRULE(this.warpReduceStmt) },
      { ALT: () => this.SUBRULE(this.dequantStmt) },
      { ALT: () => this.SUBRULE(this.ldmatrixStmt) },
      { ALT: () => this.SUBRULE(this.mmaStmt) },
      { ALT: () => this.SUBRULE(this.wgmmaStmt) },
      { ALT: () => this.SUBRULE(this.mbarStmt) },
      { ALT: () => this.SUBRULE(this.tmaStmt) },
      { ALT: () => this.SUBRULE(this.griddepStmt) },
      { ALT: () => {
        this.CONSUME(K.fence);
        this.CONSUME4(Dot);
        const proxy = this.CONSUME4(Name);
        this.CONSUME5(Dot);
        this.CONSUME(K.async);
        this.ACTION(() => { if (proxy.image !== "proxy") fail(this.file, proxy, `expected 'proxy', got '${proxy.image}'`); });
        return { k: "fence_async" } as Stmt;
      } },
    ]});
    return this.ACTION(() => {
      s.loc = locOf(this.file, first);
      return s;
    });
  });

  private allocStmt = this.RULE("allocStmt", (): Stmt => {
    this.CONSUME(K.alloc);
    const name = this.CONSUME(Name).image;
    this.CONSUME(Colon);
    const scope = this.oneOf(this.CONSUME2(Name), SCOPES, "a scope");
    const dtype = this.dtypeOf(this.CONSUME3(Name));
    this.CONSUME(LBrack);
    const shape = this.SUBRULE(this.exprList);
    this.CONSUME(RBrack);
    const buf: Buffer = { name, scope, dtype, shape };
    this.OPTION({ GATE: this.notAssign, DEF: () => { this.CONSUME(K.layout); buf.layout = this.SUBRULE(this.layout); } });
    this.OPTION2({ GATE: this.notAssign, DEF: () => { this.CONSUME(K.align); buf.align = this.intOf(this.CONSUME(Num)); } });
    this.OPTION3({ GATE: this.notAssign, DEF: () => { this.CONSUME(K.over); buf.over = this.CONSUME4(Name).image; } });
    return { k: "alloc", buf };
  });

  private forStmt = this.RULE("forStmt", (): Stmt => {
    this.CONSUME(K.for);
    const vars: string[] = [];
    this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => { vars.push(this.CONSUME(Name).image); } });
    this.CONSUME(K.in);
    const kind = this.oneOf(this.CONSUME2(Name), LOOP_KINDS, "a loop kind");
    const starts: Expr[] = [];
    const extents: Expr[] = [];
    this.CONSUME(LParen);
    this.AT_LEAST_ONE_SEP2({ SEP: Semi, DEF: () => {
      starts.push(this.SUBRULE(this.expr));
      this.CONSUME(Comma);
      extents.push(this.SUBRULE2(this.expr));
    } });
    this.CONSUME(RParen);
    const s: Stmt & { k: "for" } = { k: "for", vars, starts, extents, kind, body: [] };
    // `stages 3`, or before specialization an expression over tunables (for.stagesExpr).
    this.OPTION(() => {
      this.CONSUME(K.stages);
      const e = this.SUBRULE3(this.expr);
      this.ACTION(() => { if (e.k === "int" && e.dtype === undefined) s.stages = e.v; else s.stagesExpr = e; });
    });
    s.body = this.SUBRULE(this.block);
    return s;
  });

  private gemmStmt = this.RULE("gemmStmt", (): Stmt => {
    this.CONSUME(K.gemm);
    const a = this.SUBRULE(this.region);
    this.CONSUME(Comma);
    const b = this.SUBRULE2(this.region);
    this.CONSUME(Arrow);
    const c = this.SUBRULE3(this.region);
    let transA = false;
    let transB = false;
    this.OPTION({ GATE: this.notAssign, DEF: () => { this.CONSUME(K.transA); transA = true; } });
    this.OPTION2({ GATE: this.notAssign, DEF: () => { this.CONSUME(K.transB); transB = true; } });
    return { k: "gemm", a, b, c, transA, transB };
  });

  // reduce.OP src -> dst axis N [accumulate] | topk src -> values, indices count E
  // | scan.sum src -> dst [exclusive] | atomic.OP buf[idx], value [-> name]
  private moeStmt = this.RULE("moeStmt", (): Stmt => this.OR([
    { ALT: () => {
      this.CONSUME(K.reduce);
      this.CONSUME(Dot);
      const op = this.oneOf(this.CONSUME(Name), ["sum", "max", "min"] as const, "a reduction");
      const src = this.SUBRULE(this.region);
      this.CONSUME(Arrow);
      const dst = this.SUBRULE2(this.region);
      this.CONSUME(K.axis);
      const axis = this.intOf(this.CONSUME(Num));
      let accumulate = false;
      this.OPTION({ GATE: this.notAssign, DEF: () => { this.CONSUME(K.accumulate); accumulate = true; } });
      return { k: "reduce", op, src, dst, axis, accumulate } as Stmt;
    } },
    { ALT: () => {
      this.CONSUME(K.topk);
      const src = this.SUBRULE3(this.region);
      this.CONSUME2(Arrow);
      const values = this.SUBRULE4(this.region);
      this.CONSUME(Comma);
      const indices = this.SUBRULE5(this.region);
      this.CONSUME(K.count);
      const count = this.SUBRULE(this.expr);
      return { k: "topk", src, values, indices, count } as Stmt;
    } },
    { ALT: () => {
      this.CONSUME(K.scan);
      this.CONSUME2(Dot);
      this.oneOf(this.CONSUME2(Name), ["sum"] as const, "a scan");
      const src = this.SUBRULE6(this.region);
      this.CONSUME3(Arrow);
      const dst = this.SUBRULE7(this.region);
      let exclusive = false;
      this.OPTION2({ GATE: this.notAssign, DEF: () => { this.CONSUME(K.exclusive); exclusive = true; } });
      return { k: "scan", op: "sum", src, dst, exclusive } as Stmt;
    } },
    { ALT: () => {
      this.CONSUME(K.atomic);
      this.CONSUME3(Dot);
      const op = this.oneOf(this.CONSUME3(Name), ["add", "max", "min"] as const, "an atomic operation");
      const r = this.SUBRULE(this.ref);
      this.CONSUME2(Comma);
      const value = this.SUBRULE2(this.expr);
      const s: Stmt = { k: "atomic", op, buf: r.buf, idx: r.idx, value };
      this.OPTION3(() => { this.CONSUME4(Arrow); s.result = this.CONSUME4(Name).image; });
      return s;
    } },
  ]));

  // warp_reduce.OP width W name: dtype = value
  private warpReduceStmt = this.RULE("warpReduceStmt", (): Stmt => {
    this.CONSUME(K.warp_reduce);
    this.CONSUME(Dot);
    const op = this.oneOf(this.CONSUME(Name), ["sum", "max", "min"] as const, "a reduction");
    const w = this.CONSUME2(Name);
    this.ACTION(() => { if (w.image !== "width") fail(this.file, w, `expected 'width', got '${w.image}'`); });
    const width = this.intOf(this.CONSUME(Num));
    const result = this.CONSUME3(Name).image;
    this.CONSUME(Colon);
    const dtype = this.dtypeOf(this.CONSUME4(Name));
    this.CONSUME(Eq);
    const value = this.SUBRULE(this.expr);
    return { k: "warp_reduce", op, dtype, value, width, result };
  });

  private cpStmt = this.RULE("cpStmt", (): Stmt => {
    this.CONSUME(K.cp);
    this.CONSUME(Dot);
    return this.OR([
      { ALT: () => {
        this.CONSUME(K.async);
        const dst = this.SUBRULE(this.ref);
        this.CONSUME(LArrow);
        const src = this.SUBRULE2(this.ref);
        this.CONSUME(K.bytes);
        const bytes = this.intOf(this.CONSUME(Num));
        const pred = this.SUBRULE(this.pred);
        return { k: "cp_async", dst, src, bytes, pred } as Stmt;
      } },
      { ALT: () => { this.CONSUME(K.commit); return { k: "cp_commit" } as Stmt; } },
      { ALT: () => { this.CONSUME(K.wait); return { k: "cp_wait", n: this.intOf(this.CONSUME2(Num)) } as Stmt; } },
    ]);
  });

  // dequant.u4.interleaved dq[0] <- w scale s zero z [pair p]
  private dequantStmt = this.RULE("dequantStmt", (): Stmt => {
    this.CONSUME(K.dequant);
    this.CONSUME(Dot);
    const format = this.oneOf(this.CONSUME(Name), ["u4", "s4", "u8", "s8", "e4m3"] as const, "a packed weight format");
    this.CONSUME2(Dot);
    const order = this.oneOf(this.CONSUME2(Name), ["linear", "interleaved"] as const, "a packing order");
    const dst = this.SUBRULE(this.ref);
    this.CONSUME(LArrow);
    const word = this.SUBRULE(this.expr);
    const sw = this.CONSUME3(Name);
    const scale = this.SUBRULE2(this.expr);
    const zw = this.CONSUME4(Name);
    const zero = this.SUBRULE3(this.expr);
    let pair: Expr | undefined;
    // A statement may start with a name on the next line: only the word 'pair' continues this one.
    this.OPTION({ GATE: () => this.LA(1).image === "pair", DEF: () => {
      this.CONSUME5(Name);
      pair = this.SUBRULE4(this.expr);
    } });
    this.ACTION(() => {
      if (sw.image !== "scale") fail(this.file, sw, `expected 'scale', got '${sw.image}'`);
      if (zw.image !== "zero") fail(this.file, zw, `expected 'zero', got '${zw.image}'`);
    });
    return pair ? { k: "dequant", format, order, dst, word, scale, zero, pair } : { k: "dequant", format, order, dst, word, scale, zero };
  });

  private ldmatrixStmt = this.RULE("ldmatrixStmt", (): Stmt => {
    this.CONSUME(K.ldmatrix);
    this.CONSUME(Dot);
    const x = this.CONSUME(Name);
    let trans = false;
    this.OPTION(() => {
      this.CONSUME2(Dot);
      const t = this.CONSUME2(Name);
      this.ACTION(() => { if (t.image !== "trans") fail(this.file, t, `expected 'trans', got '${t.image}'`); });
      trans = true;
    });
    const dst = this.SUBRULE(this.ref);
    this.CONSUME(LArrow);
    const addr = this.SUBRULE2(this.ref);
    const num = this.ACTION(() => {
      const m = /^x([124])$/.exec(x.image);
      if (!m) fail(this.file, x, `expected x1, x2 or x4, got '${x.image}'`);
      return Number(m[1]) as 1 | 2 | 4;
    });
    return { k: "ldmatrix", dst, addr, num, trans };
  });

  private mmaStmt = this.RULE("mmaStmt", (): Stmt => {
    this.CONSUME(K.mma);
    this.CONSUME(Dot);
    const atype = this.oneOf(this.CONSUME(Name), ["bf16", "f16"] as const, "an mma input type");
    const d = this.SUBRULE(this.ref);
    this.CONSUME(Eq);
    const a = this.SUBRULE2(this.ref);
    this.CONSUME(Star);
    const b = this.SUBRULE3(this.ref);
    this.CONSUME(Plus);
    const c = this.SUBRULE4(this.ref);
    return { k: "mma", atype, d, a, b, c };
  });

  // A bare ref is a register operand (A only; the verifier checks where it may be).
  private wgmmaOperand = this.RULE("wgmmaOperand", (): WgmmaOperand | WgmmaRegs => {
    const ref = this.SUBRULE(this.ref);
    let desc: { sw: IToken; l: IToken; lbo: number; s: IToken; sbo: number } | undefined;
    // Descriptor fields start with the swizzle (sw0 .. sw128); anything else ends the operand.
    this.OPTION({ GATE: () => /^sw\d+$/.test(this.LA(1).image), DEF: () => {
      const sw = this.CONSUME(Name);
      const l = this.CONSUME2(Name);
      const lbo = this.intOf(this.CONSUME(Num));
      const s = this.CONSUME3(Name);
      const sbo = this.intOf(this.CONSUME2(Num));
      desc = { sw, l, lbo, s, sbo };
    } });
    return this.ACTION(() => {
      if (!desc) return { ref, regs: true } as WgmmaRegs;
      const { sw, l, lbo, s, sbo } = desc;
      const m = /^sw(0|32|64|128)$/.exec(sw.image);
      if (!m) fail(this.file, sw, `expected a swizzle sw0, sw32, sw64 or sw128, got '${sw.image}'`);
      if (l.image !== "lbo") fail(this.file, l, `expected 'lbo', got '${l.image}'`);
      if (s.image !== "sbo") fail(this.file, s, `expected 'sbo', got '${s.image}'`);
      return { ref, swizzle: Number(m[1]) as 0 | 32 | 64 | 128, lbo, sbo };
    });
  });

  private wgmmaStmt = this.RULE("wgmmaStmt", (): Stmt => {
    this.CONSUME(K.wgmma);
    this.CONSUME(Dot);
    // The shape (m64nNk16) is a Name, as the keywords are: those are tried first.
    return this.OR({ IGNORE_AMBIGUITIES: true, DEF: [
      { ALT: () => { this.CONSUME(K.fence); return { k: "wgmma_fence" } as Stmt; } },
      { ALT: () => { this.CONSUME(K.commit); return { k: "wgmma_commit" } as Stmt; } },
      { ALT: () => { this.CONSUME(K.wait); return { k: "wgmma_wait", n: this.intOf(this.CONSUME(Num)) } as Stmt; } },
      { ALT: () => {
        const shape = this.CONSUME(Name);
        this.CONSUME2(Dot);
        const atype = this.oneOf(this.CONSUME2(Name), ["bf16", "f16"] as const, "a wgmma input type");
        const d = this.SUBRULE(this.ref);
        let scaleD = false;
        this.OPTION(() => { this.CONSUME(Plus); scaleD = true; });
        this.CONSUME(Eq);
        const a = this.SUBRULE(this.wgmmaOperand);
        this.CONSUME(Comma);
        const b = this.SUBRULE2(this.wgmmaOperand);
        const n = this.ACTION(() => {
          const m = /^m64n(\d+)k16$/.exec(shape.image);
          if (!m) fail(this.file, shape, `expected a shape m64nNk16, got '${shape.image}'`);
          return Number(m[1]);
        });
        return { k: "wgmma", atype, n, d, a, b, scaleD } as Stmt;
      } },
    ]});
  });

  private word(tok: IToken, want: string): void {
    this.ACTION(() => { if (tok.image !== want) fail(this.file, tok, `expected '${want}', got '${tok.image}'`); });
  }

  // mbar.init b[0] count 1 | mbar.fence_init | mbar.arrive b[0] [tx 64] | mbar.wait b[0] parity e
  // griddepcontrol.wait | griddepcontrol.launch_dependents
  private griddepStmt = this.RULE("griddepStmt", (): Stmt => {
    this.CONSUME(K.griddepcontrol);
    this.CONSUME(Dot);
    const op = this.CONSUME(Name);
    return this.ACTION(() => {
      if (op.image !== "wait" && op.image !== "launch_dependents") fail(this.file, op, `expected 'griddepcontrol.wait' or 'griddepcontrol.launch_dependents', got 'griddepcontrol.${op.image}'`);
      return { k: "griddep", op: op.image } as Stmt;
    });
  });

  private mbarStmt = this.RULE("mbarStmt", (): Stmt => {
    this.CONSUME(K.mbar);
    this.CONSUME(Dot);
    // 'wait' is a keyword (and a Name): tried first.
    return this.OR({ IGNORE_AMBIGUITIES: true, DEF: [
      { ALT: () => {
        this.CONSUME(K.wait);
        const bar = this.SUBRULE(this.ref);
        this.word(this.CONSUME(Name), "parity");
        const parity = this.SUBRULE(this.expr);
        return { k: "mbar_wait", bar, parity } as Stmt;
      } },
      { ALT: () => {
        const op = this.CONSUME2(Name);
        let bar: Ref | undefined, count: number | undefined, tx: number | undefined;
        // Option lookahead sees only the option's own first token, and keywords are Names too:
        // the gates look one token further.
        this.OPTION({ GATE: () => this.LA(2).tokenType === LBrack, DEF: () => {
          bar = this.SUBRULE2(this.ref);
          this.OPTION2(() => { this.CONSUME(K.count); count = this.intOf(this.CONSUME(Num)); });
          this.OPTION3({ GATE: () => this.LA(2).tokenType === Num, DEF: () => { this.word(this.CONSUME3(Name), "tx"); tx = this.intOf(this.CONSUME2(Num)); } });
        } });
        return this.ACTION(() => {
          if (op.image === "fence_init" && !bar) return { k: "mbar_fence_init" } as Stmt;
          if (op.image === "init" && bar && count !== undefined && tx === undefined) return { k: "mbar_init", bar, count } as Stmt;
          if (op.image === "arrive" && bar && count === undefined) return (tx === undefined ? { k: "mbar_arrive", bar } : { k: "mbar_arrive", bar, tx }) as Stmt;
          fail(this.file, op, `expected 'mbar.init B count N', 'mbar.fence_init', 'mbar.arrive B [tx N]' or 'mbar.wait B parity E', got 'mbar.${op.image}'`);
        });
      } },
    ]});
  });

  // tma.load As[0] <- tmap_A[r, c] bar bars[0]
  private tmaStmt = this.RULE("tmaStmt", (): Stmt => {
    this.CONSUME(K.tma);
    this.CONSUME(Dot);
    this.word(this.CONSUME(Name), "load");
    const dst = this.SUBRULE(this.ref);
    this.CONSUME(LArrow);
    const map = this.CONSUME2(Name).image;
    this.CONSUME(LBrack);
    const coords = this.SUBRULE(this.exprList);
    this.CONSUME(RBrack);
    this.word(this.CONSUME3(Name), "bar");
    const bar = this.SUBRULE2(this.ref);
    return { k: "tma_load", dst, map, coords, bar } as Stmt;
  });

  stmts = this.RULE("stmts", (): Stmt[] => {
    const body: Stmt[] = [];
    this.MANY(() => { body.push(this.SUBRULE(this.stmt)); });
    return body;
  });

  // ------------------------------------------------------------ kernel

  private tunableValue = this.RULE("tunableValue", (): TunableValue => this.OR([
    { ALT: () => {
      const t = this.CONSUME(Str);
      return this.ACTION(() => JSON.parse(t.image) as string);
    } },
    { ALT: () => this.plainNumber(this.CONSUME(Num), false) },
    { ALT: () => { this.CONSUME(Minus); return this.plainNumber(this.CONSUME2(Num), true); } },
    { ALT: () => {
      const id = this.CONSUME(Name);
      return this.ACTION(() => {
        if (id.image !== "true" && id.image !== "false") fail(this.file, id, `expected a number, string, true or false, got '${id.image}'`);
        return id.image === "true";
      });
    } },
  ]));

  private plainNumber(tok: IToken, negative: boolean): number {
    return this.ACTION(() => {
      if (tok.image.includes("_")) fail(this.file, tok, "tunable values take no dtype suffix");
      const n = Number(tok.image);
      return negative ? -n : n;
    });
  }

  private param = this.RULE("param", (): Param => {
    const name = this.CONSUME(Name).image;
    this.CONSUME(Colon);
    let tensor = false;
    this.OPTION(() => { this.CONSUME(K.global); tensor = true; });
    const dtype = this.dtypeOf(this.CONSUME2(Name));
    const prm: Param = { name, kind: tensor ? "tensor" : "scalar", dtype };
    this.OPTION2(() => {
      this.CONSUME(LBrack);
      prm.shape = this.SUBRULE(this.exprList);
      this.CONSUME(RBrack);
    });
    this.OPTION3(() => { this.CONSUME(K.align); prm.align = this.intOf(this.CONSUME(Num)); });
    this.OPTION4(() => { this.CONSUME(K.out); prm.output = true; });
    return prm;
  });

  private names = this.RULE("names", (): string[] => {
    const ns: string[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => { ns.push(this.CONSUME(Name).image); } });
    return ns;
  });

  kernel = this.RULE("kernel", (): Kernel => {
    const kwTok = this.CONSUME(K.kernel);
    const name = this.CONSUME(Name).image;
    this.CONSUME(LParen);
    const params: Param[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => { params.push(this.SUBRULE(this.param)); } });
    this.CONSUME(RParen);
    const k: Kernel = {
      name, params, dims: [], tunables: {}, config: {},
      launch: { grid: [], threads: { k: "int", v: 0 }, blockVars: [], level: "tile", body: [] },
    };
    this.OPTION(() => { this.CONSUME(K.dims); k.dims = this.SUBRULE(this.names); });
    this.OPTION2(() => {
      this.CONSUME(K.tune);
      this.AT_LEAST_ONE_SEP({ SEP: Comma, DEF: () => {
        const n = this.CONSUME2(Name).image;
        this.CONSUME(Eq);
        this.CONSUME(LBrack);
        const vals: TunableValue[] = [];
        this.MANY_SEP2({ SEP: Comma, DEF: () => { vals.push(this.SUBRULE(this.tunableValue)); } });
        this.CONSUME(RBrack);
        k.tunables[n] = vals;
      } });
    });
    this.OPTION3(() => { this.CONSUME(K.where); k.where = this.SUBRULE(this.expr); });
    this.OPTION4(() => {
      this.CONSUME(K.config);
      this.AT_LEAST_ONE_SEP2({ SEP: Comma, DEF: () => {
        const n = this.CONSUME3(Name).image;
        this.CONSUME2(Eq);
        k.config[n] = this.SUBRULE2(this.tunableValue);
      } });
    });
    this.OPTION5(() => { this.CONSUME(K.smem); k.smemBytes = this.intOf(this.CONSUME(Num)); });
    // tensormap tmap_A = A box [128, 32] swizzle 64
    this.MANY3(() => {
      this.CONSUME(K.tensormap);
      const mname = this.CONSUME4(Name).image;
      this.CONSUME3(Eq);
      const tensor = this.CONSUME5(Name).image;
      this.word(this.CONSUME6(Name), "box");
      this.CONSUME2(LBrack);
      const box: number[] = [];
      this.MANY_SEP3({ SEP: Comma, DEF: () => { box.push(this.intOf(this.CONSUME2(Num))); } });
      this.CONSUME2(RBrack);
      this.word(this.CONSUME7(Name), "swizzle");
      const swTok = this.CONSUME3(Num);
      this.ACTION(() => {
        const swizzle = this.intOf(swTok);
        if (![0, 32, 64, 128].includes(swizzle)) fail(this.file, swTok, `a tensor map swizzle is 0, 32, 64 or 128, got ${swizzle}`);
        (k.tensorMaps ??= []).push({ name: mname, tensor, box, swizzle: swizzle as 0 | 32 | 64 | 128 });
      });
    });
    k.launch = this.SUBRULE(this.launch);
    this.ACTION(() => { k.loc = locOf(this.file, kwTok); });
    return k;
  });

  private launch = this.RULE("launch", (): Launch => {
    this.CONSUME(K.launch);
    const level = this.oneOf(this.CONSUME(Name), ["tile", "thread"] as const, "a launch level");
    this.CONSUME(K.grid);
    this.CONSUME(LBrack);
    const grid = this.SUBRULE(this.exprList);
    this.CONSUME(RBrack);
    this.CONSUME(K.threads);
    const threads = this.SUBRULE(this.expr);
    let minBlocks: Expr | undefined;
    this.OPTION4(() => { this.CONSUME(K.min_blocks); minBlocks = this.SUBRULE2(this.expr); });
    let perSM: number | undefined;
    this.OPTION2(() => { this.CONSUME(K.per_sm); perSM = this.intOf(this.CONSUME(Num)); });
    this.CONSUME(K.blocks);
    this.CONSUME2(LBrack);
    const blockVars = this.SUBRULE(this.names);
    this.CONSUME2(RBrack);
    const l: Launch = { grid, threads, blockVars, level, body: [], ...(minBlocks !== undefined ? { minBlocks } : {}), ...(perSM !== undefined ? { perSM } : {}) };
    this.OPTION(() => { this.CONSUME(K.thread); l.threadVar = this.CONSUME2(Name).image; });
    this.OPTION3(() => { this.CONSUME(K.setup); l.setup = this.intOf(this.CONSUME2(Num)); });
    l.body = this.SUBRULE(this.block);
    return l;
  });
}

const parser = new IrParser();

function run<T>(text: string, file: string, rule: (p: IrParser) => T): T {
  const lexed = lexer.tokenize(text);
  if (lexed.errors.length > 0) {
    throw new CompileError(lexed.errors.map((e) => ({
      loc: { file, line: e.line ?? 0, col: e.column ?? 0 },
      message: `unexpected character '${text.substr(e.offset, 1)}'`, severity: "error" as const,
    })));
  }
  parser.file = file;
  parser.input = lexed.tokens;
  const result = rule(parser);
  if (parser.errors.length > 0) {
    const e = parser.errors[0]!;
    const tok = e.token.tokenType === EOF ? lexed.tokens[lexed.tokens.length - 1] ?? e.token : e.token;
    fail(file, tok, `syntax error: ${e.message}`);
  }
  const rest = parser.atEnd();
  if (rest) fail(file, rest, `unexpected '${rest.image}' after the end`);
  return result;
}

export function parseKernel(text: string, file = "<ir>"): Kernel {
  return run(text, file, (p) => p.kernel());
}

export function parseExpr(text: string, file = "<ir>"): Expr {
  return run(text, file, (p) => p.expr());
}

/** Statements without a kernel header, for pass tests. */
export function parseStmts(text: string, file = "<ir>"): Stmt[] {
  return run(text, file, (p) => p.stmts());
}
