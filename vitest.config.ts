import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores on CI: keep workers to what the machine has.
    maxWorkers: 2,
    // Test files of a worker share one module graph: each isolated file re-imported the compiler
    // (ts-morph and all), 184 s of import time a run, 19 s shared (npm test 7.0 -> 4.7 min on two
    // cores; also green with the files shuffled). Tests that patch globals (console spies,
    // PATH, TILEMOE_DEBUG) restore them in finally / afterEach, and must keep doing so.
    isolate: false,
  },
});
