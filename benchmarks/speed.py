"""Epoch throughput of every unlearning method beside plain fine-tuning, in one run.

Prints one JSON line on stdout (a readable table goes to stderr unless --quiet):

  sftc_samples_per_s, ft_samples_per_s
      samples per second of one SFTC epoch and of one plain fine-tuning epoch over the same
      samples (cross-entropy over retain ∪ forget, the same model and batch size);
  sftc_over_ft
      SFTC epoch time over plain fine-tuning epoch time (median of the per-repeat ratios; each
      repeat times the two back to back). Floor 1.0, target <= 1.10; sftc_over_ft_best is the
      fastest SFTC epoch over the fastest fine-tuning epoch (least disturbed by other load);
  sftc_setup_s
      SFTC's one-off setup (the frozen teacher copy and its logits on the retain set, computed
      once), NOT included in the epoch figures; sftc_setup_over_ft_epoch puts it in units of
      one fine-tuning epoch;
  methods / epoch_s / setup_s / samples_per_epoch
      per registered method: samples per second, seconds per epoch, one-off setup seconds and
      samples per epoch (what each method's batch plan feeds through the model: NegGrad+ an epoch
      is the forget set plus as many retain samples, SCRUB's first msteps epochs include a pass
      over the forget set, FT/CF-k/EU-k/retrain read the retain set only).

Every figure is the median over --repeats; a warm-up (forward, backward and optimizer steps on
the model, then one untimed fine-tuning epoch through the engine, whose speed choices are in
"choices" in the JSON) runs before anything is timed, so the epochs are steady-state ones;
--accel off times the plain path instead. The model is freshly initialised:
throughput does not depend on the weights.

With --vs-authors it instead times whole SFTC runs against the authors'-style loop
(benchmarks/authors_loop.py: per-item Dataset and DataLoader, teacher forward on every batch, the
generator's per-sample NumPy loop, cross-entropy and KL as separate calls, per-epoch evaluation
off) on the same model, weights and samples, for each model and epoch count, in one process, on
--device (on a GPU the authors' loop makes its items on the CPU and moves each batch, as their
code does):

  authors_s, sftc_s, speedup
      whole-run wall time of the authors'-style loop and of one sftc.unlearn(method="sftc") call
      (median over --repeats), and the median of the per-repeat ratios authors_s / sftc_s (the
      engine's rule measures nothing; with --accel measure the first call measures and the
      others read its decision); the two alternate which runs first. With --vs-plain, sftc also runs with
      every speed choice off (plain_s, plain_speedup: the engine as it was before issue 12), or
      with the options --vs-plain-accel gives (recorded as plain_accel).

  python benchmarks/speed.py --model small-cnn --n 10000
  python benchmarks/speed.py --model resnet18 --n 2000 --repeats 3
  python benchmarks/speed.py --vs-authors --vs-plain --threads 1 --repeats 3
  python benchmarks/speed.py --dataset synthetic --image-size 32 --model resnet18 --device cuda
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time

import torch

import sftc
from sftc.data import load_dataset
from sftc.engine import Recipe, resolve_device, run
from sftc.methods import create_method, list_methods, method_class
from sftc.methods.supervised import TrainOriginal
from sftc.models import build_model, layer_sequence

BASELINE = "plain-ft"  # cross-entropy fine-tuning over retain ∪ forget: SFTC's samples, no extras


class Counting:
    """Delegates to a method and records how many samples each epoch's batch plan holds."""

    def __init__(self, inner):
        self.inner = inner
        self.samples: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def plan(self, ctx, epoch):
        batches = list(self.inner.plan(ctx, epoch))
        self.samples.append(sum(len(b.index) for b in batches))
        return batches


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="small-cnn", help="small-cnn, resnet18 or efficientnet_b0")
    p.add_argument("--dataset", default="fashion-mnist",
                   help="a registered dataset, or synthetic: random uint8 images of "
                        "--channels x --image-size (default 3x32x32), 10 classes (throughput "
                        "does not depend on the pixels)")
    p.add_argument("--channels", type=int, default=3, help="synthetic data's channels")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n", type=int, default=10000, help="training samples (retain + forget)")
    p.add_argument("--forget", default="random:0.1", help="forget spec over the n samples")
    p.add_argument("--image-size", type=int, default=None, help="default: the dataset's (28)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs per run (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="runs per method; medians are reported")
    p.add_argument("--methods", default="all",
                   help="comma-separated registry names (default: all registered methods)")
    p.add_argument("--k", type=int, default=None,
                   help="k of cf-k/eu-k (default 5, or 1 for a model with fewer than 6 layers)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default torch's)")
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="only the JSON line")
    p.add_argument("--vs-authors", action="store_true",
                   help="time whole SFTC runs against the authors'-style loop instead")
    p.add_argument("--vs-models", default="small-cnn:6000,resnet18:2000",
                   help="--vs-authors: model:n pairs (default small-cnn:6000,resnet18:2000)")
    p.add_argument("--vs-epochs", default="1,3", help="--vs-authors: epoch counts (default 1,3)")
    p.add_argument("--vs-lr", type=float, default=5e-4, help="--vs-authors: learning rate")
    p.add_argument("--vs-plain", action="store_true",
                   help="--vs-authors: also time sftc with every speed choice off (--accel off)")
    p.add_argument("--vs-plain-accel", default="off", metavar="ACCEL",
                   help="--vs-plain: the speed options of that third contestant instead of off: "
                        "auto, bf16 or a JSON object of Accel switches, e.g. "
                        "'{\"exact_rewrites\": \"off\"}' (every other switch auto) to time one "
                        "choice's effect")
    p.add_argument("--accel", default="auto", choices=("auto", "measure", "off", "bf16"),
                   help="sftc's speed options: auto (default: the engine's rule), measure "
                        "(measured once, kept in $SFTC_CACHE_DIR/accel), off (the plain path) "
                        "or bf16 (auto plus bfloat16 autocast of the training step)")
    return p.parse_args(argv)


def accel_option(name: str):
    if name.lstrip().startswith("{"):
        return sftc.api.as_accel(json.loads(name))
    return sftc.api.as_accel({"autocast": "bf16"} if name == "bf16" else name)


def synthetic_split(args) -> sftc.Split:
    """``--n`` random uint8 images of ``--channels`` x ``--image-size`` (default 32), 10 classes."""
    size = args.image_size or 32
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randint(0, 256, (args.n, args.channels, size, size), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (args.n,), generator=g)
    return sftc.Split.from_tensors(x, y, args.forget, num_classes=10, mean=(0.5,) * args.channels,
                                   std=(0.25,) * args.channels, seed=args.seed)


def subset_split(args) -> sftc.Split:
    if args.dataset == "synthetic":
        return synthetic_split(args)
    loaded = load_dataset(args.dataset, data_dir=args.data_dir, image_size=args.image_size)
    if args.n > len(loaded.train):
        raise SystemExit(f"--n {args.n} exceeds the {len(loaded.train)} training samples")
    g = torch.Generator().manual_seed(args.seed)
    train = loaded.train[torch.randperm(len(loaded.train), generator=g)[:args.n]].sort().values
    return sftc.Split.create(loaded.data, train, loaded.val[:0], loaded.test[:0], args.forget,
                             seed=args.seed)


def warm_up(model, split, device, batch_size, steps):
    model = copy.deepcopy(model).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for step in range(steps):
        x, y = split.data.batch(split.train[step * batch_size:(step + 1) * batch_size], device)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # the inference path the teacher precompute uses
        model.eval()(split.data.batch(split.train[:512], device)[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_one(name, hparams, model, split, args, model_name, epochs=None):
    method = Counting(TrainOriginal() if name == BASELINE else create_method(name, **hparams))
    epochs = epochs or args.epochs
    recipe = Recipe(epochs=epochs, lr=args.lr, batch_size=args.batch_size,
                    scheduler="constant", device=args.device, seed=args.seed,
                    accel=accel_option(args.accel))
    fresh = lambda seed: build_model(model_name, split.data.channels or 1,  # noqa: E731
                                     split.data.num_classes, seed=seed)
    _, history = run(method, model, split, recipe, progress=False, desc=name, fresh_model=fresh)
    epoch_s = (history.seconds - history.setup_seconds) / epochs   # trials are not in seconds
    return {"epoch_s": epoch_s, "setup_s": history.setup_seconds,
            "samples": sum(method.samples) / epochs, "accel": history.accel}


def vs_authors(args) -> int:
    """Whole SFTC runs: the authors'-style loop against sftc.unlearn, same model and samples."""
    from authors_loop import authors_sftc

    device = resolve_device(args.device)

    def synced(fn):
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return result
    models = [(m.split(":")[0], int(m.split(":")[1])) for m in args.vs_models.split(",")]
    epoch_counts = [int(e) for e in args.vs_epochs.split(",")]
    load_before = round(os.getloadavg()[0], 2)
    out = {"mode": "vs-authors", "dataset": args.dataset, "device": str(device),
           "batch_size": args.batch_size,
           "lr": args.vs_lr, "tau": 1.0, "c": 0.0, "forget": args.forget, "repeats": args.repeats,
           "torch_threads": torch.get_num_threads(), "accel": args.accel, "runs": []}
    if args.vs_plain:
        out["plain_accel"] = args.vs_plain_accel
    for model_name, n in models:
        args.n = n
        split = subset_split(args)
        model_name = sftc.models.canonical_model_name(model_name)
        model = build_model(model_name, split.data.channels or 1, split.data.num_classes,
                            seed=args.seed)

        def authors(epochs):
            return synced(lambda: authors_sftc(model, split, epochs, lr=args.vs_lr,
                                               batch_size=args.batch_size, seed=args.seed,
                                               device=str(device)))

        def ours(epochs, accel=args.accel):
            return synced(lambda: sftc.unlearn(
                model, split, "sftc", epochs=epochs, lr=args.vs_lr, tau=1.0, c=0.0,
                batch_size=args.batch_size, device=str(device), seed=args.seed, progress=False,
                accel=accel_option(accel)))
        # process-wide one-off costs (imports, kernel set-up) before anything is timed
        warm = sftc.Split.create(split.data, split.train[:256], split.val, split.test,
                                 "random:0.1", seed=args.seed)
        authors_sftc(model, warm, 1, batch_size=args.batch_size, device=str(device))
        sftc.unlearn(model, warm, "sftc", epochs=1, device=str(device), progress=False,
                     accel=accel_option(args.accel))
        for epochs in epoch_counts:
            rows, rows_plain = [], []
            who_runs = ("authors", "sftc", "plain") if args.vs_plain else ("authors", "sftc")
            for repeat in range(args.repeats):
                k = repeat % len(who_runs)
                order = who_runs[k:] + who_runs[:k]  # each goes first in turn
                timed = {}
                for who in order:
                    start = time.perf_counter()
                    result = (authors(epochs) if who == "authors" else
                              ours(epochs) if who == "sftc" else ours(epochs, args.vs_plain_accel))
                    timed[who] = (time.perf_counter() - start, result)
                a_s, (_, a_hist) = timed["authors"][0], timed["authors"][1]
                s_s, s_res = timed["sftc"]
                if args.vs_plain:
                    rows_plain.append(timed["plain"][0])
                rows.append({"authors_s": a_s, "sftc_s": s_s, "speedup": a_s / s_s,
                             "authors_loss": a_hist[-1]["ce_retain"] + a_hist[-1]["kl"],
                             "sftc_loss": s_res.history.rows[-1]["loss"],
                             "sftc_setup_s": s_res.history.setup_seconds,
                             "accel": s_res.history.accel})
                if not args.quiet:
                    plain = f"  plain path {rows_plain[-1]:6.2f} s" if args.vs_plain else ""
                    print(f"[{repeat + 1}/{args.repeats}] {model_name} n={n} epochs={epochs}: "
                          f"authors {a_s:6.2f} s  sftc {s_s:6.2f} s  speed-up {a_s / s_s:4.2f}"
                          f"{plain}  (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
            med = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
            out["runs"].append({
                "model": model_name, "n": n, "retain_size": len(split.retain),
                "forget_size": len(split.forget), "epochs": epochs,
                "authors_s": round(med("authors_s"), 2), "sftc_s": round(med("sftc_s"), 2),
                "speedup": round(med("speedup"), 2),
                "each_repeat": [[round(r["authors_s"], 2), round(r["sftc_s"], 2)] for r in rows],
                "sftc_setup_s": round(med("sftc_setup_s"), 2),
                "final_epoch_loss": {"authors": round(rows[-1]["authors_loss"], 4),
                                     "sftc": round(rows[-1]["sftc_loss"], 4)},
                "sftc_choices": rows[-1]["accel"]})
            if args.vs_plain:  # sftc with every speed choice off: the engine before issue 12
                out["runs"][-1]["plain_s"] = round(statistics.median(rows_plain), 2)
                out["runs"][-1]["plain_speedup"] = round(statistics.median(
                    r["authors_s"] / p for r, p in zip(rows, rows_plain)), 2)
    out["load_average_1min"] = {"before": load_before, "after": round(os.getloadavg()[0], 2)}
    out["torch"], out["sftc"] = torch.__version__, sftc.__version__
    if not args.quiet:
        print(f"\n{'model':10s} {'n':>6s} {'epochs':>6s} {'authors s':>10s} {'sftc s':>8s} "
              f"{'speed-up':>8s} {'plain s':>8s} {'speed-up':>8s}", file=sys.stderr)
        for r in out["runs"]:
            print(f"{r['model']:10s} {r['n']:6d} {r['epochs']:6d} {r['authors_s']:10.2f} "
                  f"{r['sftc_s']:8.2f} {r['speedup']:8.2f} {r.get('plain_s', float('nan')):8.2f} "
                  f"{r.get('plain_speedup', float('nan')):8.2f}", file=sys.stderr)
    print(json.dumps(out))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.vs_authors:
        return vs_authors(args)
    device = resolve_device(args.device)
    split = subset_split(args)
    if device.type == "cuda":
        split.data.to(device)
    model_name = sftc.models.canonical_model_name(args.model)
    model = build_model(model_name, split.data.channels or 1, split.data.num_classes,
                        seed=args.seed)
    k = args.k if args.k is not None else (5 if len(layer_sequence(model)) > 5 else 1)
    names = list_methods() if args.methods == "all" else [m.strip() for m in args.methods.split(",")]
    names = [method_class(n).name for n in names if n != BASELINE]
    order = [BASELINE, "sftc"] + [n for n in names if n != "sftc"]  # the pair back to back
    hparams = {n: ({"k": k} if "k" in method_class(n).hparams else {}) for n in names}

    warm_up(model, split, device, args.batch_size, args.warmup_steps)
    # one untimed epoch makes the engine's speed choices (measured once per process and cached),
    # so that every timed epoch runs with them and none pays for measuring
    choices = time_one(BASELINE, {}, model, split, args, model_name, epochs=1)["accel"]
    results: dict[str, list[dict]] = {n: [] for n in order}
    for repeat in range(args.repeats):
        for name in order:
            results[name].append(time_one(name, hparams.get(name, {}), model, split, args,
                                          model_name))
            if not args.quiet:
                r = results[name][-1]
                print(f"[{repeat + 1}/{args.repeats}] {name:13s} epoch {r['epoch_s']:7.3f} s  "
                      f"setup {r['setup_s']:6.3f} s  {r['samples'] / r['epoch_s']:9.1f} samples/s",
                      file=sys.stderr)

    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    epoch_s = {n: med(n, "epoch_s") for n in order}
    samples = {n: results[n][0]["samples"] for n in order}
    per_s = {n: samples[n] / epoch_s[n] for n in order}
    ratios = [s["epoch_s"] / f["epoch_s"] for s, f in zip(results["sftc"], results[BASELINE])]
    out = {
        "model": model_name, "dataset": args.dataset, "n": args.n, "forget": args.forget,
        "retain_size": len(split.retain), "forget_size": len(split.forget),
        "image_size": split.data.input_size, "batch_size": args.batch_size,
        "device": str(device), "torch_threads": torch.get_num_threads(),
        "epochs": args.epochs, "repeats": args.repeats, "k": k,
        "sftc_samples_per_s": round(per_s["sftc"], 1),
        "ft_samples_per_s": round(per_s[BASELINE], 1),
        "sftc_over_ft": round(statistics.median(ratios), 3),
        "sftc_over_ft_each_repeat": [round(r, 3) for r in ratios],
        # best-of: fastest SFTC epoch over fastest FT epoch, the least disturbed by other load
        "sftc_over_ft_best": round(min(r["epoch_s"] for r in results["sftc"])
                                   / min(r["epoch_s"] for r in results[BASELINE]), 3),
        "sftc_setup_s": round(med("sftc", "setup_s"), 3),
        "sftc_setup_over_ft_epoch": round(med("sftc", "setup_s") / epoch_s[BASELINE], 3),
        "methods": {n: round(per_s[n], 1) for n in order},
        "epoch_s": {n: round(epoch_s[n], 3) for n in order},
        "setup_s": {n: round(med(n, "setup_s"), 3) for n in order},
        "samples_per_epoch": {n: int(samples[n]) for n in order},
        "load_average_1min": round(os.getloadavg()[0], 2),
        "accel": args.accel, "choices": choices["train"],
        "sftc_teacher_pass": results["sftc"][-1]["accel"]["inference"],
        "torch": torch.__version__, "sftc": sftc.__version__,
    }
    if not args.quiet:
        print(f"\n{'method':13s} {'samples/s':>10s} {'epoch s':>9s} {'setup s':>8s} "
              f"{'samples':>8s}", file=sys.stderr)
        for n in order:
            print(f"{n:13s} {per_s[n]:10.1f} {epoch_s[n]:9.3f} {out['setup_s'][n]:8.3f} "
                  f"{int(samples[n]):8d}", file=sys.stderr)
        print(f"sftc/ft epoch time {out['sftc_over_ft']:.3f} (each repeat: "
              f"{out['sftc_over_ft_each_repeat']}); SFTC setup {out['sftc_setup_s']:.3f} s = "
              f"{out['sftc_setup_over_ft_epoch']:.2f} FT epochs", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
