// bench/profile.ts without a GPU: ncu's CSV read into kernel times (units, thousands
// separators, quoted commas, ncu's own lines before the header), and a plan case turned
// into the one call that ncu profiles.
import { describe, expect, it } from "vitest";
import { csvFields, oneCall, parseNcuDurations } from "../../bench/profile.ts";
import type { KernelCase, LayerCase } from "../../src/runtime/plan.ts";

const HEAD = '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"';
const row = (name: string, unit: string, value: string, metric = "gpu__time_duration.sum") =>
  `"0","1","runner","h","${name}","1","7","(128, 1, 1)","(224, 128, 1)","0","9.0","Command line profiler metrics","${metric}","${unit}","${value}"`;

describe("ncu CSV", () => {
  it("splits quoted fields with commas and doubled quotes inside", () => {
    expect(csvFields('"a, b","c""d",e')).toEqual(["a, b", 'c"d', "e"]);
  });

  it("reads each kernel's gpu__time_duration in microseconds, name without its signature", () => {
    const csv = ["==PROF== Connected to process 1", HEAD, row("moe_layer_mixtral_bf16_router_kernel", "nsecond", "12,345"),
      row("moe_layer_mixtral_bf16_up_prefill_kernel(int, int)", "usecond", "1.5"), row("x", "byte", "7", "dram__bytes.sum"), "==PROF== Disconnected"].join("\n");
    expect(parseNcuDurations(csv)).toEqual([
      { kernel: "moe_layer_mixtral_bf16_router_kernel", us: 12.345, grid: "(224, 128, 1)", block: "(128, 1, 1)" },
      { kernel: "moe_layer_mixtral_bf16_up_prefill_kernel", us: 1.5, grid: "(224, 128, 1)", block: "(128, 1, 1)" },
    ]);
  });

  it("takes ncu's human-readable units too, and names a unit it does not know", () => {
    expect(parseNcuDurations([HEAD, row("k", "ms", "1.25"), row("k2", "ns", "800")].join("\n")).map((k) => k.us)).toEqual([1250, 0.8]);
    expect(() => parseNcuDurations([HEAD, row("k", "cycle", "5")].join("\n"))).toThrow(/unknown unit 'cycle'/);
  });

  it("no header (ncu failed): no kernels", () => {
    expect(parseNcuDurations("==ERROR== the profiler could not start\n")).toEqual([]);
  });
});

describe("one call of a case", () => {
  it("drops the timing, the saves and the compare; makes the library, module and input file paths absolute", () => {
    const layer: LayerCase = { name: "layer x M=1", time: { reps: 20, flush_l2: true },
      args: [{ tensor: "out", dtype: "f32", shape: [4], save: "out.f32" }],
      layer: { library: "x.so", symbol: "moe_layer_x", tokens: 1, workspace: [{ name: "topk_ids", offset: 0, bytes: 8, save: "ids.i32" }] } };
    const l = oneCall(layer, "/plans/p");
    expect(l.time).toBeUndefined();
    expect(l.args[0]).not.toHaveProperty("save");
    expect(l.layer).toEqual({ library: "/plans/p/x.so", symbol: "moe_layer_x", tokens: 1, workspace: undefined });
    const kernel: KernelCase = { name: "k", module: "m.cubin", kernel: "gemm_kernel", grid: [1], block: [128], time: { reps: 3 },
      compare: { tensor: "C", with: "ref" }, args: [{ tensor: "W", dtype: "u32", shape: [2, 2], init: { file: "w.u32" } }, { i32: 4 }] };
    const k = oneCall(kernel, "/plans/p");
    expect(k).toMatchObject({ module: "/plans/p/m.cubin", args: [{ tensor: "W", init: { file: "/plans/p/w.u32" } }, { i32: 4 }] });
    expect(k.time).toBeUndefined();
    expect(k.compare).toBeUndefined();
  });
});
