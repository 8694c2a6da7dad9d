#!/usr/bin/env bash
# The decode loop's instruction diet (docs/QUANT.md "Fewer instructions in the decode loop") on
# the GPU: the group scale read as its 16 bits one k tile ahead (lower-pipeline.ts
# prefetchEarly, dequant-instance.ts narrowRead) and the pipelined copies issued from per-thread
# offsets and cursors (lower-copy.ts hoistedIssue) change every kernel with a fused dequant or a
# cp.async mma.sync pipeline, so:
#  1. `tilemoe check --backend cuda` (sm_90a) of every kernel of gemm_w4a16.ts with --mma sync and
#     with the default (wgmma where it applies), of gemm_w8a16.ts, gemm_fp8w.ts,
#     moe_gemm_up_w4a16.ts and moe_gemm_down_w4a16.ts (both), and the decode kernels at decode
#     configs (split-K 4 / 8, stages 2 / 4) on pinned shapes: M = 1 and 16, N and K ragged past
#     the tiles (the general issue beside the whole-tile one), K a multiple of 128 (whole tiles only);
#  2. SASS counts of gemm_w4a16_mma at BM 16 BN 64 BK 128 stages 2 split-K 4 (cuobjdump): all
#     instructions, IMAD / LEA, LDG, and the PTX main-loop stats;
#  3. unless CHECKS_ONLY=1, `bench/w4a16.ts --m 1,16 --reps 20` (the decode rows against the copy
#     bandwidth; before this branch gemm_w4a16_mma at M = 1, N 14336, K 4096 ran 24.5 us).
# Keeps going after a failure; summary at the end. About 3 minutes (checks in parallel, nvcc).
# Run THERE:  bash scripts/gpu-run.sh bash scripts/gpu-check-diet.sh     (logs: $OUT/diet)
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-out}/diet"
mkdir -p "$log"
summary=()
t_start=$SECONDS
source scripts/lib/check-steps.sh

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$log/gpu.txt" 2>&1 || true
cat "$log/gpu.txt"
git rev-parse --short HEAD > "$log/commit.txt" 2>/dev/null || true

F=dsl-examples/gemm_w4a16.ts
D="BM=16,BN=64"
# 1. Checks (in the background: mostly nvcc, 16 cores).
step w4a16-all-sync        $F --mma sync --cases 4
step w4a16-all-default     $F --cases 4
step w8a16-sync            dsl-examples/gemm_w8a16.ts --mma sync --cases 4
step w8a16-default         dsl-examples/gemm_w8a16.ts --cases 4
step fp8w-sync             dsl-examples/gemm_fp8w.ts --mma sync --cases 4
step fp8w-default          dsl-examples/gemm_fp8w.ts --cases 4
step moe-up-w4a16-sync     dsl-examples/moe_gemm_up_w4a16.ts --mma sync --cases 3
step moe-up-w4a16-default  dsl-examples/moe_gemm_up_w4a16.ts --cases 3
step moe-down-w4a16-sync   dsl-examples/moe_gemm_down_w4a16.ts --mma sync --cases 3
step moe-down-w4a16-default dsl-examples/moe_gemm_down_w4a16.ts --cases 3
# The decode configs: drawn shapes, then pinned ones (M = 1 / 16; ragged N and K; whole tiles).
step mma-sk4-drawn         $F --kernel gemm_w4a16_mma --mma sync --cases 6 --config $D,BK=128,stages=2,warps=4,splitK=4
step mma-sk8-s4-drawn      $F --kernel gemm_w4a16_mma --mma sync --cases 6 --config $D,BK=64,stages=4,warps=4,splitK=8
step il-sk4-drawn          $F --kernel gemm_w4a16 --mma sync --cases 6 --config $D,BK=128,stages=2,warps=4,splitK=4
step mma-gs-sk4-drawn      $F --kernel gemm_w4a16_mma_gs --mma sync --cases 6 --config $D,BK=128,stages=2,warps=4,splitK=4
step mma-m1-whole          $F --kernel gemm_w4a16_mma --mma sync --cases 2 --shape M=1,N=4096,K=4096 --config $D,BK=128,stages=2,warps=4,splitK=4
step mma-m16-ragged        $F --kernel gemm_w4a16_mma --mma sync --cases 2 --shape M=16,N=520,K=4000 --config $D,BK=128,stages=2,warps=4,splitK=4
step mma-m3-ragged-s4      $F --kernel gemm_w4a16_mma --mma sync --cases 2 --shape M=3,N=136,K=1000 --config $D,BK=64,stages=4,warps=4,splitK=8
step il-m1-ragged          $F --kernel gemm_w4a16 --mma sync --cases 2 --shape M=1,N=130,K=2000 --config $D,BK=128,stages=2,warps=4,splitK=4
step mma-gs-m16-ragged     $F --kernel gemm_w4a16_mma_gs --mma sync --cases 2 --shape M=16,N=520,K=4000 --config $D,BK=128,stages=2,warps=4,splitK=4
step zp-m5-ragged          $F --kernel gemm_w4a16_zp --mma sync --cases 2 --shape M=5,N=136,K=1000 --config $D,BK=128,stages=2,warps=4
collect
echo "== checks done in $((SECONDS - t_start)) s"

# 2. SASS at the decode config (the lead's ncu run: 9.92 M warp instructions executed before).
sass_counts() {
  local d="$log/sass/$1"; mkdir -p "$d"
  node bin/tilemoe.js build dsl-examples/gemm_w4a16.ts --kernel "$1" --config BM=16,BN=64,BK=128,stages=2,warps=4,splitK=4 --arch sm_90a --mma sync --emit cubin,ptx -o "$d" > "$d/build.log" 2>&1 || return 1
  cuobjdump -sass "$d"/*.cubin > "$d/sass.txt" || return 1
  local n; n() { grep -cE "$1" "$d/sass.txt"; }
  echo "$1: instructions $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$d/sass.txt"), IMAD $(n '\bIMAD'), LEA $(n '\bLEA'), LDG $(n LDG), LDGSTS $(n LDGSTS), HMMA $(n HMMA), F2F $(n 'F2F|F2FP')"
  npx tsx scripts/ptx-loop-stats.ts "$d"/*.ptx
}
TIMED_TAIL=8 timed sass-decode 150 bash -c "$(declare -f sass_counts); log=$log; sass_counts gemm_w4a16_mma && sass_counts gemm_w4a16_mma_gs"

# 3. The decode bench alone on the GPU.
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then
  TIMED_TAIL=40 timed bench-w4a16-decode 300 npx tsx bench/w4a16.ts --m 1,16 --reps 20 --out "$log/bench"
  sed -n '/^## w4a16/,/^All configs/p' "$log/bench-w4a16-decode.log"
fi

echo
echo "== summary ($log, $((SECONDS - t_start)) s)"
printf '%s\n' "${summary[@]}" | tee "$log/summary.txt"
! grep -q '^FAIL' "$log/summary.txt"
