// The folder `tilemoe tune --plan DIR` writes into. A replan clears the previous plan, but only
// what a plan holds: DIR is a name the user typed (`--plan .`, `--plan ~/proj`), so a folder
// holding anything else is refused, and a plan folder keeps any file the user put beside it.
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { userError } from "../util/user-error.ts";

/** Everything writeTunePlan and run.sh create in a plan folder. */
export const PLAN_ENTRIES = ["tune-meta.json", "plans", "modules", "check", "timing", "runner", "candidates.txt", "run.sh",
  "runs", "results.json", "results.json.tmp"] as const;

/** Throws a user error unless DIR is missing, empty or a tune plan (it holds tune-meta.json). */
export function checkPlanDir(dir: string): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw userError(`--plan ${dir}: a file of that name exists; give the path of a new folder for the plan`);
  const entries = readdirSync(dir);
  if (!entries.length || entries.includes("tune-meta.json")) return;
  const shown = entries.slice(0, 4).join(", ") + (entries.length > 4 ? `, ... (${entries.length} entries)` : "");
  throw userError(`--plan ${dir}: the folder is not empty and is not a tune plan (it holds ${shown}); a plan replaces its folder's contents, so give a new or empty folder, e.g. --plan ${join(dir, "tune-plan")}`);
}

/** Empties DIR of an earlier plan (after checkPlanDir), leaving any other file in it. */
export function clearPlanDir(dir: string): void {
  checkPlanDir(dir);
  for (const e of PLAN_ENTRIES) rmSync(join(dir, e), { recursive: true, force: true });
}
