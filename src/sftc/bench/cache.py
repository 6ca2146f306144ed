"""Cache of the reference models of a benchmark: the original model M and the retrained oracle M_R.

Each is keyed by everything that determines it: the data (a SHA-256 of the image and label tensors
and of the train/val/test/forget indices), the image size, the architecture, the training recipe
(epochs, learning rate, batch size, optimiser, scheduler, augmentation), the subset it is trained on
(train for M, retain for M_R), the seed, and the fingerprint of the code that trains it
(:func:`sftc.codeprint.training_code`: the training method, the engine, the architecture's
builder). A change to any of these trains a new model; anything else (output directory, device,
progress display) reuses the cached one. The device is recorded in the entry but is not part of
the key. An entry for the same model made by other code is *stale*: it is left for the code that
made it, a new one is trained, and the run says so (``log``).

Layout: ``CACHE_DIR/<subset>-<model>-<dataset>-<key[:16]>/`` holding ``model.pt`` (weights only)
and ``meta.json`` (written last, so an entry without it is incomplete and ignored).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints import load_into, save_state_dict
from ..codeprint import StaleCache, training_code
from ..data import Split
from ..io import atomic_write_json, run_lock
from ..models import create_model


def default_cache_dir() -> Path:
    """``$SFTC_CACHE_DIR``, else ``$XDG_CACHE_HOME/sftc/references``, else ``~/.cache/sftc/references``."""
    if os.environ.get("SFTC_CACHE_DIR"):
        return Path(os.environ["SFTC_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sftc" / "references"


def split_fingerprint(split: Split) -> str:
    """SHA-256 of the samples, labels and index sets of a split (what the data contributes).

    Computed from the split's contents every time (the index sets are small); only the data's
    own digest, which reads every sample, is kept, on the split itself. Never keyed by an
    object's identity: a split garbage-collected and another created can share an ``id``."""
    h = hashlib.sha256(split.data_fingerprint().encode())
    for name in ("train", "retain", "forget", "val", "test"):
        h.update(name.encode())
        h.update(split.indices(name).cpu().numpy().astype("<i8").tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class TrainSpec:
    """Everything, besides the data, that determines a reference model."""

    model: str
    subset: str          # "train" (original) or "retain" (oracle)
    epochs: int
    lr: float
    batch_size: int
    seed: int
    augment: bool = False
    optimizer: str = "adam"
    scheduler: str = "cosine"

    def key_inputs(self, split: Split) -> dict:
        return {"data": split_fingerprint(split), "dataset": split.data.name,
                "image_size": split.data.input_size, "model": self.model, "subset": self.subset,
                "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "seed": self.seed, "augment": self.augment, "optimizer": self.optimizer,
                "scheduler": self.scheduler}


def identity_key(inputs: dict) -> str:
    """The key of what determines a model besides its code (the same for stale entries)."""
    inputs = {k: v for k, v in inputs.items() if k != "code"}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def cache_key(spec: TrainSpec, split: Split) -> str:
    inputs = {**spec.key_inputs(split), "code": training_code(spec.model).sha256}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@dataclass
class Reference:
    model: torch.nn.Module
    seconds: float          # training wall time (the oracle's is the denominator of the time ratio)
    history: list
    cached: bool            # True when loaded from the cache rather than trained now
    key: str
    path: Path


def safe_name(text: str) -> str:
    """``text`` as one file-name component (a model spec such as ``my_pkg.models:make`` too)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:60]


def _prefix(spec: TrainSpec, split: Split) -> str:
    return f"{spec.subset}-{safe_name(spec.model)}-{safe_name(split.data.name)}-"


def _entry_dir(cache_dir: Path, spec: TrainSpec, split: Split, key: str) -> Path:
    return cache_dir / f"{_prefix(spec, split)}{key[:16]}"


def stale_entries(cache_dir: Path, spec: TrainSpec, split: Split) -> list[tuple[Path, list[str]]]:
    """Entries for the same model (same data, recipe, seed) made by other code, with what
    changed (:meth:`sftc.codeprint.CodePrint.changes`)."""
    key, identity = cache_key(spec, split), identity_key(spec.key_inputs(split))
    code = training_code(spec.model)
    found = []
    for meta_path in sorted(Path(cache_dir).glob(f"{_prefix(spec, split)}*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        inputs = meta.get("inputs") if isinstance(meta, dict) else None
        if isinstance(inputs, dict) and meta.get("key") != key \
                and identity_key(inputs) == identity:
            found.append((meta_path.parent, code.changes(meta.get("code"))))
    return found


def lookup(cache_dir: Path, spec: TrainSpec, split: Split) -> Reference | None:
    """The cached model for ``spec`` on ``split``, or None."""
    key = cache_key(spec, split)
    entry = _entry_dir(Path(cache_dir), spec, split, key)
    meta_path = entry / "meta.json"
    if not meta_path.is_file() or not (entry / "model.pt").is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("key") != key:
        return None
    model = create_model(spec.model, in_channels=split.data.channels or 1,
                         num_classes=split.data.num_classes, seed=spec.seed)
    load_into(model, entry / "model.pt", model_name=spec.model)
    return Reference(model, float(meta["seconds"]), meta.get("history", []), True, key, entry)


def get_or_train(cache_dir: Path | str | None, spec: TrainSpec, split: Split, device: str = "auto",
                 progress: bool = False, log=None) -> Reference:
    """Load the reference model from the cache, or train it (and store it) when absent; when an
    entry made by other code exists, ``log`` is told (one line) that it is trained again."""
    from .. import api
    from ..records import machine

    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    found = lookup(cache_dir, spec, split)
    if found is not None:
        return found
    key = cache_key(spec, split)
    entry = _entry_dir(cache_dir, spec, split, key)
    # Two runs that need the same entry train it once: the second waits, then loads it.
    with run_lock(entry, what="the reference cache entry", wait=True):
        found = lookup(cache_dir, spec, split)
        if found is not None:
            return found
        stale = stale_entries(cache_dir, spec, split)
        if stale:
            role = "oracle M_R" if spec.subset == "retain" else "original M"
            say(log, f"the {role} of seed {spec.seed} cached in {stale[0][0]} was trained by "
                     f"other code (changed: {', '.join(stale[0][1][:4])}); training it again")
        result = api.train(split, spec.model, epochs=spec.epochs, lr=spec.lr,
                           batch_size=spec.batch_size, seed=spec.seed, device=device,
                           augment=spec.augment, subset=spec.subset, progress=progress)
        save_state_dict(result.model, entry / "model.pt")
        atomic_write_json(entry / "meta.json", {
            "key": key, "inputs": spec.key_inputs(split),
            "code": training_code(spec.model).to_dict(), "seconds": result.seconds,
            "history": result.history.rows, "device": str(next(result.model.parameters()).device),
            "machine": machine()})
    return Reference(result.model, result.seconds, result.history.rows, False, key, entry)


def say(log, text: str) -> None:
    """``log(text)``, or a :class:`~sftc.codeprint.StaleCache` warning without a ``log``."""
    if log is not None:
        log(text)
    else:
        warnings.warn(StaleCache(text), stacklevel=3)
