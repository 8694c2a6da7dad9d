#!/usr/bin/env bash
# GPU check of the permuted prefill path (issues 4 and 7): moe_permute copies the activation
# rows into routing order, moe_gemm_up_permuted reads them as plain tiles (TMA + warp
# specialization on sm_90a), the bf16 prefill entries of both models run router, gate, align,
# permute, up (permuted), down. Run on the GPU machine, from the repo root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-permute.sh
# 1. `tilemoe check --backend cuda --arch sm_90a` of moe_permute (the layer's config and a wide
#    one) and of the permuted up kernel at BM 64 / 128 with BN 128 / 256 (and the down kernel at
#    the prefill entry's BM 128 x BN 256), random ragged shapes and a pinned one with routing
#    block 128; all in parallel, each under `timeout 200`.
# 2. The layer bench (bf16 only where this bench/run.ts has --layer-weights) at M = 1024, 4096,
#    each choice-table entry alone too (--layer-entries): the prefill rows are the permuted
#    path; floors and ratios in the table.
# Logs under $OUT/permute (one file per step); keeps going after a failure; summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/permute"
mkdir -p "$log"
bench=/tmp/tilemoe-permute-bench
summary=()
# step / collect: scripts/lib/check-steps.sh.
source scripts/lib/check-steps.sh


UP=dsl-examples/moe_gemm_up.ts
DOWN=dsl-examples/moe_gemm_down.ts
# Routing block 128 (the prefill entries'): 5 blocks for 24 pairs on 4 experts, K / N long
# enough for several pipelined K tiles. Both satisfy the checks' dimsWhere (NB >= cdiv(P, BS)
# + min(E, P), NB * BS <= 1024): a pinned shape that does not is never drawn and the check hangs.
UP_BS128=T=12,K=520,N=300,E=4,E2N=2400,TOPK=2,skew=1,BS=128,NB=5
DOWN_BS128=T=12,N=520,H=300,E=4,EH=1200,TOPK=2,skew=1,BS=128,NB=5

# moe_permute: the layer's config (src/moe/layer.ts PERMUTE_CONFIG: BR 16, BH 512, 4 stages, 4 warps) and a wide one; BS up to 128.
step permute-layer dsl-examples/moe_permute.ts --config BR=16,BH=512,stages=4,warps=4 --cases 16
step permute-wide dsl-examples/moe_permute.ts --config BR=32,BH=512,stages=2,warps=8 --cases 16
# The permuted up kernel (TMA for Xp, gate and up tiles; warp-specialized): random shapes, then
# routing block 128. (Not BM 128 x BN 256: two f32 accumulators of 128 x 256 would need the
# whole register file; the kernel's `where` refuses it.)
for cfg in BM=64,BN=128,BK=64,stages=3 BM=64,BN=256,BK=64,stages=2 BM=64,BN=256,BK=32,stages=4 BM=128,BN=128,BK=64,stages=3; do
  name=$(echo "$cfg" | sed 's/BM=\([0-9]*\),BN=\([0-9]*\),BK=\([0-9]*\),stages=\([0-9]*\)/bm\1-bn\2-bk\3-s\4/')
  step "up-permuted-$name" $UP --kernel moe_gemm_up_permuted --config "$cfg,warps=8,GROUP_M=8" --cases 12
  step "up-permuted-$name-bs128" $UP --kernel moe_gemm_up_permuted --config "$cfg,warps=8,GROUP_M=8" --shape "$UP_BS128" --cases 2
done
# The prefill entry's down config (BM 128, BN 256, 8 warps) and BM 64 x BN 256.
step down-bm128-bn256 $DOWN --config BM=128,BN=256,BK=64,stages=3,warps=8,splitK=1,GROUP_M=8 --cases 12
step down-bm128-bn256-bs128 $DOWN --config BM=128,BN=256,BK=64,stages=3,warps=8,splitK=1,GROUP_M=8 --shape "$DOWN_BS128" --cases 2
step down-bm64-bn256 $DOWN --config BM=64,BN=256,BK=64,stages=3,warps=8,splitK=1,GROUP_M=8 --cases 12
collect

# CHECKS_ONLY=1: the checks above only (a caller that runs the benches once for several scripts).
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then

# The whole layer, alone on the GPU: bf16 only where this bench/run.ts can filter.
filter=()
if grep -q -- '--layer-weights' bench/run.ts; then filter=(--layer-weights bf16); fi
rm -rf "$bench"
TIMED_TAIL=40 timed layer-bench 180 npx tsx bench/run.ts --layer --layer-tokens 1024,4096 --layer-entries "${filter[@]}" --out "$bench"
cp "$bench/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true
cp "$bench/layer/plan/results.json" "$log/layer-results.json" 2>/dev/null || true

fi
echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
