#!/usr/bin/env bash
# Run on the GPU machine: bash scripts/gpu-run.sh bash scripts/gpu-tune-bench.sh
# Sweeps gemm_bf16 and gemm_w4a16 for the bench shapes on this card (plain `tilemoe tune`: Node and
# nvcc are there through gpu-run.sh), then both benches with the fresh cache, so the tuned rows are
# this card's. Fits one 10-minute device call; logs and the cache go to $OUT/i5 (export the
# winners here with `tilemoe tune --export bench/tuned.json --cache OUT/i5/tune.json`).
set -u
mkdir -p "$OUT/i5"
log="$OUT/i5/log.txt"
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv | tee -a "$log"
t0=$(date +%s)
timeout 200 node bin/tilemoe.js tune dsl-examples/gemm.ts --kernel gemm_bf16 --shape M=4096,N=4096,K=4096 --shape M=8192,N=8192,K=8192 --shape M=16,N=14336,K=4096 --max-candidates 100 --budget 140 --cache "$OUT/i5/tune.json" --report "$OUT/i5/rep-bf16" > "$OUT/i5/tune-bf16.txt" 2>&1; echo "tune bf16 rc=$? $(( $(date +%s) - t0 )) s" | tee -a "$log"
t1=$(date +%s)
timeout 150 node bin/tilemoe.js tune dsl-examples/gemm_w4a16.ts --kernel gemm_w4a16 --shape M=1,N=14336,K=4096 --shape M=16,N=14336,K=4096 --shape M=64,N=14336,K=4096 --shape M=256,N=14336,K=4096 --shape M=16,N=4096,K=14336 --shape M=256,N=4096,K=14336 --shape M=1024,N=14336,K=4096 --shape M=1024,N=4096,K=14336 --max-candidates 110 --include BM=256,BN=128,BK=64,stages=4,warps=8,splitK=1 --include BM=256,BN=128,BK=64,stages=3,warps=8,splitK=1 --include BM=256,BN=64,BK=64,stages=4,warps=4,splitK=2 --include BM=256,BN=64,BK=64,stages=4,warps=4,splitK=4 --include BM=128,BN=256,BK=64,stages=4,warps=8,splitK=1 --budget 95 --cache "$OUT/i5/tune.json" --report "$OUT/i5/rep-w4a16" > "$OUT/i5/tune-w4a16.txt" 2>&1; echo "tune w4a16 rc=$? $(( $(date +%s) - t1 )) s" | tee -a "$log"
t2=$(date +%s)
timeout 120 npx tsx bench/run.ts --tune-cache "$OUT/i5/tune.json" --out "$OUT/i5/bench" > "$OUT/i5/bench.txt" 2>&1; echo "bench rc=$? $(( $(date +%s) - t2 )) s" | tee -a "$log"
t3=$(date +%s)
timeout 90 npx tsx bench/w4a16.ts --tune-cache "$OUT/i5/tune.json" --out "$OUT/i5/bench-w4a16" > "$OUT/i5/bench-w4a16.txt" 2>&1; echo "bench w4a16 rc=$? $(( $(date +%s) - t3 )) s" | tee -a "$log"
rm -rf "$OUT/i5/bench/plan" "$OUT/i5/bench-w4a16/plan"
tail -n 5 "$OUT/i5/"*.txt
