// The GPU trip, rehearsed here: pack .gpu/, copy the tree as the device tool would (tracked
// and untracked files, no node_modules), run gpu-run.sh there with the quick bench. Slow
// (minutes on 2 shared cores: xz, nvcc), so only with TILEMOE_SLOW=1.
import { cpSync, existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { gpuAvailable } from "../../src/runtime/cuda.ts";
import { REPO } from "./helpers.ts";

// Packing compresses node (minutes on 2 cores): opt in with TILEMOE_SLOW=1.
const slowSkip = process.env.TILEMOE_SLOW ? "" : " [skipped: slow, set TILEMOE_SLOW=1 to run]";
if (slowSkip) console.warn(`test/runtime/gpu-scripts.test.ts${slowSkip}`);
describe.skipIf(!process.env.TILEMOE_SLOW)(`gpu-pack.sh + gpu-run.sh${slowSkip}`, () => {
  it("packs under 40 MB and runs the bench from a bare copy of the tree", async () => {
    await execa("bash", ["scripts/gpu-pack.sh"], { cwd: REPO });
    const size = statSync(join(REPO, ".gpu/node.xz")).size + statSync(join(REPO, ".gpu/node_modules.tar.xz")).size;
    expect(size).toBeLessThan(40 * 1024 * 1024);

    const there = mkdtempSync(join(tmpdir(), "tilemoe-gpusim-"));
    const files = await execa("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: REPO });
    await execa("sh", ["-c", `tar --null -T - -cf - | tar -C '${there}' -xf -`], { cwd: REPO, input: files.stdout });
    cpSync(join(REPO, ".gpu"), join(there, ".gpu"), { recursive: true });
    expect(existsSync(join(there, "node_modules"))).toBe(false);

    const out = mkdtempSync(join(tmpdir(), "tilemoe-gpusim-out-"));
    const r = await execa("bash", ["scripts/gpu-run.sh", "npx", "tsx", "bench/run.ts", "--quick"], { cwd: there, reject: false, all: true, env: { OUT: out } });
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toContain("/tmp/tilemoe-node/bin");
    if (!gpuAvailable().ok) expect(r.all).toMatch(/no GPU here: plan written to .*bench\/out\/plan; run `bash scripts\/gpu-run.sh/);
    expect(JSON.parse(readFileSync(join(out, "bench-out/plan/plan.json"), "utf8")).cases.length).toBeGreaterThan(3);
  }, 900_000);
});
