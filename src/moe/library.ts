// The generated layer as a shared library (moe_layer_<name>.so) that the GPU runner loads
// with dlopen and calls through moe_layer_<name>_buffers: the layer's .cu compiled to a
// position-independent object (nvcc's cache), then linked with -shared. The CUDA runtime is
// linked statically (nvcc's default), so the library needs only the driver at run time.
import { copyFileSync, existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { archFlags, compileCuda, NvccError, type Arch } from "../driver/nvcc.ts";
import { emitLayerCuda } from "./host.ts";
import type { LayerSpec } from "./layer.ts";
import type { CopyChoice } from "../passes/pipeline.ts";

export interface LayerLibrary {
  /** The library file, in outDir. */
  path: string;
  /** The layer's C symbol prefix (moe_layer_<name>). */
  symbol: string;
  /** ptxas registers and spill ops per stage kernel, for the report. */
  stages: { stage: string; kernel: string; configs: string[]; registers?: number; spills?: number }[];
}

/** `pdl`: programmatic dependent launch along the chain (emitLayerCuda; default on for sm_90a). */
export async function buildLayerLibrary(s: LayerSpec, arch: Arch, outDir: string, copy: CopyChoice = "tma", pdl: boolean = arch === "sm_90a"): Promise<LayerLibrary> {
  const l = emitLayerCuda(s, arch, copy, pdl);
  const obj = await compileCuda(l.cu, { arch, outputs: ["obj"], extraFlags: ["-Xcompiler", "-fPIC"] });
  // The link output is cached beside the object (same content hash); copied into outDir.
  const cached = join(obj.dir, `${l.stem}.so`);
  if (!existsSync(cached)) {
    const tmp = `${cached}.tmp-${process.pid}`;
    const args = ["-shared", ...archFlags(arch), "-o", tmp, obj.objPath!];
    const r = await execa("nvcc", args, { reject: false, all: true });
    if (r.failed) throw new NvccError(r.all ?? "", join(obj.dir, "kernel.cu"), `nvcc ${args.join(" ")}`);
    renameSync(tmp, cached);
  }
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, `${l.stem}.so`);
  copyFileSync(cached, path);
  return {
    path, symbol: l.stem,
    stages: l.lowered.map((st) => {
      const r = obj.resources[`${st.launcher}_kernel`];
      return { stage: st.stage.stage, kernel: st.stage.kernel, configs: st.configs, registers: r?.registers, spills: r ? r.spillLoads + r.spillStores : undefined };
    }),
  };
}
