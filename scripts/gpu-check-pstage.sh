#!/usr/bin/env bash
# GPU check of the staged epilogue in warp-specialized persistent blocks (issue 7,
# lower-epilogue.ts: `T.copy(acc, C.tile(...))` converts into a shared staging tile of its own,
# beside the operand stages the producer keeps refilling, and leaves in 16-byte vectors; the
# consumers' named barrier orders the tile's reuse across a block's tiles). Run on the GPU
# machine, from the repo root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-pstage.sh
# 0. `tilemoe build --emit ir,cubin` of the three staged builds (the bench's ws persistent GEMM
#    rows, the layer candidates' up stage): the staging alloc, shared bytes, registers, spills
#    (no GPU needed: a record of what was timed).
# 1. `tilemoe check --backend cuda --arch sm_90a --ws --persistent P` of gemm_bf16 and
#    moe_gemm_up_permuted at the staged configs, P = 132 (pinned shapes with more tiles than
#    blocks) and P = 3 (each block reuses its staging tile for many tiles), random ragged shapes
#    (N % 8 != 0 takes the element copy-out); all in parallel, each under `timeout 90`.
# 2. The GEMM bench's TMA rows at 4096^3 and 8192^3 (ws against ws persistent, now staged).
# 3. The layer bench (bf16, M = 4096) with bench/candidates/bf16-prefill-persistent.json.
# CHECKS_ONLY=1 runs steps 0 and 1 only. Logs under $OUT/pstage (one file per step); keeps going
# after a failure; summary at the end; exit status 0 only when every step passed.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/pstage"
mkdir -p "$log"
bench=/tmp/tilemoe-pstage-bench
summary=()
# step / collect / timed: scripts/lib/check-steps.sh; 90 s a check (nvcc included: one kernel each).
source scripts/lib/check-steps.sh
export STEP_TIMEOUT=${STEP_TIMEOUT:-90}

GEMM=dsl-examples/gemm.ts
UP=dsl-examples/moe_gemm_up.ts
WSP=(--ws --persistent 132)
G256=BM=128,BN=256,BK=64,stages=3,warps=8,GROUP_M=8
G128=BM=128,BN=128,BK=64,stages=4,warps=8,GROUP_M=8
U128=BM=128,BN=128,BK=64,stages=3,warps=8,GROUP_M=8

# 0. What the benches below time: staged (alloc *_out without `over`), no spills (build prints
# registers and spills from ptxas). nvcc only: no timeout needed.
echo "== builds: tilemoe build --emit ir,cubin of the staged builds"
rc=0
for b in "$GEMM gemm_bf16 $G256" "$GEMM gemm_bf16 $G128" "$UP moe_gemm_up_permuted $U128"; do
  read -r file kernel config <<< "$b"
  rm -rf "$bench/build"
  node bin/tilemoe.js build "$file" --kernel "$kernel" --config "$config" --arch sm_90a "${WSP[@]}" --emit ir,cubin -o "$bench/build" 2>&1 | tail -n 1 || rc=1
  grep -m1 -h "alloc [a-z_]*_out: shared" "$bench/build"/*.ir.txt || { echo "NOT STAGED: $kernel $config"; rc=1; }
done > "$log/builds.log"
cat "$log/builds.log"
# Build rows: file kernel config target threads smem registers spills status.
bad=$(awk '$1 != "alloc" && NF == 9 && ($8 != "0" || $9 != "ok")' "$log/builds.log")
if (( rc == 0 )) && [[ -z $bad ]] && (( $(grep -c " ok$" "$log/builds.log") == 3 )); then summary+=("PASS  builds (staged, 0 spills)"); else summary+=("FAIL  builds: $log/builds.log"); fi

# 1. gemm_bf16: the bench's rows on random shapes (M, N <= 150: a few tiles) and pinned ones with
# more tiles than blocks (K = 520: 9 K tiles, not a multiple of the stages; N = 1001 and 1030:
# rows that are not whole 16-byte vectors, the element copy-out), one consumer warpgroup, 3 blocks.
step gemm-p132-128x256-s3 $GEMM --kernel gemm_bf16 "${WSP[@]}" --config $G256 --cases 20
step gemm-p132-128x256-s3-512tiles $GEMM --kernel gemm_bf16 "${WSP[@]}" --config $G256 --shape M=4096,N=4096,K=520 --cases 1
step gemm-p132-128x128-s4-256tiles $GEMM --kernel gemm_bf16 "${WSP[@]}" --config $G128 --shape M=2048,N=2048,K=520 --cases 2
step gemm-p132-128x128-s4-raggedN $GEMM --kernel gemm_bf16 "${WSP[@]}" --config $G128 --shape M=1000,N=1001,K=264 --cases 1
step gemm-p132-128x128-s4-w4 $GEMM --kernel gemm_bf16 "${WSP[@]}" --config BM=128,BN=128,BK=64,stages=4,warps=4,GROUP_M=8 --cases 20
step gemm-p3-128x256-s3 $GEMM --kernel gemm_bf16 --ws --persistent 3 --config $G256 --cases 20
# 25 tiles (ragged in M and N) on 3 blocks: 8 or 9 tiles through one staging tile each.
step gemm-p3-128x256-s3-25tiles $GEMM --kernel gemm_bf16 --ws --persistent 3 --config $G256 --shape M=520,N=1030,K=200 --cases 1
step gemm-p3-128x128-s4 $GEMM --kernel gemm_bf16 --ws --persistent 3 --config $G128 --cases 20

# moe_gemm_up_permuted (SiLU(gate) * up stored bf16 through the staging tile): the layer's
# config, routing block 128 with unused experts, 256 tiles of 64 x 128, 3 blocks with 1 warpgroup.
# (Shapes as gpu-check-persist.sh's: they satisfy the spec's dimsWhere.)
UP_MANY=T=200,K=520,N=2000,E=8,E2N=32000,TOPK=2,skew=2,BS=64,NB=16
UP_BS128=T=12,K=520,N=300,E=4,E2N=2400,TOPK=2,skew=1,BS=128,NB=5
step up-p132-layer $UP --kernel moe_gemm_up_permuted "${WSP[@]}" --config $U128 --cases 12
step up-p132-layer-bs128 $UP --kernel moe_gemm_up_permuted "${WSP[@]}" --config $U128 --shape "$UP_BS128" --cases 2
step up-p132-256tiles $UP --kernel moe_gemm_up_permuted "${WSP[@]}" --config BM=64,BN=128,BK=64,stages=3,warps=8,GROUP_M=8 --shape "$UP_MANY" --cases 2
step up-p3-w4 $UP --kernel moe_gemm_up_permuted --ws --persistent 3 --config BM=64,BN=64,BK=64,stages=4,warps=4,GROUP_M=1 --cases 12
step up-p3-layer $UP --kernel moe_gemm_up_permuted --ws --persistent 3 --config $U128 --cases 6
collect

# CHECKS_ONLY=1: the checks above only.
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then
  persistent_benches 4096 180 --reps 5
fi
echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/gemm-table.md ]] && cat "$log/gemm-table.md"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
for s in "${summary[@]}"; do [[ $s == FAIL* || $s == SKIP* ]] && exit 1; done
exit 0
