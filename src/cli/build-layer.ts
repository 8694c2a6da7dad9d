// `tilemoe build-layer`: the whole MoE layer of a known model as one .cu + .h (src/moe/).
import { join } from "node:path";
import { emitLayerCuda } from "../moe/host.ts";
import { COMBINES, modelSpec, MODELS, pairsTest, type Combine, type Weights } from "../moe/layer.ts";
import { parse, parsePdl, UsageError } from "./args.ts";
import { claimArtifacts, ensureOutDir, writeArtifact } from "../util/out-dir.ts";

const USAGE = `tilemoe build-layer --model ${Object.keys(MODELS).join("|")} [--weights bf16|w4a16] [--combine atomic|reduce|reduce_bf16] [--only CONFIG] [--copy tma|cp.async] [--arch sm_80|sm_90a] [--pdl|--no-pdl] [-o DIR]`;

export async function buildLayerCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { model: { type: "string" }, weights: { type: "string" }, only: { type: "string" }, copy: { type: "string" },
    combine: { type: "string" }, arch: { type: "string" }, pdl: { type: "boolean" }, "no-pdl": { type: "boolean" }, o: { type: "string", short: "o" } }, USAGE);
  if (positionals.length) throw new UsageError(`build-layer takes no FILE or word (got ${positionals.join(" ")}); the model is --model NAME\nusage: ${USAGE}`);
  const model = values.model as string | undefined;
  if (!model) throw new UsageError(`--model is required\nusage: ${USAGE}`);
  const weights = (values.weights as string | undefined) ?? "bf16";
  if (weights !== "bf16" && weights !== "w4a16") throw new UsageError(`--weights must be bf16 or w4a16, got '${weights}'`);
  const arch = (values.arch as string | undefined) ?? "sm_90a";
  if (arch !== "sm_80" && arch !== "sm_90a") throw new UsageError(`--arch must be sm_80 or sm_90a, got '${arch}'`);
  // One entry of the choice table for every T (to check or time it alone): decode, prefill.
  const only = values.only as string | undefined;
  // Without --combine each entry of the choice table has its own; with it every entry is forced
  // to that combine (A/B measurements; layer moe_layer_<model>_<weights>_<combine>).
  const combine = values.combine as string | undefined;
  if (combine !== undefined && !(COMBINES as readonly string[]).includes(combine)) throw new UsageError(`--combine must be ${COMBINES.join(", ")}, got '${combine}'`);
  const copy = (values.copy as string | undefined) ?? "tma";
  if (copy !== "tma" && copy !== "cp.async") throw new UsageError(`--copy must be tma or cp.async, got '${copy}'`);
  // Programmatic dependent launch along the chain: on by default on sm_90a (docs/LAYER.md, PDL).
  if (values.pdl && values["no-pdl"]) throw new UsageError(`--pdl and --no-pdl exclude each other\nusage: ${USAGE}`);
  const pdl = values["no-pdl"] ? false : values.pdl ? parsePdl(true, arch) : arch === "sm_90a";
  const dir = (values.o as string | undefined) ?? "generated";
  ensureOutDir(dir, "-o");
  const l = emitLayerCuda(modelSpec(model, weights as Weights, combine as Combine | undefined, only), arch, copy, pdl);
  claimArtifacts([join(dir, `${l.stem}.cu`), join(dir, `${l.stem}.h`)]);
  writeArtifact(join(dir, `${l.stem}.cu`), l.cu);
  writeArtifact(join(dir, `${l.stem}.h`), l.h);
  for (const s of l.lowered) {
    const test = pairsTest(s.stage);
    console.log(`${s.stage.stage.padEnd(7)} ${s.stage.kernel.padEnd(20)} ${s.configs.join("+").padEnd(14)} threads=${s.threads} smem=${s.smemBytes} ${Object.entries(s.kernel.config).map(([k, v]) => `${k}=${v}`).join(",")}` +
      `${s.kernel.tensorMaps?.length ? ` tma=${s.kernel.tensorMaps.map((m) => m.tensor).join(",")}` : ""}` +
      `${test ? ` (calls with T * top_k ${test.op} ${test.n})` : ""}`);
  }
  console.log(`-> ${join(dir, l.stem)}.cu, .h${pdl ? " (programmatic dependent launch; --no-pdl for plain launches)" : ""}`);
  return 0;
}
