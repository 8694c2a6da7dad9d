#!/usr/bin/env bash
# GPU check of the top-k combine chosen per choice-table entry (issues 4 and 7): the bf16 tables
# of both models now mix the combines (decode: f32 atomics in moe_gemm_down; prefill: the down GEMM
# stores a row per (token, slot) pair, moe_combine sums them). Run on the GPU machine, from the
# repo root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-combine.sh
# 1. `tilemoe check --backend cuda --arch sm_90a` of the kernels the mixed tables run, at the
#    tables' configs: moe_gemm_down_pairs at the prefill entry's tile (BM 128 x BN 256, 8 warps;
#    random shapes and a pinned one with routing block 128) and at the decode tile that the forced
#    reduce layer runs (BM 16), moe_combine (BH 256), moe_gemm_down with the decode entries'
#    split-K 8 / 2 (the atomics); the combine reduce_bf16's kernels (moe_gemm_down_pairs_bf16 at
#    the prefill, mid and decode tiles, moe_gemm_down_pairs_w4a16_bf16, moe_combine_bf16). In
#    parallel, each under `timeout 200`.
# 2. The layer bench for bf16, both models, M = 1, 64, 1024, 4096 (`tilemoe check` has no layer
#    mode: the bench is the layer's CUDA check): every layer three times, the table as it is
#    (decode atomic, prefill reduce) and forced to all atomic / all reduce (rows "bf16 all
#    atomic", "bf16 all reduce"); the table's Qwen3 token 0 against the float64 layer reference
#    (Mixtral's against its M = 1 row), each forced layer's whole output against the table's
#    (1e-4 of the scale: only the f32 summation order differs); then the three side by side
#    (table ms, all atomic ms, all reduce ms, atomic / reduce).
# 3. TORCH=1: runtime/torch/compare.py builds the generated Qwen3 bf16 table as a PyTorch
#    extension (the launcher and its workspace query) and compares it with plain PyTorch at
#    T = 1, 256 (decode, atomics) and 1024 (prefill, reduction). Off by default (its nvcc build
#    takes a minute or two; the 4-minute budget is for steps 1 and 2).
# CHECKS_ONLY=1: step 1 only. Logs under $OUT/combine (one file per step); keeps going after a
# failure; summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/combine"
mkdir -p "$log"
bench=/tmp/tilemoe-combine-bench
summary=()
# step / collect / timed: scripts/lib/check-steps.sh.
source scripts/lib/check-steps.sh

PAIRS="dsl-examples/moe_gemm_down_reduce.ts --kernel moe_gemm_down_pairs"
PAIRS_BF16="dsl-examples/moe_gemm_down_reduce.ts --kernel moe_gemm_down_pairs_bf16"
PAIRS_W4_BF16="dsl-examples/moe_gemm_down_w4a16.ts --kernel moe_gemm_down_pairs_w4a16_bf16"
DOWN=dsl-examples/moe_gemm_down.ts
# Routing block 64 (the largest the pairs check draws) pinned: 3 blocks of 64 for 24 pairs on 2
# used experts, N long enough for several K tiles; dimsWhere holds (NB >= cdiv(P, BS) + min(E, P)
# is 1 + 2, NB * BS <= 1024). The prefill tile BM 128 spans two routing blocks' rows.
PAIRS_BS64=T=12,TOPK=2,E=2,skew=1,N=80,H=72,EH=144,P=24,BS=64,NB=3

# The prefill entries' row-storing down kernel (both models: BM 128, BN 256, BK 64, 4 stages, 8 warps).
step pairs-prefill $PAIRS --config BM=128,BN=256,BK=64,stages=4,warps=8,GROUP_M=8 --cases 12
step pairs-prefill-bs64 $PAIRS --config BM=128,BN=256,BK=64,stages=4,warps=8,GROUP_M=8 --shape "$PAIRS_BS64" --cases 2
# The decode tile under the forced reduce layer (bf16: BK 64, 4 stages, 4 warps, no split-K).
step pairs-decode $PAIRS --config BM=16,BN=64,BK=64,stages=4,warps=4,GROUP_M=8 --cases 12
step combine dsl-examples/moe_gemm_down_reduce.ts --kernel moe_combine --config BH=256 --cases 12
# combine reduce_bf16: the bf16-row kernels (the prefill and mid tiles store through the staged
# row scatter, the decode tile as bf16x2 pairs) and the combine reading them.
step pairs-bf16-prefill $PAIRS_BF16 --config BM=128,BN=256,BK=64,stages=4,warps=8,GROUP_M=8 --cases 12
step pairs-bf16-prefill-bs64 $PAIRS_BF16 --config BM=128,BN=256,BK=64,stages=4,warps=8,GROUP_M=8 --shape "$PAIRS_BS64" --cases 2
step pairs-bf16-mid $PAIRS_BF16 --config BM=64,BN=128,BK=64,stages=4,warps=4,GROUP_M=8 --cases 12
step pairs-bf16-decode $PAIRS_BF16 --config BM=16,BN=64,BK=64,stages=4,warps=4,GROUP_M=8 --cases 12
step combine-bf16 dsl-examples/moe_gemm_down_reduce.ts --kernel moe_combine_bf16 --config BH=256 --cases 12
step pairs-w4a16-bf16-prefill $PAIRS_W4_BF16 --config BM=128,BN=128,BK=64,stages=4,warps=8,GROUP_M=8 --cases 8
step pairs-w4a16-bf16-decode $PAIRS_W4_BF16 --config BM=16,BN=64,BK=128,stages=2,warps=4,GROUP_M=8 --cases 8
# The decode entries' atomic down kernel: Mixtral split-K 8, Qwen3 2.
step down-decode-sk8 $DOWN --config BM=16,BN=64,BK=64,stages=4,warps=4,splitK=8,GROUP_M=8 --cases 12
step down-decode-sk2 $DOWN --config BM=16,BN=64,BK=64,stages=4,warps=4,splitK=2,GROUP_M=8 --cases 12
collect

if [[ ${CHECKS_ONLY:-0} != 1 ]]; then

rm -rf "$bench"
# Under a timeout (the device call's limit is 10 minutes) so the summary still prints.
TIMED_TAIL=60 timed layer-bench 300 npx tsx bench/run.ts --layer --layer-weights bf16 --layer-tokens 1,64,1024,4096 --out "$bench"
cp "$bench/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true
cp "$bench/layer/plan/results.json" "$log/layer-results.json" 2>/dev/null || true

if [[ ${TORCH:-0} == 1 ]]; then
  if python3 -c 'import torch' 2>/dev/null; then
    timed torch-qwen3-bf16 240 python3 runtime/torch/compare.py --layer qwen3_bf16 --tokens 1,256,1024
  else
    summary+=("SKIP  torch-qwen3-bf16 (no torch in python3 here)")
  fi
fi

fi
echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
