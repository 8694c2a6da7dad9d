#!/usr/bin/env bash
# Run THERE (the GPU machine: nvcc, no Node.js), from the repo root, after scripts/gpu-pack.sh
# made .gpu/ here:   bash scripts/gpu-run.sh npx tsx bench/run.ts
# Unpacks node into /tmp and node_modules into the repo, puts small `npx`/`npm run` shims on
# PATH, adds the cuBLAS library folders to LD_LIBRARY_PATH, builds the GPU runner, then runs
# the command. If $OUT is set (the device tool's output folder), bench/out/ is copied there.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
[[ -f .gpu/node.xz && -f .gpu/node_modules.tar.xz ]] || {
  echo "gpu-run: .gpu/ is missing; run 'bash scripts/gpu-pack.sh' on the dev machine and bring .gpu/ along" >&2
  exit 2
}

bindir=/tmp/tilemoe-node/bin
mkdir -p "$bindir"
if [[ ! -x $bindir/node || "$(cat $bindir/.stamp 2>/dev/null)" != "$(cat .gpu/node.stamp 2>/dev/null)" ]]; then
  xz -dc .gpu/node.xz > "$bindir/node.tmp" && chmod +x "$bindir/node.tmp" && mv "$bindir/node.tmp" "$bindir/node"
  cat .gpu/node.stamp > "$bindir/.stamp" 2>/dev/null || true
fi
if [[ ! -d node_modules || "$(cat node_modules/.gpu-stamp 2>/dev/null)" != "$(cat .gpu/node_modules.stamp 2>/dev/null)" ]]; then
  rm -rf node_modules
  xz -dc .gpu/node_modules.tar.xz | tar -xf -
  cat .gpu/node_modules.stamp > node_modules/.gpu-stamp 2>/dev/null || true
fi

# No npm there: `npx X` runs node_modules/.bin/X; `npm run S` runs package.json's script S.
cat > "$bindir/npx" <<EOF
#!/bin/sh
[ "\$1" = "--yes" ] && shift
cmd=\$1; shift
exec "$repo/node_modules/.bin/\$cmd" "\$@"
EOF
cat > "$bindir/npm" <<EOF
#!/bin/sh
if [ "\$1" != "run" ] || [ -z "\$2" ]; then echo "npm shim: only 'npm run SCRIPT' works here" >&2; exit 1; fi
s=\$(node -e 'const s=require("$repo/package.json").scripts[process.argv[1]]; if(!s){process.exit(1)} console.log(s)' "\$2") || { echo "npm shim: no script \$2" >&2; exit 1; }
shift 2
PATH="$repo/node_modules/.bin:\$PATH" exec sh -c "\$s \"\\\$@\"" sh "\$@"
EOF
chmod +x "$bindir/npx" "$bindir/npm"
export PATH="$bindir:$repo/node_modules/.bin:$PATH"

# cuBLAS: the toolkit's lib64 and torch's pip wheels, which the loader may not search.
extra=""
for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64; do [[ -d $d ]] && extra="$extra:$d"; done
pyblas=$(python3 -c 'import nvidia.cublas as m; print(list(m.__path__)[0] + "/lib")' 2>/dev/null || true)
[[ -n $pyblas && -d $pyblas ]] && extra="$extra:$pyblas"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}$extra"

echo "gpu-run: node $(node --version); $(command -v nvcc >/dev/null && nvcc --version | tail -1 || echo 'no nvcc')"
nvidia-smi -L 2>/dev/null || echo "gpu-run: nvidia-smi lists no GPU"
node_modules/.bin/tsx src/runtime/build-runner.ts

status=0
if (( $# )); then "$@" || status=$?; fi
if [[ -n ${OUT:-} && -d bench/out ]]; then mkdir -p "$OUT/bench-out" && cp -r bench/out/. "$OUT/bench-out/"; fi
exit $status
