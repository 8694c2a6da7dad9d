// The WebGPU device for tests, or the reason there is none. Tests that need it are declared
// with `gpuIt`: without a device they are reported as skipped, with the reason in their name,
// so a missing adapter is visible in every run and never counts as a pass.
import { it } from "vitest";
import { type GpuHandle, getGpu } from "../../runtime/webgpu/adapter.ts";

export const gpu = await getGpu();
export const noGpuReason = gpu.ok ? undefined : gpu.reason;
if (noGpuReason) console.warn(`WebGPU tests skipped: ${noGpuReason}`);

export function gpuIt(name: string, fn: () => Promise<void>, timeout?: number): void {
  it.skipIf(!!noGpuReason)(noGpuReason ? `${name} [skipped: ${noGpuReason}]` : name, fn, timeout);
}

/** The device; only called from tests declared with gpuIt. */
export function gpuHandle(): GpuHandle {
  if (!gpu.ok) throw new Error(`no WebGPU device: ${gpu.reason}`);
  return gpu.gpu;
}
