// `tilemoe check FILE`: every kernel of FILE that has a check spec (an exported
// `defineCheck({ kernel: ... })`) is run on random cases against its reference.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { tsImport } from "tsx/esm/api";
import type { Kernel } from "../ir/ir.ts";
import { parseKernels } from "../frontend/index.ts";
import { resolveConfig } from "../passes/specialize.ts";
import { checkKernel, type Backend } from "../check/run.ts";
import { isCheckSpec, type CheckSpec } from "../check/spec.ts";
import { backendFor, BACKENDS, type BackendName } from "../check/backends.ts";
import { userError } from "../util/user-error.ts";
import { resolveOwnNames } from "./own-names.ts";
import { intFlag, noKernels, parse, parseAssignments, parseCopy, parseCores, parseDequant, parsePdl, parsePersistent, checkPingpong, checkWarpSpecialize, parseShape, refuseCudaOnly, requireFile, unknownDims, UsageError } from "./args.ts";

const USAGE = "tilemoe check FILE [--kernel K] [--backend interp|cuda|webgpu] [--level tile|thread] [--arch sm_80|sm_90a] [--cases N] [--seed S] [--shape M=..] [--config BM=..] [--data-seed S] [--mma wgmma|sync] [--copy cp.async|tma] [--persistent P] [--ws|--no-ws] [--pingpong] [--dequant wgmma|auto] [--pdl] [--subgroups on|off] [--verbose]";

export async function checkCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    kernel: { type: "string" }, backend: { type: "string" }, level: { type: "string" }, arch: { type: "string" },
    cases: { type: "string" }, seed: { type: "string" }, shape: { type: "string" }, config: { type: "string" },
    "data-seed": { type: "string" }, mma: { type: "string" }, copy: { type: "string" }, persistent: { type: "string" }, ws: { type: "boolean" }, "no-ws": { type: "boolean" }, pingpong: { type: "boolean" }, dequant: { type: "string" }, pdl: { type: "boolean" }, subgroups: { type: "string" }, verbose: { type: "boolean", short: "v" },
  }, USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one FILE\nusage: ${USAGE}`);
  const file = requireFile(positionals[0]!);
  const backendName = ((values.backend as string | undefined) ?? "interp") as BackendName;
  if (!BACKENDS.includes(backendName)) throw new UsageError(`--backend must be one of ${BACKENDS.join(", ")}, got '${backendName}'`);
  if (backendName === "webgpu") refuseCudaOnly(values, "--backend webgpu");
  const level = (values.level as string | undefined) ?? "thread";
  if (level !== "tile" && level !== "thread") throw new UsageError(`--level must be tile or thread`);
  if (level === "tile" && backendName !== "interp") throw new UsageError(`--level tile runs only on the interpreter`);
  if (level === "tile") refuseCudaOnly(values, "--level tile (the kernel before lowering)");
  const arch = (values.arch as string | undefined) ?? "sm_90a";
  if (arch !== "sm_80" && arch !== "sm_90a") throw new UsageError(`--arch must be sm_80 or sm_90a`);
  const cores = parseCores(values.mma);
  const sg = values.subgroups as string | undefined;
  if (sg !== undefined && sg !== "on" && sg !== "off") throw new UsageError(`--subgroups must be on or off, got '${sg}'`);
  if (sg !== undefined && backendName !== "webgpu") throw new UsageError(`--subgroups applies to --backend webgpu only`);
  const subgroups = sg !== "off";
  const copy = parseCopy(values.copy);
  const persistent = parsePersistent(values.persistent);
  // On by default for CUDA builds only: the interpreter checks the portable lowering unless asked.
  const wsArch = backendName === "webgpu" ? "wgsl" : arch;
  const ws = checkWarpSpecialize(values.ws as boolean | undefined, values["no-ws"] as boolean | undefined, wsArch, cores, copy, backendName === "cuda");
  // The reproduce line names --ws / --no-ws only where the choice differs from the default.
  const wsFlag = ws === checkWarpSpecialize(undefined, undefined, wsArch, cores, copy, backendName === "cuda") ? "" : ws ? " --ws" : " --no-ws";
  const pingpong = checkPingpong(values.pingpong as boolean | undefined, ws && backendName !== "webgpu", persistent);
  const dequantWgmma = parseDequant(values.dequant, backendName === "cuda" ? arch : backendName);
  // The interpreter runs the sm_90a lowering with --pdl (its griddepcontrol statements are no-ops there).
  if (values.pdl && backendName === "interp" && level === "tile") throw new UsageError("--pdl is a thread-level lowering: drop --level tile (or --pdl)");
  const pdl = parsePdl(values.pdl as boolean | undefined, backendName === "cuda" ? arch : backendName === "interp" ? "sm_90a" : "wgsl");
  const cases = intFlag(values.cases, "cases", 100, 1);
  const seed = intFlag(values.seed, "seed", 42);

  let kernels = parseKernels(file);
  if (!kernels.length) throw new UsageError(noKernels(file));
  const specs = await loadSpecs(file);
  if (values.kernel) {
    kernels = kernels.filter((k) => k.name === values.kernel);
    if (!kernels.length) throw new UsageError(`${file}: no kernel named '${values.kernel}'`);
  }
  const checked = kernels.filter((k) => specs.has(k.name));
  for (const k of kernels) if (!specs.has(k.name)) console.warn(`${file}: kernel ${k.name} has no check spec (export defineCheck({ kernel: "${k.name}", ... })); skipped`);
  if (!checked.length) throw new UsageError(`${file}: no kernel with a check spec to run`);

  const shape = values.shape ? parseShape(values.shape as string) : undefined;
  // A check spec may draw dims of its own beyond the kernel's (its 'dims').
  if (shape) unknownDims(shape, checked.map((k) => [...k.dims, ...Object.keys(specs.get(k.name)!.dims)]));
  const config = values.config ? parseAssignments(values.config as string, "--config") : undefined;
  // A config the kernel refuses (unknown tunable, value not allowed, its 'where') is the
  // user's mistake: said once, before any case runs (each case would fail with it).
  if (config) for (const k of checked) resolveConfig(k, config);
  let passed = 0, failed = 0, skipped = 0, nothingRan = 0;
  for (const k of checked) {
    const backend: Backend = await backendFor(backendName, { level, arch, cores, copy, persistent, ws, pingpong, subgroups, dequantWgmma, pdl });
    const prefix = `tilemoe check ${file} --kernel ${k.name} --backend ${backendName}${level === "tile" ? " --level tile" : ""}${backendName === "cuda" ? ` --arch ${arch}${cores === "mma" ? " --mma sync" : ""}` : ""}${copy ? ` --copy ${copy}` : ""}${persistent ? ` --persistent ${persistent}` : ""}${wsFlag}${pingpong ? " --pingpong" : ""}${dequantWgmma ? " --dequant wgmma" : ""}${pdl ? " --pdl" : ""}${subgroups ? "" : " --subgroups off"}`;
    const r = await checkKernel(k, specs.get(k.name)!, {
      backendName, backend, cases, seed, reproduce: prefix,
      shape,
      config,
      dataSeed: values["data-seed"] !== undefined ? intFlag(values["data-seed"], "data-seed", 0) : undefined,
      log: values.verbose ? (l) => console.log(`  ${l}`) : undefined,
    });
    console.log(`${k.name} [${backendName}${level === "tile" ? ", tile level" : ""}]: ${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ""}`);
    for (const f of r.failures) console.log(`  FAIL ${f}`);
    if (r.counterexample) console.log(`  smallest failing case:\n  ${r.counterexample}`);
    // Skipped cases are ones the device cannot run (not a verdict on the kernel): said, and when
    // nothing ran at all, an error with the way out.
    for (const why of r.skips) console.log(`  skipped (the ${backendName} device cannot run it): ${why}`);
    if (r.skipped && !r.passed && !r.failed) {
      console.log(`  no case of ${k.name} fits this device: pass --config with smaller tiles (fewer threads, less shared memory), e.g. from its tune space`);
      nothingRan++;
    }
    passed += r.passed; failed += r.failed; skipped += r.skipped;
  }
  if (checked.length > 1) console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  return failed || nothingRan ? 1 : 0;
}

/** The check specs a kernel file exports. Importing the file is safe: `T.kernel` returns
 *  an inert handle and never runs the body. */
export async function loadSpecs(file: string): Promise<Map<string, CheckSpec>> {
  let mod: Record<string, unknown>;
  const url = pathToFileURL(resolve(file)).href;
  resolveOwnNames();
  try {
    mod = await import(url);
  } catch (e) {
    // A .ts outside an ESM package (no package.json with "type": "module" above it, e.g. a file
    // in /tmp) is CommonJS to Node, and its `import`s then fail as a require() cycle: load it as
    // a module through tsx's own import instead.
    if (!/require\(\) ES Module|ERR_REQUIRE_(CYCLE_MODULE|ESM)/.test(`${(e as NodeJS.ErrnoException).code} ${(e as Error).message}`)) throw loadError(file, e);
    try {
      mod = await tsImport(url, import.meta.url);
    } catch (e2) {
      throw loadError(file, e2);
    }
  }
  const out = new Map<string, CheckSpec>();
  for (const v of Object.values(mod)) if (isCheckSpec(v)) out.set(v.kernel, v);
  return out;
}

function loadError(file: string, e: unknown): Error {
  return userError(`${file}: could not load the file's check specs: ${(e as Error).message.split("\n")[0]}`);
}

export type { Kernel };
