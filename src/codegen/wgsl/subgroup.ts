// warp_reduce in WGSL. Two expansions of the same butterfly (ir.ts: step m combines
// (own, partner t ^ m) in that order), so that both give the interpreter's bits:
//  - subgroups: subgroupShuffleXor per step (integer groups that fill the subgroup use
//    subgroupAdd/Max/Min: wrapping adds and integer max/min do not depend on the order);
//  - workgroup memory: each step publishes the thread's value in a var<workgroup> array,
//    reads the partner's, with barriers between.
// WebGPU does not fix the subgroup size (lavapipe: 8, GPUs: 4..128) nor promise that a
// subgroup is a run of consecutive local_invocation_index values; the shuffle path needs
// both (a group of `width` consecutive threads inside one subgroup). So with the feature,
// the shader checks at run time, once per workgroup, that every invocation sits at lane
// index % subgroup_size, and takes the shuffle path for a warp_reduce only when
// subgroup_size >= width; the workgroup-memory path otherwise. The choice is uniform
// (workgroupUniformLoad), as the barriers of the fallback need.
import { type Stmt, isFloat } from "../../ir/ir.ts";
import { nanMinMax } from "./expr.ts";
import { walkStmts } from "../../ir/expr.ts";

export type WarpReduce = Extract<Stmt, { k: "warp_reduce" }>;

/** How warp_reduce is expanded, decided when the shader is emitted. */
export type ReduceMode = "subgroups" | "workgroup";

export function warpReduces(body: Stmt[]): WarpReduce[] {
  const out: WarpReduce[] = [];
  walkStmts(body, (s) => { if (s.k === "warp_reduce") out.push(s); });
  return out;
}

/** Name of the usable subgroup size (0: the shuffle path is off in this workgroup). */
export const SG_SIZE = "_sg_size";

/** Module-scope declarations: the fallback's exchange arrays (one per dtype) and, with
 *  subgroups, the workgroup's verdict on the subgroup layout. */
export function subgroupDecls(reduces: WarpReduce[], threads: number, mode: ReduceMode): { decls: string[]; bytes: number } {
  const types = [...new Set(reduces.map((s) => s.dtype))].sort();
  const decls = types.map((t) => `var<workgroup> _wr_${t}: array<${t}, ${threads}>;`);
  let bytes = types.length * threads * 4;
  if (mode === "subgroups") {
    decls.push("var<workgroup> _sg_bad: atomic<u32>;", "var<workgroup> _sg_ok: u32;");
    bytes += 8;
  }
  return { decls, bytes };
}

/** Entry-point parameters the subgroup path reads. */
export const SUBGROUP_BUILTINS = "@builtin(subgroup_size) _sgs: u32, @builtin(subgroup_invocation_id) _sgi: u32";

/** Start of main with subgroups: the uniform usable subgroup size. */
export function subgroupPrologue(): string[] {
  return [
    "// warp_reduce: shuffles need thread t at lane t % subgroup_size; checked once per workgroup",
    "if (_sgi != _lid.x % _sgs) { atomicOr(&_sg_bad, 1u); }",
    "workgroupBarrier();",
    "if (_lid.x == 0u) { _sg_ok = select(_sgs, 0u, atomicLoad(&_sg_bad) != 0u); }",
    `let ${SG_SIZE} = workgroupUniformLoad(&_sg_ok);`,
  ];
}

const combine = (s: WarpReduce, a: string, b: string) =>
  (s.op === "sum" ? `${a} + ${b}` : isFloat(s.dtype) ? nanMinMax(s.op, a, b) : `${s.op}(${a}, ${b})`);
const SUBGROUP_FN = { sum: "subgroupAdd", max: "subgroupMax", min: "subgroupMin" } as const;

/** The statement's lines; `value` is the WGSL of s.value in s.dtype. */
export function warpReduceLines(s: WarpReduce, r: string, value: string, mode: ReduceMode): string[] {
  const steps: number[] = [];
  for (let m = 1; m < s.width; m <<= 1) steps.push(m);
  const workgroup = [
    `_wr_${s.dtype}[_lid.x] = ${r};`,
    "workgroupBarrier();",
    ...steps.flatMap((m, i) => [
      `${r} = ${combine(s, r, `_wr_${s.dtype}[_lid.x ^ ${m}u]`)};`,
      "workgroupBarrier();",
      ...(i < steps.length - 1 ? [`_wr_${s.dtype}[_lid.x] = ${r};`, "workgroupBarrier();"] : []),
    ]),
  ];
  const head = `var ${r}: ${s.dtype} = ${value};`;
  if (mode === "workgroup") return [head, ...workgroup];
  // A float max / min reads the partner's value three times (nanMinMax): it is named once.
  const shuffle = steps.map((m) => (s.op !== "sum" && isFloat(s.dtype)
    ? `{ let _wr_p = subgroupShuffleXor(${r}, ${m}u); ${r} = ${combine(s, r, "_wr_p")}; }`
    : `${r} = ${combine(s, r, `subgroupShuffleXor(${r}, ${m}u)`)};`));
  const ind = (xs: string[]) => xs.map((x) => `  ${x}`);
  const whole = s.dtype === "f32" ? [] : [
    `if (${SG_SIZE} == ${s.width}u) {`, ...ind([`${r} = ${SUBGROUP_FN[s.op]}(${r});`]), "} else ",
  ];
  return [
    head,
    ...(whole.length ? [...whole.slice(0, -1), `} else if (${SG_SIZE} >= ${s.width}u) {`] : [`if (${SG_SIZE} >= ${s.width}u) {`]),
    ...ind(shuffle),
    "} else {",
    ...ind(workgroup),
    "}",
  ];
}
