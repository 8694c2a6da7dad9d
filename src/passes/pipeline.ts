// The lowering pipeline, in order, in one place: tile-level kernel -> thread-level kernel.
import type { Kernel, TunableValue } from "../ir/ir.ts";
import { specialize } from "./specialize.ts";
import { checkDequantBlocks } from "./check-dequant-blocks.ts";
import { inferTypes } from "./infer-types.ts";
import { lowerIntDivision } from "./lower-int-division.ts";
import { inferLayouts } from "./infer-layouts.ts";
import { padPackedTiles } from "./pad-packed-tiles.ts";
import { lowerToThreads } from "./lower-threads.ts";
import { persistentGrid } from "./persistent-grid.ts";
import { warpSpecialize } from "./warp-specialize.ts";
import { pingPong } from "./ping-pong.ts";
import { simplify } from "./simplify.ts";
import { overlapClears } from "./overlap-clears.ts";
import { programmaticLaunch } from "./programmatic-launch.ts";
import type { Pass, PassOptions, Target } from "./types.ts";

export type { Target, PassOptions, Pass } from "./types.ts";
export { SM80, SM90A, WGSL, cudaTarget, type TensorCoreChoice, type CopyChoice } from "./types.ts";

export const PASSES: readonly { name: string; run: Pass }[] = [
  { name: "specialize", run: specialize },
  { name: "checkDequantBlocks", run: checkDequantBlocks },
  { name: "inferTypes", run: inferTypes },
  { name: "lowerIntDivision", run: lowerIntDivision },
  { name: "inferLayouts", run: inferLayouts },
  { name: "padPackedTiles", run: padPackedTiles },
  { name: "lowerToThreads", run: lowerToThreads },
  { name: "persistentGrid", run: persistentGrid },
  { name: "warpSpecialize", run: warpSpecialize },
  { name: "pingPong", run: pingPong },
  { name: "simplify", run: simplify },
  { name: "overlapClears", run: overlapClears },
  { name: "programmaticLaunch", run: programmaticLaunch },
];

/** Runs every pass; `onStage` sees the kernel after each (for `--emit ir` and tests). */
export function lower(k: Kernel, config: Record<string, TunableValue>, target: Target,
  onStage?: (name: string, k: Kernel) => void): Kernel {
  const opts: PassOptions = { config, target };
  for (const p of PASSES) {
    k = p.run(k, opts);
    onStage?.(p.name, k);
  }
  return k;
}
