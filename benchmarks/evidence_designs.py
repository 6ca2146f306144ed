"""Which reference models give a fair never-seen comparison for non-random forget sets?

Trains, for each forget set, the original, three retrained models (seeds 0-2) and two kinds of
reference models, and prints the matched AUC (D_f against test samples of its class and
difficulty, RMIA offline) of each model under each kind:

* ``halves``: the design of sftc 0.1.0: references on complementary random halves of
  train ∪ test, shared by every forget set;
* ``retrained``: the design since: references retrained on D_r (never saw any of D_f).

A retrained model never saw D_f, so under a fair design its AUC sits at the level the references
reach among themselves. docs/evidence.md quotes this script's output.

    OMP_NUM_THREADS=1 python benchmarks/evidence_designs.py --forget first:300,random:0.28
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

import sftc
from sftc.data import Split
from sftc.engine import predict_logits
from sftc.metrics.attacks import logit_scaled_confidence, match_strata, rmia, stratified_auc
from sftc.metrics.attacks import true_class_log_prob


def train_on(base, members, seed, epochs):
    empty = members[:0]
    half = Split(base.data, members, members, empty, base.val, base.test, empty)
    return sftc.train(half, "small-cnn", epochs=epochs, seed=seed, device="cpu", progress=False).model


def references(kind, split, k, epochs):
    """[K, n_index] log-probabilities and the IN mask over the index forget ∪ test ∪ val."""
    index = torch.cat([split.forget, split.test, split.val])
    masks, models = [], []
    if kind == "halves":
        pool = torch.cat([split.train, split.test])
        for pair in range(k // 2):
            order = np.random.default_rng([0, pair, 0x4A1F]).permutation(len(pool))
            for part in (order[: len(pool) // 2], order[len(pool) // 2:]):
                members = pool[torch.from_numpy(np.sort(part))]
                models.append(train_on(split, members, 500 + len(models), epochs))
                masks.append(torch.isin(index, members).numpy())
    else:
        for r in range(k):
            models.append(sftc.retrain(split, "small-cnn", epochs=epochs, seed=500 + r,
                                       device="cpu", progress=False).model)
            masks.append(np.zeros(len(index), bool))
    logits = torch.stack([predict_logits(m, split.data, index, torch.device("cpu")).cpu()
                          for m in models])
    return index, logits, np.stack(masks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--forget", default="first:300,random:0.28,classes:3")
    p.add_argument("--references", type=int, default=8)
    p.add_argument("--epochs", type=int, default=30)
    args = p.parse_args()
    torch.set_num_threads(1)
    base = sftc.load_split("digits", "random:0.1")
    for spec in args.forget.split(","):
        split = Split.create(base.data, base.train, base.val, base.test, spec, seed=0)
        kw = dict(epochs=args.epochs, device="cpu", progress=False)
        models = {"original": sftc.train(split, "small-cnn", **kw).model}
        for s in range(3):
            models[f"retrain seed {s}"] = sftc.retrain(split, "small-cnn", seed=s, **kw).model
        for kind in ("halves", "retrained"):
            index, logits, masks = references(kind, split, args.references, args.epochs)
            labels = split.data.labels[index]
            n_f, n_t = len(split.forget), len(split.test)
            f, t, pop = np.arange(n_f), np.arange(n_f, n_f + n_t), np.arange(n_f + n_t, len(index))
            lp = true_class_log_prob(logits, labels)
            phi = logit_scaled_confidence(logits, labels)
            out = ~masks
            difficulty = np.where(out, phi, 0).sum(0) / np.maximum(out.sum(0), 1)
            strata = match_strata(labels[f].numpy(), difficulty[f], labels[t].numpy(),
                                  difficulty[t])
            row = []
            for name, model in models.items():
                target = true_class_log_prob(predict_logits(model, split.data, index,
                                                            torch.device("cpu")).cpu(), labels)
                score = lambda c: rmia(target[c], lp[:, c], masks[:, c], target[pop],  # noqa
                                       lp[:, pop], offline=True)
                row.append(f"{name} {stratified_auc(score(f), score(t), strata)[0]:.3f}")
            print(f"{spec:12s} {kind:9s} | " + "  ".join(row), flush=True)


if __name__ == "__main__":
    main()
