#!/usr/bin/env node
// Stands in for the GPU runner in the tune tests: reads a candidate's plan, writes results
// in the runner's format. FAKE_TUNE (JSON) says how each candidate behaves:
//   { "times": { "c003": 0.5 }, "wrong": ["c001"], "crash": ["c002"], "hang": ["c004"],
//     "lost": ["c005"], "sleep": 0.2 }
// Candidates not listed are correct and take 1 ms. Usage: fake-runner PLAN --out RESULTS
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

const [planPath, , out] = process.argv.slice(2);
const cfg = JSON.parse(process.env.FAKE_TUNE ?? "{}");
const id = basename(planPath, ".json");
const plan = JSON.parse(readFileSync(planPath, "utf8"));
const has = (k) => (cfg[k] ?? []).includes(id);

if (cfg.sleep) await new Promise((r) => setTimeout(r, cfg.sleep * 1000));
if (has("hang")) await new Promise((r) => setTimeout(r, 1e7));
if (has("crash")) process.kill(process.pid, "SIGSEGV");

const device = { name: "Fake GPU", cc: "9.0", sms: 132, l2_bytes: 50331648, smem_optin_bytes: 232448, memory_bytes: 8e10, driver_version: 13000 };
const cases = [];
let lost;
for (const c of plan.cases) {
  if (lost) { cases.push({ name: c.name, status: "skipped", error: `not run: the CUDA context was lost in case '${lost}'` }); continue; }
  if (c.name.startsWith("check ")) {
    if (has("lost")) {
      lost = c.name;
      cases.push({ name: c.name, status: "error", error: "cuStreamSynchronize: CUDA_ERROR_ILLEGAL_ADDRESS", context_lost: true });
      continue;
    }
    const pass = !has("wrong");
    cases.push({ name: c.name, status: pass ? "ok" : "mismatch", ...(pass ? {} : { error: "17 of 3000 elements differ" }),
      compare: { with: c.compare.file, pass, max_abs: pass ? 0 : 3 }, rotate: 1 });
    continue;
  }
  const ms = cfg.times?.[id] ?? 1;
  cases.push({ name: c.name, status: "ok", median_ms: ms, min_ms: ms * 0.9, max_ms: ms * 1.1, reps: c.time.reps, rotate: 3,
    tflops: c.flops / (ms * 1e-3) / 1e12, gbps: c.bytes / (ms * 1e-3) / 1e9, device_in_plan: plan.device });
}
const results = { device, cases, ...(lost ? { context_lost: lost } : {}) };
writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
process.exit(cases.every((c) => c.status === "ok") ? 0 : 1);
