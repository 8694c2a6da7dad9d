// Imported first by each bench entry (npm run bench, bench:w4a16, bench:wgsl): they are top-level
// code, so a bad flag or value thrown anywhere in them reaches this handler. A user's mistake (a
// UsageError, a user error, Node's own flag errors) prints its message and exits 1, as the
// tilemoe CLI does; anything else is a bug and keeps its stack (these run unattended on GPU
// machines, where the stack is the evidence).
import { UsageError } from "../src/cli/args.ts";

process.on("uncaughtException", (e) => {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  const flags = e instanceof UsageError || code.startsWith("ERR_PARSE_ARGS");
  if (flags || (e as { userFacing?: boolean }).userFacing) {
    const script = process.argv[1]?.replace(/^.*\/(bench\/)/, "$1") ?? "bench";
    console.error(`${script}: ${e.message}${flags ? " (the flags are listed at the top of the script)" : ""}`);
    process.exitCode = 1;
    return;
  }
  console.error(e.stack ?? String(e));
  process.exitCode = 2;
});
