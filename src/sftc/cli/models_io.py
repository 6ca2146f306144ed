"""Loading the user's checkpoints for a command, with the checks that make errors one line."""
from __future__ import annotations

import json
from pathlib import Path

import warnings

from ..api import load_model
from ..api import dataset_info
from ..errors import SftcError
from ..fingerprint import ROLES, PreprocessingMismatch, preprocessing_mismatch, verify
from ..api import canonical_model_name
from .common import note
from .normalisation import check_external_normalisation


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


def checked_record(checkpoint: str, args, split, role: str = "original",
                   option: str | None = None) -> tuple[dict | None, str, list[str]]:
    """The run.json beside ``checkpoint`` checked against this split for its ``role`` (a
    mismatch is a one-line error), the architecture to load it as (--model, else the one
    recorded beside it, else the dataset's default) and the notes on what could not be verified.
    """
    record = record_beside(checkpoint)
    recorded = ((record or {}).get("config") or {}).get("model")
    name = canonical_model_name(args.model or recorded or dataset_info(args.dataset).default_model)
    notes = verify(record, split, role, checkpoint, option,
                   forget_seed=getattr(args, "seed", None))
    return record, name, notes + spec_changed(record, name, checkpoint)


def spec_changed(record: dict | None, name: str, checkpoint) -> list[str]:
    """A note when the model file a run.json recorded (by SHA-256) has changed since."""
    from ..models import spec_file_sha256

    config = (record or {}).get("config") or {}
    was, now = config.get("model_file_sha256"), spec_file_sha256(name).get("model_file_sha256")
    if not was or not now or was == now or config.get("model_file") != \
            spec_file_sha256(name).get("model_file"):
        return []
    return [f"the model file {config['model_file']} changed since the run.json beside "
            f"{checkpoint} recorded it (its SHA-256 differs): the architecture may not be the "
            "one the checkpoint was trained as"]


def load_checked(checkpoint: str, name: str, split, found: list[str],
                 notes: list[str] | None = None, option: str = "--checkpoint"):
    """Load a checkpoint whose record was checked; print and keep the notes; probe the model on
    this data's inputs (a model whose forward fails is one line here, before any work)."""
    from ..api import check_model_fits

    model = load_model(checkpoint, name, split)
    check_model_fits(model, split, "cpu", what=f"{option} {checkpoint}")
    for text in found:
        note(text)
    if notes is not None:
        notes.extend(found)
    return model


def load_checkpoint_for(checkpoint: str, args, split, role: str = "original",
                        notes: list[str] | None = None, option: str | None = None):
    """Load ``checkpoint`` for this split, checked against the run.json beside it.

    The architecture is --model, else the one recorded beside the checkpoint, else the dataset's
    default. The record's fingerprint must match the data (dataset, classes, input shape,
    training set; for an oracle or an unlearned model also the forget set): a mismatch is a
    one-line error. What could not be verified is printed as a note and appended to ``notes``;
    ``option`` is the command's flag for the checkpoint, for the messages. A checkpoint without
    a run.json is also tried with other normalisations (:func:`check_external_normalisation`).
    """
    record, name, found = checked_record(checkpoint, args, split, role, option)
    model = load_checked(checkpoint, name, split, found, notes,
                         option or ROLES.get(role, "--checkpoint"))
    if record is None:
        check_external_normalisation(model, split, f"{option or ROLES[role]} {checkpoint}", args)
    return model, name


def load_compared_models(args, split, notes: list[str]):
    """``--original``, ``--unlearned`` and (if given) ``--retrained``, each checked against the
    run.json beside it and their lineage checked (:mod:`sftc.lineage`), with one warning per
    checkpoint normalised otherwise: (original, unlearned, retrained or None, the architecture's
    name, the lineage). For evaluate and audit."""
    from ..io import file_sha256
    from ..lineage import Checkpoint, check_lineage

    roles = [("--original", args.original, "original"), ("--unlearned", args.unlearned, "unlearned")]
    if args.retrained:
        roles.append(("--retrained", args.retrained, "retrained"))
    checked = {flag: checked_record(path, args, split, role, flag) for flag, path, role in roles}
    lineage = check_lineage(*(Checkpoint(flag, str(path), file_sha256(path), checked[flag][0],
                                         checked[flag][1]) for flag, path, _ in roles))
    models = {}
    for flag, path, _ in roles:
        record, name, found = checked[flag]
        models[flag] = load_checked(path, name, split, found, notes, flag)
        if record is None:
            check_external_normalisation(models[flag], split, f"{flag} {path}", args)
    for text in lineage["notes"]:
        note(text)
    notes.extend(lineage["notes"])
    warn_preprocessing(args, split, {"--original": args.original, "--unlearned": args.unlearned,
                                     "--retrained": args.retrained})
    return (models["--original"], models["--unlearned"], models.get("--retrained"),
            checked["--original"][1], lineage)


def recorded_preprocessing(checkpoint: str | None, args=None) -> dict | None:
    """The preprocessing (mean, std, image_size, and the data's subsets) recorded beside
    ``checkpoint``, if any: what a command reuses where --mean/--std/--normalize/--image-size and
    --train-subset/--test-subset/--val-subset are not given. With ``args``, a record of another
    dataset than --dataset gives nothing: its subsets and statistics are not this dataset's
    (the checkpoint is then refused, once the data are loaded, as trained on another dataset)."""
    if not checkpoint:
        return None
    trained_on = (record_beside(checkpoint) or {}).get("trained_on") or {}
    if args is not None and trained_on.get("dataset") not in (None, args.dataset):
        return None
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
