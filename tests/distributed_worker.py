"""One rank of the data-parallel checks (tests/test_distributed.py starts N of them).

Inside one process group: every registered method (and the training of an original) runs once
as a data-parallel run (``data_parallel=True``), and rank 0 saves each resulting state_dict and
history, for the test to compare with one process; a batch that does not split over the ranks
is tried; and the audit's reference pool trains its references spread over the ranks.

    python tests/distributed_worker.py ORIGINAL.pt OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

import sftc
from sftc import distributed

EPOCHS = 1
BATCH = 12  # splits evenly over 2 and 3 ranks


def small_split():
    """145 digits training samples, 14 of them forgotten. With batches of 12 the union (SFTC,
    Bad-Teaching) ends in a batch of 13 (a trailing sample folded in: 7 + 6 rows on 2 ranks,
    5 + 4 + 4 on 3), the retain set in one of 11 (6 + 5; 4 + 4 + 3), the forget set in one of 2
    (NegGrad, SCRUB's max pass: 1 + 1 + 0 rows on 3 ranks, one rank empty), and NegGrad+ pairs
    12 retain rows with 12, then 2, forget rows."""
    full = sftc.load_split("digits", "random:0.1", seed=0)
    return sftc.Split.create(full.data, full.train[:145], full.val[:60], full.test[:60],
                             "random:0.1", seed=0)


#: The runs repeated with 3 ranks: the batch shapes that split differently (an empty slice, the
#: pairs, the two passes, the relabelled union, a fresh model with its trailing batch).
THREE_RANKS = ("train", "neggrad", "neggrad+", "scrub", "sftc-c0.5")


def runs(world: int = 2):
    """(label, method, hyperparameters, optimizer) of every run the test compares: the training
    of an original (Adam) and every registered method with SGD, whose update is proportional to
    the gradient, so that a wrong gradient cannot hide (Adam's first steps divide by the
    gradient's own size: where it is only rounding noise, as at SCRUB's start, where the student
    equals the teacher and the KL's gradient is zero, Adam turns the noise into full steps), and
    with Adam for SFTC."""
    items = [("train", None, {}, "adam")]
    for name in sftc.list_methods():
        hp = {"k": 1} if name in ("cf-k", "eu-k") else {}
        items.append((name, name, hp, "sgd"))
    items += [("sftc-c0.5", "sftc", {"c": 0.5}, "sgd"), ("sftc-adam", "sftc", {}, "adam")]
    return items if world == 2 else [item for item in items if item[0] in THREE_RANKS]


def run_one(split, original, method, hparams, optimizer, batch_size):
    if method is None:
        return sftc.train(split, "small-cnn", epochs=EPOCHS, lr=1e-3, batch_size=batch_size,
                          seed=3, device="cpu", progress=False, accel="off", track=("retain",),
                          data_parallel=True)
    lr = 2e-2 if optimizer == "sgd" else 5e-4
    return sftc.unlearn(original, split, method, epochs=EPOCHS, lr=lr, batch_size=batch_size,
                        seed=3, device="cpu", progress=False, accel="off", track=("retain",),
                        optimizer=optimizer, model_name="small-cnn", data_parallel=True,
                        **hparams)


def reference_pool(split, cache_dir):
    """The audit's pool of 4 references (1 epoch each) in ``cache_dir``."""
    from sftc.bench.reference_pool import ReferencePool, ReferenceRecipe

    recipe = ReferenceRecipe("small-cnn", epochs=1, batch_size=BATCH)
    return ReferencePool(split, recipe, cache_dir=cache_dir, device="cpu", progress=False).get(4)


def grouped_reference_pool(split, cache_dir):
    """The same pool trained batched, in groups of 2 (ranks share whole groups)."""
    from sftc.bench.reference_pool import ReferencePool, ReferenceRecipe

    recipe = ReferenceRecipe("small-cnn", epochs=1, batch_size=BATCH)
    return ReferencePool(split, recipe, cache_dir=cache_dir, device="cpu", progress=False,
                         group=2).get(4)


def main(original_path: str, out: str, batch_size: int = BATCH) -> None:
    torch.set_num_threads(1)
    out = Path(out)
    split = small_split()
    original = sftc.create_model("small-cnn", in_channels=1, num_classes=10)
    original.load_state_dict(torch.load(original_path, weights_only=True))
    with distributed.job(device="cpu"):
        for label, method, hparams, optimizer in runs(distributed.world()):
            result = run_one(split, original, method, hparams, optimizer, batch_size)
            if distributed.is_main():
                torch.save({"state": result.model.state_dict(), "rows": result.history.rows,
                            "parallel": result.history.accel.get("data_parallel")},
                           out / f"{label}.pt")
        try:
            run_one(split, original, "ft", {}, "sgd", 13)
            refused = None
        except sftc.SftcError as exc:
            refused = str(exc)
        pool = reference_pool(split, out / "cache")
        mine = [e for e in pool.entries if e["cached"] is False]
        grouped = grouped_reference_pool(split, out / "cache-grouped")
        if distributed.is_main():
            torch.save({"refused": refused, "logits": pool.logits, "trained_now": len(mine),
                        "grouped": grouped.logits}, out / "checks.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
