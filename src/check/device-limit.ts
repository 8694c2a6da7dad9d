// A case the device cannot run (a tile needing more workgroup memory than it has, a grid past its
// limits) says nothing about the kernel's correctness: backends throw this, and the checker counts
// the case as skipped, with the reason, instead of failed.
export class DeviceLimitError extends Error {
  readonly deviceLimit = true;
}

export const isDeviceLimit = (e: unknown): e is DeviceLimitError =>
  e instanceof Error && (e as Partial<DeviceLimitError>).deviceLimit === true;
