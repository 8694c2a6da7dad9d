#!/usr/bin/env bash
# GPU check of programmatic dependent launch (PDL) along the MoE layer's kernel chain (issues 4
# and 3; docs/LAYER.md, PDL): on sm_90a every stage kernel now starts with griddepcontrol.wait and
# griddepcontrol.launch_dependents and is launched with cudaLaunchAttributeProgrammaticStreamSerialization,
# and the clears of logits / out moved in front of the first kernel. Run on the GPU machine, from
# the repo root, through gpu-run.sh:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-pdl.sh
# 1. `tilemoe check --backend cuda --arch sm_90a --pdl` of the layer's stage kernels at the decode
#    entries' configs (router, gate, align, the w4a16 and bf16 grouped GEMMs; the bf16 down kernel
#    with TMA and warp specialization): built with the wait and the trigger at the top, launched
#    plainly by the checker, so this checks that the kernels still compute the same. In the
#    background, each under `timeout 200`, while step 2 runs.
# 2. layer-checks: the layer bench as the layer's CUDA check (`tilemoe check` has no layer mode),
#    both models, bf16 and w4a16 (their choice tables as they are, libraries built with PDL), at
#    M = 1, 16, 64 (decode entries), 1024 (Qwen3 bf16 mid, Mixtral bf16 prefill), 4096 (the bf16
#    prefill entries) and 8192 (the w4a16 prefill entries), 3 timed launches each: Qwen3's token 0
#    against the float64 layer reference, Mixtral's against its M = 1 row, and every table also run
#    with plain launches of the same kernels (--layer-pdl both: rows "no PDL", each held against the
#    PDL run's whole output within 1e-4 of its scale). A race (a kernel reading its predecessor's
#    output before its wait) would show as a wrong or differing output.
# 3. sass: how many griddepcontrol instructions each layer library's SASS has (cuobjdump runs here
#    only; informational: the count per library is printed, the verdict does not depend on it).
# 4. layer-bench (not with CHECKS_ONLY=1): the layer bench at M = 1, 16, 64, bf16 and w4a16, both
#    models, PDL against plain launches in one run (same libraries: nvcc's cache from step 1),
#    50 timed launches a case, and the table of the two (plain - PDL in us), after steps 1-2.
# Logs under $OUT/pdl (one file per step); keeps going after a failure; summary at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp/tilemoe-gpu-check}/pdl"
mkdir -p "$log"
bench=/tmp/tilemoe-pdl-bench
summary=()
# step / collect / timed: scripts/lib/check-steps.sh.
source scripts/lib/check-steps.sh

step router-pdl dsl-examples/moe_router.ts --config BM=16,BN=64,BK=64,stages=3,warps=4,splitK=64 --pdl --cases 12
step gate-pdl dsl-examples/moe_gate.ts --kernel moe_gate_softmax --pdl --cases 12
step align-pdl dsl-examples/moe_align.ts --kernel moe_align --config EMAX=256,CH=256 --pdl --cases 12
step up-w4a16-pdl dsl-examples/moe_gemm_up_w4a16.ts --config BM=16,BN=64,BK=128,stages=2,warps=4,GROUP_M=8 --pdl --cases 12
step down-w4a16-pdl dsl-examples/moe_gemm_down_w4a16.ts --config BM=16,BN=64,BK=128,stages=2,warps=4,splitK=2,GROUP_M=8 --pdl --cases 12
step down-bf16-pdl dsl-examples/moe_gemm_down.ts --config BM=16,BN=64,BK=64,stages=4,warps=4,splitK=8,GROUP_M=8 --pdl --cases 12

rm -rf "$bench"
LAYER=(npx tsx bench/run.ts --layer --layer-pdl both --layer-no-forced)

# Under timeouts (the device call's limit is 10 minutes) so the summary still prints.
TIMED_TAIL=70 timed layer-checks 270 "${LAYER[@]}" --layer-tokens 1,16,64,1024,4096,8192 --reps 3 --out "$bench/checks"
cp "$bench/checks/layer/latest.md" "$log/checks-table.md" 2>/dev/null || true
cp "$bench/checks/layer/plan/results.json" "$log/checks-results.json" 2>/dev/null || true
collect

# griddepcontrol in SASS: ACQBULK (wait) and PREEXIT (launch_dependents) on sm_90; any other
# mnemonic with "griddep" in it counted too, in case the disassembler names them so.
if command -v cuobjdump > /dev/null; then
  for so in "$bench"/checks/layer/plan/*.so; do
    [[ -f $so ]] || continue
    printf '%s: %s\n' "$(basename "$so")" "$(cuobjdump -sass "$so" 2>&1 | grep -oiE 'ACQBULK|PREEXIT|griddep[a-z_.]*' | sort | uniq -c | tr -s ' \n' ' ')"
  done > "$log/sass.txt"
  cat "$log/sass.txt"
  summary+=("INFO  sass: $(wc -l < "$log/sass.txt") libraries, griddepcontrol counts in $log/sass.txt")
else
  summary+=("SKIP  sass (no cuobjdump)")
fi

if [[ ${CHECKS_ONLY:-0} != 1 ]]; then
  TIMED_TAIL=70 timed layer-bench 150 "${LAYER[@]}" --layer-tokens 1,16,64 --reps 50 --out "$bench/bench"
  cp "$bench/bench/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true
  cp "$bench/bench/layer/plan/results.json" "$log/layer-results.json" 2>/dev/null || true
fi

echo
echo "== summary (logs in $log)"
printf '%s\n' "${summary[@]}"
for t in checks-table layer-table; do [[ -f $log/$t.md ]] && { echo; echo "== $t"; cat "$log/$t.md"; }; done
for s in "${summary[@]}"; do [[ $s == FAIL* ]] && exit 1; done
exit 0
