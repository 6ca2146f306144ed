"""Checks of a command's arguments against this machine, before any work (:mod:`sftc.limits`).

:func:`check_bounds` runs for every command once its plugins are loaded: the epoch options'
histories must fit in memory. The checks that need the data (image sizes, reference pools,
forget sets) are called by the commands once the data is loaded, before any model trains.
"""
from __future__ import annotations

import warnings

from .. import limits

#: The options whose value is a number of epochs of one run, by their argparse destination.
EPOCH_OPTIONS = {"epochs": "--epochs", "ref_epochs": "--ref-epochs", "max_epochs": "--max-epochs",
                 "train_epochs": "--train-epochs", "unlearn_epochs": "--unlearn-epochs"}
#: Rows of a batch that inference takes at least (the engine's smallest inference batch).
INFERENCE_ROWS = 64


class SmallImageWarning(UserWarning):
    """--image-size shrinks the images so far that little of their shape is left."""


def check_bounds(args) -> None:
    """Every epoch option of ``args`` against the memory its history needs."""
    for dest, option in EPOCH_OPTIONS.items():
        value = getattr(args, dest, None)
        if isinstance(value, int) and not isinstance(value, bool):
            limits.check_epochs(value, option)


def check_loaded_images(args, data) -> None:
    """An --image-size (given, or recorded beside the checkpoint) whose batch cannot fit in
    memory is refused; one so small that the images lose their shape is warned about."""
    side = getattr(data, "image_size", None)
    if not side:
        return
    rows = min(max(getattr(args, "batch_size", None) or 0, INFERENCE_ROWS), max(len(data), 1))
    limits.check_image_size(side, data.channels or 1, rows)
    problem = limits.small_image_note(side, getattr(data, "stored_size", None))
    if problem:
        warnings.warn(SmallImageWarning(problem), stacklevel=2)


def data_folder(loaded, args) -> str | None:
    """The folder the dataset was read from (its root, or --data-dir), for the --out checks."""
    from pathlib import Path

    for candidate in (getattr(loaded, "root", None), getattr(args, "data_dir", None),
                      getattr(loaded, "source", None)):
        if candidate and Path(str(candidate)).expanduser().is_dir():
            return str(candidate)
    return None


def check_reference_count(references: int, split, option: str = "--references") -> None:
    """The references' outputs on the samples the audit asks about (forget ∪ test ∪ validation,
    :mod:`sftc.bench.reference_pool`) must fit in memory."""
    if references:
        pool = len(split.forget) + len(split.test) + len(split.val)
        limits.check_references(references, pool, split.data.num_classes, option)
