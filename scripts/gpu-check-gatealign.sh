#!/usr/bin/env bash
# GPU check of gating and routing in one kernel at decode sizes (dsl-examples/moe_gate_align.ts,
# the layer's stage gate_align in calls with T * top_k <= 256; docs/LAYER.md). Run on the GPU
# machine, from the repo root, through gpu-run.sh (node, the runner, cuBLAS paths):
#   bash scripts/gpu-run.sh bash scripts/gpu-check-gatealign.sh
# 1. `tilemoe check --backend cuda --arch sm_90a` (in the background, each under `timeout 200`):
#    moe_gate_align_softmax on its spec's random shapes at the layer's config (BT 16, EMAX 128,
#    with PDL as the layer builds it) and at BT 8 / EMAX 256, and at the layer's config on the models' shapes
#    (Qwen3 E 128 top 8 at T = 1 and 32 = 256 pairs; Mixtral E 8 top 2 at T = 1 and 128 with
#    routing block 32); moe_gate_softmax and moe_align at the layer's configs (their bodies are
#    now helpers shared with the fused kernel).
# 2. build-layer: both models, bf16 and w4a16 (the emitted .cu / .h and the stage list with each
#    gating stage's condition, into $OUT/gatealign/build-layer).
# 3. compare: scripts/gpu-check-gatealign.ts, the layer's CUDA check of the switch: both models'
#    w4a16 layers (PDL) against the same layers with gate + align in every call (gateAlignPairs 0),
#    same inputs, the integer routing outputs equal, the weights and `out` within rounding (see the .ts), at T around the
#    switch (Qwen3 1, 8, 9, 32; Mixtral 1, 32, 33, 128), with both medians (20 launches each).
# 4. layer-bench: bench/run.ts --layer --layer-weights w4a16 --layer-tokens 1,16 --layer-no-forced
#    (the layer bench's own checks: Qwen3's token 0 against the float64 layer reference, Mixtral's
#    against its M = 1 row), the table into $OUT/gatealign/layer-table.md.
# Logs under $OUT/gatealign (one file per step); keeps going after a failure; summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/gatealign"
mkdir -p "$log"
bench=/tmp/tilemoe-gatealign-bench
summary=()
# step / collect / timed: scripts/lib/check-steps.sh.
source scripts/lib/check-steps.sh

F=dsl-examples/moe_gate_align.ts
L="--config BT=16,EMAX=128,KMAX=8,CH=256 --pdl"
# Random shapes of the spec (E <= 20, T * top_k <= 256): the layer's config, and BT 8 with EMAX 256
# (256 threads; the E > 128 tile). Pinned configs: each step compiles once.
step gate-align-random-layer $F $L --cases 16
step gate-align-random-bt8 $F --config BT=8,EMAX=256,KMAX=8,CH=256 --cases 16
# NB = cdiv(P, BS) + min(E, P), as the layer sizes it.
step gate-align-qwen3-t1 $F $L --cases 4 --shape T=1,E=128,K=8,BS=16,NB=9
step gate-align-qwen3-t32 $F $L --cases 4 --shape T=32,E=128,K=8,BS=16,NB=144
step gate-align-mixtral-t1 $F $L --cases 4 --shape T=1,E=8,K=2,BS=16,NB=3
step gate-align-mixtral-t128 $F $L --cases 4 --shape T=128,E=8,K=2,BS=32,NB=16
step gate-softmax dsl-examples/moe_gate.ts --kernel moe_gate_softmax --config BT=4,EMAX=128,KMAX=8 --pdl --cases 12
step align dsl-examples/moe_align.ts --kernel moe_align --config EMAX=256,CH=256 --pdl --cases 12

# While the checks run: the emitted layers, then the fused-against-split comparison.
TIMED_TAIL=24 timed build-layer 120 bash -c 'rc=0
  for m in mixtral qwen3; do for w in bf16 w4a16; do
    echo "== build-layer --model $m --weights $w"
    node bin/tilemoe.js build-layer --model "$m" --weights "$w" -o "$1" || rc=1
  done; done
  exit $rc' _ "$log/build-layer"
rm -rf /tmp/tilemoe-gatealign
TIMED_TAIL=20 timed compare 200 npx tsx scripts/gpu-check-gatealign.ts /tmp/tilemoe-gatealign
cp /tmp/tilemoe-gatealign/gatealign.md "$log/gatealign.md" 2>/dev/null || true
collect

rm -rf "$bench"
TIMED_TAIL=30 timed layer-bench 150 npx tsx bench/run.ts --layer --layer-weights w4a16 --layer-tokens 1,16 --layer-no-forced --reps 20 --out "$bench"
cp "$bench/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true

echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/gatealign.md ]] && cat "$log/gatealign.md"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
