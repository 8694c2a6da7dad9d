// The layer's CUDA: every stage lowered and emitted with its own C launcher (emitCuda), in
// one translation unit, then the layer's launcher (templates/layer.*.hbs) that picks the
// choice-table entry for T (moe_layer_<name>_config), carves the workspace and calls the
// stage launchers in order, argument lists taken from the lowered kernels' params and dims
// through the stage's binding table. A stage whose kernel and config are the same in every
// entry that runs it (gating, routing) is emitted once; one that differs (router, up, down) is
// emitted per entry, and one that differs or that some entries skip (permute) is called under
// `if (config == i)`.
import { readFileSync } from "node:fs";
import Handlebars from "handlebars";
import { byteSize, type Kernel } from "../ir/ir.ts";
import { type CopyChoice, cudaTarget } from "../passes/pipeline.ts";
import { emitCuda, smemAlignment } from "../codegen/cuda/index.ts";
import { storageType } from "../codegen/cuda/types.ts";
import { lowerStage } from "./stage-build.ts";
import { waitsForPredecessor } from "../passes/programmatic-launch.ts";
import { zeroInitOutputs } from "../ir/zero-init.ts";
import { userError } from "../util/user-error.ts";
import { buffers, combineOf, type LayerSpec, pairsTest, quantitiesC, REDUCES_CODE, runsAt, type Stage, stageKernels, stageKey, WS_ALIGN } from "./layer.ts";

const tpl = (f: string) =>
  Handlebars.compile(readFileSync(new URL(`./templates/${f}`, import.meta.url), "utf8"), { noEscape: true, strict: true });
const headerTpl = tpl("layer.h.hbs");
const launcherTpl = tpl("layer.cu.hbs");

export interface LayerCuda {
  /** File stem: moe_layer_<name>. */
  stem: string;
  cu: string;
  h: string;
  /** Each distinct lowered (thread-level) stage kernel, in launch order, with the names of
   *  the choice-table entries that run it. */
  lowered: { stage: Stage; kernel: Kernel; launcher: string; smemBytes: number; threads: number; configs: string[] }[];
}

/** `copy`: how sm_90a operand tiles reach shared memory where the TMA lowering applies (the
 *  bf16 down projection's A rows and weight tiles; the up projections' row gather and the
 *  packed w4a16 tiles stay cp.async). Each stage launcher encodes its own tensor maps.
 *  `pdl` (sm_90a only, its default there): programmatic dependent launch along the chain
 *  (docs/LAYER.md, PDL): every stage kernel waits for its predecessor at its top and is launched
 *  with the PDL attribute, and the outputs that stages only add into are cleared by the layer
 *  launcher before its first kernel (hoistedClears), so no memset sits between two kernels. */
export function emitLayerCuda(s: LayerSpec, arch: "sm_80" | "sm_90a" = "sm_90a", copy: CopyChoice = "tma", pdl: boolean = arch === "sm_90a"): LayerCuda {
  if (pdl && arch !== "sm_90a")
    throw userError(`layer ${s.name}: programmatic dependent launch needs sm_90a (griddepcontrol is an sm_90 instruction), got ${arch}; build the layer without it (build-layer --no-pdl)`);
  const q = quantitiesC(s);
  const bufs = buffers(s);
  const table = stageKernels(s);
  const names = stageNames(table.map((e) => e.stages.map(({ stage }) => stage.stage)));
  /** Entry ci's stage of that name, if it runs one. */
  const stageOf = (ci: number, stageName: string) => table[ci]!.stages.find(({ stage }) => stage.stage === stageName);
  // Distinct stage kernels by (file, kernel, config), in launch order; named by stage, and by
  // entry where the stage differs between the entries that run it.
  type Unit = { key: string; stage: Stage; kernel: Kernel; name: string; configs: string[] };
  const units = new Map<string, Unit>();
  for (const stageName of names) {
    const keys = table.map((_, ci) => { const st = stageOf(ci, stageName); return st && stageKey(st.stage); });
    const shared = keys.every((k) => k === undefined || k === keys.find((x) => x !== undefined));
    table.forEach((e, ci) => {
      const key = keys[ci];
      if (key === undefined) return;
      const u = units.get(key);
      if (u) { u.configs.push(e.config.name); return; }
      const { stage, kernel } = stageOf(ci, stageName)!;
      units.set(key, { key, stage, kernel, name: `moe_layer_${s.name}_${stageName}${shared ? "" : `_${e.config.name}`}`, configs: [e.config.name] });
    });
  }
  // The layer clears with memsets (hoisted before its first kernel under PDL), never with the
  // standalone launchers' zero kernel (overlap-clears.ts): its chain is PDL's own.
  const target = cudaTarget(arch, "wgmma", copy, undefined, true, { pdl, clearKernel: false });
  const lows = [...units.values()].map((u) => ({ ...u, kernel: lowerStage(u.stage, u.kernel, target, arch) }));
  const clears = pdl ? hoistedClears(table, lows) : new Map<string, string[]>();
  // One unit, one `smem` symbol: every stage declares the largest alignment any of them needs.
  const smemAlign = Math.max(...lows.map(({ kernel }) => smemAlignment(kernel)));
  const lowered = lows.map((u) => ({ ...u, out: emitCuda(u.kernel, { name: u.name, smemAlign, callerClears: clears.get(u.key) }) }));
  const byKey = new Map(lowered.map((u) => [u.key, u]));
  const ctype = (name: string) => {
    // A buffer's C type is the one its first consumer declares (kernels agree by construction).
    for (const { stage, kernel } of lowered)
      for (const p of kernel.params)
        if (p.kind === "tensor" && stage.bind[p.name] === name) return storageType(p.dtype);
    throw new Error(`layer buffer ${name} is bound to no kernel param`);
  };
  const used = new Set(lowered.flatMap(({ stage, kernel }) => kernel.params.map((p) => stage.bind[p.name]!)));
  const caller = bufs.filter((b) => !b.workspace && used.has(b.name));
  const bytes = (b: (typeof bufs)[number]) => [...b.numel.map((f) => (typeof f === "number" ? String(f) : `(int64_t)${q[f]}`)), String(byteSize(b.dtype))].join(" * ");
  const call = (u: (typeof lowered)[number]) => {
    const arg = (name: string) => {
      const v = u.stage.bind[name]!;
      return v in q ? q[v]! : v;
    };
    const tensors = u.kernel.params.filter((p) => p.kind === "tensor").map((p) => arg(p.name));
    const scalars = u.kernel.params.filter((p) => p.kind === "scalar").map((p) => `(${storageType(p.dtype)})${arg(p.name)}`);
    const dims = u.kernel.dims.map((d) => `(int64_t)${arg(d)}`);
    // A kernel that waits for its predecessor has an _ex launcher: PDL on or off by the layer's `pdl`.
    return waitsForPredecessor(u.kernel)
      ? `${u.out.launcher}_ex(${[...tensors, ...scalars, ...dims].join(", ")}, stream, pdl)`
      : `${u.out.launcher}(${[...tensors, ...scalars, ...dims].join(", ")}, stream)`;
  };
  const calls = names.map((stageName, i) => {
    const us = table.map((_, ci) => { const st = stageOf(ci, stageName); return st && byKey.get(stageKey(st.stage))!; });
    const runs = us.flatMap((u, ci) => (u ? [{ u, ci }] : []));
    const everyEntry = runs.length === table.length;
    const code = everyEntry && runs.every(({ u }) => u === runs[0]!.u)
      ? `  err = ${call(runs[0]!.u)};`
      : runs.map(({ u, ci }, j) => `  ${j === 0 ? "if" : "else if"} (config == ${ci}) err = ${call(u)};  // ${table[ci]!.config.name}`)
        .join("\n").replace(/else if \(config == \d+\)( err = [^\n]*)$/, everyEntry ? "else$1" : "$&");
    // A stage of some calls only (gate_align, or gate and align, by the pair count P = T * top_k):
    // its calls under the condition, err 0 otherwise. Every entry runs the same stages of this
    // kind, so its first run tells the condition.
    const test = pairsTest(runs[0]!.u.stage);
    const cond = test ? `${q.P!} ${test.op} ${test.n}` : "";
    const guarded = cond ? `  if (${cond}) {\n${code.replace(/^/gm, "  ")}\n  }` : code;
    // An entry that skips the stage leaves err at 0 (set before each stage).
    const skip = everyEntry && !cond ? "" : "  err = 0;\n";
    // The error text of the entry that ran (`config`, the launcher's entry; -1 where the table's
    // error string cannot know it: the first entry's). One kernel's launchers differ only in the
    // name; entries whose kernels differ (down: atomic or row-storing) have texts of their own.
    const e = `code % MOE_LAYER_${s.name.toUpperCase()}_STAGE`;
    const fn = (u: (typeof lowered)[number]) => `${u.out.launcher}_error_string(${e})`;
    const kernels = new Set(runs.map(({ u }) => u.kernel.name));
    const errorText = kernels.size === 1 ? fn(runs[0]!.u)
      : [...runs.map(({ u, ci }) => `config == ${ci} ? ${fn(u)} : `), fn(runs[0]!.u)].join("");
    return { stage: stageName, code: skip + guarded, errorText, base: `${i + 1} * MOE_LAYER_${s.name.toUpperCase()}_STAGE` };
  });
  // The hoisted clears, at the top of the layer launcher: one memset per buffer, for the entries
  // whose stage needs it (a CUDA error is reported as the first such stage's).
  const upper = s.name.toUpperCase();
  const byBuffer = new Map<string, { entries: Set<number>; stages: Set<string>; first: (typeof lowered)[number] }>();
  for (const u of lowered)
    for (const param of clears.get(u.key) ?? []) {
      const name = u.stage.bind[param]!;
      const c = byBuffer.get(name) ?? { entries: new Set<number>(), stages: new Set<string>(), first: u };
      u.configs.forEach((n) => c.entries.add(table.findIndex((e) => e.config.name === n)));
      c.stages.add(`${u.stage.stage}: ${u.kernel.name}`);
      byBuffer.set(name, c);
    }
  const clearCode = [...byBuffer].map(([name, { entries, stages: who, first }]) => {
    const b = bufs.find((x) => x.name === name)!;
    const stageNo = names.indexOf(first.stage.stage) + 1;
    const cond = entries.size === table.length ? "" : `if (${[...entries].sort((a, b) => a - b).map((i) => `config == ${i}`).join(" || ")}) `;
    return { text: `${name} (${[...who].join("; ")}: only adds into it)`,
      code: `  ${cond}{\n    const cudaError_t e = cudaMemsetAsync(${name}, 0, (size_t)(${bytes(b)}), stream);\n` +
        `    if (e != cudaSuccess) return ${stageNo} * MOE_LAYER_${upper}_STAGE + ${first.out.launcher.toUpperCase()}_ERR_CUDA + (int)e;\n  }` };
  });
  const configs = table.map(({ config: c }, i) => ({
    index: i, name: c.name, blockSize: c.blockSize, last: i === table.length - 1,
    cond: c.maxTokens === null ? null : `T <= ${c.maxTokens}`,
    range: c.maxTokens === null ? (i === 0 ? "every T" : `T > ${table[i - 1]!.config.maxTokens}`) : (i === 0 ? `T <= ${c.maxTokens}` : `${table[i - 1]!.config.maxTokens} < T <= ${c.maxTokens}`),
    text: `routing block ${c.blockSize}; up ${configText(c.up)}; down ${configText(c.down)}; combine ${combineOf(c)}`,
  }));
  const fusedPairs = table[0]!.stages.map(({ stage }) => stage.pairs).find((p) => p && "atMost" in p) as { atMost: number } | undefined;
  const data = {
    name: s.name, upper: s.name.toUpperCase(), E: s.experts, H: s.hidden, N: s.intermediate, K: s.topK,
    activation: s.activation === "silu" ? "SiLU(gate) * up" : "GELU(gate) * up", weights: s.weights, renorm: s.renormalize,
    buffers: caller.map((b) => ({ name: b.name, dtype: b.dtype, doc: b.doc })),
    params: caller.map((b) => `${b.output ? "" : "const "}${ctype(b.name)}* ${b.name}`),
    casts: caller.map((b) => `${b.output ? "" : "const "}${ctype(b.name)}*`),
    args: caller.map((b) => b.name),
    nbuffers: caller.length,
    combineText: combineText(table.map((e) => e.config)),
    // Launches of a call with many pairs, and of one at the switch (gating and routing in one kernel).
    launchCount: launchCounts(table.map((e) => ({ name: e.config.name, n: e.stages.filter(({ stage }) => runsAt(stage, Infinity)).length }))) +
      (fusedPairs ? ` (${launchCounts(table.map((e) => ({ name: e.config.name, n: e.stages.filter(({ stage }) => runsAt(stage, fusedPairs.atMost)).length })))
        .toLowerCase()} where T * top_k <= ${fusedPairs.atMost}: gating and routing in one kernel)` : ""),
    permutes: table.map((e) => (e.config.permute ? 1 : 0)).join(", "),
    permuteText: table.filter((e) => e.config.permute).map((e) => e.config.name).join(", "),
    reduces: table.map((e) => REDUCES_CODE[combineOf(e.config)]).join(", "),
    reduceText: table.filter((e) => combineOf(e.config) !== "atomic").map((e) => e.config.name).join(", "),
    stageList: names.map((n, i) => `${i + 1} ${n}`).join(", "),
    workspace: bufs.filter((b) => b.workspace).map((b) => ({ name: b.name, ctype: ctype(b.name), bytes: bytes(b) })),
    wsAlign: WS_ALIGN, wsAlignMask: WS_ALIGN - 1, calls, configs, nconfigs: configs.length,
    blockSizes: configs.map((c) => c.blockSize).join(", "),
    pdl, clears: clearCode,
  };
  const h = headerTpl(data);
  const cu = [
    `// moe_layer_${s.name}.cu: generated by tilemoe. Do not edit. The layer's API is in moe_layer_${s.name}.h.`,
    h.replace("#pragma once\n", ""),
    ...dedupeHelpers(lowered.map(({ out }) => out.cu)),
    launcherTpl(data),
  ].join("\n");
  return {
    stem: `moe_layer_${s.name}`, cu, h,
    lowered: lowered.map(({ stage, kernel, out, configs }) => ({ stage, kernel, launcher: out.launcher, smemBytes: out.smemBytes, threads: out.threads, configs })),
  };
}

/**
 * Outputs that a stage kernel only adds into (src/ir/zero-init.ts: its launcher would clear them
 * with cudaMemsetAsync right before the kernel) that the layer launcher can clear before its first
 * kernel instead, by unit key -> the kernel's param names. Right where no earlier stage of any
 * entry that runs the unit binds the same buffer: nothing of this layer call reads or writes it
 * before that stage, and the memset, a plain stream operation, is ordered after everything the
 * stream ran before the layer. A buffer that fails the check keeps its clear in the launcher.
 */
export function hoistedClears(table: ReturnType<typeof stageKernels>, units: { key: string; kernel: Kernel; configs: string[] }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const u of units) {
    const params = zeroInitOutputs(u.kernel).filter((param) => u.configs.every((name) => {
      const stagesOf = table.find((e) => e.config.name === name)!.stages;
      const at = stagesOf.findIndex(({ stage }) => stageKey(stage) === u.key);
      const buffer = stagesOf[at]!.stage.bind[param];
      return stagesOf.slice(0, at).every(({ stage }) => !Object.values(stage.bind).includes(buffer!));
    }));
    if (params.length) out.set(u.key, params);
  }
  return out;
}

/** Stage names of all entries in launch order: each entry's order kept, a stage that only some
 *  entries run (permute) placed after the stage it follows in them. */
export function stageNames(lists: string[][]): string[] {
  const names: string[] = [];
  for (const list of lists)
    list.forEach((n, i) => {
      if (names.includes(n)) return;
      names.splice(i === 0 ? 0 : names.indexOf(list[i - 1]!) + 1, 0, n);
    });
  return names;
}

const NUMBERS = ["", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight"];

/** "Five kernel launches", or per entry where they differ: "Five (decode) or six (prefill)". */
function launchCounts(entries: { name: string; n: number }[]): string {
  const word = (n: number) => NUMBERS[n] ?? String(n);
  if (entries.every((e) => e.n === entries[0]!.n)) return word(entries[0]!.n);
  return entries.map((e, i) => `${i === 0 ? word(e.n) : word(e.n).toLowerCase()} (${e.name})`).join(" or ");
}

const COMBINE_TEXT = { atomic: "f32 atomics", reduce: "a row per (token, slot) pair, then a weighted reduction",
  reduce_bf16: "a bf16 row per (token, slot) pair, then a weighted reduction in f32" } as const;

/** The header's words for the top-k combine: one, or each entry's where they differ. */
function combineText(configs: LayerSpec["configs"]): string {
  const all = configs.map(combineOf);
  if (all.every((c) => c === all[0])) return COMBINE_TEXT[all[0]!];
  return configs.map((c) => `${COMBINE_TEXT[combineOf(c)]} (${c.name})`).join(" or ");
}

const configText = (c: Record<string, unknown>) => Object.entries(c).map(([k, v]) => `${k}=${v}`).join(",");

/** Stage units one after another. Each carries the static device helpers it uses
 *  (tm_sigmoid...): a second definition in the same unit would not compile, so a helper
 *  already emitted is dropped, whole: one line, or (tm_fmax's #ifdef) the lines from its
 *  `static __device__` line to the first line that is a lone `}`. */
function dedupeHelpers(units: string[]): string[] {
  const seen = new Set<string>();
  return units.map((u) => {
    const lines = u.split("\n"), out: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (!lines[i]!.startsWith("static __device__")) { out.push(lines[i]!); continue; }
      let end = i;
      if (!lines[i]!.trimEnd().endsWith("}")) while (end + 1 < lines.length && lines[end] !== "}") end++;
      const helper = lines.slice(i, end + 1).join("\n");
      if (!seen.has(helper)) { seen.add(helper); out.push(...lines.slice(i, end + 1)); }
      i = end;
    }
    return out.join("\n");
  });
}
