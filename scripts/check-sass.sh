#!/usr/bin/env bash
# Confirms in the machine code that the sm_90a kernels really use the Hopper tensor-core
# instructions: every cubin whose CUDA source issues wgmma.mma_async must have HGMMA in its
# SASS (ptxas could otherwise have fallen back or been handed something else), and the
# kernels named in EXPECT must issue wgmma at all (a lowering that silently fell back to
# mma.sync would pass the first check). Needs cuobjdump, so: the GPU machine.
#
#   bash scripts/gpu-run.sh bash scripts/check-sass.sh            # builds every dsl-example for sm_90a first
#   bash scripts/check-sass.sh DIR                                # checks DIR/*.sm_90a.cubin (from build-all -o DIR)
#   EXPECT="gemm_bf16 gemm_f16" bash scripts/check-sass.sh DIR    # the default EXPECT
# Exit status 0 only when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cuobjdump >/dev/null || { echo "check-sass: cuobjdump not found (it ships with the CUDA toolkit on the GPU machine)" >&2; exit 2; }
dir=${1:-}
if [[ -z $dir ]]; then
  dir=$(mktemp -d /tmp/tilemoe-sass.XXXXXX)
  command -v node >/dev/null || { echo "check-sass: no node here: run it as 'bash scripts/gpu-run.sh bash scripts/check-sass.sh', or pass a DIR of built cubins" >&2; exit 2; }
  node bin/tilemoe.js build-all --arch sm_90a -o "$dir" >/dev/null
fi
expect=${EXPECT:-gemm_bf16 gemm_f16}

fail=0 checked=0
shopt -s nullglob
for cubin in "$dir"/*.sm_90a.cubin; do
  name=$(basename "$cubin" .sm_90a.cubin)
  cu="$dir/$name.cu"
  [[ -f $cu ]] || { echo "FAIL $name: no $cu beside the cubin"; fail=1; continue; }
  sass=$(cuobjdump --dump-sass "$cubin")
  if grep -q 'wgmma\.mma_async' "$cu"; then
    n=$(grep -c 'HGMMA' <<<"$sass" || true)
    if (( n == 0 )); then echo "FAIL $name: wgmma.mma_async in the source, no HGMMA in the SASS"; fail=1
    else echo "ok   $name: $n HGMMA"; fi
    checked=$((checked + 1))
  elif grep -q 'mma\.sync' "$cu"; then
    n=$(grep -c 'HMMA' <<<"$sass" || true)
    echo "note $name: mma.sync path ($n HMMA), no wgmma"
  fi
done
for k in $expect; do
  cu="$dir/$k.cu"
  if [[ ! -f $cu ]]; then echo "FAIL $k: expected kernel not built ($cu missing)"; fail=1
  elif ! grep -q 'wgmma\.mma_async' "$cu"; then echo "FAIL $k: expected to use wgmma on sm_90a, but its source has none (lowering fell back)"; fail=1
  fi
done
(( checked > 0 )) || { echo "FAIL: no sm_90a cubin with wgmma in $dir"; fail=1; }
(( fail == 0 )) && echo "check-sass: all $checked wgmma kernels have HGMMA"
exit $fail
