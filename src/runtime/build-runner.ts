// `tsx src/runtime/build-runner.ts [CACHE_DIR]`: builds (or finds) the GPU runner, prints its path.
import { buildRunner } from "./cuda.ts";

try {
  console.log(`runner: ${await buildRunner(process.argv[2])}`);
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
