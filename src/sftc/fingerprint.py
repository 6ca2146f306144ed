"""What a checkpoint was trained on, written beside it and checked against the data it meets.

Every model ``sftc`` writes has a ``trained_on`` block in the ``run.json`` beside it
(:func:`trained_on`): the dataset, its number of classes, the input shape the model saw, the
preprocessing, a SHA-256 of the training set's contents, which part of it the model was trained
on (``train``: D, or ``retain``: D_r, the oracle's) and, for an oracle or an unlearned model, the
forget set's hash. :func:`verify` compares such a record with the split at hand and refuses a
mismatch in one line; what cannot be checked (no ``run.json``, or one from an older ``sftc``) is
returned as notes, for the caller to print and record.
"""
from __future__ import annotations

from pathlib import Path

from .data import Split
from .errors import SftcError

ROLES = {"original": "--checkpoint", "unlearned": "--unlearned", "retrained": "--retrained"}


def input_shape(split: Split) -> list[int]:
    """The shape of one input as the model sees it (after the per-batch resize)."""
    return list(split.data.input_shape)


def trained_on(split: Split, subset: str, forget: bool | None = None,
               forget_seed: int | None = None) -> dict:
    """The fingerprint of a model trained on ``subset`` (``train`` or ``retain``) of ``split``.

    ``forget`` (default: for ``retain``) adds the forget set's hash: an oracle is defined by the
    forget set it never saw, an unlearned model by the forget set it was made to forget;
    ``forget_seed`` (the --seed it was drawn with) is recorded beside it.
    """
    data = split.data
    record = {"dataset": data.name, "num_classes": data.num_classes,
              "input_shape": input_shape(split), "train_size": int(len(split.train)),
              "train_sha256": split.content_sha256("train"), "subset": subset,
              "preprocessing": data.preprocessing}
    if split.subsets:
        record["subsets"] = dict(split.subsets)
    if forget if forget is not None else subset == "retain":
        record["forget_sha256"] = split.forget_summary()["sha256"]
        record["forget_spec"] = split.forget_spec
        if forget_seed is not None:
            record["forget_seed"] = int(forget_seed)
    return record


def verify(record: dict | None, split: Split, role: str, path: str | Path,
           option: str | None = None, forget_seed: int | None = None) -> list[str]:
    """Check the run record beside a checkpoint against ``split`` for its ``role``.

    Raises :class:`SftcError` on a mismatch; returns notes on what could not be verified.
    ``option``: the command's flag for this checkpoint, named in the messages (default: the
    role's usual flag); ``forget_seed``: the --seed this run drew its forget set with.
    """
    flag = f"{option or ROLES[role]} {path}"
    if record is None:
        what = "dataset, training set" + (" and forget set" if role != "original" else "")
        return [f"{flag} has no run.json beside it: its {what} could not be verified, only its "
                "architecture and number of classes"]
    fingerprint = record.get("trained_on")
    if fingerprint is None:
        return _verify_legacy(record, split, role, flag)
    here = trained_on(split, "train")
    notes: list[str] = []
    if fingerprint.get("dataset") != here["dataset"]:
        raise SftcError(dataset_mismatch(flag, fingerprint.get("dataset"), here["dataset"]))
    if fingerprint.get("num_classes") != here["num_classes"]:
        raise SftcError(f"{flag} was trained for {fingerprint.get('num_classes')} classes, this "
                        f"data has {here['num_classes']}")
    if list(fingerprint.get("input_shape") or []) != here["input_shape"]:
        raise SftcError(f"{flag} was trained on inputs shaped {_shape(fingerprint.get('input_shape'))}"
                        f", this data gives {_shape(here['input_shape'])}; pass the --image-size "
                        "it was trained with")
    if fingerprint.get("train_sha256") != here["train_sha256"]:
        raise SftcError(f"{flag} was trained on another training set than this data gives (its "
                        f"{fingerprint.get('train_size')} samples differ from these "
                        f"{here['train_size']}: another --data-dir, --split-seed or changed files); "
                        "use the data it was trained on")
    subset = fingerprint.get("subset")
    if role == "retrained":
        if subset != "retain":
            raise SftcError(f"{flag} was trained on the whole training set, forget set included, "
                            "so it is not an oracle; train one with 'sftc train --subset retain "
                            "--forget SPEC'")
        _same_forget(record, split, flag, "retrained for", forget_seed)
    elif role == "unlearned":
        _same_forget(record, split, flag, "made for", forget_seed)
    elif subset == "retain":
        notes.append(f"{flag} is an oracle (trained without its forget set), not an original "
                     "model trained on all the data")
    return notes


def dataset_mismatch(flag: str, theirs: str | None, ours: str) -> str:
    """The one line for a checkpoint trained on another dataset than --dataset."""
    return (f"{flag} was trained on {theirs!r}, not on --dataset {ours}; pass --dataset {theirs} "
            "(and its --data-dir), or a checkpoint trained on this dataset")


class PreprocessingMismatch(UserWarning):
    """A checkpoint meets inputs normalised otherwise than those it was trained on."""


def preprocessing_mismatch(record: dict | None, split: Split, flag: str,
                           why: str = "") -> str | None:
    """What differs between the normalisation recorded beside a checkpoint and this data's (None
    when they agree or nothing was recorded); ``why`` says where this data's comes from."""
    theirs = ((record or {}).get("trained_on") or {}).get("preprocessing") or {}
    here = split.data.preprocessing
    if theirs.get("eval_transform") != here.get("eval_transform") and theirs:
        return (f"{flag} was evaluated on inputs transformed by {theirs.get('eval_transform')}, "
                f"but this data gives {here.get('eval_transform')}: its outputs on these inputs "
                "may be shifted")
    if not theirs or (_close(theirs.get("mean"), here["mean"]) is not False
                      and _close(theirs.get("std"), here["std"]) is not False):
        return None
    return (f"{flag} was trained on inputs normalised with mean {_values(theirs.get('mean'))}, "
            f"std {_values(theirs.get('std'))}, but this run normalises with mean "
            f"{_values(here['mean'])}, std {_values(here['std'])}{why}: its outputs on these "
            "inputs are shifted")


def _values(values) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")" if values else "?"


def _same_forget(record: dict, split: Split, flag: str, verb: str,
                 seed: int | None = None) -> None:
    """The forget set recorded beside a checkpoint must be this run's; the message says what
    differs: the spec, the --seed of a random draw, or (the same spec and seed) the data."""
    fingerprint = record.get("trained_on") or {}
    digest = split.forget_summary()["sha256"]
    if fingerprint.get("forget_sha256") in (None, digest):
        return
    theirs, ours = fingerprint.get("forget_spec"), split.forget_spec
    if theirs != ours:
        raise SftcError(f"{flag} was {verb} another forget set ({theirs!r}) than --forget "
                        f"{ours!r}; give the forget set it was made for (the same --forget and "
                        "--seed)")
    recorded_seed = fingerprint.get("forget_seed", (record.get("config") or {}).get("seed"))
    if str(ours).lower().startswith("random") and recorded_seed is not None \
            and seed is not None and recorded_seed != seed:
        raise SftcError(f"{flag} was {verb} the forget set {ours} drawn with --seed "
                        f"{recorded_seed}, and this run draws {ours} with --seed {seed}: other "
                        f"samples; pass --seed {recorded_seed} (the draw it was made for)")
    raise SftcError(f"{flag} was {verb} another forget set than this run's, though both are "
                    f"{ours!r}" + (f" drawn with --seed {seed}" if seed is not None else "")
                    + ": the data it was drawn from differ (another --data-dir, --split-seed or "
                    "subset); use the data it was made with")


def _verify_legacy(record: dict, split: Split, role: str, flag: str) -> list[str]:
    """A run.json from before fingerprints: check the dataset, classes and forget set it names."""
    dataset = record.get("dataset") or {}
    if dataset.get("name") not in (None, split.data.name):
        raise SftcError(f"{flag} was trained on {dataset.get('name')!r}, not on --dataset "
                        f"{split.data.name}; pass --dataset {dataset.get('name')}")
    if dataset.get("num_classes") not in (None, split.data.num_classes):
        raise SftcError(f"{flag} was trained for {dataset.get('num_classes')} classes, this data "
                        f"has {split.data.num_classes}")
    digest = (record.get("forget") or {}).get("sha256")
    if role in ("retrained", "unlearned") and digest and digest != split.forget_summary()["sha256"]:
        raise SftcError(f"{flag} was made for another forget set than --forget "
                        f"{split.forget_spec!r}; give the forget set it was made for (the same "
                        "--forget and --seed)")
    return [f"{flag} has a run.json from an older sftc without a training-set fingerprint: its "
            "training set could not be verified"]


def _shape(shape) -> str:
    return "x".join(str(v) for v in shape) if shape else "?"


def _close(a, b) -> bool | None:
    if a is None or b is None:
        return None
    if len(a) != len(b):
        return False
    return all(abs(float(x) - float(y)) <= 1e-6 for x, y in zip(a, b))
