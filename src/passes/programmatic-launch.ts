// programmaticLaunch: with Target.pdl (sm_90a, `--pdl`), the kernel may be launched with
// programmatic dependent launch (PDL: cudaLaunchKernelEx with
// cudaLaunchAttributeProgrammaticStreamSerialization), which lets it start before the previous
// kernel of the stream has finished. So the thread-level body starts with
//   griddepcontrol.wait               every thread: the previous kernel has completed and its
//                                     writes are visible before this kernel touches global memory
//   griddepcontrol.launch_dependents  the next PDL kernel of the stream may start as soon as every
//                                     block of this one has passed its wait
// The wait is at the very top, before any load or store, because a compiled kernel cannot know
// which of its tensors the previous kernel writes, nor which it still reads (a write before the
// wait could overwrite what the previous kernel reads). What PDL then overlaps is the next
// kernel's launch, block scheduling and register/shared allocation with this kernel's run, and
// the previous kernel's tail and memory flush with this kernel's start (docs/LAYER.md, PDL).
// Every thread waits, so a kernel completes only after its predecessor has: completion is
// transitive along a chain, which lets a kernel rely on all earlier kernels' writes, not only
// its direct predecessor's. The trigger after the wait (not before it) keeps at most one grid
// waiting behind a running one. Both instructions are no-ops for a kernel launched without PDL.
// Runs last, on the thread-level kernel (the persistent tile loop and the warp roles already
// exist, so the two statements are outside both; persistentGrid has consumed Launch.setup).
import type { Kernel, Stmt } from "../ir/ir.ts";
import { userError } from "../util/user-error.ts";
import type { PassOptions } from "./types.ts";

export const PDL_PROLOGUE: readonly Stmt[] = [{ k: "griddep", op: "wait" }, { k: "griddep", op: "launch_dependents" }];

export function programmaticLaunch(k: Kernel, opts: PassOptions): Kernel {
  if (!opts.target.pdl) return k;
  if (opts.target.arch !== "sm_90a")
    throw userError(`kernel ${k.name}: programmatic dependent launch (--pdl) needs sm_90a (griddepcontrol is a PTX sm_90 instruction); ` +
      `drop --pdl or build with --arch sm_90a`);
  if (k.launch.level !== "thread") throw new Error("programmaticLaunch runs on thread-level kernels (after lowerToThreads)");
  if (k.launch.body.some((s) => s.k === "griddep")) return k;
  return { ...k, launch: { ...k.launch, body: [...PDL_PROLOGUE, ...k.launch.body] } };
}

/** Whether a lowered kernel starts with the chain-mode prologue (the wait, then the trigger), so
 *  its launcher may launch it with PDL behind any kernel (the `_ex` launcher). A wait alone that
 *  guards only the cleared outputs (overlapClears) is not this. */
export const waitsForPredecessor = (k: Kernel): boolean => k.launch.level === "thread" &&
  k.launch.body[0]?.k === "griddep" && k.launch.body[0].op === "wait" && k.launch.body[1]?.k === "griddep" && k.launch.body[1].op === "launch_dependents";
