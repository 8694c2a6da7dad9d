#!/usr/bin/env bash
# Packs what the GPU machine lacks (it has nvcc and python, no Node.js) into .gpu/:
#   .gpu/node.xz              this machine's node binary (Node 20, x86-64, glibc)
#   .gpu/node_modules.tar.xz  the production dependencies (no dev ones), as installed here
# Then, on the GPU machine, from the repo root:  bash scripts/gpu-run.sh npx tsx bench/run.ts
# (.gpu/ is git-ignored: hand it over with the tree, e.g. the device tool's carry: [".gpu"]).
#
# The production set is the one `npm ls --omit=dev` reports from this checkout's installed
# node_modules (so it is exactly what the tests ran against and needs no registry), minus
# the WebGPU host `webgpu` (~130 MB of Dawn): the GPU trip runs CUDA only.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu
mkdir -p "$out"

node_bin=$(command -v node) || { echo "gpu-pack: node not found" >&2; exit 1; }
stamp="$("$node_bin" --version) $(stat -c %s "$node_bin")"
# xz of a 100 MB binary takes minutes on 2 shared cores: only when node changed.
if [[ ! -f $out/node.xz || "$(cat $out/node.stamp 2>/dev/null)" != "$stamp" ]]; then
  echo "gpu-pack: compressing $node_bin ($stamp)"
  xz -6 -T2 -c "$node_bin" > "$out/node.xz.tmp"
  mv "$out/node.xz.tmp" "$out/node.xz"
  echo "$stamp" > "$out/node.stamp"
else
  echo "gpu-pack: node.xz is current ($stamp)"
fi

[[ -d node_modules ]] || { echo "gpu-pack: no node_modules here; run npm ci first" >&2; exit 1; }
list=$(mktemp)
trap 'rm -f "$list"' EXIT
npm ls --omit=dev --all --parseable 2>/dev/null | sed "s|^$PWD/||" | grep '^node_modules/' \
  | grep -v -E '^node_modules/(webgpu|@webgpu/types)$' > "$list" || true
[[ -s $list ]] || { echo "gpu-pack: npm ls found no production dependencies" >&2; exit 1; }
# The tsx launcher, so `npx tsx` works there through gpu-run.sh's shim.
echo node_modules/.bin/tsx >> "$list"
tar -cf - -T "$list" | xz -6 -T2 > "$out/node_modules.tar.xz.tmp"
mv "$out/node_modules.tar.xz.tmp" "$out/node_modules.tar.xz"
sha256sum "$out/node_modules.tar.xz" | cut -c1-16 > "$out/node_modules.stamp"

total=$(du -cb "$out"/node.xz "$out"/node_modules.tar.xz | tail -1 | cut -f1)
echo "gpu-pack: $(wc -l < "$list") paths; .gpu holds $((total / 1048576)) MB"
if (( total > 40 * 1048576 )); then echo "gpu-pack: .gpu is over 40 MB" >&2; exit 1; fi
