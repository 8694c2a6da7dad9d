// The output folders the commands write into (`-o DIR`): made if missing, and every way that
// fails (a file of that name, a read-only or missing parent, no permission) is a user error
// naming the flag, the folder and the fix, not an fs error from deep inside a build.
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync, type WriteFileOptions } from "node:fs";
import { dirname } from "node:path";
import { userError } from "./user-error.ts";

const WHY: Record<string, string> = {
  EACCES: "permission denied", EPERM: "permission denied", EROFS: "read-only file system",
  ENOSPC: "no space left on the device", EDQUOT: "disk quota exceeded", ENOENT: "cannot be created there",
  ENOTDIR: "a file stands where a folder is needed", EISDIR: "a folder of that name exists", EEXIST: "a file stands where a folder is needed",
};

/** An fs error in words, with its code. */
export function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  return WHY[code] ? `${WHY[code]} (${code})` : (e as Error).message;
}

/** Makes DIR (and its parents) if missing and checks that files can be written in it. `flag`
 *  names where DIR came from, e.g. "-o". */
export function ensureOutDir(dir: string, flag: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw userError(`${flag} ${dir}: a file of that name exists; give a folder (it is made if missing)`);
  } else {
    try {
      makeDirs(dir);
    } catch (e) {
      throw userError(`${flag} ${dir}: cannot create the folder: ${reason(e)}; give a folder you can write`);
    }
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw userError(`${flag} ${dir}: cannot write in the folder: ${reason(e)}; give a folder you can write`);
  }
}

/** mkdir -p one level at a time: Node's recursive mkdirSync never returns on some paths (e.g.
 *  under /proc, where mkdir answers ENOENT with the parent present). */
function makeDirs(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirs(parent);
  mkdirSync(dir);
}

/** writeFileSync with a failure (a full disk, a read-only file in the way) as a user error. */
export function writeOutput(path: string, data: string | Uint8Array, options?: WriteFileOptions): void {
  try {
    writeFileSync(path, data, options);
  } catch (e) {
    throw userError(`cannot write ${path}: ${reason(e)}`);
  }
}
