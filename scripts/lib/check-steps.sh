# Sourced by the scripts/gpu-check-*.sh scripts that run many `tilemoe check --backend cuda`
# steps side by side (the checks are mostly nvcc: 16 cores on the GPU machine).
#   step NAME ARGS...   `node bin/tilemoe.js check ARGS... --backend cuda --arch sm_90a --seed 20261128`
#                       in the background, under `timeout $STEP_TIMEOUT` (default 200 s) so a hanging
#                       kernel cannot stall the run; its output in $log/NAME.log, its verdict
#                       (PASS / FAIL with the exit code) in $log/NAME.status
#   collect             waits for the steps, appends each verdict to the caller's `summary` array and
#                       prints the tail of each log
# The caller sets `log` (an existing folder) and `summary=()` first.
step() {
  local name=$1; shift
  ( t0=$SECONDS rc=0
    timeout "${STEP_TIMEOUT:-200}" node bin/tilemoe.js check "$@" --backend cuda --arch sm_90a --seed 20261128 > "$log/$name.log" 2>&1 || rc=$?
    if (( rc == 0 )); then echo "PASS  $name ($(( SECONDS - t0 )) s)"; else echo "FAIL  $name (exit $rc, $(( SECONDS - t0 )) s): $log/$name.log"; fi > "$log/$name.status" ) &
  echo "== $name: tilemoe check $*"
}
collect() {
  wait
  for f in "$log"/*.status; do summary+=("$(cat "$f")"); tail -n 4 "${f%.status}.log"; done
}
#   timed NAME SECONDS CMD...
#                       runs CMD in the foreground under `timeout SECONDS` (a bench, a profile: the
#                       device call's limit is 10 minutes, so the summary still prints), its output
#                       in $log/NAME.log, prints the log's tail ($TIMED_TAIL lines, default 30) and
#                       appends its verdict to `summary`
timed() {
  local name=$1 limit=$2; shift 2
  echo "== $name: $*"
  local t0=$SECONDS rc=0
  timeout "$limit" "$@" > "$log/$name.log" 2>&1 || rc=$?
  tail -n "${TIMED_TAIL:-30}" "$log/$name.log"
  if (( rc == 0 )); then summary+=("PASS  $name ($(( SECONDS - t0 )) s)"); else summary+=("FAIL  $name (exit $rc, $(( SECONDS - t0 )) s): $log/$name.log"); fi
}
#   persistent_benches TOKENS LAYER_LIMIT [BENCH_ARGS...]
#                       the GEMM bench's TMA rows at 4096^3 and 8192^3 ($GEMM_WS=only: the ws rows
#                       alone), with the ws rows only when no check failed (a failed persistent
#                       check may hang), then, if they ran, the
#                       layer bench of $CANDIDATES (default bench/candidates/bf16-prefill-persistent.json)
#                       at TOKENS (a SKIP verdict otherwise); the tables into $log; needs `bench` (a
#                       scratch folder)
persistent_benches() {
  local tokens=$1 limit=$2; shift 2
  local ws=${GEMM_WS:-on}
  for s in "${summary[@]}"; do [[ $s == FAIL* ]] && ws=off; done
  rm -rf "$bench/gemm" "$bench/layer"
  TIMED_TAIL=40 timed gemm-bench 150 npx tsx bench/run.ts --no-layer --mma wgmma --copy tma --shapes "4096^3,8192^3" --no-tuned --reps 20 --ws $ws --out "$bench/gemm"
  cp "$bench/gemm/latest.md" "$log/gemm-table.md" 2>/dev/null || true
  if [[ $ws != off ]]; then
    TIMED_TAIL=40 timed layer-bench "$limit" npx tsx bench/run.ts --layer --layer-weights bf16 --layer-tokens "$tokens" \
      --layer-candidates "${CANDIDATES:-bench/candidates/bf16-prefill-persistent.json}" "$@" --out "$bench/layer"
    cp "$bench/layer/layer/latest.md" "$log/layer-table.md" 2>/dev/null || true
    cp "$bench/layer/layer/plan/results.json" "$log/layer-results.json" 2>/dev/null || true
  else
    summary+=("SKIP  layer-bench (a check failed: a persistent kernel may hang)")
  fi
}
