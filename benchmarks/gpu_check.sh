#!/usr/bin/env bash
# Issue 23's GPU check in one command: the tests that touch the device paths (tests/test_cuda.py,
# on the device), then every figure as one JSON line (benchmarks/gpu_check.py): the reference
# pool of 16 batched against one at a time, SFTC and FT samples/s for the small CNN and ResNet-18
# at 3x32x32, bf16 against fp32 (speed and results), whole SFTC runs against the authors'-style
# loop. Installs nothing; sized to end within 8 minutes on an H100/H200 (each step has its own
# time limit, so one that hangs cannot take the others' time).
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine, from the repository root
#   bash benchmarks/gpu_check.sh --device cpu --tiny  # CI-sized, on a CPU (tests/test_gpu_check.py)
#
# Environment: OUT (a folder: the JSON lines go to OUT/gpu_check.jsonl too, and the log to
# OUT/gpu_check.log instead of stderr), FASHION_DIR (Fashion-MNIST's idx files; without them the
# whole-run and pool figures use synthetic images or digits and say so), GPU_CHECK_TESTS (the
# pytest targets; default tests/test_cuda.py), PYTHON (default python3). The exit status is 0 when
# the tests passed and every figure was made.
set -uo pipefail
DEVICE=cuda
TINY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --tiny) TINY=(--tiny); shift ;;
    *) echo "gpu_check.sh: unknown option $1 (use --device DEV, --tiny)" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python3}"
TESTS="${GPU_CHECK_TESTS:-tests/test_cuda.py}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ ${#TINY[@]} -gt 0 ]; then LIMIT_TESTS=120; LIMIT_FIGURES=240; else LIMIT_TESTS=90; LIMIT_FIGURES=360; fi

check() {
  local started tests_rc figures_rc summary log
  started=$(date +%s)
  log="$CACHE/tests.log"
  # shellcheck disable=SC2086  # TESTS holds several pytest targets
  SFTC_TEST_DEVICE="$DEVICE" timeout "$LIMIT_TESTS" "$PYTHON" -m pytest -q -p no:cacheprovider \
    $TESTS > "$log" 2>&1
  tests_rc=$?
  summary=$(tail -n 1 "$log")
  [ "$tests_rc" -ne 0 ] && tail -n 60 "$log" >&2
  "$PYTHON" -c 'import json, sys; print(json.dumps({"figure": "tests", "device": sys.argv[1],
    "targets": sys.argv[2], "rc": int(sys.argv[3]), "summary": sys.argv[4],
    "seconds": int(sys.argv[5])}))' "$DEVICE" "$TESTS" "$tests_rc" "$summary" \
    "$(( $(date +%s) - started ))"
  timeout "$LIMIT_FIGURES" "$PYTHON" benchmarks/gpu_check.py --device "$DEVICE" "${TINY[@]}"
  figures_rc=$?
  [ "$figures_rc" -eq 124 ] && echo '{"figure": "gpu_check", "error": "the figures ran past their time limit"}'
  echo "{\"figure\": \"gpu_check\", \"tests_rc\": $tests_rc, \"figures_rc\": $figures_rc, \"seconds\": $(( $(date +%s) - started ))}"
  [ "$tests_rc" -eq 0 ] && [ "$figures_rc" -eq 0 ]
}

CACHE="$(mktemp -d)"   # an empty model cache of its own: everything trains, nothing is reused
trap 'rm -rf "$CACHE"' EXIT
export SFTC_CACHE_DIR="$CACHE/models"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  check 2> "$OUT/gpu_check.log" | tee "$OUT/gpu_check.jsonl"
else
  check
fi
