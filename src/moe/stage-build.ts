// A layer stage's config holds the kernel's tunables and, for the grouped GEMMs of an entry
// (LayerConfig.up / .down), build options that are not tunables: `persistent: P` builds the
// stage with P persistent blocks (Target.persistentBlocks; persistent-grid.ts: the grid is
// min(G, P) blocks looping over the tiles, and with warp specialization the producer runs
// ahead across them); `pingpong: true` (with persistent) builds it with ping-pong consumers
// (Target.pingpong; ping-pong.ts: two warpgroups of the config's warps = 4 alternate tiles).
// The generated launcher sizes the grid from the lowered kernel's grid
// expression, which already says min(G, P).
import type { Kernel, TunableValue } from "../ir/ir.ts";
import { lower, type Target } from "../passes/pipeline.ts";
import type { Arch } from "../driver/nvcc.ts";
import { ARCH_LIMITS, kib } from "../tune/limits.ts";
import { userError } from "../util/user-error.ts";
import type { Stage } from "./layer.ts";

/** The tunables to lower the stage's kernel with, and its target. */
export function stageBuild(stage: Stage, target: Target): { config: Record<string, TunableValue>; target: Target } {
  const { persistent, pingpong, ...config } = stage.config;
  if (pingpong !== undefined && pingpong !== false && (pingpong !== true || persistent === undefined))
    throw userError(`layer stage '${stage.stage}' (${stage.kernel}): 'pingpong' is true or false and needs 'persistent: P' beside it (ping-pong alternates the tiles of persistent blocks), got pingpong ${JSON.stringify(pingpong)}${persistent === undefined ? " without persistent" : ""}`);
  if (persistent === undefined) return { config, target };
  if (typeof persistent !== "number" || !Number.isInteger(persistent) || persistent < 1)
    throw userError(`layer stage '${stage.stage}' (${stage.kernel}): 'persistent' is a block count (e.g. 132, the SM count of an H100 SXM or H200), got ${JSON.stringify(persistent)}`);
  return { config, target: { ...target, persistentBlocks: persistent, ...(pingpong ? { pingpong: true } : {}) } };
}

/** The stage's kernel lowered for `arch`. The choice table's configs are measured on sm_90a (227 KiB
 *  of shared memory a block); where a stage's block needs more than `arch` allows (sm_80: 163 KiB),
 *  it is lowered again with one pipeline stage fewer until it fits, so that the layer builds for
 *  every target. A stage that does not fit at 2 stages is the table's error, said as such.
 *  `limit`: the bytes a block may have (the arch's; smaller in tests). */
export function lowerStage(stage: Stage, kernel: Kernel, target: Target, arch: Arch, limit = ARCH_LIMITS[arch].smemPerBlock): Kernel {
  const b = stageBuild(stage, target);
  let config = b.config;
  for (;;) {
    const low = lower(kernel, config, b.target);
    const smem = low.smemBytes ?? 0;
    if (smem <= limit) return low;
    const stages = config.stages;
    if (typeof stages !== "number" || stages <= 2)
      throw userError(`layer stage '${stage.stage}' (${stage.kernel}, ${Object.entries(config).map(([k, v]) => `${k}=${v}`).join(",")}): ` +
        `its block needs ${kib(smem)} of shared memory, over the ${kib(limit)} ${arch} allows; give the entry smaller tiles (BM, BN, BK) in src/moe/layer.ts`);
    config = { ...config, stages: stages - 1 };
  }
}
