#!/usr/bin/env bash
# GPU check of the layer's per-M choice table (issue 4: decode entry with routing block 16,
# BM 16 and split-K over the down projection; prefill entry with 64-row tiles; both in the
# grouped block order; TMA for the bf16 down projection). Run on the GPU machine,
# from the repo root, through gpu-run.sh (node, the runner, cuBLAS paths):
#   bash scripts/gpu-run.sh bash scripts/gpu-check-layer2.sh
# 1. `tilemoe check --backend cuda` of the grouped GEMMs at the table's configs (the new
#    split-K of moe_gemm_down / moe_gemm_down_w4a16 at 2 and 8 slices, the 4-stage w4a16 up,
#    the grouped block order GROUP_M 8 of every entry), pinned configs so each step compiles once.
# 2. The layer bench with every entry of the choice tables alone (--layer-entries), both models,
#    bf16 and w4a16, M = 1..4096: the table's rows ("config" says which entry ran) with floors and
#    ratios; each entry alone checked against the table's output at every M (all rows, within
#    2^-7 of the scale: this is the layer's CUDA check of each entry at M = 1..4096), Qwen3's
#    token 0 against the float64 layer reference, Mixtral's against its M = 1 row.
# Logs under $OUT/layer2 (one file per step); keeps going after a failure; summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/layer2"
mkdir -p "$log"
bench=/tmp/tilemoe-layer2-bench
summary=()
# step / collect: scripts/lib/check-steps.sh.
source scripts/lib/check-steps.sh


# The decode entries' configs (src/moe/layer.ts CHOICES): split-K 8 (Mixtral) and 2 (Qwen3), grouped order;
# sm_90a's default copy is TMA, which the bf16 down kernel takes (as in the layer).
step down-decode-sk8 dsl-examples/moe_gemm_down.ts --config BM=16,BN=64,BK=64,stages=4,warps=4,splitK=8,GROUP_M=8 --cases 12
step down-decode-sk2 dsl-examples/moe_gemm_down.ts --config BM=16,BN=64,BK=64,stages=4,warps=4,splitK=2,GROUP_M=8 --cases 12
step down-w4a16-decode-sk8 dsl-examples/moe_gemm_down_w4a16.ts --config BM=16,BN=64,BK=128,stages=4,warps=4,splitK=8,GROUP_M=8 --cases 12
step down-w4a16-decode-sk2 dsl-examples/moe_gemm_down_w4a16.ts --config BM=16,BN=64,BK=128,stages=4,warps=4,splitK=2,GROUP_M=8 --cases 12
step up-decode dsl-examples/moe_gemm_up.ts --kernel moe_gemm_up --config BM=16,BN=64,BK=64,stages=4,warps=4,GROUP_M=8 --cases 12
step up-w4a16-decode dsl-examples/moe_gemm_up_w4a16.ts --config BM=16,BN=64,BK=128,stages=4,warps=4,GROUP_M=8 --cases 12
# The prefill entries' kernels in the grouped order (and the down kernels' new grid).
step up-prefill dsl-examples/moe_gemm_up.ts --kernel moe_gemm_up --config BM=64,BN=64,BK=64,stages=3,warps=8,GROUP_M=8 --cases 12
step up-w4a16-prefill dsl-examples/moe_gemm_up_w4a16.ts --config BM=64,BN=64,BK=64,stages=3,warps=8,GROUP_M=8 --cases 12
step down-prefill dsl-examples/moe_gemm_down.ts --config BM=64,BN=64,BK=64,stages=3,warps=4,splitK=1,GROUP_M=8 --cases 12
step down-w4a16-prefill dsl-examples/moe_gemm_down_w4a16.ts --config BM=64,BN=64,BK=128,stages=3,warps=4,splitK=1,GROUP_M=8 --cases 12
collect

# CHECKS_ONLY=1: the checks above only (a caller that runs the benches once for several scripts).
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then

rm -rf "$bench"
# Under a timeout (the device call's limit is 10 minutes) so the summary still prints.
TIMED_TAIL=40 timed layer-bench 420 npx tsx bench/run.ts --layer --layer-entries --out "$bench"
cp "$bench/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true
cp "$bench/layer/plan/results.json" "$log/layer-results.json" 2>/dev/null || true

fi
echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
