#!/usr/bin/env bash
# The TMA operand path (issue 7, --copy tma) on the GPU machine, in one go:
#   bash scripts/gpu-run.sh bash scripts/gpu-check-tma.sh
# 1. correctness: tilemoe check of dsl-examples/gemm.ts on the GPU with --copy tma (random
#    ragged shapes, the cp.async fallback included), at the default config and the bench's
#    TMA configs, and with persistent blocks (--persistent) on both copy paths; the
#    warp-specialized path (--ws: producer warpgroup, setmaxnreg, named barriers) at several
#    configs, each under a 90 s timeout (a wrong register pool would hang setmaxnreg.inc);
# 2. timing: gemm_bf16 4096^3 and 8192^3, wgmma with cp.async (the current default), with
#    TMA, TMA with 132 persistent blocks and warp-specialized TMA (the `ws` rows), against
#    cuBLAS, all in one runner plan (bench/run.ts --copy both);
# 3. SASS: scripts/check-sass.sh on the sm_90a examples, and the TMA build's cubins must hold
#    HGMMA, UTMALDG (the TMA load) and SYNCS (mbarrier) instructions; the --ws build's also
#    USETMAXREG (setmaxnreg) and BAR.SYNC with named-barrier operands.
# Logs under $OUT/tma (or /tmp/tilemoe-tma without $OUT). Keeps going after a failure; the
# summary at the end lists every step; exit status 0 only when all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/tilemoe-tma}/tma
mkdir -p "$out"
declare -a summary=()
fail=0
step() { # step NAME CMD...: runs CMD with its output in $out/NAME.log, records the outcome
  local name=$1; shift
  local t0=$SECONDS
  echo "== $name: $*"
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$out/$name.log"
  summary+=("$( ((rc == 0)) && echo ok || echo FAIL ) $name (rc $rc, $((SECONDS - t0)) s)")
  ((rc == 0)) || fail=1
}

tm="node bin/tilemoe.js"
step check-default $tm check dsl-examples/gemm.ts --backend cuda --copy tma --cases 60 --seed 7
for cfg in "BM=128,BN=128,BK=64,stages=4,warps=8,GROUP_M=8" "BM=128,BN=256,BK=64,stages=3,warps=8,GROUP_M=8" \
           "BM=128,BN=256,BK=32,stages=4,warps=8,GROUP_M=8" "BM=128,BN=128,BK=64,stages=4,warps=4,GROUP_M=8" \
           "BM=64,BN=64,BK=32,stages=3,warps=4,GROUP_M=1"; do
  step "check-${cfg//[,=]/_}" $tm check dsl-examples/gemm.ts --kernel gemm_bf16 --backend cuda --copy tma --cases 30 --seed 11 --config "$cfg"
done

# Persistent blocks (--persistent P): few blocks so that each loops over several tiles, and the
# SM count; on the cp.async path and the TMA path.
step check-persistent-3-tma $tm check dsl-examples/gemm.ts --kernel gemm_bf16 --backend cuda --copy tma --persistent 3 --cases 40 --seed 13
step check-persistent-3-cpasync $tm check dsl-examples/gemm.ts --kernel gemm_bf16 --backend cuda --persistent 3 --cases 40 --seed 13
step check-persistent-132-tma $tm check dsl-examples/gemm.ts --kernel gemm_bf16 --backend cuda --copy tma --persistent 132 --cases 30 --seed 17 \
  --config BM=128,BN=256,BK=64,stages=3,warps=8,GROUP_M=8

# Warp specialization (--ws): a producer warpgroup beyond the kernel's threads issues the TMA
# loads; the consumers claim its registers with setmaxnreg. timeout: a hang is a failure here.
ws_before=$fail; fail=0
step check-ws-default timeout -k 5 90 $tm check dsl-examples/gemm.ts --kernel gemm_bf16 --backend cuda --ws --cases 40 --seed 21
# Two consumer warpgroups (inc 232) and one (inc 256: ptxas starts a 256-thread block at 255).
for cfg in "BM=128,BN=256,BK=64,stages=3,warps=8,GROUP_M=8" "BM=128,BN=128,BK=64,stages=4,warps=4,GROUP_M=8"; do
  step "check-ws-${cfg//[,=]/_}" timeout -k 5 90 $tm check dsl-examples/gemm.ts --kernel gemm_bf16 --backend cuda --ws --cases 25 --seed 23 --config "$cfg"
done
step check-ws-persistent-3 timeout -k 5 90 $tm check dsl-examples/gemm.ts --kernel gemm_bf16 --backend cuda --ws --persistent 3 --cases 30 --seed 29
# A failed (possibly hanging) --ws check keeps the ws rows out of the bench.
ws_bench=on; ((fail == 0)) || ws_bench=off
((ws_before == 0)) || fail=1

step bench npx tsx bench/run.ts --mma wgmma --copy both --shapes "4096^3,8192^3" --no-tuned --reps 30 --ws $ws_bench --out "$out/bench"

step check-sass bash scripts/check-sass.sh
sassdir=$(mktemp -d /tmp/tilemoe-tma-sass.XXXXXX)
tma_sass() {
  $tm build dsl-examples/gemm.ts --arch sm_90a --copy tma --emit cu,cubin -o "$sassdir" || return 1
  $tm build dsl-examples/gemm.ts --kernel gemm_bf16 --config BM=128,BN=256,BK=64,stages=3,warps=8,GROUP_M=8 --arch sm_90a --copy tma --emit cu,cubin -o "$sassdir/wide" || return 1
  local bad=0 n=0
  for cubin in "$sassdir"/*.sm_90a.cubin "$sassdir"/wide/*.sm_90a.cubin; do
    sass=$(cuobjdump --dump-sass "$cubin")
    h=$(grep -c HGMMA <<<"$sass"); t=$(grep -c UTMALDG <<<"$sass"); s=$(grep -c SYNCS <<<"$sass")
    echo "$(basename "$cubin"): HGMMA $h, UTMALDG $t, SYNCS $s"
    n=$((n + 1))
    ((h > 0 && t > 0 && s > 0)) || bad=1
  done
  ((n > 0)) && ((bad == 0))
}
step check-sass-tma tma_sass
ws_sass() {
  $tm build dsl-examples/gemm.ts --kernel gemm_bf16 --config BM=128,BN=256,BK=64,stages=3,warps=8,GROUP_M=8 --arch sm_90a --ws --emit cu,cubin -o "$sassdir/ws" || return 1
  local cubin=("$sassdir"/ws/*.sm_90a.cubin)
  sass=$(cuobjdump --dump-sass "${cubin[0]}") || return 1
  r=$(grep -c USETMAXREG <<<"$sass"); b=$(grep -cE 'BAR\.SYNC(\.DEFER_BLOCKING)? 0x1' <<<"$sass"); t=$(grep -c UTMALDG <<<"$sass")
  echo "$(basename "${cubin[0]}"): USETMAXREG $r, BAR.SYNC 0x1 $b, UTMALDG $t"
  cuobjdump --dump-resource-usage "${cubin[0]}" | grep -i reg
  ((r >= 2 && t > 0))
}
step check-sass-ws ws_sass

echo
echo "gpu-check-tma summary (logs in $out):"
printf '  %s\n' "${summary[@]}" | tee "$out/summary.txt"
[[ -f $out/bench/latest.md ]] && { echo; cat "$out/bench/latest.md"; }
exit $fail
