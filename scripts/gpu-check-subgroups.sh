#!/usr/bin/env bash
# GPU check of the subgroups branch (warp_reduce). Run THERE:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-subgroups.sh
# 1. warp_reduce bit for bit against the interpreter (scripts/gpu-check-subgroups.ts);
# 2. tilemoe check --backend cuda of the gating kernels, whose T.reduce now lowers to
#    warp_reduce (BT=4: 32 lanes a row, BT=16: 8), sm_90a and sm_80, and moe_router.
# Keeps going after a failure; logs under $OUT/subgroups; summary at the end. ~2-3 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/tilemoe-out}/subgroups"
mkdir -p "$out"
results=()
step() {
  local name=$1; shift
  local t0=$SECONDS
  if timeout 300 "$@" > "$out/$name.log" 2>&1; then results+=("PASS $name ($((SECONDS - t0)) s)")
  else results+=("FAIL $name ($((SECONDS - t0)) s, rc $?): see $out/$name.log; last lines:"$'\n'"$(tail -5 "$out/$name.log")"); fi
  echo "${results[-1]}"
}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/gpu.txt" 2>&1; cat "$out/gpu.txt"

step warp_reduce_bits npx tsx scripts/gpu-check-subgroups.ts
for arch in sm_90a sm_80; do
  for bt in 4 16; do
    step "gate_softmax_${arch}_BT$bt" node bin/tilemoe.js check dsl-examples/moe_gate.ts --kernel moe_gate_softmax --backend cuda --arch $arch --cases 300 --config BT=$bt,EMAX=128,KMAX=8
    step "gate_softmax_${arch}_BT${bt}_E256" node bin/tilemoe.js check dsl-examples/moe_gate.ts --kernel moe_gate_softmax --backend cuda --arch $arch --cases 100 --config BT=$bt,EMAX=256,KMAX=8
    step "gate_sigmoid_${arch}_BT$bt" node bin/tilemoe.js check dsl-examples/moe_gate.ts --kernel moe_gate_sigmoid --backend cuda --arch $arch --cases 300 --config BT=$bt,EMAX=128,KMAX=8
  done
  step "gate_grouped_$arch" node bin/tilemoe.js check dsl-examples/moe_gate_grouped.ts --kernel moe_gate_grouped --backend cuda --arch $arch --cases 300
  step "router_$arch" node bin/tilemoe.js check dsl-examples/moe_router.ts --kernel moe_router --backend cuda --arch $arch --cases 100
done

echo; echo "== summary (logs in $out)"
fails=0
for r in "${results[@]}"; do echo "$r"; [[ $r == FAIL* ]] && fails=$((fails + 1)); done
echo "$((${#results[@]} - fails)) passed, $fails failed"
printf '%s\n' "${results[@]}" > "$out/summary.txt"
exit $((fails > 0))
