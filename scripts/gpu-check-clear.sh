#!/usr/bin/env bash
# GPU check of split-K's clear of C by a zero kernel overlapped through PDL (sm_90a; docs/QUANT.md,
# "Clearing by a zero kernel"; src/passes/overlap-clears.ts). Run on the GPU machine, from the repo
# root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-clear.sh
# 1. `tilemoe check --backend cuda --arch sm_90a` of gemm_w4a16 and gemm_w4a16_mma at decode
#    split-K 4 and 8 configs (the kernels with their griddepcontrol.wait before the atomics,
#    launched plainly by the checker on a zeroed C: the kernels still compute the same). In the
#    background, each under `timeout 200`, while step 2 runs.
# 2. launcher-test: scripts/gpu-check-clear.ts writes the generated .cu of both kernels at split-K
#    1, 4 and 8 and a main.cu that calls the launchers (zero kernel, then the kernel with PDL) on
#    one stream behind a slow kernel that rewrites A and fills C with NaN, 6 rounds and then 5
#    calls back to back, at M = 1, 16 and a ragged M = 3, N = 1001, against the split-K 1
#    launcher's C (see the .ts for the details); nvcc builds it here.
# 3. sass: griddepcontrol in the launcher test's SASS (ACQBULK = wait, PREEXIT = launch_dependents),
#    per kernel: informational.
# 4. w4a16-bench (not with CHECKS_ONLY=1): `bench/w4a16.ts --m 1,16 --reps 20`: the decode rows as
#    the launchers clear (zero kernel + PDL), the memset rows of the same split-K configs, and the
#    table comparing the two clears.
# Logs under $OUT/clear (one file per step); keeps going after a failure; summary at the end.
# Expected wall time: ~1.5 min for 1-3 (nvcc), ~2 min for 4.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/clear"
mkdir -p "$log"
gen=/tmp/tilemoe-clear-launchers
summary=()
# step / collect / timed: scripts/lib/check-steps.sh.
source scripts/lib/check-steps.sh

step w4a16-k4-bn64 dsl-examples/gemm_w4a16.ts --kernel gemm_w4a16 --config BM=16,BN=64,BK=128,stages=4,warps=4,splitK=4 --cases 10
step w4a16-k8-bn128 dsl-examples/gemm_w4a16.ts --kernel gemm_w4a16 --config BM=16,BN=128,BK=64,stages=4,warps=4,splitK=8 --cases 10
step mma-k4-bn128 dsl-examples/gemm_w4a16.ts --kernel gemm_w4a16_mma --config BM=16,BN=128,BK=128,stages=4,warps=4,splitK=4 --cases 10
step mma-k8-bn64 dsl-examples/gemm_w4a16.ts --kernel gemm_w4a16_mma --config BM=16,BN=64,BK=128,stages=4,warps=4,splitK=8 --cases 10

launcher_test() {
  rm -rf "$gen" && mkdir -p "$gen" || return 1
  npx tsx scripts/gpu-check-clear.ts "$gen" || return 1
  local pids=() f
  for f in "$gen"/*.cu; do
    nvcc -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -diag-suppress 177 -c "$f" -o "${f%.cu}.o" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || return 1; done
  nvcc -gencode arch=compute_90a,code=sm_90a "$gen"/*.o -o "$gen/launcher-test" || return 1
  "$gen/launcher-test"
}
export -f launcher_test
export gen
TIMED_TAIL=50 timed launcher-test 200 bash -c launcher_test
collect

if command -v cuobjdump > /dev/null && [[ -x $gen/launcher-test ]]; then
  cuobjdump -sass "$gen/launcher-test" 2>&1 | awk '/Function :/ { fn = $3 } /ACQBULK|PREEXIT/ { m = ($0 ~ /ACQBULK/) ? "ACQBULK" : "PREEXIT"; n[fn " " m]++ }
    END { for (k in n) print k, n[k] }' | sort > "$log/sass.txt"
  cat "$log/sass.txt"
  summary+=("INFO  sass: griddepcontrol per kernel in $log/sass.txt (each _kernel: ACQBULK, each _zero: PREEXIT)")
else
  summary+=("SKIP  sass (no cuobjdump or no launcher test binary)")
fi

if [[ ${CHECKS_ONLY:-0} != 1 ]]; then
  TIMED_TAIL=80 timed w4a16-bench 240 npx tsx bench/w4a16.ts --m 1,16 --reps 20 --out /tmp/tilemoe-clear-bench
  cp /tmp/tilemoe-clear-bench/latest.md "$log/w4a16-table.md" 2>/dev/null || true
  cp /tmp/tilemoe-clear-bench/plan/results.json "$log/w4a16-results.json" 2>/dev/null || true
fi

echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
