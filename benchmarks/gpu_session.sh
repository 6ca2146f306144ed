#!/usr/bin/env bash
# One GPU session's checks, in one call: SFTC's epoch time against plain fine-tuning (small CNN
# and ResNet-18), then Table 1 on Fashion-MNIST with ResNet-18 (gpu_fashion_resnet18.sh). Copies at
# most 8 files into $OUT (the device tool's limit). The settings used for the published run:
#   OUT=dir FASHION_DIR=.fmnist TRAIN_EPOCHS=5 LRS=1e-3,1e-4 LIMIT_S=420 \
#     MIA_ATTACKER=hist-gradient-boosting bash benchmarks/gpu_session.sh
set -uo pipefail
OUT="${OUT:-./gpu-out}"
FASHION_DIR="${FASHION_DIR:-/usr/share/datasets/fashion-mnist}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT/bench"
for model in small-cnn resnet18; do
  python3 benchmarks/speed.py --model "$model" --n 20000 --repeats 3 --device cuda --methods sftc \
    --data-dir "$FASHION_DIR" --quiet > "$OUT/speed-$model.json"
  echo "speed $model rc=$?"; cat "$OUT/speed-$model.json"
done
TMP_OUT="$(mktemp -d)"
OUT="$TMP_OUT" FASHION_DIR="$FASHION_DIR" bash benchmarks/gpu_fashion_resnet18.sh | tail -n 40
rc=${PIPESTATUS[0]}
for f in table1.md table1.json table1.tex table1.csv convergence.png report.md; do
  [ -f "$TMP_OUT/$f" ] && cp "$TMP_OUT/$f" "$OUT/bench/"
done
cat "$TMP_OUT/gpu.txt"
exit "$rc"
