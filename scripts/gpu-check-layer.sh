#!/usr/bin/env bash
# GPU check of the MoE layer work (w4a16 down kernel, w4a16 layer, layer bench). Run on the
# GPU machine, from the repo root, through gpu-run.sh (node, the runner, cuBLAS paths):
#   bash scripts/gpu-run.sh bash scripts/gpu-check-layer.sh
# 1. `tilemoe check --backend cuda` on the grouped expert GEMMs of the layer (the new
#    moe_gemm_down_w4a16 at its default, the layer's and a decode config; the new
#    moe_gemm_down_pairs + moe_combine of the reduce combine; the up projections, whose row
#    gather is now cp.async, at the layer's and a decode config),
# 2. the layer bench (bench/run.ts --layer): both models, bf16 (atomic and reduce combine) and
#    w4a16, M = 1..4096, outputs checked, the table of time vs floor and atomic vs reduce.
# Logs under $OUT/layer (one file per step); keeps going after a failure; summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/layer"
mkdir -p "$log"
bench=/tmp/tilemoe-layer-bench
summary=()

step() {
  local name=$1; shift
  local t0=$SECONDS rc=0
  echo "== $name: $*"
  "$@" > "$log/$name.log" 2>&1 || rc=$?
  tail -n 25 "$log/$name.log"
  if (( rc == 0 )); then summary+=("PASS  $name ($(( SECONDS - t0 )) s)"); else summary+=("FAIL  $name (exit $rc, $(( SECONDS - t0 )) s): $log/$name.log"); fi
}

check() { node bin/tilemoe.js check "$@" --backend cuda --arch sm_90a --cases 20 --seed 20261128; }
step check-down-w4a16 check dsl-examples/moe_gemm_down_w4a16.ts
step check-down-w4a16-layer-config check dsl-examples/moe_gemm_down_w4a16.ts --config BM=64,BN=64,BK=128,stages=3,warps=4 --mma wgmma
step check-down-w4a16-decode check dsl-examples/moe_gemm_down_w4a16.ts --config BM=16,BN=64,BK=128,stages=4,warps=4
step check-up-w4a16 check dsl-examples/moe_gemm_up_w4a16.ts
# The up projections gather their activation rows with cp.async (T.copy(X.rows(...))): the
# layer's configs (sm_90a asks for TMA, which declines the gather: cp.async + wgmma) and a
# decode tile; pinned configs, so each step compiles once per kernel.
step check-up-layer-config check dsl-examples/moe_gemm_up.ts --config BM=64,BN=64,BK=64,stages=3,warps=8
step check-up-decode check dsl-examples/moe_gemm_up.ts --config BM=16,BN=64,BK=64,stages=4,warps=4
step check-up-w4a16-layer-config check dsl-examples/moe_gemm_up_w4a16.ts --config BM=64,BN=64,BK=64,stages=3,warps=8
step check-down check dsl-examples/moe_gemm_down.ts
step check-down-reduce check dsl-examples/moe_gemm_down_reduce.ts

rm -rf "$bench"
step layer-bench npx tsx bench/run.ts --layer --out "$bench"
cp "$bench/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true
cp "$bench/layer/plan/results.json" "$log/layer-results.json" 2>/dev/null || true

echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
