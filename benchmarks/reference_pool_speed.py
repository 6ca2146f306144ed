"""The audit's reference pool trained one at a time against batched (sftc.engine.batched), in one
process, on the same device and thread count.

For each data set: a pool of K references (``--references``, default 8,16) is trained from an
empty cache one at a time (``group=1``) and batched (``group=--group``), the two in turn (which
runs first alternates between repeats), after an untimed one-epoch pool of one group both ways
(process-wide one-off costs). The smaller K is trained first and the larger one grows
the same cache, as an operator's second, larger audit would: the pool of 16 reuses the first
8's entries, so its time is the two together. Prints one JSON line per data set and K:

  one_at_a_time_s, batched_s, speedup
      wall time of ``ReferencePool.get(K)`` (training, storing, the logits on the queried
      samples) from an empty cache, medians over ``--repeats``; speedup = one_at_a_time_s /
      batched_s (> 1: batching pays);
  one_reference_s, pool_over_one_reference
      the one-at-a-time time per reference, and the batched pool's time in units of it (the
      issue's goal on a GPU: the pool of 16 in <= 3 references' time);
  max_logit_gap
      the largest difference between the two pools' logits (float rounding, amplified by
      training: docs/performance.md);
  load_average_1min
      before and after (the machine is shared: say the load).

  python benchmarks/reference_pool_speed.py --threads 1
  python benchmarks/reference_pool_speed.py --data digits:300,digits:all --epochs 30
  python benchmarks/reference_pool_speed.py --data fashion-mnist:1500 --epochs 3
  python benchmarks/reference_pool_speed.py --device cuda --data fashion-mnist:1500
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

import sftc
from sftc.bench.config import ReferenceConfig
from sftc.bench.reference_pool import ReferencePool
from sftc.bench.split import make_split
from sftc.engine import resolve_device
from sftc.engine.batched import default_group_size
from sftc.recipes import TrainingRecipe


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="digits:300,digits:all,fashion-mnist:1500",
                   help="comma-separated DATASET:TRAIN_SUBSET (all: the whole training split); "
                        "default: the demo's 300 digits (210 retain), all digits, 1,500 "
                        "Fashion-MNIST images (1,350 retain)")
    p.add_argument("--forget", default=None,
                   help="forget spec (default: random:0.3 for digits:300, the demo's; else "
                        "random:0.1)")
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST's files (default: the usual)")
    p.add_argument("--references", default="8,16", help="pool sizes K, ascending (default 8,16)")
    p.add_argument("--group", type=int, default=8, help="models per batched group (default 8)")
    p.add_argument("--model", default="small-cnn")
    p.add_argument("--epochs", type=int, default=None,
                   help="the references' training epochs (default: 30 for digits, the demo's; "
                        "3 for Fashion-MNIST, to keep a CPU run short)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the untimed warm-up pools (CI-sized runs: the figures then include "
                        "one-off costs)")
    p.add_argument("--quiet", action="store_true", help="only the JSON lines")
    return p.parse_args(argv)


def build_split(spec: str, args) -> tuple[sftc.Split, str]:
    name, _, size = spec.partition(":")
    subset = None if size in ("", "all") else int(size)
    forget = args.forget or ("random:0.3" if (name, subset) == ("digits", 300) else "random:0.1")
    config = ReferenceConfig(dataset=name, data_dir=args.data_dir if name != "digits" else None,
                             train_subset=subset,
                             test_subset=300 if subset else None, forget=forget)
    return make_split(config), forget


def time_pool(split, recipe, sizes, group, args, log) -> tuple[dict, dict]:
    """Seconds of ``get(K)`` for each K (growing one cache), and the logits of the largest."""
    seconds, logits = {}, None
    with tempfile.TemporaryDirectory(prefix="sftc-pool-") as cache:
        pool = ReferencePool(split, recipe, cache_dir=cache, device=args.device,
                             progress=False, group=group)
        total = 0.0
        for k in sizes:
            start = time.perf_counter()
            refs = pool.get(k)
            if resolve_device(args.device).type == "cuda":
                torch.cuda.synchronize()
            total += time.perf_counter() - start
            seconds[k] = total
            logits = refs.logits
            log(f"  group {group}: K={k} {total:7.2f} s (load {os.getloadavg()[0]:.2f})")
        record = {"group_used": pool.group, "batch_refused": pool.batch_refused}
    return seconds, {"logits": logits, **record}


def measure(spec: str, args, log) -> list[dict]:
    split, forget = build_split(spec, args)
    epochs = args.epochs or (30 if spec.startswith("digits") else 3)
    recipe = TrainingRecipe(args.model, epochs=epochs, batch_size=args.batch_size,
                            source="benchmarks/reference_pool_speed.py")
    sizes = sorted(int(k) for k in args.references.split(","))
    load_before = round(os.getloadavg()[0], 2)
    log(f"{spec}: {len(split.retain)} retain samples, {epochs} epochs, K={sizes}")
    # process-wide one-off costs (kernel set-up, the engine's measured choices) before timing:
    # a one-epoch pool of one group, both ways
    warm = TrainingRecipe(args.model, epochs=1, batch_size=args.batch_size, source="warm-up")
    for group in (1, args.group) if not args.no_warmup else ():
        time_pool(split, warm, [max(args.group, 4)], group, args, lambda text: None)
    runs = {1: [], args.group: []}
    last = {}
    for repeat in range(args.repeats):
        order = [1, args.group] if repeat % 2 == 0 else [args.group, 1]
        for group in order:
            seconds, last[group] = time_pool(split, recipe, sizes, group, args, log)
            runs[group].append(seconds)
    gap = (last[1]["logits"] - last[args.group]["logits"]).abs()
    out = []
    for k in sizes:
        single = statistics.median(r[k] for r in runs[1])
        together = statistics.median(r[k] for r in runs[args.group])
        one = statistics.median(r[sizes[0]] for r in runs[1]) / sizes[0]
        out.append({
            "figure": "reference_pool", "data": spec, "dataset": split.data.name,
            "retain_size": len(split.retain), "forget": forget, "model": recipe.model,
            "epochs": epochs, "batch_size": args.batch_size, "references": k,
            "group": args.group, "group_used": last[args.group]["group_used"],
            "batch_refused": last[args.group]["batch_refused"],
            "device": str(resolve_device(args.device)), "torch_threads": torch.get_num_threads(),
            "repeats": args.repeats,
            "one_at_a_time_s": round(single, 2), "batched_s": round(together, 2),
            "speedup": round(single / together, 3),
            "each_repeat": [[round(a[k], 2), round(b[k], 2)]
                            for a, b in zip(runs[1], runs[args.group])],
            "one_reference_s": round(one, 3),
            "pool_over_one_reference": round(together / one, 2),
            "max_logit_gap": float(gap[:k].max()),
            "median_reference_logit_gap": float(gap[:k].flatten(1).max(1).values.median()),
            "load_average_1min": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
            "default_group_here": default_group_size(args.device),
            "torch": torch.__version__})
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    for spec in args.data.split(","):
        for row in measure(spec.strip(), args, log):
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
