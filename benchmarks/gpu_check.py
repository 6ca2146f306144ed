"""Every figure issue 23 asks of a GPU, in one process: one JSON line per figure on stdout.

  device          the card (or CPU), torch and CUDA versions
  sftc_vs_ft      SFTC and plain fine-tuning samples/s and their epoch-time ratio, small CNN and
                  ResNet-18 at 3x32x32 (synthetic images: throughput does not depend on the
                  pixels), the engine's measured speed choices (benchmarks/speed.py)
  bf16_speed      the same SFTC epoch under bf16 autocast against fp32
  vs_authors      whole SFTC runs against the authors'-style loop on the same device
                  (benchmarks/speed.py --vs-authors; Fashion-MNIST when its files are there,
                  else synthetic 1x28x28)
  reference_pool  the audit's 16 references, batched against one at a time
                  (benchmarks/reference_pool_speed.py)
  bf16_results    SFTC unlearning with bf16 autocast against fp32: time, and the difference in
                  results (accuracies, logits) on digits
A figure that fails prints {"figure": ..., "error": ...} and the others still run; the exit
status is 1 if any failed.

  python benchmarks/gpu_check.py --device cuda             # on the GPU (benchmarks/gpu_check.sh)
  python benchmarks/gpu_check.py --device cpu --tiny       # CI-sized, seconds (tests)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import reference_pool_speed  # noqa: E402
import speed  # noqa: E402

import sftc  # noqa: E402
from sftc.engine import resolve_device  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist"
#: sizes: (samples for the epoch figures, repeats, whole-run models, whole-run epochs,
#:         the pool's data, references, epochs; the bf16 comparison's epochs)
SIZES = {
    "full": dict(n=20000, repeats=3, vs_models="small-cnn:6000,resnet18:2000", vs_epochs="1,3",
                 pool_data="fashion-mnist:1500", references="8,16", pool_epochs=30,
                 bf16_epochs=3, image_size=32),
    "tiny": dict(n=96, repeats=1, vs_models="small-cnn:96", vs_epochs="1",
                 pool_data="digits:60", references="4", pool_epochs=1, bf16_epochs=1,
                 image_size=8),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="CI-sized: a few seconds on a CPU")
    p.add_argument("--data-dir", default=os.environ.get("FASHION_DIR", FASHION),
                   help="Fashion-MNIST's files ($FASHION_DIR; default the usual place)")
    p.add_argument("--only", default=None, help="comma-separated figure names to run")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--figure-limit", type=int, default=200,
                   help="seconds one figure may take before it is stopped and the next one "
                        "runs (default 200)")
    return p.parse_args(argv)


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


def quietly(fn, *args) -> str:
    """``fn(*args)``'s stdout (the benchmarks print their JSON there)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = fn(*args)
    if code:
        raise RuntimeError(f"exit status {code}")
    return buffer.getvalue()


def fashion_here(path: str) -> bool:
    return any((Path(path) / f"train-images-idx3-ubyte{ext}").is_file() for ext in ("", ".gz"))


def device_figure(args, size) -> None:
    device = resolve_device(args.device)
    emit({"figure": "device", "device": str(device),
          "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
          "torch": torch.__version__, "cuda": torch.version.cuda,
          "torch_threads": torch.get_num_threads(), "size": "tiny" if args.tiny else "full",
          "fashion_mnist": fashion_here(args.data_dir), "sftc": sftc.__version__})


def epoch_figures(args, size) -> None:
    """sftc_vs_ft per model (the measured speed choices), then bf16_speed against it."""
    for model in ("small-cnn", "resnet18"):
        common = ["--model", model, "--dataset", "synthetic", "--channels", "3",
                  "--image-size", str(size["image_size"]), "--n", str(size["n"]),
                  "--repeats", str(size["repeats"]), "--device", args.device,
                  "--methods", "sftc", "--quiet", "--warmup-steps", "2"]
        auto = json.loads(quietly(speed.main, common + ["--accel", "auto"]))
        keep = ("model", "n", "image_size", "device", "torch_threads", "repeats",
                "load_average_1min")
        emit({"figure": "sftc_vs_ft", **{k: auto[k] for k in keep}, "input": "3x{0}x{0}".format(
            auto["image_size"]), "sftc_samples_per_s": auto["sftc_samples_per_s"],
            "ft_samples_per_s": auto["ft_samples_per_s"], "sftc_over_ft": auto["sftc_over_ft"],
            "sftc_over_ft_each_repeat": auto["sftc_over_ft_each_repeat"],
            "sftc_setup_s": auto["sftc_setup_s"], "choices": auto["choices"]})
        if args.tiny and model != "small-cnn":
            continue        # CI-sized: the bf16 path once (the same code for every model)
        bf16 = json.loads(quietly(speed.main, common + ["--accel", "bf16"]))
        emit({"figure": "bf16_speed", **{k: bf16[k] for k in keep},
              "fp32_sftc_samples_per_s": auto["sftc_samples_per_s"],
              "bf16_sftc_samples_per_s": bf16["sftc_samples_per_s"],
              "bf16_speedup": round(bf16["sftc_samples_per_s"] / auto["sftc_samples_per_s"], 3),
              "bf16_ft_samples_per_s": bf16["ft_samples_per_s"]})


def vs_authors_figure(args, size) -> None:
    data = (["--dataset", "fashion-mnist", "--data-dir", args.data_dir]
            if fashion_here(args.data_dir) and not args.tiny else
            ["--dataset", "synthetic", "--channels", "1", "--image-size", "28"])
    out = json.loads(quietly(speed.main, ["--vs-authors", "--device", args.device,
                                          "--vs-models", size["vs_models"],
                                          "--vs-epochs", size["vs_epochs"],
                                          "--repeats", str(size["repeats"]), "--quiet", *data]))
    for run in out["runs"]:
        emit({"figure": "vs_authors", "device": out["device"], "dataset": out["dataset"],
              **{k: run[k] for k in ("model", "n", "epochs", "authors_s", "sftc_s", "speedup",
                                     "each_repeat", "final_epoch_loss")},
              "load_average_1min": out["load_average_1min"]})


def pool_figure(args, size) -> None:
    data = size["pool_data"]
    if data.startswith("fashion") and not fashion_here(args.data_dir):
        data = "digits:all"     # the GPU machine without the files: still a pool to time
    text = quietly(reference_pool_speed.main, [
        "--data", data, "--data-dir", args.data_dir, "--references", size["references"],
        "--group", "8" if not args.tiny else "2", "--epochs", str(size["pool_epochs"]),
        "--device", args.device, "--quiet", *(["--no-warmup"] if args.tiny else [])])
    for line in text.splitlines():
        emit(json.loads(line))


def bf16_results_figure(args, size) -> None:
    """SFTC on digits from one fp32 original, unlearned in fp32 and under bf16 autocast."""
    from sftc.bench.config import ReferenceConfig
    from sftc.bench.split import make_split

    split = make_split(ReferenceConfig(dataset="digits", forget="random:0.1",
                                       train_subset=200 if args.tiny else None,
                                       test_subset=100 if args.tiny else None))
    epochs = size["bf16_epochs"]
    original = sftc.train(split, "small-cnn", epochs=2 if args.tiny else 10, seed=0,
                          device=args.device, progress=False).model
    results = {}
    for label, accel in (("fp32", "auto"), ("bf16", {"autocast": "bf16"})):
        started = time.perf_counter()
        run = sftc.unlearn(original, split, "sftc", epochs=epochs, device=args.device,
                           progress=False, accel=accel, track=("retain", "forget", "test"))
        results[label] = (time.perf_counter() - started, run)
    x, _ = split.data.batch(split.test, args.device)
    with torch.no_grad():
        out = {k: r.model.to(args.device).eval()(x).float().cpu() for k, (_, r) in results.items()}
    rows = {k: r.history.rows[-1] for k, (_, r) in results.items()}
    emit({"figure": "bf16_results", "dataset": "digits", "retain_size": len(split.retain),
          "model": "small-cnn", "epochs": epochs,
          "device": str(resolve_device(args.device)),
          "fp32_s": round(results["fp32"][0], 3), "bf16_s": round(results["bf16"][0], 3),
          **{f"{acc}_{k}": round(rows[k][acc], 4) for k in ("fp32", "bf16")
             for acc in ("acc_retain", "acc_forget", "acc_test")},
          "max_abs_accuracy_change": round(max(abs(rows["fp32"][a] - rows["bf16"][a]) for a in
                                               ("acc_retain", "acc_forget", "acc_test")), 4),
          "test_prediction_agreement": round(float((out["fp32"].argmax(1) ==
                                                    out["bf16"].argmax(1)).float().mean()), 4),
          "max_test_logit_gap": round(float((out["fp32"] - out["bf16"]).abs().max()), 4)})


def too_long(signum, frame):
    raise TimeoutError("the figure ran past --figure-limit")


#: in this order: the pool (issue 23's own figure) first, should the time limit cut the run
FIGURES = {"device": device_figure, "reference_pool": pool_figure, "epochs": epoch_figures,
           "vs_authors": vs_authors_figure, "bf16_results": bf16_results_figure}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    size = SIZES["tiny" if args.tiny else "full"]
    chosen = list(FIGURES) if not args.only else [n.strip() for n in args.only.split(",")]
    failed = 0
    for name in chosen:
        started = time.perf_counter()
        signal.signal(signal.SIGALRM, too_long)
        signal.alarm(args.figure_limit)
        try:
            FIGURES[name](args, size)
        except Exception as exc:  # noqa: BLE001 - one figure's failure must not hide the rest
            failed += 1
            emit({"figure": name, "error": f"{type(exc).__name__}: {exc}",
                  "trace": traceback.format_exc()[-1500:]})
        finally:
            signal.alarm(0)
        print(f"gpu_check: {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
