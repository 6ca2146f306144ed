#!/usr/bin/env bash
# What `sftc unlearn` reports as its time, before and after a change, as a new user runs it:
# fresh processes, one torch thread, alternating the two code trees round by round.
#
#   git archive REV src | tar -x -C /tmp/before      # the code before the change
#   bash benchmarks/unlearn_timing.sh /tmp/before/src [ROUNDS] [ROOT]
#
# Two jobs: a small one (digits, the embedded data, SFTC's default 3 epochs) and a medium one
# (a 6,000-image Fashion-MNIST subset read from /usr/share/datasets/fashion-mnist). The originals
# are trained once, with the current code on the plain path, and both trees unlearn from them
# (--no-mia: the MIA's CatBoost fits are not what is timed). Per run it prints the first epoch's
# time (the history's first row: setup and epoch 1, as the engine bills them), the later epochs'
# mean, unlearn_seconds (what run.json and the benchmark report), the speed-trial seconds the run
# recorded apart, and the load average.
set -euo pipefail
BEFORE=${1:?usage: unlearn_timing.sh BEFORE_SRC [ROUNDS] [ROOT]}
ROUNDS=${2:-2}
ROOT=${3:-/tmp/unlearn-timing}
AFTER=$(cd "$(dirname "$0")/.." && pwd)/src
PY=${PYTHON:-python}
FASHION=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
export OMP_NUM_THREADS=1
unset SFTC_ACCEL
mkdir -p "$ROOT"
export SFTC_CACHE_DIR=$ROOT/cache

small=(--dataset digits --forget random:0.1)
medium=(--dataset fashion-mnist --data-dir "$FASHION" --train-subset 6000 --forget random:0.1)

if [ ! -f "$ROOT/small-original/model.pt" ]; then
  SFTC_ACCEL=off PYTHONPATH=$AFTER $PY -m sftc train "${small[@]}" --epochs 8 \
    --out "$ROOT/small-original" --quiet --overwrite > /dev/null
  SFTC_ACCEL=off PYTHONPATH=$AFTER $PY -m sftc train "${medium[@]}" --epochs 3 \
    --out "$ROOT/medium-original" --quiet --overwrite > /dev/null
fi

report() {  # job, tree, run.json
  $PY - "$1" "$2" "$3" <<'EOF'
import json, os, sys
job, tree, path = sys.argv[1:]
run = json.load(open(path))
rows = [r for r in run["history"] if r["epoch"] > 0]
later = [b["seconds"] - a["seconds"] for a, b in zip(rows, rows[1:])]
trial = (run.get("accel") or {}).get("trial_seconds", 0.0)   # (before issue 19: not recorded)
print(f"{job:6s} {tree:6s} first epoch {rows[0]['seconds']:6.2f} s  later epochs "
      f"{sum(later) / max(len(later), 1):5.2f} s  unlearn_seconds "
      f"{run['metrics']['unlearn_seconds']:6.2f} s  trial recorded apart {trial or 0:5.2f} s  "
      f"load {os.getloadavg()[0]:.2f}", flush=True)
EOF
}

for round in $(seq 1 "$ROUNDS"); do
  for job in small medium; do
    if [ "$job" = small ]; then args=("${small[@]}"); else args=("${medium[@]}"); fi
    order=(before after)
    if [ $((round % 2)) -eq 0 ]; then order=(after before); fi
    for tree in "${order[@]}"; do
      src=$BEFORE; [ "$tree" = after ] && src=$AFTER
      out=$ROOT/$job-$tree-$round
      PYTHONPATH=$src $PY -m sftc unlearn "${args[@]}" --checkpoint "$ROOT/$job-original/model.pt" \
        --method sftc --no-mia --out "$out" --quiet --overwrite > /dev/null
      report "$job" "$tree" "$out/run.json"
    done
  done
done
