#!/usr/bin/env bash
# GPU check of ping-pong consumers in warp-specialized persistent blocks (issue 7,
# src/passes/ping-pong.ts: two consumer warpgroups take alternate tiles, their main loops
# ordered through two mbarriers, each with its own named barrier and epilogue staging tile).
# Run on the GPU machine, from the repo root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-pingpong.sh
# 0. `tilemoe build --emit ir,cubin` of the timed ping-pong builds (the GEMM row, the candidates'
#    up and down stages): registers and spills from ptxas, the second staging tile (no GPU
#    needed; in the background beside step 1).
# 1. `tilemoe check --backend cuda --arch sm_90a --ws --persistent P --pingpong` of the GEMM
#    examples (gemm_bf16, gemm_f16, gemm_relu_bias, the register-A gemm_w8a16) and the MoE grouped GEMMs
#    (moe_gemm_up_permuted, moe_gemm_down, split-K too, moe_gemm_down_pairs) at P = 132 with
#    pinned shapes of more tiles than blocks (blocks of 1 and 2 tiles: consumer 1 idle in some),
#    ragged N (element copy-out), K tiles not a multiple of the stages, and P = 3 on random
#    ragged shapes (every block alternates many tiles; odd counts; K % 8 != 0 takes the cp.async
#    fallback, serialised by the order barriers); all in parallel, each under `timeout 90` (a
#    wrong phase or a missing order signal hangs the kernel).
# 2. The GEMM bench's warp-specialized TMA rows at 4096^3 and 8192^3 (the ping-pong row
#    128x128x64 4 stages warps 4 beside the ws / ws persistent rows; only when every check
#    passed: a wrong order hangs), then the layer bench (bf16, M = 1024 and 4096)
#    with bench/candidates/bf16-prefill-pingpong.json against the choice table.
# Expected wall time: steps 0-1 about 1.5 min (90 s a check at most, in parallel), step 2 up to
# 150 s + 200 s (limits). CHECKS_ONLY=1 runs steps 0 and 1 only. Logs under $OUT/pingpong (one file per step); keeps
# going after a failure; summary at the end; exit status 0 only when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/pingpong"
mkdir -p "$log"
bench=/tmp/tilemoe-pingpong-bench
summary=()
# step / collect / timed / persistent_benches: scripts/lib/check-steps.sh; 90 s a check.
source scripts/lib/check-steps.sh
export STEP_TIMEOUT=${STEP_TIMEOUT:-90}

GEMM=dsl-examples/gemm.ts
RELU=dsl-examples/gemm_relu_bias.ts
UP=dsl-examples/moe_gemm_up.ts
DOWN=dsl-examples/moe_gemm_down.ts
DOWNR=dsl-examples/moe_gemm_down_reduce.ts
PP=(--ws --persistent 132 --pingpong)
P3=(--ws --persistent 3 --pingpong)
G128=BM=128,BN=128,BK=64,stages=4,warps=4,GROUP_M=8
U128=BM=128,BN=64,BK=64,stages=4,warps=4,GROUP_M=8
U64=BM=64,BN=128,BK=64,stages=4,warps=4,GROUP_M=8
D128=BM=128,BN=128,BK=64,stages=4,warps=4,splitK=1,GROUP_M=8
D64=BM=64,BN=256,BK=64,stages=4,warps=4,splitK=1,GROUP_M=8
R128=BM=128,BN=128,BK=64,stages=4,warps=4,GROUP_M=8
R64=BM=64,BN=256,BK=64,stages=4,warps=4,GROUP_M=8

# 0. What the benches time: 384 threads, 0 spills, a staging tile each for bf16 outputs. In the
# background, beside the checks of step 1 (nvcc only); its verdict after them.
echo "== builds: tilemoe build --emit ir,cubin of the ping-pong builds (background)"
(
for b in "$GEMM gemm_bf16 $G128" "$UP moe_gemm_up_permuted $U128" "$UP moe_gemm_up_permuted $U64" "$DOWN moe_gemm_down $D128" \
         "$DOWNR moe_gemm_down_pairs $R128" "$DOWNR moe_gemm_down_pairs $R64"; do
  read -r file kernel config <<< "$b"
  rm -rf "$bench/build"
  node bin/tilemoe.js build "$file" --kernel "$kernel" --config "$config" --arch sm_90a "${PP[@]}" --emit ir,cubin -o "$bench/build" 2>&1 | tail -n 1
  grep -m1 -h "alloc [a-z_]*_out_1: shared" "$bench/build"/*.ir.txt || true
done > "$log/builds.log"
) &
# (collect waits for it with the checks)

# 1. The GEMM examples. 256 tiles on 132 blocks (K = 520: 9 K tiles, not a multiple of 4);
# 64 tiles (every block one tile: consumer 1 idle) with N = 1001 (element copy-out); random
# ragged shapes on 132 and on 3 blocks (K % 8 != 0 in some: the cp.async fallback).
step gemm-pp132 $GEMM --kernel gemm_bf16 "${PP[@]}" --config $G128 --cases 20
step gemm-pp132-256tiles $GEMM --kernel gemm_bf16 "${PP[@]}" --config $G128 --shape M=2048,N=2048,K=520 --cases 2
step gemm-pp132-raggedN $GEMM --kernel gemm_bf16 "${PP[@]}" --config $G128 --shape M=1000,N=1001,K=264 --cases 1
step gemm-pp132-600tiles $GEMM --kernel gemm_bf16 "${PP[@]}" --config BM=64,BN=128,BK=64,stages=4,warps=4,GROUP_M=8 --shape M=2400,N=2560,K=200 --cases 1
step gemm-pp3 $GEMM --kernel gemm_bf16 "${P3[@]}" --config BM=64,BN=64,BK=64,stages=3,warps=4,GROUP_M=8 --cases 20
step gemm-f16-pp132 $GEMM --kernel gemm_f16 "${PP[@]}" --config $G128 --cases 10
step relu-bias-pp3 $RELU "${P3[@]}" --config BM=128,BN=128,BK=64,stages=3,warps=4 --cases 10
step w8a16-pp3 dsl-examples/gemm_w8a16.ts --kernel gemm_w8a16 "${P3[@]}" --config BM=128,BN=64,BK=64,stages=3,warps=4 --cases 10

# The MoE grouped GEMMs (shapes as in gpu-check-persist.sh: unused routing blocks whose tiles
# skip the loop and still move both consumers' counters, more tiles than blocks).
UP_MANY=T=200,K=520,N=2000,E=8,E2N=32000,TOPK=2,skew=2,BS=64,NB=16
UP_BS128=T=12,K=520,N=300,E=4,E2N=2400,TOPK=2,skew=1,BS=128,NB=5
DOWN_MANY=T=200,N=520,H=2048,E=8,EH=16384,TOPK=2,skew=2,BS=64,NB=16
DOWN_BS128=T=40,N=520,H=8192,E=4,EH=32768,TOPK=2,skew=2,BS=128,NB=8
step up-pp132 $UP --kernel moe_gemm_up_permuted "${PP[@]}" --config $U128 --cases 12
step up-pp132-bs128 $UP --kernel moe_gemm_up_permuted "${PP[@]}" --config $U128 --shape "$UP_BS128" --cases 2
step up-pp132-many $UP --kernel moe_gemm_up_permuted "${PP[@]}" --config $U64 --shape "$UP_MANY" --cases 2
step up-pp3 $UP --kernel moe_gemm_up_permuted "${P3[@]}" --config BM=64,BN=64,BK=64,stages=4,warps=4,GROUP_M=1 --cases 12
step down-pp132 $DOWN "${PP[@]}" --config $D128 --cases 12
step down-pp132-bs128 $DOWN "${PP[@]}" --config $D128 --shape "$DOWN_BS128" --cases 2
step down-pp132-many $DOWN "${PP[@]}" --config $D64 --shape "$DOWN_MANY" --cases 2
step down-pp3-splitk2 $DOWN "${P3[@]}" --config BM=64,BN=128,BK=64,stages=3,warps=4,splitK=2,GROUP_M=1 --cases 12
step down-pairs-pp132 $DOWNR --kernel moe_gemm_down_pairs "${PP[@]}" --config $R128 --cases 8
step down-pairs-pp132-64x256 $DOWNR --kernel moe_gemm_down_pairs "${PP[@]}" --config $R64 --cases 8
collect
cat "$log/builds.log"
# Build rows: file kernel config target threads smem registers spills status.
bad=$(awk '$1 != "alloc" && NF == 9 && ($5 != "384" || $8 != "0" || $9 != "ok")' "$log/builds.log")
if [[ -z $bad ]] && (( $(grep -c " ok$" "$log/builds.log") == 6 )); then summary+=("PASS  builds (384 threads, 0 spills)"); else summary+=("FAIL  builds: $log/builds.log"); fi

# CHECKS_ONLY=1: the checks above only.
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then
  # The GEMM bench's ws rows only (ws, ws persistent, ping-pong: the comparison), the layer
  # candidates at M = 1024 and 4096.
  GEMM_WS=only CANDIDATES=bench/candidates/bf16-prefill-pingpong.json persistent_benches 1024,4096 200
fi
echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/gemm-table.md ]] && cat "$log/gemm-table.md"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
for s in "${summary[@]}"; do [[ $s == FAIL* || $s == SKIP* ]] && exit 1; done
exit 0
