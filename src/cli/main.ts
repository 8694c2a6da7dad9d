// Entry point of the `tilemoe` command: dispatch to one command module, and turn every
// failure a user can cause into a message and an exit code (never a stack trace).
import { CompileError } from "../ir/ir.ts";
import { UsageError } from "./args.ts";

const HELP = `tilemoe — tile-level DSL for Mixture-of-Experts GPU kernels

usage:
  tilemoe build FILE [--kernel K] [--config BM=128,BN=128,...] [--arch sm_80|sm_90a] [--mma wgmma|sync]
                     [--copy cp.async|tma] [--persistent P] [--ws] [--pingpong] [--dequant wgmma|auto] [--target cuda|wgsl] [--emit ir,cu,h,ptx,cubin,wgsl,json] [--shape M=..] [-o DIR]
  tilemoe build-all [-o DIR]          compile every kernel in dsl-examples/ and print a summary
  tilemoe build-layer --model mixtral|qwen3 [--weights bf16|w4a16] [--combine atomic|reduce] [--only CONFIG] [--copy tma|cp.async] [-o DIR]
                                      the whole MoE layer as one .cu + .h (moe_layer_<model>_<weights>);
                                      --combine forces every entry's top-k combine (default: each entry's own)
  tilemoe check FILE [--kernel K] [--backend interp|cuda|webgpu] [--cases N] [--seed S]
                     [--shape M=..,N=..] [--config ...] [--level tile|thread] [--arch ..] [--mma ..]
                     [--copy cp.async|tma]   (tma: sm_90a operand tiles by TMA + mbarriers)
                     [--persistent P]        (P blocks loop over the tiles, e.g. P = SM count)
                     [--ws]                  (sm_90a TMA pipelines: a producer warpgroup, setmaxnreg)
                     [--pingpong]            (with --ws --persistent P: two consumer warpgroups alternate tiles; warps=4)
                     [--dequant wgmma|auto]  (sm_90a: dequant gemms under 64 rows on the register-A wgmma)
                     [--subgroups on|off]   (webgpu: off checks warp_reduce's workgroup-memory path)
  tilemoe tune FILE [--kernel K] --shape M=..,N=.. [--shape ...] [--plan DIR] [--report DIR] [--cache PATH]
  tilemoe tune --ingest DIR/results.json      (see docs/TUNE.md)
  tilemoe help`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      // Commands load lazily: `check` need not pay for nvcc plumbing, nor `build` for fast-check.
      case "build": return await (await import("./build.ts")).buildCommand(rest);
      case "build-all": return await (await import("./build.ts")).buildAllCommand(rest);
      case "build-layer": return await (await import("./build-layer.ts")).buildLayerCommand(rest);
      case "check": return await (await import("./check.ts")).checkCommand(rest);
      case "tune": return await (await import("./tune.ts")).tuneCommand(rest);
      case undefined: case "help": case "--help": case "-h":
        console.log(HELP);
        return cmd === undefined ? 1 : 0;
      default:
        console.error(`tilemoe: unknown command '${cmd}'\n\n${HELP}`);
        return 1;
    }
  } catch (e) {
    return reportFailure(e);
  }
}

/** The one place errors become output. Known kinds print their message; anything else
 *  is a compiler bug, said so plainly, with the stack kept out of the user's way unless
 *  TILEMOE_DEBUG is set. */
export function reportFailure(e: unknown): number {
  if (e instanceof CompileError || e instanceof UsageError) {
    console.error(e.message);
    return 1;
  }
  if (e instanceof Error && (e as { userFacing?: boolean }).userFacing) {
    console.error(`tilemoe: ${e.message}`);
    return 1;
  }
  const msg = e instanceof Error ? e.message : String(e);
  console.error(`tilemoe: internal error: ${msg}\n(this is a bug in tilemoe; rerun with TILEMOE_DEBUG=1 for the stack and report it)`);
  if (process.env.TILEMOE_DEBUG && e instanceof Error) console.error(e.stack);
  return 2;
}
