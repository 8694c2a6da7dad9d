// Running a thread-level kernel on WebGPU: buffers, pipeline and bind group from the
// kernel's signature, one dispatch of its grid, outputs read back and decoded.
import type { Kernel } from "../../src/ir/ir.ts";
import { evalConst, numericConfig } from "../../src/ir/expr.ts";
import { decode, encode, roundTo } from "../../src/numeric/dtype.ts";
import { type TensorValue, numel } from "../../src/numeric/tensor.ts";
import { type WgslKernel, emitWgsl } from "../../src/codegen/wgsl/index.ts";
import { type GpuHandle, getGpu } from "./adapter.ts";
import { DeviceLimitError } from "../../src/check/device-limit.ts";

/** No WebGPU device in this process; `reason` says why (tests print it when skipping). */
/** No adapter here: a fact of the machine, reported to the user (reportFailure), not a bug. */
export class NoWebGpu extends Error {
  readonly userFacing = true;
}

export interface RunOptions {
  /** Values of dims that cannot be read off tensor shapes (e.g. a dim only in `K/8`). */
  dims?: Record<string, number>;
  /** Timed repetitions after the checked run (0: no timing). */
  reps?: number;
  /** false: expand warp_reduce through workgroup memory even when the device has
   *  `subgroups` (to check the fallback); default: use subgroups when the device has them. */
  subgroups?: boolean;
}

export interface RunResult {
  outputs: Record<string, TensorValue>;
  /** Median GPU time of one dispatch in ms (timestamp queries, else wall clock), when timed. */
  ms?: number;
  timing?: "timestamp" | "wallclock";
  compiled: WgslKernel;
  adapter: string;
}

export async function requireGpu(): Promise<GpuHandle> {
  const r = await getGpu();
  if (!r.ok) throw new NoWebGpu(r.reason);
  return r.gpu;
}

/** Binds every symbolic dim: from `given`, else from a tensor dim whose shape expression
 *  is the bare dim name; then checks every tensor's shape against its expressions. */
export function bindDims(k: Kernel, tensors: Record<string, TensorValue>, given: Record<string, number> = {}): Record<string, number> {
  const dims: Record<string, number> = { ...given };
  for (const p of k.params) {
    if (p.kind !== "tensor") continue;
    const t = tensors[p.name];
    if (!t) continue;
    p.shape!.forEach((e, i) => { if (e.k === "var" && dims[e.name] === undefined && t.shape[i] !== undefined) dims[e.name] = t.shape[i]!; });
  }
  for (const d of k.dims) if (dims[d] === undefined) throw new Error(`${k.name}: dim ${d} is not given and no tensor shape determines it`);
  for (const p of k.params) {
    if (p.kind !== "tensor" || !tensors[p.name]) continue;
    const want = tensorShape(k, p.name, dims);
    const got = tensors[p.name]!.shape;
    if (want.join(",") !== got.join(",")) throw new Error(`${k.name}: tensor ${p.name} has shape [${got}], the kernel expects [${want}]`);
  }
  return dims;
}

function tensorShape(k: Kernel, name: string, dims: Record<string, number>): number[] {
  const p = k.params.find((q) => q.name === name)!;
  return p.shape!.map((e) => {
    const x = evalConst(e, { ...numericConfig(k.config), ...dims });
    if (x === undefined || !Number.isInteger(x)) throw new Error(`${k.name}: shape of ${name} does not evaluate with dims ${JSON.stringify(dims)}`);
    return x;
  });
}


/** Compiles k for the device's features and runs it once (plus `reps` timed runs).
 *  Outputs not given in `tensors` start as zeros. */
export async function runWgsl(
  k: Kernel, tensors: Record<string, TensorValue>, scalars: Record<string, number> = {}, opts: RunOptions = {},
): Promise<RunResult> {
  const gpu = await requireGpu();
  const compiled = emitWgsl(k, { f16: gpu.hasF16, subgroups: gpu.hasSubgroups && opts.subgroups !== false });
  return runCompiled(gpu, k, compiled, tensors, scalars, opts);
}

export async function runCompiled(
  gpu: GpuHandle, k: Kernel, wk: WgslKernel, tensors: Record<string, TensorValue>,
  scalars: Record<string, number>, opts: RunOptions = {},
): Promise<RunResult> {
  const { device } = gpu;
  const dims = bindDims(k, tensors, opts.dims);
  if (wk.workgroupBytes > gpu.limits.maxWorkgroupBytes)
    throw new DeviceLimitError(`${k.name}: needs ${wk.workgroupBytes} bytes of workgroup memory, the device has ${gpu.limits.maxWorkgroupBytes}`);
  if (wk.workgroupSize > gpu.limits.maxComputeInvocationsPerWorkgroup)
    throw new DeviceLimitError(`${k.name}: needs ${wk.workgroupSize} invocations a workgroup, the device allows ${gpu.limits.maxComputeInvocationsPerWorkgroup}`);

  const grid = k.launch.grid.map((e, i) => {
    const x = evalConst(e, { ...numericConfig(k.config), ...dims });
    if (x === undefined || !Number.isInteger(x) || x < 0) throw new Error(`${k.name}: grid dim ${i} does not evaluate to a count`);
    if (x > device.limits.maxComputeWorkgroupsPerDimension) throw new DeviceLimitError(`${k.name}: grid dim ${i} = ${x} exceeds WebGPU's ${device.limits.maxComputeWorkgroupsPerDimension}`);
    return x;
  });

  // Storage buffers, densely packed little-endian, padded to whole 16-byte vectors.
  const buffers: GPUBuffer[] = [];
  const shapes: number[][] = [];
  for (const b of wk.bindings) {
    const shape = tensorShape(k, b.param, dims);
    shapes.push(shape);
    const given = tensors[b.param];
    if (!given && b.access === "read") throw new Error(`${k.name}: input tensor ${b.param} not given`);
    const bytes = given ? encode(b.dtype, given.data) : new Uint8Array(numel(shape) * b.elemBytes);
    const buf = device.createBuffer({
      // Whole 16-byte units: an input the shader reads as array<vec4<..>> must hold its last vector.
      size: Math.max(16, Math.ceil(bytes.length / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      mappedAtCreation: true,
    });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    buffers.push(buf);
  }

  const uni = new DataView(new ArrayBuffer(wk.uniform.size));
  for (const f of wk.uniform.fields) {
    const raw = f.source === "dim" ? dims[f.name] : scalars[f.name];
    if (raw === undefined) throw new Error(`${k.name}: scalar ${f.name} not given`);
    const x = roundTo(f.dtype, raw);
    if (f.wgslType === "f32") uni.setFloat32(f.offset, x, true);
    else if (f.wgslType === "u32") uni.setUint32(f.offset, x >>> 0, true);
    else uni.setInt32(f.offset, x, true);
  }
  const ubuf = device.createBuffer({ size: wk.uniform.size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(ubuf, 0, uni.buffer);

  const pipeline = await makePipeline(device, wk);
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      ...buffers.map((buffer, i) => ({ binding: wk.bindings[i]!.binding, resource: { buffer } })),
      { binding: wk.uniform.binding, resource: { buffer: ubuf } },
    ],
  });

  const dispatch = (enc: GPUCommandEncoder, ts?: { set: GPUQuerySet; i: number }) => {
    const pass = enc.beginComputePass(ts ? { timestampWrites: { querySet: ts.set, beginningOfPassWriteIndex: 2 * ts.i, endOfPassWriteIndex: 2 * ts.i + 1 } } : {});
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    if (grid.every((g) => g > 0)) pass.dispatchWorkgroups(grid[0] ?? 1, grid[1] ?? 1, grid[2] ?? 1);
    pass.end();
  };

  // The checked run.
  const enc = device.createCommandEncoder();
  dispatch(enc);
  const staging: { i: number; buf: GPUBuffer }[] = [];
  wk.bindings.forEach((b, i) => {
    if (b.access !== "read_write") return;
    const s = device.createBuffer({ size: buffers[i]!.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(buffers[i]!, 0, s, 0, buffers[i]!.size);
    staging.push({ i, buf: s });
  });
  device.pushErrorScope("validation");
  device.queue.submit([enc.finish()]);
  const vErr = await device.popErrorScope();
  if (vErr) throw new Error(`${k.name}: WebGPU rejected the dispatch: ${vErr.message}`);
  const outputs: Record<string, TensorValue> = {};
  for (const { i, buf } of staging) {
    await buf.mapAsync(GPUMapMode.READ);
    const b = wk.bindings[i]!;
    const n = numel(shapes[i]!);
    const bytes = new Uint8Array(buf.getMappedRange().slice(0, n * b.elemBytes));
    buf.unmap();
    buf.destroy();
    outputs[b.param] = { dtype: b.dtype, shape: shapes[i]!, data: decode(b.dtype, bytes) };
  }

  const result: RunResult = { outputs, compiled: wk, adapter: gpu.description };
  if (opts.reps && opts.reps > 0) Object.assign(result, await time(gpu, opts.reps, dispatch));
  for (const b of [...buffers, ubuf]) b.destroy();
  return result;
}

// Compiling a shader on lavapipe costs tens of ms; fuzzing reruns one kernel at many shapes.
const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

function makePipeline(device: GPUDevice, wk: WgslKernel): Promise<GPUComputePipeline> {
  let m = pipelines.get(device);
  if (!m) pipelines.set(device, (m = new Map()));
  let p = m.get(wk.wgsl);
  if (!p) {
    p = buildPipeline(device, wk);
    p.catch(() => m!.delete(wk.wgsl));
    m.set(wk.wgsl, p);
  }
  return p;
}

async function buildPipeline(device: GPUDevice, wk: WgslKernel): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ code: wk.wgsl });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length) {
    const lines = wk.wgsl.split("\n");
    const msg = errors.map((m) => `${wk.name}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}\n    ${lines[m.lineNum - 1] ?? ""}`).join("\n");
    throw new Error(`WGSL for ${wk.name} does not compile (internal error in the WGSL backend):\n${msg}`);
  }
  const layout = device.createBindGroupLayout({
    entries: [
      ...wk.bindings.map((b) => ({
        binding: b.binding, visibility: GPUShaderStage.COMPUTE,
        buffer: { type: (b.access === "read" ? "read-only-storage" : "storage") as GPUBufferBindingType },
      })),
      { binding: wk.uniform.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" as GPUBufferBindingType } },
    ],
  });
  device.pushErrorScope("validation");
  const pipeline = await device.createComputePipelineAsync({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: wk.entryPoint },
  }).catch((e: Error) => e);
  const vErr = await device.popErrorScope();
  if (pipeline instanceof Error || vErr) throw new Error(`${wk.name}: pipeline creation failed: ${pipeline instanceof Error ? pipeline.message : vErr!.message}`);
  return pipeline;
}

async function time(
  gpu: GpuHandle, reps: number, dispatch: (enc: GPUCommandEncoder, ts?: { set: GPUQuerySet; i: number }) => void,
): Promise<{ ms: number; timing: "timestamp" | "wallclock" }> {
  const { device } = gpu;
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  if (gpu.hasTimestamps) {
    const set = device.createQuerySet({ type: "timestamp", count: 2 * reps });
    const resolve = device.createBuffer({ size: 16 * reps, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: 16 * reps, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    for (let i = 0; i < reps; i++) dispatch(enc, { set, i });
    enc.resolveQuerySet(set, 0, 2 * reps, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * reps);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(read.getMappedRange().slice(0));
    read.unmap();
    [set, resolve, read].forEach((x) => x.destroy());
    const ms: number[] = [];
    for (let i = 0; i < reps; i++) ms.push(Number(t[2 * i + 1]! - t[2 * i]!) / 1e6);
    return { ms: median(ms), timing: "timestamp" };
  }
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const enc = device.createCommandEncoder();
    dispatch(enc);
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    ms.push(performance.now() - t0);
  }
  return { ms: median(ms), timing: "wallclock" };
}
