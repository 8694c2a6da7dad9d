// Shared setup for the tune tests: the fixture kernel, a stand-in for nvcc, and plan options.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { CompileFn } from "../../src/tune/candidates.ts";
import type { KernelResources } from "../../src/driver/nvcc.ts";
import type { PlanOptions } from "../../src/tune/tune.ts";

const here = dirname(fileURLToPath(import.meta.url));
export const FIXTURE = resolve(here, "fixtures/scale.ts");
export const FAKE_RUNNER = resolve(here, "fake-runner.mjs");

export const tmp = (p: string) => mkdtempSync(join(tmpdir(), `tilemoe-tune-${p}-`));

/** A fake nvcc: the "cubin" is the source's symbol; resources come from `res(symbol)`. */
export function fakeCompile(res: (symbol: string) => Partial<KernelResources> = () => ({}), calls: string[] = []): CompileFn {
  return async (cu) => {
    const symbol = /\b(\w+_c\d{3}_kernel)\s*\(/.exec(cu)?.[1];
    if (!symbol) throw new Error("fake nvcc: no kernel symbol in the source");
    calls.push(symbol);
    const r: KernelResources = { registers: 32, smemStatic: 0, spillStores: 0, spillLoads: 0, stackFrame: 0, barriers: 1, lmem: 0, cmem: 0, ...res(symbol) };
    return { cubin: new TextEncoder().encode(`fake cubin ${symbol}\n`), resources: { [symbol]: r } };
  };
}

export function planOptions(over: Partial<PlanOptions> = {}): PlanOptions {
  return {
    file: FIXTURE, shapes: [{ N: 1 << 20 }, { N: 1000 }], arch: "sm_90a", gpus: 1, budgetS: 0, timeoutS: 20,
    timing: { warmup: 2, reps: 5, rotate: "auto" }, compile: fakeCompile(), nvccVersion: "release 13.0, V13.0.88",
    log: () => {}, tty: false, ...over,
  };
}
