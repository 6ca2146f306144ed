"""How often each verdict comes out, for models whose truth is known, on forget sets of every
kind (docs/evidence.md, "Calibration").

For one dataset setting, the script draws ``--sets`` forget sets of each kind:

* ``random-30`` / ``random-90`` / ``random-300``: that many training samples drawn at random (one
  draw seed per set; a size over half the training set is skipped);
* ``class``: all training samples of one class, then of two classes (``classes:C`` / ``C1,C2``);
* ``block``: ``--size`` consecutive training rows starting at a different offset per set (set 0
  is ``first:N``; digits' rows come in writers' blocks);
* ``hardest`` / ``easiest``: the ``--size`` training samples of highest / lowest held-out loss
  (each sample's loss under a model trained on the other half of the training set): set 0 of the
  whole training set, every other set among a different random 60 % of it;
* ``user``: the ``--size`` nearest training images (pixels) of one training image: one person's
  look-alike photos.

and audits models whose truth is known: the original itself (``do-nothing``: it trained on D_f),
an ``independent original`` (another seed, also trained on D_f), the ``oracle`` and two
``independent retrain`` models (retrained on D_r with seeds 0, 1, 2: none of them a reference, whose
seeds are hashes), and a ``half keeper`` (trained on D_r and a random half of D_f: it keeps about
half of the original's excess). Each set has its own reference models (retrained on D_r, as
``sftc audit`` trains them); the verdict is ``sftc audit``'s
(:class:`sftc.bench.evidence.Comparison`). One JSON line per forget set goes to
``OUT/sets.jsonl`` (the run resumes from it), with every model's matched AUC, its DeLong variance
and class-test counts and the references' leave-one-out AUCs, so that the verdicts can be judged
again under another rule without training; ``OUT/calibration.md`` and ``.json`` tabulate them
(``benchmarks/calibration_table.py``).

    OMP_NUM_THREADS=1 python benchmarks/evidence_calibration.py --dataset digits \\
        --train-subset 300 --test-subset 300 --epochs 30 --out runs/calibration-digits
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import sftc
from sftc.bench.cache import ModelCache, TrainSpec
from sftc.bench.config import ReferenceConfig
from sftc.bench.evidence import Comparison, EvidenceSettings
from sftc.bench.reference_pool import ReferencePool
from sftc.bench.split import make_split
from sftc.engine import predict_logits
from sftc.recipes import TrainingRecipe

KINDS = ("random-30", "random-90", "random-300", "class", "block", "hardest", "easiest", "user")
MODELS = ("do-nothing", "independent original", "oracle", "independent retrain",
          "independent retrain 2", "half keeper")
RETRAINS = ("oracle", "independent retrain", "independent retrain 2")
SAW_DF = ("do-nothing", "independent original")


def held_out_loss(split, recipe, cache, device) -> np.ndarray:
    """Each training sample's loss under a model trained on the other half of the training set."""
    rng = np.random.default_rng(1234)
    order = rng.permutation(len(split.train))
    halves = [np.sort(order[: len(order) // 2]), np.sort(order[len(order) // 2:])]
    loss = np.zeros(len(split.train))
    for other in halves:
        # forget = the other half, so retain (what the model trains on) is this half
        trained = sftc.Split.create(split.data, split.train, split.val, split.test,
                                    other.tolist())
        model = cache.get(TrainSpec(recipe, "retain", 99), trained, device=device).model
        index = split.train[torch.as_tensor(other)]
        logits = predict_logits(model, split.data, index, torch.device(device)).cpu()
        labels = split.data.labels[index]
        loss[other] = torch.nn.functional.cross_entropy(logits, labels,
                                                        reduction="none").numpy()
    return loss


def forget_sets(kind: str, count: int, split, size: int, loss: np.ndarray | None):
    """``count`` forget sets of ``kind``: (name, spec or positions)."""
    n = len(split.train)
    classes = split.data.num_classes
    out = []
    for i in range(count):
        rng = np.random.default_rng([7, KINDS.index(kind), i])
        if kind.startswith("random-"):
            k = int(kind.split("-")[1])
            if k > n // 2:
                return []
            chosen = np.sort(np.random.default_rng([7, k, i]).choice(n, k, replace=False))
            out.append((f"{k} random, draw {i}", (chosen.tolist(), 0)))
        elif kind == "class":
            chosen = [i % classes] if i < classes else \
                sorted(rng.choice(classes, 2, replace=False).tolist())
            out.append((f"classes:{','.join(map(str, chosen))}",
                        (f"classes:{','.join(map(str, chosen))}", 0)))
        elif kind == "block":
            start = 0 if i == 0 else int(rng.integers(0, n - size))
            out.append((f"rows {start}..{start + size - 1}", (list(range(start, start + size)), 0)))
        elif kind in ("hardest", "easiest"):
            pool = np.arange(n) if i == 0 else np.sort(rng.choice(n, int(0.6 * n), replace=False))
            order = pool[np.argsort(loss[pool], kind="stable")]
            chosen = order[-size:] if kind == "hardest" else order[:size]
            where = "of the training set" if i == 0 else f"of a 60% draw {i}"
            out.append((f"{kind} {size} {where}", (sorted(chosen.tolist()), 0)))
        elif kind == "user":
            images = split.data.images[split.train].reshape(n, -1).float().numpy()
            seed_image = int(rng.integers(0, n))
            dist = ((images - images[seed_image]) ** 2).sum(1)
            chosen = np.argsort(dist, kind="stable")[:size]
            out.append((f"{size} nearest of training image {seed_image}",
                        (sorted(chosen.tolist()), 0)))
    return out


def half_keeper(base, split, recipe, cache, device, seed: int = 0):
    """A model trained on D_r and a random half of D_f (it keeps about half of D_f's memory)."""
    positions = split.forget_positions.cpu().numpy()
    rng = np.random.default_rng([seed, 0xA1F])
    other = np.sort(rng.permutation(positions)[: len(positions) // 2])
    kept = sftc.Split.create(base.data, base.train, base.val, base.test, other.tolist())
    return cache.get(TrainSpec(recipe, "retain", 0), kept, device=device).model


def audit_set(base, forget, recipe, cache, refs_k, device, originals) -> dict:
    spec, seed = forget
    split = sftc.Split.create(base.data, base.train, base.val, base.test, spec, seed=seed)
    models = dict(originals)
    for name, s in zip(RETRAINS, range(3)):
        models[name] = cache.get(TrainSpec(recipe, "retain", s), split, device=device).model
    models["half keeper"] = half_keeper(base, split, recipe, cache, device)
    pool = ReferencePool(split, recipe, cache_dir=cache.root, device=device, progress=False)
    refs = pool.get(refs_k)
    comparison = Comparison(split, refs, EvidenceSettings())
    target = torch.device(device)
    figures = {name: comparison.figures_of(predict_logits(m.to(target), split.data,
                                                          refs.index.to(target), target).cpu())
               for name, m in models.items()}
    out = {"size": len(split.forget), "comparison": {k: v for k, v in comparison.describe().items()
                                                      if k != "unmatched_positions"}}
    for name, fig in figures.items():
        v = comparison.verdict(figures["do-nothing"], fig)
        out[name] = {"verdict": v.text, "in_band": v.in_band, "auc": fig.auc,
                     "var_examples": fig.interval.se_examples ** 2,
                     "level": comparison.band.level, "certify": comparison.band.certify,
                     "refute": comparison.band.refute, "resolution": v.resolution,
                     "power_shown": v.power.shown if v.power else None,
                     "class_hits": fig.class_hits, "class_n": fig.class_n,
                     "class_probability": fig.class_probability,
                     "auc_unmatched": fig.unmatched["auc"]}
    return out


def summarise(records: list[dict], out: Path, header: str) -> None:
    table = {}
    for kind in KINDS:
        rows = [r for r in records if r["kind"] == kind]
        if rows:
            table[kind] = {m: dict(Counter(r["result"][m]["verdict"] for r in rows))
                           for m in MODELS}
            table[kind]["sets"] = len(rows)
    (out / "calibration.json").write_text(json.dumps({"header": header, "table": table},
                                                     indent=1))
    verdicts = ("forgotten", "not-proven", "nothing-detectable", "not-forgotten (remembered)",
                "not-forgotten (over-forgotten)", "not-forgotten (class still recognised)")
    lines = [header, "", "| kind | sets | model | " + " | ".join(verdicts) + " |",
             "|---|---:|---|" + "---:|" * len(verdicts)]
    for kind, entry in table.items():
        for m in MODELS:
            counts = entry[m]
            lines.append(f"| {kind} | {entry['sets']} | {m} | "
                         + " | ".join(str(counts.get(v, 0)) for v in verdicts) + " |")
    (out / "calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--train-subset", type=int, default=300, help="0: the whole training split")
    p.add_argument("--test-subset", type=int, default=300, help="0: the whole test split")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    p.add_argument("--references", type=int, default=8)
    p.add_argument("--sets", type=int, default=20)
    p.add_argument("--size", type=int, default=45, help="size of block/hardest/easiest/user sets")
    p.add_argument("--split-seed", type=int, default=0, help="the data split's seed")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = ReferenceConfig(dataset=args.dataset, train_subset=args.train_subset or None,
                             test_subset=args.test_subset or None, forget="random:0.1",
                             image_size=args.image_size, split_seed=args.split_seed)
    config.validate_reference()
    base = make_split(config)
    recipe = TrainingRecipe("small-cnn", epochs=args.epochs)
    cache = ModelCache(args.cache_dir or out / "cache")
    originals = {"do-nothing": cache.get(TrainSpec(recipe, "train", 0), base,
                                         device=args.device).model,
                 "independent original": cache.get(TrainSpec(recipe, "train", 1), base,
                                                   device=args.device).model}
    kinds = [k for k in args.kinds.split(",") if k]
    loss = held_out_loss(base, recipe, cache, args.device) \
        if {"hardest", "easiest"} & set(kinds) else None
    done_path = out / "sets.jsonl"
    records = [json.loads(line) for line in done_path.read_text().splitlines()] \
        if done_path.is_file() else []
    done = {(r["kind"], r["name"]) for r in records}
    started = time.perf_counter()
    # set 0 of every kind, then set 1 of every kind, ...: a run stopped early covers every kind
    per_kind = [[(k, name, f) for name, f in forget_sets(k, args.sets, base, args.size, loss)]
                for k in kinds]
    todo = [sets[i] for i in range(args.sets) for sets in per_kind
            if i < len(sets) and (sets[i][0], sets[i][1]) not in done]
    for i, (kind, name, forget) in enumerate(todo, 1):
        result = audit_set(base, forget, recipe, cache, args.references, args.device, originals)
        record = {"kind": kind, "name": name, "result": result}
        records.append(record)
        with done_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        rate = (time.perf_counter() - started) / i
        print(f"[{i}/{len(todo)}] {kind} {name}: "
              + "; ".join(f"{m} {result[m]['verdict']}" for m in MODELS)
              + f" ({rate:.0f} s a set, {rate * (len(todo) - i) / 60:.0f} min left)",
              file=sys.stderr, flush=True)
    size = f", images resized to {args.image_size}" if args.image_size else ""
    header = (f"Calibration on {args.dataset} (train subset {args.train_subset}, test subset "
              f"{args.test_subset}{size}, small-cnn {args.epochs} epochs), {args.references} reference "
              f"models per forget set, rmia-offline, α = 0.05, the retrain band with resolution 50 %; "
              f"sftc {sftc.__version__}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} thread(s).")
    summarise(records, out, header)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
