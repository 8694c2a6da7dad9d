#!/usr/bin/env bash
# The decode path of the register-fused dequant-gemm on the GPU (src/passes/fuse-dequant-gemm.ts:
# per-tile scales issued before the pipeline wait, the K mask as one branch per tile, 128-bit
# word reads): `tilemoe check --backend cuda` (sm_90a, and one sm_80 build through its PTX) of
# every quantized example at decode configs (BM 16; BK 64 and 128; split-K 1, 4, 8) and at
# each file's default config, several at a time (nvcc is most of their time), then the w4a16
# bench for the decode shapes alone (M = 1, 16), run by itself so nothing else shares the GPU.
# Keeps going after a failure; summary at the end.
# Run THERE:  bash scripts/gpu-run.sh bash scripts/gpu-check-decode.sh     (logs: $OUT/decode)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/tilemoe-gpu-out}/decode"
mkdir -p "$out"
t_start=$SECONDS

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1 || true
cat "$out/gpu.txt"
git rev-parse --short HEAD > "$out/commit.txt" 2>/dev/null || true

# NAME FILE KERNEL CONFIG [ARCH]: one check, its output in $out/check-NAME.log, its exit
# status in $out/check-NAME.rc (a timeout is 124).
check() {
  local name=$1 file=$2 kernel=$3 config=$4 arch=${5:-sm_90a}
  local args=(node bin/tilemoe.js check "dsl-examples/$file" --backend cuda --arch "$arch" --cases 8 --seed 7)
  [[ -n $kernel ]] && args+=(--kernel "$kernel")
  [[ -n $config ]] && args+=(--config "$config")
  { echo "\$ ${args[*]}"; timeout 170 "${args[@]}"; echo "rc=$?" ; } > "$out/check-$name.log" 2>&1
  tail -n 1 "$out/check-$name.log" | sed 's/rc=//' > "$out/check-$name.rc"
}

D64=BM=16,BN=64,BK=64,stages=2,warps=4
D128=BM=16,BN=64,BK=128,stages=4,warps=4
CHECKS=(
  "w4a16-bk64-sk1      gemm_w4a16.ts gemm_w4a16        $D64,splitK=1"
  "w4a16-bk64-sk4      gemm_w4a16.ts gemm_w4a16        $D64,splitK=4"
  "w4a16-bk64-sk8      gemm_w4a16.ts gemm_w4a16        $D64,splitK=8"
  "w4a16-bk128-sk1     gemm_w4a16.ts gemm_w4a16        $D128,splitK=1"
  "w4a16-bk128-sk4     gemm_w4a16.ts gemm_w4a16        $D128,splitK=4"
  "w4a16-bk128-sk8     gemm_w4a16.ts gemm_w4a16        $D128,splitK=8"
  "w4a16-bn128-sk8     gemm_w4a16.ts gemm_w4a16        BM=16,BN=128,BK=128,stages=4,warps=4,splitK=8"
  "w4a16-zp-bk64       gemm_w4a16.ts gemm_w4a16_zp     $D64"
  "w4a16-zp-bk128      gemm_w4a16.ts gemm_w4a16_zp     $D128"
  "w4a16-bf16zp-bk64   gemm_w4a16.ts gemm_w4a16_bf16zp $D64"
  "w4a16-bf16zp-bk128  gemm_w4a16.ts gemm_w4a16_bf16zp $D128"
  "w8a16-bk64          gemm_w8a16.ts gemm_w8a16        $D64"
  "w8a16-bk128         gemm_w8a16.ts gemm_w8a16        $D128"
  "w8a16-g64-bk64      gemm_w8a16.ts gemm_w8a16_f16_g64 $D64"
  "w8a16-g64-bk128     gemm_w8a16.ts gemm_w8a16_f16_g64 $D128"
  "fp8w-bk64           gemm_fp8w.ts  gemm_fp8w         $D64"
  "fp8w-bk128          gemm_fp8w.ts  gemm_fp8w         $D128"
  "moe-up-bk64         moe_gemm_up_w4a16.ts moe_gemm_up_w4a16 $D64"
  "moe-up-bk128        moe_gemm_up_w4a16.ts moe_gemm_up_w4a16 $D128"
  "moe-down-bk64       moe_gemm_down_w4a16.ts moe_gemm_down_w4a16 $D64"
  "w4a16-defaults      gemm_w4a16.ts -                 -"
  "w8a16-defaults      gemm_w8a16.ts -                 -"
  "fp8w-defaults       gemm_fp8w.ts  -                 -"
  "moe-up-defaults     moe_gemm_up_w4a16.ts -          -"
  "moe-down-defaults   moe_gemm_down_w4a16.ts -        -"
)
# 8 at a time: 16 cores, one nvcc each, the GPU work of a check is small.
running=0
for c in "${CHECKS[@]}"; do
  read -r name file kernel config <<< "$c"
  [[ $kernel == - ]] && kernel=""
  [[ $config == - ]] && config=""
  check "$name" "$file" "$kernel" "$config" &
  running=$((running + 1))
  if (( running >= 8 )); then wait -n; running=$((running - 1)); fi
done
# The sm_80 build (its PTX JIT-compiled for this card) of the main decode config.
check "w4a16-bk64-sk8-sm80" gemm_w4a16.ts gemm_w4a16 "$D64,splitK=8" sm_80 &
wait
echo "== checks done in $((SECONDS - t_start)) s"

# The bench alone on the GPU: decode shapes only (M = 1, 16), fixed configs + tuned winners.
t0=$SECONDS
timeout 200 npx tsx bench/w4a16.ts --m 1,16 --out "$out/bench" > "$out/bench-w4a16.log" 2>&1
bench_rc=$?
sed -n '/^## w4a16/,$p' "$out/bench-w4a16.log"

echo
echo "== summary ($out, $((SECONDS - t_start)) s)"
summary=()
for f in "$out"/check-*.rc; do
  n=$(basename "$f" .rc); rc=$(cat "$f")
  line=$(grep -E "passed|FAIL|error" "$out/$n.log" | head -n 2 | tr '\n' ' ')
  if [[ $rc == 0 ]]; then summary+=("ok    $n: $line"); else summary+=("FAIL  $n (exit $rc): $line see $out/$n.log"); fi
done
if [[ $bench_rc == 0 ]]; then summary+=("ok    bench-w4a16 ($((SECONDS - t0)) s)"); else summary+=("FAIL  bench-w4a16 (exit $bench_rc): see $out/bench-w4a16.log"); fi
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
! grep -q '^FAIL' "$out/summary.txt"
