"""Loading the user's checkpoints for a command, with the checks that make errors one line."""
from __future__ import annotations

import json
from pathlib import Path

import warnings

from ..api import load_model
from ..data import dataset_info
from ..errors import SftcError
from ..fingerprint import PreprocessingMismatch, preprocessing_mismatch, verify
from ..models import canonical_model_name
from .common import note


def record_beside(checkpoint: str | Path) -> dict | None:
    """The run.json written beside a model.pt, if any (None when absent)."""
    path = Path(checkpoint).with_name("run.json")
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SftcError(f"{path} beside {checkpoint} is not readable JSON ({exc}); remove it or "
                        "restore the one sftc wrote") from None
    if not isinstance(record, dict):
        raise SftcError(f"{path} beside {checkpoint} is not a run record of sftc")
    return record


def load_checkpoint_for(checkpoint: str, args, split, role: str = "original",
                        notes: list[str] | None = None, option: str | None = None):
    """Load ``checkpoint`` for this split, checked against the run.json beside it.

    The architecture is --model, else the one recorded beside the checkpoint, else the dataset's
    default. The record's fingerprint must match the data (dataset, classes, input shape,
    training set; for an oracle or an unlearned model also the forget set): a mismatch is a
    one-line error. What could not be verified is printed as a note and appended to ``notes``;
    ``option`` is the command's flag for the checkpoint, for the messages.
    """
    record = record_beside(checkpoint)
    recorded = ((record or {}).get("config") or {}).get("model")
    name = canonical_model_name(args.model or recorded or dataset_info(args.dataset).default_model)
    found = verify(record, split, role, checkpoint, option)
    model = load_model(checkpoint, name, split)
    for text in found:
        note(text)
    if notes is not None:
        notes.extend(found)
    return model, name


def load_compared_models(args, split, notes: list[str]):
    """``--original``, ``--unlearned`` and (if given) ``--retrained``, each checked against the
    run.json beside it, with one warning per checkpoint normalised otherwise: (original,
    unlearned, retrained or None, the architecture's name). For evaluate and audit."""
    original, name = load_checkpoint_for(args.original, args, split, notes=notes,
                                         option="--original")
    unlearned, _ = load_checkpoint_for(args.unlearned, args, split, role="unlearned", notes=notes)
    retrained = load_checkpoint_for(args.retrained, args, split, role="retrained",
                                    notes=notes)[0] if args.retrained else None
    warn_preprocessing(args, split, {"--original": args.original, "--unlearned": args.unlearned,
                                     "--retrained": args.retrained})
    return original, unlearned, retrained, name

def recorded_preprocessing(checkpoint: str | None) -> dict | None:
    """The preprocessing (mean, std, image_size, and the data's subsets) recorded beside
    ``checkpoint``, if any: what a command reuses where --mean/--std/--normalize/--image-size and
    --train-subset/--test-subset/--val-subset are not given."""
    if not checkpoint:
        return None
    trained_on = (record_beside(checkpoint) or {}).get("trained_on") or {}
    preprocessing = trained_on.get("preprocessing")
    if trained_on.get("subsets"):
        preprocessing = {**(preprocessing or {}), "subsets": trained_on["subsets"]}
    return preprocessing


def warn_preprocessing(args, split, checkpoints: dict) -> None:
    """One warning per checkpoint (``{flag: path}``) trained on inputs normalised otherwise than
    this run's (given on the command line, else recorded beside the first checkpoint)."""
    from .common import normalization_given

    first = next(iter(checkpoints))
    why = (" (--mean/--std/--normalize)" if normalization_given(args)
           else f" (recorded beside {first})")
    for flag, path in checkpoints.items():
        if path:
            problem = preprocessing_mismatch(record_beside(path), split, f"{flag} {path}", why)
            if problem:
                warnings.warn(PreprocessingMismatch(problem), stacklevel=2)


def retrain_seconds_of(checkpoint: str | None) -> float | None:
    """The oracle's training seconds, from the run.json written beside its model.pt."""
    if not checkpoint:
        return None
    record = record_beside(checkpoint) or {}
    return record.get("retrain_seconds") or (record.get("timings") or {}).get("seconds")


def unlearn_seconds_of(checkpoint: str) -> float | None:
    """The unlearning seconds recorded beside a model.pt written by 'sftc unlearn'."""
    record = record_beside(checkpoint) or {}
    if record.get("command") != "unlearn":
        return None
    return (record.get("timings") or {}).get("seconds")
