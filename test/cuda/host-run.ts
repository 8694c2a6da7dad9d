// Runs the CUDA C++ that emitCuda writes for a scalar kernel on the host: the kernel's text (and
// the helpers before it) compiled by g++ with the CUDA keywords defined away, called once per
// thread of a one-block grid. Only for kernels of plain scalar code (no shared memory, barriers,
// intrinsics): enough to test what the emitter writes for expressions, loops and branches
// without a GPU. Returns undefined (the caller skips with the reason) when g++ is missing.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function hostCompiler(): string | undefined {
  try {
    execFileSync("g++", ["--version"], { stdio: "ignore" });
    return "g++";
  } catch {
    return undefined;
  }
}

const PRELUDE = `#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstdlib>
struct tm_dim3 { int x = 0, y = 0, z = 0; };
static tm_dim3 threadIdx, blockIdx;
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__
static inline int max(int a, int b) { return a > b ? a : b; }
static inline int min(int a, int b) { return a < b ? a : b; }
`;

/** The helpers and the kernel of an emitted .cu: from the first `static __device__` helper (or the
 *  kernel) to the kernel's closing brace. */
function kernelText(cu: string): string {
  const k = cu.indexOf('extern "C" __global__');
  if (k < 0) throw new Error("no kernel in the emitted source");
  const helper = cu.indexOf("static __device__");
  const end = cu.indexOf("\n}\n", k);
  return cu.slice(helper >= 0 && helper < k ? helper : k, end + 3);
}

/** Compiles `cu`'s kernel with `main` (C++ statements; `call(args)` is the kernel) and runs it;
 *  returns its standard output. */
export function runOnHost(cu: string, kernelSymbol: string, main: string): string {
  const dir = mkdtempSync(join(tmpdir(), "tilemoe-host-"));
  const src = join(dir, "k.cpp"), exe = join(dir, "k");
  writeFileSync(src, `${PRELUDE}${kernelText(cu)}\n#define call ${kernelSymbol}\nint main() {\n${main}\n  return 0;\n}\n`);
  execFileSync("g++", ["-std=c++17", "-O1", "-w", "-o", exe, src], { stdio: ["ignore", "ignore", "pipe"] });
  try {
    return execFileSync(exe, { encoding: "utf8", timeout: 10_000 });
  } catch (e) {
    const killed = (e as { signal?: string }).signal === "SIGTERM";
    throw new Error(killed ? `the emitted kernel did not finish on the host in 10 s (a loop that never ends?): ${src}` : String(e));
  }
}
