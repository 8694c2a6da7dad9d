// The plan folder's run.sh: plain bash (the GPU machine has no Node.js). One runner process
// per candidate, so that a crash, a lost context or a hang (killed by `timeout`) costs that
// candidate only; at most one process per GPU at a time, candidates spread over the GPUs
// when the plan was built. Each candidate's outcome goes to runs/ID.run.json; at the end
// they are joined into results.json for `tilemoe tune --ingest`.

export interface RunScriptOptions { planId: string; gpus: number; budgetS: number; timeoutS: number; kernel: string }

export function runScript(o: RunScriptOptions): string {
  return `#!/usr/bin/env bash
# tilemoe tune plan for kernel ${o.kernel}. Run on the GPU machine:   bash run.sh
# Needs nvcc (to build the runner from runner/) and a CUDA driver; nothing else.
# Environment: TUNE_BUDGET=seconds (0: no limit; default ${o.budgetS}) stops starting candidates
# after that long (each GPU still runs its first); TUNE_TIMEOUT=seconds per candidate (default ${o.timeoutS});
# TILEMOE_RUNNER=/path/to/runner uses a runner built elsewhere.
# Writes results.json here; bring it back and run:  tilemoe tune --ingest <this folder>/results.json
set -uo pipefail
cd "$(dirname "$0")"
here=$PWD
gpus=${o.gpus}
budget=\${TUNE_BUDGET:-${o.budgetS}}
limit=\${TUNE_TIMEOUT:-${o.timeoutS}}
runner=\${TILEMOE_RUNNER:-}
if [[ -z $runner ]]; then
  runner=$here/runner/runner
  if [[ ! -x $runner ]]; then
    echo "run.sh: building the runner: nvcc -O2 -std=c++17 runner/runner.cpp -o runner/runner -ldl"
    nvcc -O2 -std=c++17 runner/runner.cpp -o runner/runner.tmp -ldl && mv runner/runner.tmp runner/runner \\
      || { echo "run.sh: building the runner failed" >&2; exit 2; }
  fi
fi
command -v nvidia-smi >/dev/null && nvidia-smi -L
rm -rf runs && mkdir -p runs
total=$(grep -c . candidates.txt || true)
start=$(date +%s)
tty=0; [[ -t 1 ]] && tty=1

# Best time so far at the first shape, over candidates whose every case is ok: "MS ID".
best() {
  awk '
    function finish() { if (file != "" && !bad && first != "" && (best == "" || first + 0 < best + 0)) { best = first; id = file } }
    FNR == 1 { finish(); file = FILENAME; bad = 0; first = ""; status = "" }
    /"status": *"/ { status = $0; if (status ~ /"(mismatch|error|skipped)"/) bad = 1 }
    /"results": *null/ || /"skipped": *"/ { bad = 1 }
    /"median_ms":/ { if (first == "" && status ~ /"ok"/) { v = $0; sub(/.*"median_ms": */, "", v); sub(/[,} ].*/, "", v); first = v } }
    END { finish(); if (id != "") { sub(/.*\\//, "", id); sub(/\\.run\\.json$/, "", id); printf "%s ms (%s)", best, id } }
  ' runs/*.run.json 2>/dev/null
}

progress() {
  local id=$1 what=$2 done now eta b
  done=$(ls runs | grep -c '\\.run\\.json$')
  now=$(( $(date +%s) - start ))
  eta=$(( done > 0 ? now * (total - done) / done : 0 ))
  b=$(best); [[ -n $b ]] || b="-"
  local line
  line=$(printf '[%d/%d] %s %s | best %s | %ds elapsed, ETA %ds' "$done" "$total" "$id" "$what" "$b" "$now" "$eta")
  if (( tty )); then printf '\\r\\033[K%s' "$line"; else echo "$line"; fi
}

work() {
  local gpu=$1 id g t0 rc what ran=0
  while read -r id g; do
    [[ -n $id && $g == "$gpu" ]] || continue
    # Each GPU runs at least its first candidate (the default config comes first): a baseline.
    if (( budget > 0 && ran > 0 && $(date +%s) - start >= budget )); then
      printf '{"candidate": "%s", "gpu": %s, "skipped": "budget of %ss spent"}\\n' "$id" "$gpu" "$budget" > "runs/$id.run.json"
      progress "$id" "skipped (budget)"
      continue
    fi
    t0=$(date +%s)
    ran=$(( ran + 1 ))
    rm -f "runs/$id.results.json"
    timeout -k 5 "$limit" "$runner" "plans/$id.json" --out "runs/$id.results.json" > "runs/$id.log" 2>&1
    rc=$?
    {
      printf '{"candidate": "%s", "gpu": %s, "exit": %s, "seconds": %s, "results": ' "$id" "$gpu" "$rc" "$(( $(date +%s) - t0 ))"
      if [[ -s runs/$id.results.json ]]; then cat "runs/$id.results.json"; else printf 'null'; fi
      printf '}\\n'
    } > "runs/$id.run.json.tmp" && mv "runs/$id.run.json.tmp" "runs/$id.run.json"
    case $rc in 0) what=ok ;; 1) what="failed or wrong" ;; 124) what="timeout (\${limit}s)" ;; *) what="exit $rc" ;; esac
    progress "$id" "$what"
  done < candidates.txt
}

for (( g = 0; g < gpus; g++ )); do work "$g" & done
wait
(( tty )) && echo

{
  printf '{"schema": "tilemoe.tune-results", "version": 1, "plan": "${o.planId}", "runs": [\\n'
  first=1
  while read -r id g; do
    [[ -n $id && -f runs/$id.run.json ]] || continue
    (( first )) || printf ',\\n'
    first=0
    cat "runs/$id.run.json"
  done < candidates.txt
  printf ']}\\n'
} > results.json.tmp && mv results.json.tmp results.json
# Under the lab's device tool, $OUT is the folder that comes back: leave the results there.
if [[ -n \${OUT:-} ]]; then mkdir -p "$OUT/tune-${o.kernel}" && cp results.json "$OUT/tune-${o.kernel}/"; fi
echo "run.sh: $(ls runs | grep -c '\\.run\\.json$') of $total candidates recorded in $here/results.json ($(( $(date +%s) - start ))s)"
echo "run.sh: bring it back and run: tilemoe tune --ingest <this folder>/results.json"
`;
}
