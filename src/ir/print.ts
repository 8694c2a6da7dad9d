// The IR text form, writing side. docs/IR.md is the spec; parse.ts reads what this writes,
// and parse(print(k)) must give back k, so every choice here is about being unambiguous.
import type { BinOp, Buffer, DType, Expr, Kernel, Layout, Param, Ref, Region, Stmt, TunableValue, WgmmaOperand, WgmmaRegs } from "./ir.ts";

/** Binding strength of infix operators; higher binds tighter. Call-style BinOps are atoms. */
export const BIN_PREC: Partial<Record<BinOp, number>> = {
  "*": 10, "/": 10, "%": 10,
  "+": 9, "-": 9,
  "<<": 8, ">>": 8,
  "<": 7, "<=": 7, ">": 7, ">=": 7,
  "==": 6, "!=": 6,
  "&": 5, "^": 4, "|": 3, "&&": 2, "||": 1,
};
const ATOM = 100;

function prec(e: Expr): number {
  return e.k === "bin" ? (BIN_PREC[e.op] ?? ATOM) : ATOM;
}

function suffix(dtype: DType | undefined): string {
  return dtype ? `_${dtype}` : "";
}

function printInt(v: number, dtype: DType | undefined): string {
  if (dtype === "bool" && (v === 0 || v === 1)) return v === 1 ? "true" : "false";
  // Beyond 1e21 String() switches to exponent form, which would re-read as a float.
  const digits = Number.isInteger(v) ? (Math.abs(v) >= 1e21 ? BigInt(v).toString() : String(v)) : String(Math.trunc(v));
  return digits + suffix(dtype);
}

function printFloat(v: number, dtype: DType | undefined): string {
  let s: string;
  if (Number.isNaN(v)) s = "nan";
  else if (v === Infinity) s = "inf";
  else if (v === -Infinity) s = "-inf";
  else if (Object.is(v, -0)) s = "-0.0";
  else {
    s = String(v);
    if (!/[.e]/.test(s)) s += ".0";
  }
  return s + suffix(dtype);
}

export function printExpr(e: Expr): string {
  switch (e.k) {
    case "int": return printInt(e.v, e.dtype);
    case "float": return printFloat(e.v, e.dtype);
    case "var": return e.name;
    case "bin": {
      const p = BIN_PREC[e.op];
      if (p === undefined) return `${e.op}(${printExpr(e.a)}, ${printExpr(e.b)})`;
      // Left-associative: the right operand needs parentheses at equal strength too.
      const a = prec(e.a) < p ? `(${printExpr(e.a)})` : printExpr(e.a);
      const b = prec(e.b) <= p ? `(${printExpr(e.b)})` : printExpr(e.b);
      return `${a} ${e.op} ${b}`;
    }
    case "un": {
      const op = e.op === "neg" ? "-" : e.op === "not" ? "!" : "~";
      return `${op}(${printExpr(e.a)})`;
    }
    case "call": return `${e.fn}(${e.args.map(printExpr).join(", ")})`;
    case "select": return `select(${printExpr(e.cond)}, ${printExpr(e.a)}, ${printExpr(e.b)})`;
    case "load": return `${e.buf}[${printExprs(e.idx)}]`;
    case "cast": return `cast<${e.dtype}>(${printExpr(e.a)})`;
  }
}

function printExprs(es: Expr[]): string {
  return es.map(printExpr).join(", ");
}

export function printLayout(l: Layout): string {
  switch (l.kind) {
    case "mma_acc": return `mma_acc(${l.warpsM}, ${l.warpsN})`;
    case "cyclic": return "cyclic";
    case "xor_swizzle": return `xor_swizzle(${l.mask}, ${l.shift})`;
    case "wgmma_acc": return `wgmma_acc${l.trans ? "_t" : ""}(${l.wgM}, ${l.wgN})`;
  }
}

function printBuffer(b: Buffer): string {
  let s = `${b.name}: ${b.scope} ${b.dtype}[${printExprs(b.shape)}]`;
  if (b.layout) s += ` layout ${printLayout(b.layout)}`;
  if (b.align !== undefined) s += ` align ${b.align}`;
  if (b.over !== undefined) s += ` over ${b.over}`;
  return s;
}

function printRegion(r: Region): string {
  const dims = r.offsets.map((o, i) => `${printExpr(o)} : +${printExpr(r.extents[i]!)}`);
  return `${r.buf}[${dims.join(", ")}]`;
}

function printRef(r: Ref): string {
  return `${r.buf}[${printExprs(r.idx)}]`;
}

function printWgmmaOperand(o: WgmmaOperand | WgmmaRegs): string {
  if ("regs" in o) return printRef(o.ref);
  return `${printRef(o.ref)} sw${o.swizzle} lbo ${o.lbo} sbo ${o.sbo}`;
}

function printBlock(body: Stmt[], indent: number): string {
  const pad = "  ".repeat(indent);
  return `{\n${body.map((s) => printStmt(s, indent + 1) + "\n").join("")}${pad}}`;
}

/** One statement at the given depth (two spaces per level), without a trailing newline. */
export function printStmt(s: Stmt, indent = 0): string {
  const pad = "  ".repeat(indent);
  switch (s.k) {
    case "alloc": return `${pad}alloc ${printBuffer(s.buf)}`;
    case "let": return `${pad}${s.mutable ? "var" : "let"} ${s.name}: ${s.dtype} = ${printExpr(s.value)}`;
    case "assign": return `${pad}${s.name} = ${printExpr(s.value)}`;
    case "store": return `${pad}store ${s.buf}[${printExprs(s.idx)}] = ${printExpr(s.value)}`;
    case "for": {
      const ranges = s.starts.map((st, i) => `${printExpr(st)}, ${printExpr(s.extents[i]!)}`).join("; ");
      const stages = s.stagesExpr ? ` stages ${printExpr(s.stagesExpr)}` : s.stages !== undefined ? ` stages ${s.stages}` : "";
      return `${pad}for ${s.vars.join(", ")} in ${s.kind}(${ranges})${stages} ${printBlock(s.body, indent)}`;
    }
    case "if": {
      const els = s.else.length > 0 ? ` else ${printBlock(s.else, indent)}` : "";
      return `${pad}if (${printExpr(s.cond)}) ${printBlock(s.then, indent)}${els}`;
    }
    case "copy": return `${pad}copy ${printRegion(s.src)}${s.rows !== undefined ? ` rows ${s.rows}` : ""} -> ${printRegion(s.dst)}${s.dstRows !== undefined ? ` rows ${s.dstRows}` : ""}`;
    case "fill": return `${pad}fill ${printRegion(s.dst)} = ${printExpr(s.value)}`;
    case "gemm": {
      const flags = (s.transA ? " transA" : "") + (s.transB ? " transB" : "");
      return `${pad}gemm ${printRegion(s.a)}, ${printRegion(s.b)} -> ${printRegion(s.c)}${flags}`;
    }
    case "reduce":
      return `${pad}reduce.${s.op} ${printRegion(s.src)} -> ${printRegion(s.dst)} axis ${s.axis}${s.accumulate ? " accumulate" : ""}`;
    case "topk":
      return `${pad}topk ${printRegion(s.src)} -> ${printRegion(s.values)}, ${printRegion(s.indices)} count ${printExpr(s.count)}`;
    case "scan": return `${pad}scan.${s.op} ${printRegion(s.src)} -> ${printRegion(s.dst)}${s.exclusive ? " exclusive" : ""}`;
    case "atomic":
      return `${pad}atomic.${s.op} ${printRef(s)}, ${printExpr(s.value)}${s.result !== undefined ? ` -> ${s.result}` : ""}`;
    case "warp_reduce":
      return `${pad}warp_reduce.${s.op} width ${s.width} ${s.result}: ${s.dtype} = ${printExpr(s.value)}`;
    case "barrier": return `${pad}barrier`;
    case "named_barrier": return `${pad}barrier ${s.id}, ${s.count}`;
    case "setmaxnreg": return `${pad}setmaxnreg.${s.op} ${s.regs}`;
    case "vcopy":
      return `${pad}vcopy ${printRef(s.dst)} <- ${printRef(s.src)} lanes ${s.lanes}${s.convert ? " convert" : ""} if (${printExpr(s.pred)})`;
    case "cp_async":
      return `${pad}cp.async ${printRef(s.dst)} <- ${printRef(s.src)} bytes ${s.bytes} if (${printExpr(s.pred)})`;
    case "cp_commit": return `${pad}cp.commit`;
    case "cp_wait": return `${pad}cp.wait ${s.n}`;
    case "dequant":
      return `${pad}dequant.${s.format}.${s.order} ${printRef(s.dst)} <- ${printExpr(s.word)} scale ${printExpr(s.scale)} zero ${printExpr(s.zero)}${s.pair ? ` pair ${printExpr(s.pair)}` : ""}`;
    case "ldmatrix":
      return `${pad}ldmatrix.x${s.num}${s.trans ? ".trans" : ""} ${printRef(s.dst)} <- ${printRef(s.addr)}`;
    case "mma":
      return `${pad}mma.${s.atype} ${printRef(s.d)} = ${printRef(s.a)} * ${printRef(s.b)} + ${printRef(s.c)}`;
    case "wgmma":
      return `${pad}wgmma.m64n${s.n}k16.${s.atype} ${printRef(s.d)} ${s.scaleD ? "+=" : "="} ${printWgmmaOperand(s.a)}, ${printWgmmaOperand(s.b)}`;
    case "wgmma_fence": return `${pad}wgmma.fence`;
    case "wgmma_commit": return `${pad}wgmma.commit`;
    case "wgmma_wait": return `${pad}wgmma.wait ${s.n}`;
    case "fence_async": return `${pad}fence.proxy.async`;
    case "mbar_init": return `${pad}mbar.init ${printRef(s.bar)} count ${s.count}`;
    case "mbar_fence_init": return `${pad}mbar.fence_init`;
    case "mbar_arrive": return `${pad}mbar.arrive ${printRef(s.bar)}${s.tx !== undefined ? ` tx ${s.tx}` : ""}`;
    case "mbar_wait": return `${pad}mbar.wait ${printRef(s.bar)} parity ${printExpr(s.parity)}`;
    case "griddep": return `${pad}griddepcontrol.${s.op}`;
    case "tma_load": return `${pad}tma.load ${printRef(s.dst)} <- ${s.map}[${printExprs(s.coords)}] bar ${printRef(s.bar)}`;
  }
}

export function printStmts(body: Stmt[], indent = 0): string {
  return body.map((s) => printStmt(s, indent) + "\n").join("");
}

function printTunableValue(v: TunableValue): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function printParam(p: Param): string {
  let s: string;
  if (p.kind === "tensor") s = `${p.name}: global ${p.dtype}${p.shape ? `[${printExprs(p.shape)}]` : ""}`;
  else s = `${p.name}: ${p.dtype}`;
  if (p.align !== undefined) s += ` align ${p.align}`;
  if (p.output) s += " out";
  return s;
}

export function printKernel(k: Kernel): string {
  const lines = [`kernel ${k.name}(${k.params.map(printParam).join(", ")})`];
  if (k.dims.length > 0) lines.push(`  dims ${k.dims.join(", ")}`);
  const tune = Object.entries(k.tunables);
  if (tune.length > 0) lines.push(`  tune ${tune.map(([n, vs]) => `${n} = [${vs.map(printTunableValue).join(", ")}]`).join(", ")}`);
  if (k.where) lines.push(`  where ${printExpr(k.where)}`);
  const config = Object.entries(k.config);
  if (config.length > 0) lines.push(`  config ${config.map(([n, val]) => `${n} = ${printTunableValue(val)}`).join(", ")}`);
  if (k.smemBytes !== undefined) lines.push(`  smem ${k.smemBytes}`);
  for (const m of k.tensorMaps ?? []) lines.push(`  tensormap ${m.name} = ${m.tensor} box [${m.box.join(", ")}] swizzle ${m.swizzle}`);
  const l = k.launch;
  const thread = l.threadVar !== undefined ? ` thread ${l.threadVar}` : "";
  const perSM = l.perSM !== undefined ? ` per_sm ${l.perSM}` : "";
  const minBlocks = l.minBlocks !== undefined ? ` min_blocks ${printExpr(l.minBlocks)}` : "";
  const setup = l.setup !== undefined ? ` setup ${l.setup}` : "";
  lines.push(`launch ${l.level} grid [${printExprs(l.grid)}] threads ${printExpr(l.threads)}${minBlocks}${perSM} blocks [${l.blockVars.join(", ")}]${thread}${setup} ${printBlock(l.body, 0)}`);
  return lines.join("\n") + "\n";
}
