#!/usr/bin/env bash
# The mma slot order of the 4-bit decode GEMM on the GPU (docs/QUANT.md, "The mma order"):
#  1. `tilemoe check --backend cuda` (sm_90a) of gemm_w4a16_mma at the decode configs (BM 16,
#     BN 64 / 128, BK 64 / 128, stages 2 / 4, warps 4 / 8, split-K 1 / 4 / 8: the mma.sync
#     fusion with lane-owned words), at a 64-row tile and under --dequant wgmma (the register-A
#     wgmma on the same order), and gemm_w4a16 at one decode config beside them;
#  2. SASS counts of both orders at one decode config (cuobjdump), and unless CHECKS_ONLY=1
#     the w4a16 bench at the decode shapes (M = 1, 16; N=14336 K=4096 and
#     N=4096 K=14336), where every decode config runs in both orders on one integer matrix
#     packed each way on the host (rows "w4a16" and "w4a16-mma"), against bf16 cuBLAS and the
#     copy bandwidth.
# Keeps going after a failure; summary at the end.
# Run THERE:  bash scripts/gpu-run.sh bash scripts/gpu-check-decode2.sh     (logs: $OUT/decode2)
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-out}/decode2"
mkdir -p "$log"
summary=()
t_start=$SECONDS
source scripts/lib/check-steps.sh

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$log/gpu.txt" 2>&1 || true
cat "$log/gpu.txt"
git rev-parse --short HEAD > "$log/commit.txt" 2>/dev/null || true

F=dsl-examples/gemm_w4a16.ts
MMA=(--kernel gemm_w4a16_mma --cases 8)
# 1. Checks (all in the background: mostly nvcc, 16 cores).
step mma-bk64-s2-sk1   $F "${MMA[@]}" --config BM=16,BN=64,BK=64,stages=2,warps=4,splitK=1
step mma-bk64-s4-sk8   $F "${MMA[@]}" --config BM=16,BN=64,BK=64,stages=4,warps=4,splitK=8
step mma-bk128-s2-sk1  $F "${MMA[@]}" --config BM=16,BN=64,BK=128,stages=2,warps=4,splitK=1
step mma-bk128-s2-sk4  $F "${MMA[@]}" --config BM=16,BN=64,BK=128,stages=2,warps=4,splitK=4
step mma-bk128-s4-sk8  $F "${MMA[@]}" --config BM=16,BN=64,BK=128,stages=4,warps=4,splitK=8
step mma-bn128-w4-sk4  $F "${MMA[@]}" --config BM=16,BN=128,BK=128,stages=2,warps=4,splitK=4
step mma-bn128-w8-sk8  $F "${MMA[@]}" --config BM=16,BN=128,BK=128,stages=2,warps=8,splitK=8
step mma-bm64-rswgmma  $F "${MMA[@]}" --config BM=64,BN=64,BK=64,stages=3,warps=4,splitK=1
step mma-bm16-dqw-sk4  $F "${MMA[@]}" --config BM=16,BN=64,BK=64,stages=4,warps=4,splitK=4 --dequant wgmma
step interleaved-bk128-sk4 $F --kernel gemm_w4a16 --cases 8 --config BM=16,BN=64,BK=128,stages=2,warps=4,splitK=4
collect
echo "== checks done in $((SECONDS - t_start)) s"

# SASS of both orders at one decode config (cuobjdump is on the GPU machine only): whole-kernel
# counts of the instructions the order changes (shared loads, shifts, lop3, packed bf16 math).
sass_counts() {
  local d="$log/sass/$1"; mkdir -p "$d"
  node bin/tilemoe.js build dsl-examples/gemm_w4a16.ts --kernel "$1" --config BM=16,BN=64,BK=128,stages=2,warps=4,splitK=4 --arch sm_90a --emit cubin -o "$d" > "$d/build.log" 2>&1 || return 1
  cuobjdump -sass "$d"/*.cubin > "$d/sass.txt" || return 1
  local n; n() { grep -cE "$1" "$d/sass.txt"; }
  echo "$1: instructions $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$d/sass.txt"), LDS $(n '\bLDS'), LDSM $(n LDSM), SHF $(n '\bSHF'), LOP3 $(n LOP3), HADD2/HMUL2/HFMA2 $(n 'HADD2|HMUL2|HFMA2'), HMMA $(n HMMA)"
}
TIMED_TAIL=4 timed sass-both-orders 120 bash -c "$(declare -f sass_counts); log=$log; sass_counts gemm_w4a16 && sass_counts gemm_w4a16_mma"

# 2. The bench alone on the GPU: decode shapes, both orders.
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then
  TIMED_TAIL=40 timed bench-w4a16-decode 300 npx tsx bench/w4a16.ts --m 1,16 --out "$log/bench"
  sed -n '/^## w4a16/,/^All configs/p' "$log/bench-w4a16-decode.log"
fi

echo
echo "== summary ($log, $((SECONDS - t_start)) s)"
printf '%s\n' "${summary[@]}" | tee "$log/summary.txt"
! grep -q '^FAIL' "$log/summary.txt"
