// The browser page (runtime/webgpu/page/) in headless Chromium: bundles built here the way
// `tilemoe build --target wgsl --emit json` writes them, served by runtime/webgpu/serve.js,
// run by the page through Chromium's own WebGPU (SwiftShader on the CPU, with
// --enable-unsafe-webgpu), checked against the page's JS reference; the page POSTs its
// result back. Skipped, with the reason, where /usr/bin/chromium is not installed.
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { parseKernels } from "../../src/frontend/index.ts";
import { lower, WGSL } from "../../src/passes/pipeline.ts";
import { emitWgsl, wgslBundle } from "../../src/codegen/wgsl/index.ts";
// @ts-expect-error plain JS module without types
import { startServer } from "../../runtime/webgpu/serve.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const noChromium = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} not installed (apt-get install chromium)`;
if (noChromium) console.warn(`page test skipped: ${noChromium}`);
const pageIt = (name: string, fn: () => Promise<void>, timeout: number) =>
  it.skipIf(!!noChromium)(noChromium ? `${name} [skipped: ${noChromium}]` : name, fn, timeout);

interface PageResult { ok: boolean | null; error?: string; bad?: number; checked?: number; ms?: number; adapter?: string }

/** Opens the page headless on one bundle; resolves with what the page POSTed. */
async function runPage(dir: string, bundle: string, dims: Record<string, number>): Promise<PageResult> {
  let got!: (r: PageResult) => void;
  const result = new Promise<PageResult>((ok) => { got = ok; });
  const { server, port } = await startServer({ dir, port: 0, onResult: (r: PageResult) => got(r) });
  const profile = mkdtempSync(join(tmpdir(), "tilemoe-chromium-"));
  const q = new URLSearchParams({ bundle, auto: "1", reps: "3", ...Object.fromEntries(Object.entries(dims).map(([k, v]) => [k, String(v)])) });
  const chrome = spawn(CHROMIUM, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-unsafe-webgpu", `--user-data-dir=${profile}`,
    `http://localhost:${port}/?${q}`,
  ], { stdio: "ignore", detached: true });
  try {
    return await Promise.race([result, new Promise<PageResult>((_, no) => setTimeout(() => no(new Error("no result from the page in 60 s")), 60_000))]);
  } finally {
    try { process.kill(-chrome.pid!, "SIGKILL"); } catch { /* already gone */ }
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

describe("the WebGPU page in headless Chromium", () => {
  pageIt("runs gemm_f32 and gemm_bf16 bundles and matches the JS reference", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tilemoe-bundles-"));
    const f32 = parseKernels("dsl-examples/gemm_f32.ts").find((k) => k.name === "gemm_f32")!;
    const bf16 = parseKernels("dsl-examples/gemm.ts").find((k) => k.name === "gemm_bf16")!;
    for (const [k, cfg] of [[f32, {}], [bf16, { BM: 64, BN: 64, BK: 32, stages: 2, warps: 4, GROUP_M: 1 }]] as const) {
      const low = lower(k, cfg, WGSL);
      writeFileSync(join(dir, `${k.name}.wgsl.json`), JSON.stringify(wgslBundle(low, emitWgsl(low, { f16: false, subgroups: false }))));
    }
    for (const [name, dims] of [["gemm_f32", { M: 37, N: 45, K: 29 }], ["gemm_bf16", { M: 70, N: 3, K: 40 }]] as const) {
      const r = await runPage(dir, `${name}.wgsl.json`, dims);
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
      expect(r.checked).toBe(dims.M * dims.N);
      expect(r.ms).toBeGreaterThan(0);
    }
    rmSync(dir, { recursive: true, force: true });
  }, 180_000);
});
