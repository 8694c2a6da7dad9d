// Finding a WebGPU device in Node: Dawn (the `webgpu` npm package) on whatever Vulkan
// driver is there, preferring the project's own lavapipe from scripts/setup-webgpu.sh.
//
// The Vulkan loader reads VK_ICD_FILENAMES when Dawn first enumerates adapters, i.e. at
// requestAdapter, not when the process starts; so setting it in process.env before that
// first call works in-process (vitest workers included). LD_LIBRARY_PATH cannot be changed
// for a running process; lavapipe's own dependencies (libdrm, libLLVM) resolve from the
// system, and `webgpuEnv()` gives the full environment for child processes.
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const LOCAL = join(PROJECT_ROOT, ".webgpu");
const ICD = join(LOCAL, "lvp_icd.json");
const LIBDIR = join(LOCAL, "root/usr/lib/x86_64-linux-gnu");

/** Environment that makes Dawn use the project-local lavapipe (empty when not set up). */
export function webgpuEnv(base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (!existsSync(ICD)) return {};
  const ld = base.LD_LIBRARY_PATH ? `${LIBDIR}:${base.LD_LIBRARY_PATH}` : LIBDIR;
  return { VK_ICD_FILENAMES: ICD, LD_LIBRARY_PATH: ld };
}

export interface GpuHandle {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  isCpu: boolean;
  hasF16: boolean;
  hasSubgroups: boolean;
  hasTimestamps: boolean;
  limits: { maxWorkgroupBytes: number; maxStorageBufferBindingSize: number; maxComputeInvocationsPerWorkgroup: number };
}

export type GpuResult = { ok: true; gpu: GpuHandle } | { ok: false; reason: string };

let cached: Promise<GpuResult> | undefined;

/** The process's WebGPU device, created once; a reason when none can be had. */
export function getGpu(): Promise<GpuResult> {
  cached ??= openGpu();
  return cached;
}

async function openGpu(): Promise<GpuResult> {
  if (!process.env.VK_ICD_FILENAMES && existsSync(ICD)) process.env.VK_ICD_FILENAMES = ICD;
  // Mesa warns on stderr when this is unset; any writable folder will do.
  process.env.XDG_RUNTIME_DIR ??= tmpdir();
  let mod: typeof import("webgpu");
  try {
    mod = await import("webgpu");
  } catch (e) {
    return { ok: false, reason: `the 'webgpu' npm package does not load: ${(e as Error).message}` };
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  // Keeps Dawn's instance alive as long as the device is used.
  (globalThis as { __tilemoeGpu?: unknown }).__tilemoeGpu = gpu;
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    const hint = existsSync(ICD)
      ? `lavapipe is set up (${ICD}) but Dawn found no adapter`
      : "no Vulkan adapter; run scripts/setup-webgpu.sh for the CPU one (lavapipe)";
    return { ok: false, reason: `no WebGPU adapter: ${hint}` };
  }
  const wanted: GPUFeatureName[] = ["shader-f16", "subgroups", "timestamp-query"];
  const features = wanted.filter((f) => adapter.features.has(f));
  const al = adapter.limits;
  try {
    const device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
        maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
        maxBufferSize: al.maxBufferSize,
        maxStorageBuffersPerShaderStage: al.maxStorageBuffersPerShaderStage,
        maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: al.maxComputeWorkgroupSizeX,
      },
    });
    const info = adapter.info;
    return {
      ok: true,
      gpu: {
        device, adapter,
        description: info.description || `${info.vendor} ${info.architecture}`.trim(),
        isCpu: (info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter === true || /llvmpipe|swiftshader|lavapipe/i.test(info.description),
        hasF16: features.includes("shader-f16"),
        hasSubgroups: features.includes("subgroups"),
        hasTimestamps: features.includes("timestamp-query"),
        limits: {
          maxWorkgroupBytes: device.limits.maxComputeWorkgroupStorageSize,
          maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
          maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
        },
      },
    };
  } catch (e) {
    return { ok: false, reason: `the WebGPU adapter refused a device: ${(e as Error).message}` };
  }
}
