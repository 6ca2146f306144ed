"""The audit on a memorising setting, through the Python API (docs/evidence.md).

A stratified Fashion-MNIST training subset (1,500 images by default), trained 50 epochs to
~100 % training accuracy without augmentation, forgets 10 % of every class. The original model,
passed as the "unlearned" model, must be ``not-forgotten``; the retrained oracle must be
``forgotten``. The test split is a subset of the same size as the training set (so that each reference model, trained on
half of train ∪ test, sees as many samples as the original), the population for RMIA the other
5,000 held-out images.

    OMP_NUM_THREADS=1 python benchmarks/audit_memorising.py --out runs/memorising

Writes OUT/original/ and OUT/oracle/ (audit.json, report.md each) and prints both summaries and
the wall times (about 26 minutes on a 2-core CPU with an empty reference cache; docs/evidence.md).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

import sftc
from sftc.data import Split, load_dataset
from sftc.io import atomic_write_json, atomic_write_text, output_directory
from sftc.metrics import accuracies, subset_logits
from sftc.records import package_versions
from sftc.report.audit import audit_markdown, audit_summary


def stratified(indices: torch.Tensor, labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """``size`` of ``indices``, the same share of every class, drawn with ``seed``."""
    order = indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))]
    share = size / len(indices)
    keep = [order[labels[order] == c][: round(share * int((labels[order] == c).sum()))]
            for c in range(int(labels.max()) + 1)]
    return torch.sort(torch.cat(keep)).values


def memorising_split(train: int, test: int, seed: int, data_dir=None) -> Split:
    loaded = load_dataset("fashion-mnist", data_dir=data_dir)
    labels = loaded.data.labels
    return Split.create(loaded.data, stratified(loaded.train, labels, train, seed), loaded.val,
                        stratified(loaded.test, labels, test, seed + 1), "random:0.1", seed=seed)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=1500, help="training images (default 1500)")
    p.add_argument("--test", type=int, default=1500, help="never-seen test images (default 1500)")
    p.add_argument("--epochs", type=int, default=50,
                   help="training epochs (default 50: ~100 %% training accuracy)")
    p.add_argument("--references", type=int, default=16)
    p.add_argument("--attack", default="rmia")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--mia-iterations", type=int, default=1000)
    args = p.parse_args()

    split = memorising_split(args.train, args.test, args.seed, args.data_dir)
    print(f"Fashion-MNIST subset: {split.sizes()}", flush=True)
    times = {}
    t0 = time.perf_counter()
    original = sftc.train(split, "small-cnn", epochs=args.epochs, seed=args.seed,
                          device=args.device).model
    oracle = sftc.retrain(split, "small-cnn", epochs=args.epochs, seed=args.seed,
                          device=args.device).model
    times["train original and oracle"] = time.perf_counter() - t0
    device = sftc.engine.resolve_device(args.device)
    for name, model in (("original", original), ("oracle", oracle)):
        acc = accuracies(subset_logits(model, split, device, ("retain", "forget", "test")), split)
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in acc.items()), flush=True)
    recipe = sftc.ReferenceRecipe("small-cnn", epochs=args.epochs, source="this script")
    with output_directory(args.out) as tmp:
        for role, unlearned in (("original", original), ("oracle", oracle)):
            t0 = time.perf_counter()
            result = sftc.audit(original, unlearned, split, oracle=oracle,
                                references=args.references, attack=args.attack, recipe=recipe,
                                cache_dir=args.cache_dir, device=args.device, seed=args.seed,
                                mia_iterations=args.mia_iterations)
            times[f"audit, {role} as the unlearned model"] = time.perf_counter() - t0
            record = {"command": "benchmarks/audit_memorising.py", **result.to_dict(),
                      "config": vars(args), "versions": package_versions()}
            (tmp / role).mkdir()
            atomic_write_json(tmp / role / "audit.json", record)
            atomic_write_text(tmp / role / "report.md", audit_markdown(record))
            print(f"\n== {role} passed as the unlearned model ==")
            print("\n".join(audit_summary(record)), flush=True)
        atomic_write_json(tmp / "times.json", times)
    print("\n" + json.dumps(times, indent=1))


if __name__ == "__main__":
    main()
