#!/usr/bin/env bash
# The register-A wgmma for T.dequant + gemm on sm_90a (src/passes/dequant-wgmma.ts: C^T = W A^T,
# the dequantized weights are wgmma's A operand from registers) on the GPU:
#  1. `tilemoe check --backend cuda` of every quantized example at configs that take the path
#     (64/128/256-row tiles in auto mode; BM 16 with --dequant wgmma), TMA and cp.async,
#     split-K, and the mma.sync forms beside them for comparison;
#  2. SASS: HGMMA in those kernels (cuobjdump), and no HMMA in the register-A ones;
#  3. the w4a16 bench at M = 1, 16, 64, 256, 1024, 4096 (N=14336 K=4096, N=4096 K=14336):
#     bf16 cuBLAS on the same shape is the anchor; rows tagged dequant=wgmma are the BM 16
#     register-A configs (compare them with the mma.sync decode rows: that decides whether the
#     register-A path should also be auto's choice below 64 rows).
# Keeps going after a failure; summary at the end.
# Run THERE:  bash scripts/gpu-run.sh bash scripts/gpu-check-rswgmma.sh     (logs: $OUT/rswgmma)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/tilemoe-gpu-out}/rswgmma"
mkdir -p "$out"
summary=()

# timed NAME SECONDS CMD... (scripts/lib/check-steps.sh): CMD under a time limit, its output in $out/NAME.log.
log=$out
TIMED_TAIL=4
source scripts/lib/check-steps.sh

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1 || true
cat "$out/gpu.txt"

# check NAME FILE KERNEL CONFIG [EXTRA ARGS...]: in the background; its verdict in NAME.status.
check() {
  local name=$1 file=$2 kernel=$3 config=$4; shift 4
  local args=(node bin/tilemoe.js check "dsl-examples/$file" --backend cuda --arch sm_90a --cases 10 --seed 11)
  [[ -n $kernel ]] && args+=(--kernel "$kernel")
  [[ -n $config ]] && args+=(--config "$config")
  (
    t0=$SECONDS rc=0
    timeout 150 "${args[@]}" "$@" > "$out/check-$name.log" 2>&1 || rc=$?
    if [[ $rc -eq 0 ]]; then echo "ok    check-$name ($((SECONDS - t0)) s)"
    else echo "FAIL  check-$name (exit $rc, $((SECONDS - t0)) s): see $out/check-$name.log"; fi > "$out/check-$name.status"
  ) &
}
JOBS=${JOBS:-12}
throttle() { while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n 2>/dev/null || true; done; }

# 1. Checks, JOBS at a time (each compiles with nvcc, then runs 10 cases on the GPU).
W=gemm_w4a16.ts
checks=(
  "w4a16-bm64-tma|$W|gemm_w4a16|BM=64,BN=128,BK=64,stages=4,warps=4,splitK=1"
  "w4a16-bm128-w8-tma|$W|gemm_w4a16|BM=128,BN=128,BK=64,stages=4,warps=8,splitK=1"
  "w4a16-bm128-w4-cp|$W|gemm_w4a16|BM=128,BN=128,BK=64,stages=3,warps=4,splitK=1|--copy|cp.async"
  "w4a16-bm256-tma|$W|gemm_w4a16|BM=256,BN=128,BK=64,stages=3,warps=8,splitK=1"
  "w4a16-bn256-tma|$W|gemm_w4a16|BM=128,BN=256,BK=64,stages=4,warps=8,splitK=1"
  "w4a16-bm128-ws|$W|gemm_w4a16|BM=128,BN=128,BK=64,stages=4,warps=8,splitK=1|--ws"
  "w4a16-bm64-splitk2|$W|gemm_w4a16|BM=64,BN=128,BK=64,stages=4,warps=4,splitK=2"
  "w4a16-bm16-dqw-sk4|$W|gemm_w4a16|BM=16,BN=64,BK=64,stages=4,warps=4,splitK=4|--dequant|wgmma"
  "w4a16-bm16-dqw-bn128|$W|gemm_w4a16|BM=16,BN=128,BK=64,stages=4,warps=4,splitK=1|--dequant|wgmma"
  "w4a16-zp-bm64|$W|gemm_w4a16_zp|BM=64,BN=128,BK=64,stages=3,warps=4"
  "w4a16-zp-bm16-dqw|$W|gemm_w4a16_zp|BM=16,BN=64,BK=64,stages=3,warps=4|--dequant|wgmma"
  "w4a16-bf16zp-bm128|$W|gemm_w4a16_bf16zp|BM=128,BN=128,BK=64,stages=3,warps=8"
  "w8a16-bm64|gemm_w8a16.ts|gemm_w8a16|BM=64,BN=64,BK=64,stages=3,warps=4"
  "w8a16-f16-g64-bm128|gemm_w8a16.ts|gemm_w8a16_f16_g64|BM=128,BN=128,BK=64,stages=3,warps=8"
  "w8a16-bm16-dqw|gemm_w8a16.ts|gemm_w8a16|BM=16,BN=64,BK=64,stages=3,warps=4|--dequant|wgmma"
  "fp8w-bm64|gemm_fp8w.ts|gemm_fp8w|BM=64,BN=64,BK=64,stages=3,warps=4"
  "fp8w-bm16-dqw|gemm_fp8w.ts|gemm_fp8w|BM=16,BN=128,BK=64,stages=3,warps=8|--dequant|wgmma"
  "moe-up-w4a16-bm64|moe_gemm_up_w4a16.ts|moe_gemm_up_w4a16|BM=64,BN=64,BK=64,stages=3,warps=4"
  "moe-up-w4a16-bm128|moe_gemm_up_w4a16.ts|moe_gemm_up_w4a16|BM=128,BN=128,BK=64,stages=3,warps=8"
  "moe-up-w4a16-bm16-dqw|moe_gemm_up_w4a16.ts|moe_gemm_up_w4a16|BM=16,BN=64,BK=64,stages=3,warps=4|--dequant|wgmma"
  "moe-down-w4a16-bm64|moe_gemm_down_w4a16.ts|moe_gemm_down_w4a16|BM=64,BN=64,BK=64,stages=3,warps=4"
  # The old paths beside them: mma.sync fusion (BM 16, auto) and --mma sync at 64 rows.
  "w4a16-bm16-sync-fused|$W|gemm_w4a16|BM=16,BN=64,BK=128,stages=4,warps=4,splitK=2"
  "w4a16-bm64-mma-sync|$W|gemm_w4a16|BM=64,BN=128,BK=64,stages=3,warps=4,splitK=1|--mma|sync"
)
run_check() { local IFS='|'; set -- $1; local name=$1 file=$2 kernel=$3 config=$4; shift 4; check "$name" "$file" "$kernel" "$config" "$@"; }
# 2. SASS of register-A builds: HGMMA present, no HMMA (the mma.sync fallback); built in the
#    same job pool as the checks.
SASS=(w4a16-bm128 w4a16-bm16-dqw w8a16-bm64 fp8w-bm64 moe-up-bm64)
sass() { # NAME FILE KERNEL CONFIG [EXTRA...]: in the background; its verdict in sass-NAME.status.
  local name=$1 file=$2 kernel=$3 config=$4; shift 4
  local dir="$out/sass-$name"
  mkdir -p "$dir"
  (
    verdict() { echo "$1" > "$out/sass-$name.status"; }
    if ! timeout 150 node bin/tilemoe.js build "dsl-examples/$file" --kernel "$kernel" --config "$config" --emit cu,cubin -o "$dir" "$@" > "$dir/build.log" 2>&1; then
      verdict "FAIL  sass-$name: build failed, see $dir/build.log"; exit 0
    fi
    cubin=$(ls "$dir"/*.sm_90a.cubin 2>/dev/null | head -1)
    [[ -n $cubin ]] || { verdict "FAIL  sass-$name: no cubin in $dir"; exit 0; }
    cuobjdump --dump-sass "$cubin" > "$dir/sass.txt" 2>&1
    hg=$(grep -c 'HGMMA' "$dir/sass.txt" || true); hm=$(grep -c 'HMMA' "$dir/sass.txt" || true)
    if (( hg > 0 && hm == 0 )); then verdict "ok    sass-$name: $hg HGMMA, 0 HMMA"
    else verdict "FAIL  sass-$name: $hg HGMMA, $hm HMMA (want HGMMA and no HMMA)"; fi
  ) &
}
echo "== ${#checks[@]} checks and ${#SASS[@]} SASS builds, $JOBS at a time"
for c in "${checks[@]}"; do throttle; run_check "$c"; done
throttle; sass w4a16-bm128    $W gemm_w4a16 BM=128,BN=128,BK=64,stages=4,warps=8,splitK=1
throttle; sass w4a16-bm16-dqw $W gemm_w4a16 BM=16,BN=64,BK=64,stages=4,warps=4,splitK=4 --dequant wgmma
throttle; sass w8a16-bm64     gemm_w8a16.ts gemm_w8a16 BM=64,BN=64,BK=64,stages=3,warps=4
throttle; sass fp8w-bm64      gemm_fp8w.ts gemm_fp8w BM=64,BN=64,BK=64,stages=3,warps=4
throttle; sass moe-up-bm64    moe_gemm_up_w4a16.ts moe_gemm_up_w4a16 BM=64,BN=64,BK=64,stages=3,warps=4
wait
for c in "${checks[@]}"; do
  name=${c%%|*}
  st=$(cat "$out/check-$name.status" 2>/dev/null || echo "FAIL  check-$name: no status")
  echo "$st"; summary+=("$st")
done

for n in "${SASS[@]}"; do
  st=$(cat "$out/sass-$n.status" 2>/dev/null || echo "FAIL  sass-$n: no status")
  echo "$st"; summary+=("$st")
done

# 3. The w4a16 bench: fixed mma.sync decode rows, the register-A rows, tuned winners, cuBLAS.
timed bench-w4a16 420 npx tsx bench/w4a16.ts --m 1,16,64,256,1024,4096 --reps 20 --out "$out/bench"
sed -n '/^## w4a16/,$p' "$out/bench-w4a16.log"

echo
echo "== summary ($out)"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
! grep -q '^FAIL' "$out/summary.txt"
