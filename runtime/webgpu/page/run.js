// Runs one tilemoe WGSL bundle (`tilemoe build --target wgsl --emit json`) on the
// browser's WebGPU: buffers from the bundle's tensors, the uniform from its layout, one
// dispatch of its grid, outputs read back; then timed repetitions (timestamp queries when
// the adapter offers them, else wall clock around onSubmittedWorkDone).
import { decode, encode, evalExpr, roundTo } from "./numeric.js";

export async function getDevice(features) {
  if (!("gpu" in navigator)) throw new Error("this browser has no WebGPU (navigator.gpu is missing)");
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("navigator.gpu.requestAdapter() returned null: no WebGPU adapter");
  const missing = features.filter((f) => !adapter.features.has(f));
  if (missing.length) throw new Error(`the adapter lacks ${missing.join(", ")}, which this kernel needs`);
  const want = [...features, ...(adapter.features.has("timestamp-query") ? ["timestamp-query"] : [])];
  const device = await adapter.requestDevice({ requiredFeatures: want });
  const info = adapter.info ?? {};
  return { device, timestamps: want.includes("timestamp-query"), adapterName: [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unknown adapter" };
}

/** Shapes of every tensor for the given dims. */
export function shapesOf(bundle, dims) {
  const env = { ...bundle.config, ...dims };
  return Object.fromEntries(bundle.tensors.map((t) => [t.name, t.shape.map((e) => evalExpr(e, env))]));
}

/** Random inputs in [-1, 1), already rounded to their dtypes (seeded, reproducible). */
export function randomInputs(bundle, shapes, seed = 1) {
  let s = seed >>> 0 || 1;
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
  const out = {};
  for (const t of bundle.tensors) {
    if (t.output) continue;
    const n = shapes[t.name].reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = roundTo(t.dtype, 2 * next() - 1);
    out[t.name] = data;
  }
  return out;
}

export async function runBundle(gpu, bundle, dims, inputs, scalars = {}, reps = 5) {
  const { device } = gpu;
  const shapes = shapesOf(bundle, dims);
  const env = { ...bundle.config, ...dims };
  const grid = bundle.grid.map((e) => evalExpr(e, env));
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buffers = bundle.tensors.map((t) => {
    const n = shapes[t.name].reduce((a, b) => a * b, 1);
    const bytes = encode(t.dtype, t.output ? new Float64Array(n) : inputs[t.name]);
    // Whole 16-byte units: inputs read as array<vec4<..>> must hold their last vector.
    const buf = device.createBuffer({ size: Math.max(16, Math.ceil(bytes.length / 16) * 16), usage, mappedAtCreation: true });
    new Uint8Array(buf.getMappedRange()).set(bytes);
    buf.unmap();
    return buf;
  });
  const uni = new DataView(new ArrayBuffer(bundle.uniform.size));
  for (const f of bundle.uniform.fields) {
    const x = f.source === "dim" ? dims[f.name] : scalars[f.name] ?? 1;
    if (f.wgslType === "f32") uni.setFloat32(f.offset, x, true);
    else if (f.wgslType === "u32") uni.setUint32(f.offset, x >>> 0, true);
    else uni.setInt32(f.offset, x, true);
  }
  const ubuf = device.createBuffer({ size: bundle.uniform.size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(ubuf, 0, uni.buffer);

  const module = device.createShaderModule({ code: bundle.wgsl });
  const info = await module.getCompilationInfo();
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length) throw new Error(`WGSL does not compile: ${errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join("; ")}`);
  // An explicit layout (as runtime/webgpu/host.ts builds): "auto" would drop bindings the
  // shader declares but never reads.
  const layout = device.createBindGroupLayout({
    entries: [
      ...bundle.tensors.map((t) => ({ binding: t.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: t.access === "read" ? "read-only-storage" : "storage" } })),
      { binding: bundle.uniform.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
    ],
  });
  const pipeline = await device.createComputePipelineAsync({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: bundle.entryPoint },
  });
  const bindGroup = device.createBindGroup({
    layout,
    entries: [
      ...bundle.tensors.map((t, i) => ({ binding: t.binding, resource: { buffer: buffers[i] } })),
      { binding: bundle.uniform.binding, resource: { buffer: ubuf } },
    ],
  });

  const dispatch = (enc, ts) => {
    const pass = enc.beginComputePass(ts ? { timestampWrites: { querySet: ts.set, beginningOfPassWriteIndex: 2 * ts.i, endOfPassWriteIndex: 2 * ts.i + 1 } } : {});
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    if (grid.every((g) => g > 0)) pass.dispatchWorkgroups(grid[0] ?? 1, grid[1] ?? 1, grid[2] ?? 1);
    pass.end();
  };

  const enc = device.createCommandEncoder();
  dispatch(enc);
  const staging = [];
  bundle.tensors.forEach((t, i) => {
    if (!t.output) return;
    const s = device.createBuffer({ size: buffers[i].size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(buffers[i], 0, s, 0, buffers[i].size);
    staging.push({ t, s });
  });
  device.queue.submit([enc.finish()]);
  const outputs = {};
  for (const { t, s } of staging) {
    await s.mapAsync(GPUMapMode.READ);
    const n = shapes[t.name].reduce((a, b) => a * b, 1);
    outputs[t.name] = decode(t.dtype, new Uint8Array(s.getMappedRange().slice(0)), n);
    s.unmap();
    s.destroy();
  }
  const timing = reps > 0 ? await time(gpu, reps, dispatch) : undefined;
  for (const b of [...buffers, ubuf]) b.destroy();
  return { outputs, shapes, grid, ...timing };
}

async function time(gpu, reps, dispatch) {
  const { device } = gpu;
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  if (gpu.timestamps) {
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
    const ms = [];
    for (let i = 0; i < reps; i++) ms.push(Number(t[2 * i + 1] - t[2 * i]) / 1e6);
    // Browsers may quantize or zero timestamps; fall back to the wall clock then.
    if (ms.some((x) => x > 0)) return { ms: median(ms), timing: "timestamp" };
  }
  const ms = [];
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
