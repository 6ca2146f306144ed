#!/usr/bin/env bash
# Epoch throughput of every method against plain fine-tuning on a GPU (small CNN and ResNet-18 on
# Fashion-MNIST), plus an end-to-end CLI check on CUDA. Writes JSON lines and logs into $OUT.
#   OUT=dir FASHION_DIR=/usr/share/datasets/fashion-mnist bash benchmarks/gpu_speed.sh
set -uo pipefail
OUT="${OUT:-./gpu-out}"
FASHION_DIR="${FASHION_DIR:-/usr/share/datasets/fashion-mnist}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/gpu.txt"
for model in small-cnn resnet18; do
  python3 benchmarks/speed.py --model "$model" --n 20000 --repeats 3 --device cuda \
    --data-dir "$FASHION_DIR" > "$OUT/speed-$model.json" 2> "$OUT/speed-$model.log"
  echo "$model rc=$?" | tee -a "$OUT/gpu.txt"; cat "$OUT/speed-$model.json"
  # SFTC against fine-tuning on the plain path and with bf16 autocast (issue 12: the default run
  # above makes the engine's measured speed choices)
  for accel in off bf16; do
    python3 benchmarks/speed.py --model "$model" --n 20000 --repeats 3 --device cuda --methods sftc \
      --accel "$accel" --data-dir "$FASHION_DIR" > "$OUT/speed-$model-$accel.json" 2> "$OUT/speed-$model-$accel.log"
    echo "$model accel=$accel rc=$?" | tee -a "$OUT/gpu.txt"; cat "$OUT/speed-$model-$accel.json"
  done
done
# the CLI on CUDA, end to end (scikit-learn's attacker: catboost is not installed there)
R=/tmp/sftc-cli
rm -rf "$R"
python3 -m sftc train --dataset fashion-mnist --data-dir "$FASHION_DIR" --epochs 2 --device cuda --quiet --out "$R/orig" \
 && python3 -m sftc train --dataset fashion-mnist --data-dir "$FASHION_DIR" --subset retain --epochs 2 --device cuda --quiet --out "$R/rt" \
 && python3 -m sftc unlearn --dataset fashion-mnist --data-dir "$FASHION_DIR" --checkpoint "$R/orig/model.pt" \
      --retrained "$R/rt/model.pt" --epochs 2 --lr 5e-4 --device cuda --quiet --mia-attacker hist-gradient-boosting \
      --mia-iterations 200 --out "$R/sftc" 2>&1 | tee "$OUT/cli.txt"
echo "cli rc=${PIPESTATUS[0]}" | tee -a "$OUT/gpu.txt"
cp "$R/sftc/run.json" "$OUT/cli-run.json" 2>/dev/null
exit 0
