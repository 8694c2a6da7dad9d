// The page: pick a bundle and dims, run it on the browser's WebGPU, compare with the JS
// reference, show result and time. ?bundle=NAME&M=..&auto=1 runs at once and POSTs the
// result to the server (/result), which is how the headless test reads it.
import { getDevice, randomInputs, runBundle, shapesOf } from "./run.js";
import { compare, referenceFor } from "./reference.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let bundle;

function show(text, cls = "") { $("out").textContent = text; $("out").className = cls; }

async function loadList() {
  const names = await (await fetch("/bundles/")).json();
  $("bundle").innerHTML = names.map((n) => `<option>${n}</option>`).join("");
  if (!names.length) show("No bundles. Build some: node bin/tilemoe.js build dsl-examples/gemm_f32.ts --target wgsl --emit json -o generated/web", "bad");
  if (params.get("bundle")) $("bundle").value = params.get("bundle");
  await pick();
}

async function pick() {
  const name = $("bundle").value;
  if (!name) return;
  bundle = await (await fetch(`/bundles/${encodeURIComponent(name)}`)).json();
  $("dims").innerHTML = bundle.dims.map((d) => `<label>${d} <input id="dim-${d}" type="number" min="1" value="${params.get(d) ?? 64}"></label>`).join(" ");
  const ref = referenceFor(bundle);
  $("about").textContent = `${bundle.name}: ${bundle.workgroupSize} threads/workgroup, ${bundle.workgroupBytes} B workgroup memory` +
    `${bundle.features.length ? `, needs ${bundle.features.join(", ")}` : ""}; config ${JSON.stringify(bundle.config)}; reference: ${ref ? ref.what : "none (the page only knows GEMMs)"}`;
  $("wgsl").textContent = bundle.wgsl;
}

async function run() {
  const dims = Object.fromEntries(bundle.dims.map((d) => [d, Number($(`dim-${d}`).value)]));
  const result = { bundle: $("bundle").value, dims };
  try {
    show("running...");
    const gpu = await getDevice(bundle.features);
    const inputs = randomInputs(bundle, shapesOf(bundle, dims), Number(params.get("seed") ?? 1));
    const r = await runBundle(gpu, bundle, dims, inputs, {}, Number(params.get("reps") ?? 5));
    Object.assign(result, { adapter: gpu.adapterName, grid: r.grid, ms: r.ms, timing: r.timing });
    const ref = referenceFor(bundle);
    if (ref) {
      const want = ref.run(inputs, dims);
      const tol = ref.tolerance(dims);
      const out = Object.keys(want)[0];
      const c = compare(r.outputs[out], want[out], tol);
      Object.assign(result, { ok: c.bad === 0, checked: c.n, bad: c.bad, maxErr: c.maxErr, first: c.first });
    } else result.ok = null;
    show(`${result.ok === null ? "ran (no reference to compare with)" : result.ok ? "PASS" : "FAIL"}: ${JSON.stringify(result, null, 1)}`, result.ok === false ? "bad" : "good");
  } catch (e) {
    Object.assign(result, { ok: false, error: String(e?.message ?? e) });
    show(`error: ${result.error}`, "bad");
  }
  if (params.get("auto")) await fetch("/result", { method: "POST", body: JSON.stringify(result) });
  return result;
}

$("bundle").addEventListener("change", pick);
$("run").addEventListener("click", run);
await loadList();
if (params.get("auto")) await run();
