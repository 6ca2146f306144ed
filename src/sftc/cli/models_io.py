"""Loading the user's checkpoints for a command, with the checks that make errors one line."""
from __future__ import annotations

import json
from pathlib import Path

from ..api import load_model
from ..data import dataset_info
from ..errors import SftcError
from ..models import canonical_model_name


def record_beside(checkpoint: str | Path) -> dict | None:
    """The run.json written beside a model.pt, if any (None when absent or unreadable)."""
    path = Path(checkpoint).with_name("run.json")
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def load_checkpoint_for(checkpoint: str, args, split, role: str = "original"):
    """Load ``checkpoint`` for this split. The architecture is --model, else the one recorded in
    the run.json beside the checkpoint, else the dataset's default. A run.json that records a
    different forget set for a retrained model is refused (the oracle must not have seen D_f)."""
    record = record_beside(checkpoint)
    recorded = (record or {}).get("config", {}).get("model")
    name = canonical_model_name(args.model or recorded or dataset_info(args.dataset).default_model)
    if record and role == "retrained":
        digest = record.get("forget", {}).get("sha256")
        if digest and digest != split.forget_summary()["sha256"]:
            raise SftcError(f"--retrained {checkpoint} was trained for another forget set than "
                            f"--forget {split.forget_spec!r}; retrain it with the same --forget "
                            "and --seed")
    return load_model(checkpoint, name, split), name


def retrain_seconds_of(checkpoint: str | None) -> float | None:
    """The oracle's training seconds, from the run.json written beside its model.pt."""
    if not checkpoint:
        return None
    record = record_beside(checkpoint) or {}
    return record.get("retrain_seconds") or record.get("timings", {}).get("seconds")


def unlearn_seconds_of(checkpoint: str) -> float | None:
    """The unlearning seconds recorded beside a model.pt written by 'sftc unlearn'."""
    record = record_beside(checkpoint) or {}
    return record.get("timings", {}).get("seconds") if record.get("command") == "unlearn" else None
