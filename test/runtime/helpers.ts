// Shared setup for the runner tests: the runner binary and the fake driver libraries.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { buildRunner } from "../../src/runtime/cuda.ts";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../..");

let runnerP: Promise<string> | undefined;
export function runner(): Promise<string> {
  runnerP ??= buildRunner();
  return runnerP;
}

let mockP: Promise<string> | undefined;
/** A folder holding the fake libcuda.so.1 and libcublas.so.13; put it on LD_LIBRARY_PATH. */
export function mockLibs(): Promise<string> {
  mockP ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), "tilemoe-fakecuda-"));
    const inc = "-I/usr/local/cuda/include";
    const src = join(here, "mock");
    await execa("g++", ["-O1", "-std=c++17", "-shared", "-fPIC", inc, join(src, "fakecuda.cpp"), "-o", join(dir, "libcuda.so.1"), "-Wl,-soname,libcuda.so.1"]);
    await execa("g++", ["-O1", "-std=c++17", "-shared", "-fPIC", inc, join(src, "fakecublas.cpp"), "-o", join(dir, "libcublas.so.13"),
      `-L${dir}`, "-l:libcuda.so.1", "-Wl,-rpath,$ORIGIN"]);
    return dir;
  })();
  return mockP;
}

/** mock/fakelayer.cpp as a shared library (linked to the fake libcuda in `mock`). */
export async function fakeLayerLib(mock: string): Promise<string> {
  const out = join(mock, "libfakelayer.so");
  await execa("g++", ["-O1", "-std=c++17", "-shared", "-fPIC", "-I/usr/local/cuda/include", join(here, "mock", "fakelayer.cpp"), "-o", out,
    `-L${mock}`, "-l:libcuda.so.1", "-Wl,-rpath,$ORIGIN"]);
  return out;
}

/** A fresh plan folder with a (fake) module file in it. */
export function planDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tilemoe-plan-"));
  writeFileSync(join(dir, "m.cubin"), "fake module\n");
  return dir;
}
