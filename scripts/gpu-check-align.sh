#!/usr/bin/env bash
# GPU check of the multi-block routing kernel (dsl-examples/moe_align.ts: one block per chunk of
# CH pairs, each counting all P ids itself; issue 4: the one-block kernel took 1504 us of
# Mixtral's and 2618 us of Qwen3's layer at M = 4096). Run on the GPU machine, from the repo
# root, through gpu-run.sh (node, the runner, cuBLAS paths):
#   bash scripts/gpu-run.sh bash scripts/gpu-check-align.sh
# 1. `tilemoe check --backend cuda --arch sm_90a` of moe_align and moe_align_ep, in parallel,
#    each under `timeout 200`: the spec's random shapes at both configs (CH 256, the layer's;
#    CH 32: several blocks at small P), and the layer's shapes at CH 256 (P = T * top_k:
#    Qwen3 and Mixtral at M = 4096 with routing blocks 64 and 16, decode P = 2 and 8, an odd
#    P for the scalar copy path). Also the SASS of moe_align (the counting loop's loads and
#    shared atomics, for reading), into $OUT/align/moe_align.sass.
# 2. The layer bench at M = 1, 64, 4096 (5 reps), then Nsight Compute per stage kernel of
#    both models, bf16 and w4a16, at M = 1 and 4096 (bench/profile.ts): the align stage's time
#    against the 10-60 us (decode) and 1504 / 2618 us (M = 4096) it took before.
# Logs under $OUT/align (one file per step); keeps going after a failure; summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/align"
mkdir -p "$log"
summary=()
# step / collect: scripts/lib/check-steps.sh.
source scripts/lib/check-steps.sh


L="--config EMAX=256,CH=256"
step align-random-ch256 dsl-examples/moe_align.ts --kernel moe_align $L --cases 40
step align-random-ch32 dsl-examples/moe_align.ts --kernel moe_align --config EMAX=256,CH=32 --cases 40
step ep-random-ch256 dsl-examples/moe_align.ts --kernel moe_align_ep $L --cases 30
step ep-random-ch32 dsl-examples/moe_align.ts --kernel moe_align_ep --config EMAX=256,CH=32 --cases 30
# The layer's shapes: NB = cdiv(P, BS) + min(E, P).
step align-qwen3-4096 dsl-examples/moe_align.ts --kernel moe_align $L --cases 4 --shape P=32768,E=128,BS=64,NB=640
step align-mixtral-4096 dsl-examples/moe_align.ts --kernel moe_align $L --cases 4 --shape P=8192,E=8,BS=64,NB=136
step align-mixtral-4096-bs16 dsl-examples/moe_align.ts --kernel moe_align $L --cases 4 --shape P=8192,E=8,BS=16,NB=520
step align-odd-p dsl-examples/moe_align.ts --kernel moe_align $L --cases 4 --shape P=8191,E=8,BS=16,NB=520
step align-decode-qwen3 dsl-examples/moe_align.ts --kernel moe_align $L --cases 8 --shape P=8,E=128,BS=16,NB=9
step align-decode-mixtral dsl-examples/moe_align.ts --kernel moe_align $L --cases 8 --shape P=2,E=8,BS=16,NB=3
step ep-qwen3-4096 dsl-examples/moe_align.ts --kernel moe_align_ep $L --cases 4 --shape P=32768,E=128,L=64,BS=64,NB=576
( sass=$log/sass; mkdir -p "$sass"
  if node bin/tilemoe.js build dsl-examples/moe_align.ts --kernel moe_align $L --arch sm_90a --emit cu,cubin -o "$sass" > "$sass/build.log" 2>&1 \
     && cuobjdump --dump-sass "$sass"/*.cubin > "$log/moe_align.sass" 2>>"$sass/build.log"; then
    echo "PASS  sass ($(grep -c 'LDGSTS\|LDG' "$log/moe_align.sass") LDG/LDGSTS, $(grep -c 'ATOMS' "$log/moe_align.sass") ATOMS, $(grep -c 'BAR.SYNC' "$log/moe_align.sass") BAR.SYNC)"
  else echo "FAIL  sass: $sass/build.log"; fi > "$log/sass.status" ) &
collect

# CHECKS_ONLY=1: the checks above only (a caller that runs the benches once for several scripts).
if [[ ${CHECKS_ONLY:-0} != 1 ]]; then

bench=bench/out
timed layer-bench 240 npx tsx bench/run.ts --layer --layer-tokens 1,64,4096 --reps 5
cp "$bench/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true

timed profile 150 npx tsx bench/profile.ts --plan "$bench/layer/plan" --cases '^layer (mixtral|qwen3)_(bf16|w4a16) M=(1|4096)$' --out "$log/profile.txt"

fi
echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
[[ -f $log/layer-table.md ]] && cat "$log/layer-table.md"
echo "== per-kernel times (ncu); the align stage was 10-60 us at M = 1..64, 1504 (Mixtral) / 2618 (Qwen3) us at M = 4096"
[[ -f $log/profile.txt ]] && cat "$log/profile.txt"
[[ -f $log/profile.txt ]] && { echo "== align stage only"; grep -E '^layer |_align ' "$log/profile.txt"; }
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
