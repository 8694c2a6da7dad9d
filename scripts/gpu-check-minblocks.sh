#!/usr/bin/env bash
# GPU check of the launch option minBlocks (docs/DSL.md): the decode kernels of gemm_w4a16.ts built
# under nvcc's register cap (__launch_bounds__(128, 7) / (128, 8); some spill) compute what they
# compute without it. Run on the GPU machine, from the repo root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-minblocks.sh
# `tilemoe check --backend cuda --arch sm_90a` of gemm_w4a16_mma, gemm_w4a16_gs and gemm_w4a16_mma_gs
# at BM 16 BN 64 BK 128, 2 stages, 4 warps, split-K 4, minBlocks 7 and 8, side by side. Logs under
# $OUT/minblocks; keeps going after a failure; summary at the end. ~1 min (nvcc).
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/minblocks"
mkdir -p "$log"
summary=()
source scripts/lib/check-steps.sh
for k in gemm_w4a16_mma gemm_w4a16_gs gemm_w4a16_mma_gs; do
  for mb in 7 8; do
    step "$k-mb$mb" dsl-examples/gemm_w4a16.ts --kernel "$k" --cases 8 --config "BM=16,BN=64,BK=128,stages=2,warps=4,splitK=4,minBlocks=$mb"
  done
done
collect
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
! printf '%s\n' "${summary[@]}" | grep -q '^FAIL'
