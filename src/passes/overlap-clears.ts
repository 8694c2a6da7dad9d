// overlapClears (Target.clearKernel, sm_90a, not under --pdl): an output written only by atomic
// adds (split-K; src/ir/zero-init.ts) must be zero before the kernel adds into it. Instead of a
// cudaMemsetAsync right before the kernel (a stream operation of its own that the kernel cannot
// start before), the launcher launches a small zero kernel over each such output, plainly, then
// this kernel with programmatic dependent launch (PDL), so the kernel may start as soon as the
// zero kernel's blocks have triggered. This pass puts the one statement that makes that correct:
//   griddepcontrol.wait   right before the first top-level statement that touches a cleared
//                         output (for gemm_w4a16: the split-K atomics of the epilogue)
// so everything before it (the whole main loop) runs while the zero kernel runs and drains.
// Why only the cleared outputs need the wait (docs/QUANT.md, "Clearing by a zero kernel"): the
// zero kernel is launched without the PDL attribute, so it starts only after all earlier work of
// the stream has completed; this kernel starts only after the zero kernel has started, so every
// input it reads is ready at its first instruction. Only the cleared outputs depend on the zero
// kernel, and griddepcontrol.wait waits for its completion and the visibility of its stores.
// The wait stays at the top level of the body (every thread reaches it, never under an `if`):
// a kernel whose first such access sits inside a top-level loop or role branch (persistent
// tiles, warp specialization) waits before that whole statement: still right, it overlaps less.
// Under --pdl (chain mode) the kernel already waits at its very top (programmaticLaunch) and its
// launcher keeps the memset, so this pass leaves it alone. Runs on the thread-level kernel, after
// simplify and before programmaticLaunch (which stays the last pass).
import type { Kernel, Stmt } from "../ir/ir.ts";
import { bufferMentions } from "../ir/expr.ts";
import { zeroInitOutputs } from "../ir/zero-init.ts";
import type { PassOptions } from "./types.ts";

const WAIT: Stmt = { k: "griddep", op: "wait" };

export function overlapClears(k: Kernel, opts: PassOptions): Kernel {
  if (!opts.target.clearKernel || opts.target.pdl || opts.target.arch !== "sm_90a") return k;
  if (k.launch.level !== "thread") throw new Error("overlapClears runs on thread-level kernels (after lowerToThreads)");
  if (k.launch.body.some((s) => s.k === "griddep")) return k;
  const cleared = zeroInitOutputs(k);
  if (cleared.length === 0) return k;
  const body = k.launch.body;
  const first = body.findIndex((s) => touchesAny(k, s, cleared));
  if (first < 0) return k;
  return { ...k, launch: { ...k.launch, body: [...body.slice(0, first), WAIT, ...body.slice(first)] } };
}

/** Whether `s` (nested bodies included) reads or writes one of `tensors`, through a buffer
 *  mention or a TMA load through a tensor map over it. */
function touchesAny(k: Kernel, s: Stmt, tensors: string[]): boolean {
  const mapped = new Map((k.tensorMaps ?? []).map((m) => [m.name, m.tensor]));
  const names = new Set<string>(bufferMentions([s]));
  const visit = (x: Stmt): void => {
    if (x.k === "tma_load") names.add(mapped.get(x.map) ?? x.map);
    else if (x.k === "for") x.body.forEach(visit);
    else if (x.k === "if") { x.then.forEach(visit); x.else.forEach(visit); }
  };
  visit(s);
  return tensors.some((t) => names.has(t));
}

/**
 * Whether the launcher may clear the kernel's zero-init outputs with the zero kernel and launch
 * the kernel with PDL behind it: the kernel has zero-init outputs, is not a chain-mode kernel
 * (--pdl: its own launcher keeps the memset), and every thread executes griddepcontrol.wait
 * before any top-level statement that touches one of them. Checked on the IR, not assumed from
 * the target, so a launcher never overlaps a kernel that would read or add into an uncleared C.
 */
export function clearsByKernel(k: Kernel): boolean {
  if (k.launch.level !== "thread") return false;
  const cleared = zeroInitOutputs(k);
  if (cleared.length === 0) return false;
  const body = k.launch.body;
  if (body[0]?.k === "griddep" && body[0].op === "wait" && body[1]?.k === "griddep" && body[1].op === "launch_dependents") return false;
  const wait = body.findIndex((s) => s.k === "griddep" && s.op === "wait");
  return wait >= 0 && !body.slice(0, wait).some((s) => touchesAny(k, s, cleared));
}
