#!/usr/bin/env bash
# GPU check of warp-specialized persistent blocks whose producer runs ahead across tiles
# (issue 7: the TMA pipeline's mbarriers set up once a block, a running stage counter in both
# roles, the epilogue of a tile overlapped with the next tile's loads). Run on the GPU machine,
# from the repo root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-persist.sh
# 1. `tilemoe check --backend cuda --arch sm_90a --ws --persistent P` of gemm_bf16 and of the
#    MoE grouped GEMMs (moe_gemm_up_permuted, moe_gemm_down, split-K too) at several configs,
#    P = 132 and P = 3 (every block loops over many tiles), random ragged shapes and pinned ones
#    with more tiles than 132 blocks and routing blocks of unused experts; all in parallel, each
#    under `timeout 90` (a wrong phase or a stage never released hangs the kernel).
# 2. The GEMM bench's TMA rows at 4096^3 and 8192^3: ws against ws persistent (132 blocks).
# 3. The layer bench (bf16, M = 1024 and 4096) with the candidates of
#    bench/candidates/bf16-prefill-persistent.json (the prefill entry with persistent grouped
#    GEMMs) against the choice table.
# CHECKS_ONLY=1 runs step 1 only. Logs under $OUT/persist (one file per step); keeps going after
# a failure; summary at the end; exit status 0 only when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/persist"
mkdir -p "$log"
bench=/tmp/tilemoe-persist-bench
summary=()
# step / collect: scripts/lib/check-steps.sh; 90 s a check (nvcc included: one kernel each).
source scripts/lib/check-steps.sh
export STEP_TIMEOUT=${STEP_TIMEOUT:-90}

GEMM=dsl-examples/gemm.ts
UP=dsl-examples/moe_gemm_up.ts
DOWN=dsl-examples/moe_gemm_down.ts
WSP=(--ws --persistent 132)

# gemm_bf16: the default config, the bench's ws persistent row (two consumer warpgroups), one
# consumer warpgroup at 4 stages; 256 tiles of 128 x 128 on 132 blocks, 9 K tiles (not a
# multiple of 3 or 4); and 3 blocks looping over every tile of a random shape.
step gemm-p132-default $GEMM --kernel gemm_bf16 "${WSP[@]}" --cases 30
step gemm-p132-128x256-s3 $GEMM --kernel gemm_bf16 "${WSP[@]}" --config BM=128,BN=256,BK=64,stages=3,warps=8,GROUP_M=8 --cases 20
step gemm-p132-128x128-s4-w4 $GEMM --kernel gemm_bf16 "${WSP[@]}" --config BM=128,BN=128,BK=64,stages=4,warps=4,GROUP_M=8 --cases 20
step gemm-p132-256tiles $GEMM --kernel gemm_bf16 "${WSP[@]}" --config BM=128,BN=128,BK=64,stages=4,warps=8,GROUP_M=8 --shape M=2048,N=2048,K=520 --cases 2
step gemm-p3-128x256-s3 $GEMM --kernel gemm_bf16 --ws --persistent 3 --config BM=128,BN=256,BK=64,stages=3,warps=8,GROUP_M=8 --cases 20

# The MoE grouped GEMMs. Pinned shapes: routing block 64 with 16 blocks, skew 2 (odd experts
# empty: their blocks' tiles skip the loop), 256 tiles of 64 x 128; routing block 128 with the
# layer's prefill tiles, 256 tiles of the down kernel's 128 x 256. (Both satisfy the checks'
# dimsWhere: NB >= cdiv(P, BS) + min(E, P), NB * BS <= 1024.)
UP_MANY=T=200,K=520,N=2000,E=8,E2N=32000,TOPK=2,skew=2,BS=64,NB=16
DOWN_MANY=T=200,N=520,H=2048,E=8,EH=16384,TOPK=2,skew=2,BS=64,NB=16
DOWN_BS128=T=40,N=520,H=8192,E=4,EH=32768,TOPK=2,skew=2,BS=128,NB=8
UP_BS128=T=12,K=520,N=300,E=4,E2N=2400,TOPK=2,skew=1,BS=128,NB=5
step up-p132-layer $UP --kernel moe_gemm_up_permuted "${WSP[@]}" --config BM=128,BN=128,BK=64,stages=3,warps=8,GROUP_M=8 --cases 12
step up-p132-layer-bs128 $UP --kernel moe_gemm_up_permuted "${WSP[@]}" --config BM=128,BN=128,BK=64,stages=3,warps=8,GROUP_M=8 --shape "$UP_BS128" --cases 2
step up-p132-256tiles $UP --kernel moe_gemm_up_permuted "${WSP[@]}" --config BM=64,BN=128,BK=64,stages=3,warps=8,GROUP_M=8 --shape "$UP_MANY" --cases 2
step up-p3-w4 $UP --kernel moe_gemm_up_permuted --ws --persistent 3 --config BM=64,BN=64,BK=64,stages=4,warps=4,GROUP_M=1 --cases 12
step down-p132-layer $DOWN "${WSP[@]}" --config BM=128,BN=256,BK=64,stages=3,warps=8,splitK=1,GROUP_M=8 --cases 12
step down-p132-layer-256tiles $DOWN "${WSP[@]}" --config BM=128,BN=256,BK=64,stages=3,warps=8,splitK=1,GROUP_M=8 --shape "$DOWN_BS128" --cases 2
step down-p132-128x128-s4 $DOWN "${WSP[@]}" --config BM=128,BN=128,BK=64,stages=4,warps=8,splitK=1,GROUP_M=8 --cases 12
step down-p132-256tiles $DOWN "${WSP[@]}" --config BM=64,BN=128,BK=64,stages=3,warps=4,splitK=1,GROUP_M=8 --shape "$DOWN_MANY" --cases 2
step down-p3-splitk2 $DOWN --ws --persistent 3 --config BM=64,BN=128,BK=64,stages=3,warps=4,splitK=2,GROUP_M=1 --cases 12
collect

# CHECKS_ONLY=1: the checks above only (a caller that runs the benches once for several scripts).
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then
  persistent_benches 1024,4096 240
fi
echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/gemm-table.md ]] && cat "$log/gemm-table.md"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
for s in "${summary[@]}"; do [[ $s == FAIL* || $s == SKIP* ]] && exit 1; done
exit 0
