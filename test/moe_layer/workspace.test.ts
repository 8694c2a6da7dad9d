// The generated launcher sizes its workspace as workspaceLayout does (the runner and the bench
// carve slices by it) for a table whose prefill entry permutes and reduces, as the bf16 models'
// do: its xp slice [NB * BS, H] bf16 where the entry permutes and its pairs slice [T * top_k, H]
// f32 where it reduces, both empty for the decode entry, and each entry alone agrees too.
// (A table without such entries: test/runtime/layer-bench.test.ts, the w4a16 library.)
// A host program asks the built library (pure host code: no GPU needed).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { nvccAvailable } from "../../src/driver/nvcc.ts";
import { buildLayerLibrary } from "../../src/moe/library.ts";
import { chooseConfig, type LayerSpec, workspaceLayout } from "../../src/moe/layer.ts";
import { tinyPermutedConfigs } from "./tiny.ts";

const nvcc = await nvccAvailable();
describe.skipIf(!nvcc)("workspace of a layer whose prefill entry permutes", () => {
  it("moe_layer_<name>_workspace_bytes and each entry's agree with workspaceLayout; xp and pairs only for the permuting, reducing entry", async () => {
    const s: LayerSpec = { name: "tiny_bf16_permuted", experts: 8, hidden: 64, intermediate: 72, topK: 2, activation: "silu",
      weights: "bf16", renormalize: true, configs: tinyPermutedConfigs().map((c) => (c.permute ? { ...c, combine: "reduce" as const } : c)) };
    const dir = mkdtempSync(join(tmpdir(), "tilemoe-ws-"));
    const lib = await buildLayerLibrary(s, "sm_90a", dir);
    const Ts = [1, 5, 16, 17, 200, 4096];
    const run = async (sym: string, name: string) => {
      writeFileSync(join(dir, `${name}.cpp`), `#include <cstdio>\n#include <cstddef>\n#include <cstdint>\n#include <initializer_list>\n` +
        `extern "C" size_t ${sym}(int64_t);\nint main() { for (long t : {${Ts.map((t) => `${t}L`).join(", ")}}) std::printf("%zu\\n", ${sym}(t)); }\n`);
      await execa("g++", ["-std=c++17", join(dir, `${name}.cpp`), lib.path, "-o", join(dir, name), `-Wl,-rpath,${dir}`]);
      return (await execa(join(dir, name))).stdout.trim().split("\n").map(Number);
    };
    expect(await run(`${lib.symbol}_workspace_bytes`, "ws")).toEqual(Ts.map((T) => workspaceLayout(s, T).total));
    // Built for sm_90a with PDL (the default): the plain-launch twin's entry points link too.
    expect(await run(`${lib.symbol}_nopdl_workspace_bytes`, "ws_nopdl")).toEqual(Ts.map((T) => workspaceLayout(s, T).total));
    for (const entry of ["decode", "prefill"]) {
      const alone: LayerSpec = { ...s, configs: s.configs.filter((c) => c.name === entry).map((c) => ({ ...c, maxTokens: null })) };
      expect(await run(`${lib.symbol}_${entry}_workspace_bytes`, `ws_${entry}`)).toEqual(Ts.map((T) => workspaceLayout(alone, T).total));
    }
    // xp and pairs are the last slices: the other slices keep the offsets a table without them has.
    const last = (T: number) => workspaceLayout(s, T).slices.slice(-2);
    expect(last(16)).toMatchObject([{ name: "xp", bytes: 0 }, { name: "pairs", bytes: 0 }]);
    expect(chooseConfig(s, 17).name).toBe("prefill");
    // 34 pairs over at most 8 experts in 128-slot blocks: 8 blocks at most (routingBlocks).
    const NB = 8;
    expect(last(17)).toMatchObject([{ name: "xp", bytes: NB * 128 * 64 * 2 }, { name: "pairs", bytes: 34 * 64 * 4 }]);
    const plain: LayerSpec = { ...s, configs: s.configs.map((c) => ({ ...c, permute: false, combine: "atomic" as const })) };
    expect(workspaceLayout(s, 17).slices.slice(0, -2)).toEqual(workspaceLayout(plain, 17).slices);
  }, 600_000);
});
