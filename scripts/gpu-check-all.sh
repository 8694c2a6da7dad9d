#!/usr/bin/env bash
# Run on the GPU machine: bash scripts/gpu-run.sh bash scripts/gpu-check-all.sh [CASES]
# `tilemoe check --backend cuda` on every kernel of every dsl-example built for sm_90a (the wgmma
# path where the lowering picks it), the GEMM examples again on the portable mma.sync path
# (--mma sync), then scripts/check-sass.sh. The checks run side by side, 8 at a time (mostly nvcc:
# 16 cores there). Goes on after a failure; the summary at the end lists every file with its
# result, and the exit status is 0 only when all passed. Logs: $OUT/check-all.
set -u
cd "$(dirname "$0")/.."
cases=${1:-40}
out=${OUT:-/tmp}/check-all
mkdir -p "$out"
rm -f "$out"/*.status
summary=()
fail=0
run() {  # name, then the command; in the background, its verdict in $out/NAME.status
  local name=$1; shift
  while (( $(jobs -rp | wc -l) >= 8 )); do wait -n; done
  ( t0=$(date +%s)
    if "$@" > "$out/$name.log" 2>&1; then echo "PASS $name ($(( $(date +%s) - t0 )) s)"
    else echo "FAIL $name ($(( $(date +%s) - t0 )) s): $(tail -n 3 "$out/$name.log" | tr '\n' ' ')"; fi > "$out/$name.status" ) &
}
for f in dsl-examples/*.ts; do
  n=$(basename "$f" .ts)
  run "$n" node bin/tilemoe.js check "$f" --backend cuda --cases "$cases"
done
for f in dsl-examples/gemm.ts dsl-examples/gemm_w4a16.ts dsl-examples/moe_gemm_up.ts; do
  n=$(basename "$f" .ts)
  run "$n-mma-sync" node bin/tilemoe.js check "$f" --backend cuda --cases "$cases" --mma sync
done
run sass bash scripts/check-sass.sh
wait
for f in "$out"/*.status; do summary+=("$(cat "$f")"); done
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && fail=1; done
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
exit $fail
