#!/usr/bin/env bash
# The quantized GEMMs on the GPU after the register-fused dequant-gemm
# (src/passes/fuse-dequant-gemm.ts): `tilemoe check --backend cuda` (sm_90a) of every
# quantized example, in fused configs (BM 16: one warp row, mma.sync fed from the packed
# words) and unfused ones (64-row tiles: wgmma on the bf16 shared tile), then the w4a16
# bench (fixed configs incl. split-K, and the tuned winners), whose split-K rows now
# include the launcher's memset of C. Keeps going after a failure; summary at the end.
# Run THERE:  bash scripts/gpu-run.sh bash scripts/gpu-check-w4a16.sh     (logs: $OUT/w4a16)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/tilemoe-gpu-out}/w4a16"
mkdir -p "$out"
summary=()

# timed NAME SECONDS CMD... (scripts/lib/check-steps.sh): CMD under a time limit, its output in $out/NAME.log.
log=$out
TIMED_TAIL=4
source scripts/lib/check-steps.sh

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1 || true
cat "$out/gpu.txt"

check() { # NAME FILE [KERNEL] CONFIG
  local name=$1 file=$2 kernel=$3 config=$4
  local args=(node bin/tilemoe.js check "dsl-examples/$file" --backend cuda --arch sm_90a --cases 12 --seed 7)
  [[ -n $kernel ]] && args+=(--kernel "$kernel")
  [[ -n $config ]] && args+=(--config "$config")
  timed "check-$name" 150 "${args[@]}"
}

DECODE=BM=16,BN=64,BK=128,stages=4,warps=4
# Fused (BM 16), every format and zero-point kind, split-K 1 and 4.
check w4a16-decode            gemm_w4a16.ts gemm_w4a16        "$DECODE,splitK=1"
check w4a16-decode-splitk4    gemm_w4a16.ts gemm_w4a16        "BM=16,BN=128,BK=128,stages=4,warps=4,splitK=4"
check w4a16-zp-decode         gemm_w4a16.ts gemm_w4a16_zp     "$DECODE"
check w4a16-bf16zp-decode     gemm_w4a16.ts gemm_w4a16_bf16zp "$DECODE"
check w8a16-decode            gemm_w8a16.ts ""                "BM=16,BN=64,BK=128,warps=4"
check fp8w-decode             gemm_fp8w.ts  ""                "BM=16,BN=64,BK=128,warps=4"
check moe-up-w4a16-decode     moe_gemm_up_w4a16.ts ""         "BM=16,BN=64,BK=64,warps=4"
# Each file's default config (64/128-row tiles: the unfused wgmma path on sm_90a).
check w4a16-defaults          gemm_w4a16.ts ""                ""
check w8a16-defaults          gemm_w8a16.ts ""                ""
check fp8w-defaults           gemm_fp8w.ts  ""                ""
check moe-up-w4a16-defaults   moe_gemm_up_w4a16.ts ""         ""
# The mma.sync form at 64 rows (4 warps = one warp row: fused there too).
check w4a16-bm64-sync         gemm_w4a16.ts gemm_w4a16        "BM=64,BN=128,BK=64,stages=3,warps=4,splitK=1"

# The bench: decode configs (BN 64/128 x splitK 1-8), M=64/256 configs, tuned winners.
timed bench-w4a16 200 npx tsx bench/w4a16.ts --out "$out/bench"
sed -n '/^## w4a16/,$p' "$out/bench-w4a16.log"

echo
echo "== summary ($out)"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
! grep -q '^FAIL' "$out/summary.txt"
