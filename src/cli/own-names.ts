// Kernel files import "tilemoe" (and "tilemoe/check", "tilemoe/quant", "tilemoe/moe"). The front end reads
// them as text, but `check` also imports a file to load its check specs, and Node resolves
// those names from the file's folder (or tsx from the working directory): a kernel file in a
// project that has not installed tilemoe, checked from there, failed with "Cannot find module
// 'tilemoe'". This resolve hook answers the package's own names with this checkout's files
// (package.json "exports") when the normal resolution finds nothing, so a kernel file anywhere
// loads against the compiler that reads it; an installed tilemoe still wins.
import { readFileSync } from "node:fs";
import Module, { register } from "node:module";
import { fileURLToPath } from "node:url";

let registered = false;

export function resolveOwnNames(): void {
  if (registered) return;
  registered = true;
  const root = new URL("../../", import.meta.url);
  const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { name: string; exports: Record<string, { default: string }> };
  const urls = Object.fromEntries(Object.entries(pkg.exports).map(([sub, e]) => [pkg.name + sub.slice(1), new URL(e.default, root).href]));
  const hook = `const OWN = ${JSON.stringify(urls)};
export async function resolve(specifier, context, next) {
  try { return await next(specifier, context); } catch (e) {
    if (Object.hasOwn(OWN, specifier)) return next(OWN[specifier], context);
    throw e;
  }
}`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
  // A .ts outside an ESM package is loaded as CommonJS (loadSpecs' tsImport), whose require()
  // the hook above does not see: the same fallback for the CommonJS resolver.
  const cjs = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const plain = cjs._resolveFilename;
  cjs._resolveFilename = function (request: string, ...rest: unknown[]) {
    try {
      return plain.call(this, request, ...rest);
    } catch (e) {
      if (Object.hasOwn(urls, request)) return fileURLToPath(urls[request]!);
      throw e;
    }
  };
}
