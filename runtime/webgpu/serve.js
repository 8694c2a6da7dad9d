#!/usr/bin/env node
// A tiny static server for the WebGPU page: serves runtime/webgpu/page/ at /, the WGSL
// bundles of a folder (`tilemoe build --target wgsl --emit json -o DIR`) at /bundles/, and
// takes the page's result at POST /result (printed as one `RESULT {...}` line, so that a
// headless browser run can be checked from a script). localhost only: WebGPU needs a
// secure context, which http://localhost is.
//   node runtime/webgpu/serve.js [--dir generated/web] [--port 8087]
import { createServer } from "node:http";
import { readFile, readdir } from "node:fs/promises";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const PAGE = join(here, "page");
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".json": "application/json", ".css": "text/css" };

export function startServer({ dir, port = 8087, onResult } = {}) {
  const bundles = resolve(dir ?? join(here, "../../generated/web"));
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    try {
      if (req.method === "POST" && url.pathname === "/result") {
        let body = "";
        for await (const chunk of req) body += chunk;
        const result = JSON.parse(body);
        onResult ? onResult(result) : console.log(`RESULT ${JSON.stringify(result)}`);
        res.writeHead(204).end();
        return;
      }
      if (url.pathname === "/bundles/") {
        const names = (await readdir(bundles).catch(() => [])).filter((f) => f.endsWith(".wgsl.json")).sort();
        res.writeHead(200, { "content-type": TYPES[".json"] }).end(JSON.stringify(names));
        return;
      }
      const [root, rel] = url.pathname.startsWith("/bundles/") ? [bundles, url.pathname.slice(9)] : [PAGE, url.pathname === "/" ? "index.html" : url.pathname.slice(1)];
      const file = resolve(root, decodeURIComponent(rel));
      if (!file.startsWith(root + sep)) { res.writeHead(403).end(); return; }
      const data = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" }).end(data);
    } catch (e) {
      res.writeHead(e.code === "ENOENT" ? 404 : 500, { "content-type": "text/plain" }).end(String(e.message ?? e));
    }
  });
  return new Promise((ok) => server.listen(port, "127.0.0.1", () => ok({ server, port: server.address().port, bundles })));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { dir: { type: "string" }, port: { type: "string" } } });
  const { port, bundles } = await startServer({ dir: values.dir, port: values.port ? Number(values.port) : 8087 });
  console.log(`tilemoe WebGPU page: http://localhost:${port}/  (bundles from ${bundles})`);
}
