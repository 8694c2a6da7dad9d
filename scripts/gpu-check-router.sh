#!/usr/bin/env bash
# GPU check of the decode-speed work on the layer's two small kernels (issue 4): the router's
# split-K with its run-time slice count (dsl-examples/moe_router.ts) and topk as a parallel
# argmax over a warp's lanes (src/passes/lower-moe.ts topkWarpRows, in every gating kernel).
# Run on the GPU machine, from the repo root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-router.sh
# 1. `tilemoe check --backend cuda --arch sm_90a`, in parallel:
#    moe_router at the layer's decode and prefill router configs (src/moe/layer.ts), at
#    splitK 1 (the store path) and 8, random small shapes and the models' shapes (Mixtral
#    E = 8, H = 4096; Qwen3 E = 128, H = 2048) at T = 1 and 64; moe_gate_softmax /
#    moe_gate_sigmoid / moe_gate_grouped at random small E and E = 8, 128, 256 (BT 4: 32 lanes
#    a row, BT 16: 8). Each step under `timeout 150`, 23 of them in parallel (mostly nvcc).
# 2. The layer bench at M = 1, 16, 64 (both models, bf16 and w4a16, 5 reps), then Nsight Compute
#    per stage kernel of Mixtral and Qwen3, bf16 and w4a16, at M = 1 and 64 (bench/profile.ts):
#    the router and gate rows are what this work changes (before: 79-85 us and up to 62 us).
# Logs under $OUT/router (one file per step); keeps going after a failure; summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/router"
mkdir -p "$log"
summary=()
# step / collect: scripts/lib/check-steps.sh.
source scripts/lib/check-steps.sh
STEP_TIMEOUT=150


R=dsl-examples/moe_router.ts
DEC=BM=16,BN=64,BK=64,stages=3,warps=4,splitK=64
PRE=BM=64,BN=64,BK=64,stages=3,warps=4,splitK=16
step router-decode $R --config $DEC --cases 12
step router-prefill $R --config $PRE --cases 12
step router-sk1 $R --config BM=16,BN=64,BK=64,stages=2,warps=4,splitK=1 --cases 8
step router-sk8-bn128 $R --config BM=16,BN=128,BK=64,stages=4,warps=4,splitK=8 --cases 8
step router-sk8-cpasync $R --config BM=16,BN=64,BK=32,stages=2,warps=4,splitK=8 --cases 8
for T in 1 64; do
  step router-decode-mixtral-T$T $R --config $DEC --shape T=$T,H=4096,E=8 --cases 1
  step router-decode-qwen3-T$T $R --config $DEC --shape T=$T,H=2048,E=128 --cases 1
done
step router-prefill-mixtral-T64 $R --config $PRE --shape T=64,H=4096,E=8 --cases 1
step router-prefill-qwen3-T1024 $R --config $PRE --shape T=1024,H=2048,E=128 --cases 1
G=dsl-examples/moe_gate.ts
step softmax-rand-bt4 $G --kernel moe_gate_softmax --config BT=4,EMAX=128,KMAX=8 --cases 12
step softmax-rand-bt16 $G --kernel moe_gate_softmax --config BT=16,EMAX=128,KMAX=8 --cases 12
step softmax-E8 $G --kernel moe_gate_softmax --config BT=4,EMAX=128,KMAX=8 --shape T=33,E=8,K=2 --cases 2
step softmax-E128 $G --kernel moe_gate_softmax --config BT=4,EMAX=128,KMAX=8 --shape T=33,E=128,K=8 --cases 2
step softmax-E128-bt16 $G --kernel moe_gate_softmax --config BT=16,EMAX=128,KMAX=8 --shape T=33,E=128,K=8 --cases 2
step softmax-E256 $G --kernel moe_gate_softmax --config BT=4,EMAX=256,KMAX=8 --shape T=33,E=256,K=8 --cases 2
step sigmoid-rand-bt4 $G --kernel moe_gate_sigmoid --config BT=4,EMAX=128,KMAX=8 --cases 12
step sigmoid-E128 $G --kernel moe_gate_sigmoid --config BT=4,EMAX=128,KMAX=8 --shape T=33,E=128,K=8 --cases 2
step sigmoid-E256 $G --kernel moe_gate_sigmoid --config BT=4,EMAX=256,KMAX=8 --shape T=33,E=256,K=8 --cases 2
GG=dsl-examples/moe_gate_grouped.ts
step grouped-rand $GG --cases 12
step grouped-E128 $GG --shape T=9,G=4,S=32,K=8 --cases 2
step grouped-E256 $GG --shape T=9,G=8,S=32,K=8 --cases 2
collect

# CHECKS_ONLY=1: the checks above only (a caller that runs the benches once for several scripts).
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then

bench=bench/out
timed layer-bench 180 npx tsx bench/run.ts --layer --layer-tokens 1,16,64 --reps 5 --out "$bench"
cp "$bench/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true
cp "$bench/layer/plan/results.json" "$log/layer-results.json" 2>/dev/null || true

TIMED_TAIL=60 timed profile 120 npx tsx bench/profile.ts --plan "$bench/layer/plan" --cases '^layer (mixtral|qwen3)_(bf16|w4a16) M=(1|64)$' --out "$log/profile.md"

fi
echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
[[ -f $log/profile.md ]] && cat "$log/profile.md"
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
