#!/usr/bin/env bash
# Whole SFTC runs against the authors'-style loop, for the code at a git revision ("before") and
# for this working tree ("after"), on the same machine, the two processes alternating ROUNDS
# times. Each process times its own authors'-style loop too, so each speed-up is internally
# consistent; the JSON lines go to OUT/{before,after}-ROUND.json.
#
#   [PYTHON=.venv/bin/python] bash benchmarks/speed_before_after.sh REV [ROUNDS] [OUT] -- [speed.py options]
#   bash benchmarks/speed_before_after.sh HEAD~3 2 /tmp/ba -- --vs-models small-cnn:6000
set -euo pipefail
rev=${1:?usage: speed_before_after.sh REV [ROUNDS] [OUT] -- [speed.py options]}
shift
rounds=2
out=speed-before-after
if [[ $# -gt 0 && $1 != "--" ]]; then rounds=$1; shift; fi
if [[ $# -gt 0 && $1 != "--" ]]; then out=$1; shift; fi
if [[ $# -gt 0 && $1 == "--" ]]; then shift; fi
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}  # the interpreter with torch and sftc installed
before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
git -C "$root" archive "$rev" src benchmarks | tar -x -C "$before"
mkdir -p "$out"
for round in $(seq 1 "$rounds"); do
  for who in before after; do
    if [[ $who == before ]]; then tree=$before; else tree=$root; fi
    # PYTHONPATH comes before an editable install of this checkout
    PYTHONPATH="$tree/src" OMP_NUM_THREADS=1 "$python" "$tree/benchmarks/speed.py" --vs-authors \
      --threads 1 --quiet "$@" > "$out/$who-$round.json"
    "$python" - "$out/$who-$round.json" "$who" "$round" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["runs"]:
    print(f"{sys.argv[2]:6s} round {sys.argv[3]}  {r['model']:10s} n={r['n']} epochs={r['epochs']}: "
          f"authors {r['authors_s']:6.2f} s  sftc {r['sftc_s']:6.2f} s  speed-up {r['speedup']:.2f} "
          f"(setup {r['sftc_setup_s']:.2f} s; load {d['load_average_1min']})")
EOF
  done
done
