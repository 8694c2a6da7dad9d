// The atomic statement in CUDA C++. add maps to atomicAdd (f32, f64, f16, bf16, i32, u32);
// max/min to atomicMax/atomicMin on 32-bit ints and to a compare-and-swap loop on f32
// (CUDA has no float atomicMax). Each returns the element's value before the update.
import type { AtomicOp, DType } from "../../ir/ir.ts";

const ADD = new Set<DType>(["f32", "f64", "f16", "bf16", "i32", "u32"]);

function casLoop(op: "max" | "min", addr: string, value: string): string {
  const keep = op === "max" ? ">=" : "<=";
  // Stop once the stored value already wins; NaN in `v` never replaces a number.
  return `([](float* tm_p, float tm_v) { int* tm_q = reinterpret_cast<int*>(tm_p); int tm_old = *tm_q, tm_as; ` +
    `do { tm_as = tm_old; if (!(__int_as_float(tm_as) ${keep} tm_v) && tm_v == tm_v) tm_old = atomicCAS(tm_q, tm_as, __float_as_int(tm_v)); else break; } ` +
    `while (tm_old != tm_as); return __int_as_float(tm_old); })(${addr}, ${value})`;
}

/** The C expression performing the atomic at `addr` (an `&elem` pointer) with `value`
 *  (in the element's storage type). */
export function atomicExpr(op: AtomicOp, dtype: DType, addr: string, value: string): string {
  if (op === "add") {
    if (!ADD.has(dtype)) throw new Error(`atomic add on ${dtype} has no CUDA form (f32, f64, f16, bf16, i32, u32)`);
    return `atomicAdd(${addr}, ${value})`;
  }
  if (dtype === "i32" || dtype === "u32") return `${op === "max" ? "atomicMax" : "atomicMin"}(${addr}, ${value})`;
  if (dtype === "f32") return casLoop(op, addr, value);
  throw new Error(`atomic ${op} on ${dtype} has no CUDA form (i32, u32, f32)`);
}
