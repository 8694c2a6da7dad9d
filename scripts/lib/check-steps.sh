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
