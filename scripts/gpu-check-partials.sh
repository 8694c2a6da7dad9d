#!/usr/bin/env bash
# Group scales on f32 partial sums (docs/QUANT.md, "Group scales on partial sums"), on the GPU:
#  1. `tilemoe check --backend cuda` (sm_90a) of gemm_w4a16_mma_gs and gemm_w4a16_gs at decode
#     configs (BM 16, BN 64 / 128, BK 64 / 128, stages 2 / 4, split-K 1 / 4 / 8: the fused loop
#     with biased pairs and the row-sum mma), drawn shapes (ragged N and K) and pinned ones at
#     M = 1 and M = 16 with K ragged past the tile and the group; gemm_w4a16_mma beside them;
#     and one sm_80 build of gemm_w4a16_mma_gs checked the same way (its PTX JIT-compiled here);
#  2. SASS counts of gemm_w4a16_mma and gemm_w4a16_mma_gs at one decode config (cuobjdump);
#  3. unless CHECKS_ONLY=1, the w4a16 bench at the decode shapes (M = 1, 16; N=14336 K=4096 and
#     N=4096 K=14336): rows "w4a16", "w4a16-mma", "w4a16-gs" and "w4a16-mma-gs" at the
#     same configs on one integer matrix, against bf16 cuBLAS and the copy bandwidth.
# Keeps going after a failure; summary at the end.
# Run THERE:  bash scripts/gpu-run.sh bash scripts/gpu-check-partials.sh     (logs: $OUT/partials)
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-out}/partials"
mkdir -p "$log"
summary=()
t_start=$SECONDS
source scripts/lib/check-steps.sh

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$log/gpu.txt" 2>&1 || true
cat "$log/gpu.txt"
git rev-parse --short HEAD > "$log/commit.txt" 2>/dev/null || true

F=dsl-examples/gemm_w4a16.ts
GM=(--kernel gemm_w4a16_mma_gs --cases 8)
GI=(--kernel gemm_w4a16_gs --cases 8)
D="BM=16,BN=64"
# 1. Checks (in the background: mostly nvcc, 16 cores).
step gs-mma-bk64-s2-sk1    $F "${GM[@]}" --config $D,BK=64,stages=2,warps=4,splitK=1
step gs-mma-bk64-s4-sk8    $F "${GM[@]}" --config $D,BK=64,stages=4,warps=4,splitK=8
step gs-mma-bk128-s2-sk1   $F "${GM[@]}" --config $D,BK=128,stages=2,warps=4,splitK=1
step gs-mma-bk128-s2-sk4   $F "${GM[@]}" --config $D,BK=128,stages=2,warps=4,splitK=4
step gs-mma-bk128-s4-sk8   $F "${GM[@]}" --config $D,BK=128,stages=4,warps=4,splitK=8
step gs-mma-bn128-sk4      $F "${GM[@]}" --config BM=16,BN=128,BK=128,stages=2,warps=4,splitK=4
step gs-il-bk64-s2-sk1     $F "${GI[@]}" --config $D,BK=64,stages=2,warps=4,splitK=1
step gs-il-bk128-s2-sk4    $F "${GI[@]}" --config $D,BK=128,stages=2,warps=4,splitK=4
step gs-il-bk64-s4-sk8     $F "${GI[@]}" --config $D,BK=64,stages=4,warps=4,splitK=8
# Pinned decode shapes: M = 1 and 16, K ragged past the K tile and the group of 128.
step gs-mma-m1-k1000-sk4   $F --kernel gemm_w4a16_mma_gs --cases 2 --shape M=1,N=300,K=1000 --config $D,BK=128,stages=2,warps=4,splitK=4
step gs-mma-m16-k4000-sk8  $F --kernel gemm_w4a16_mma_gs --cases 2 --shape M=16,N=520,K=4000 --config $D,BK=64,stages=4,warps=4,splitK=8
step gs-mma-m16-k1000-sk1  $F --kernel gemm_w4a16_mma_gs --cases 2 --shape M=16,N=136,K=1000 --config $D,BK=128,stages=2,warps=4,splitK=1
step gs-il-m1-k2000-sk4    $F --kernel gemm_w4a16_gs --cases 2 --shape M=1,N=130,K=2000 --config $D,BK=128,stages=2,warps=4,splitK=4
step gs-il-m16-k520-sk8    $F --kernel gemm_w4a16_gs --cases 2 --shape M=16,N=72,K=520 --config $D,BK=64,stages=2,warps=4,splitK=8
step gs-mma-bm64-rswgmma   $F "${GM[@]}" --config BM=64,BN=64,BK=64,stages=3,warps=4,splitK=1
step mma-bk128-s2-sk4      $F --kernel gemm_w4a16_mma --cases 8 --config $D,BK=128,stages=2,warps=4,splitK=4
collect
# One sm_80 build (PTX in the fatbin, JIT-compiled on this card), checked.
timed gs-mma-sm80-bk64-sk4 200 node bin/tilemoe.js check $F --kernel gemm_w4a16_mma_gs --cases 6 --backend cuda --arch sm_80 --seed 20261128 \
  --config $D,BK=64,stages=2,warps=4,splitK=4
echo "== checks done in $((SECONDS - t_start)) s"

# 2. SASS at one decode config: the packed bf16 math per pair goes (HADD2/HMUL2/HFMA2 -> 0),
# HMMA grows by one per k-step (the row sums); instruction totals of the whole kernel.
sass_counts() {
  local d="$log/sass/$1"; mkdir -p "$d"
  node bin/tilemoe.js build dsl-examples/gemm_w4a16.ts --kernel "$1" --config BM=16,BN=64,BK=128,stages=2,warps=4,splitK=4 --arch sm_90a --emit cubin,ptx -o "$d" > "$d/build.log" 2>&1 || return 1
  cuobjdump -sass "$d"/*.cubin > "$d/sass.txt" || return 1
  local n; n() { grep -cE "$1" "$d/sass.txt"; }
  echo "$1: instructions $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$d/sass.txt"), LDS $(n '\bLDS'), LDSM $(n LDSM), SHF $(n '\bSHF'), LOP3 $(n LOP3), HADD2/HMUL2/HFMA2 $(n 'HADD2|HMUL2|HFMA2'), HMMA $(n HMMA), FFMA $(n FFMA), LDG $(n LDG)"
  npx tsx scripts/ptx-loop-stats.ts "$d"/*.ptx
}
TIMED_TAIL=8 timed sass-mma-vs-gs 150 bash -c "$(declare -f sass_counts); log=$log; sass_counts gemm_w4a16_mma && sass_counts gemm_w4a16_mma_gs"

# 3. The bench alone on the GPU: decode shapes, all four decode kernels.
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then
  TIMED_TAIL=40 timed bench-w4a16-decode 300 npx tsx bench/w4a16.ts --m 1,16 --out "$log/bench"
  sed -n '/^## w4a16/,/^All configs/p' "$log/bench-w4a16-decode.log"
fi

echo
echo "== summary ($log, $((SECONDS - t_start)) s)"
printf '%s\n' "${summary[@]}" | tee "$log/summary.txt"
! grep -q '^FAIL' "$log/summary.txt"
