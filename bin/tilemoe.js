#!/usr/bin/env node
// The compiler is TypeScript run in place through tsx: no build step between editing a
// pass and running it, and one source of truth for the `tilemoe` types kernels import.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
