"""The split object: index sets train (= retain ∪ forget), retain, forget, val, test."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import SftcError
from ..io import expand_user
from .forget import name_positions, read_path_list, resolve_forget, validate_positions
from .images import ImageData


@dataclass
class Split:
    """Index sets into one :class:`ImageData` (paper, section 2: D = D_r ∪ D_f, plus D_val, D_t).

    All index tensors are sorted int64 indices into ``data``; ``forget_positions`` are the same
    samples as positions within ``train`` (what a forget specification names).
    """

    data: ImageData
    train: torch.Tensor
    retain: torch.Tensor
    forget: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    forget_positions: torch.Tensor
    forget_spec: str = "custom"
    #: stratified subset sizes this split was carved from (``{"train": 300, ...}``), if any
    subsets: dict | None = field(default=None, compare=False)
    _digests: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def create(cls, data: ImageData, train: torch.Tensor, val: torch.Tensor, test: torch.Tensor,
               forget, seed: int = 0) -> "Split":
        """Build a split from train/val/test indices and a forget spec (or positions into train)."""
        train = torch.as_tensor(train, dtype=torch.long)
        positions = resolve_forget(forget, data.labels[train], seed=seed)
        forget_idx = train[positions]
        keep = torch.ones(len(train), dtype=torch.bool)
        keep[positions] = False
        spec = forget if isinstance(forget, str) else "custom"
        return cls(data=data, train=train, retain=train[keep], forget=torch.sort(forget_idx).values,
                   val=torch.as_tensor(val, dtype=torch.long),
                   test=torch.as_tensor(test, dtype=torch.long), forget_positions=positions,
                   forget_spec=spec)

    @classmethod
    def from_tensors(cls, x_train: torch.Tensor, y_train: torch.Tensor, forget,
                     test: tuple[torch.Tensor, torch.Tensor] | None = None,
                     val: tuple[torch.Tensor, torch.Tensor] | None = None,
                     num_classes: int | None = None, mean=None, std=None, seed: int = 0) -> "Split":
        """A split over a user's own tensors (uint8 images ``[N,C,H,W]`` or float inputs)."""
        for what, value in (("x_train", x_train), ("y_train", y_train)):
            if not isinstance(value, (torch.Tensor, np.ndarray, list, tuple)):
                how = ("Split.from_dataset(dataset, forget, test=...)"
                       if hasattr(value, "__getitem__") and hasattr(value, "__len__") else
                       "a tensor or array")
                raise SftcError(f"{what} is {type(value).__name__}, not a tensor; give "
                                f"{how}")
        parts = [(x_train, y_train)] + [p for p in (val, test) if p is not None]
        xs = torch.cat([torch.as_tensor(p[0]) for p in parts])
        ys = torch.cat([torch.as_tensor(p[1]).long() for p in parts])
        classes = num_classes or int(ys.max()) + 1
        data = ImageData(xs, ys, classes, mean=mean, std=std, name="tensors")
        n_train = len(x_train)
        offsets, start = {}, n_train
        for name, part in (("val", val), ("test", test)):
            size = len(part[0]) if part is not None else 0
            offsets[name] = torch.arange(start, start + size)
            start += size
        return cls.create(data, torch.arange(n_train), offsets["val"], offsets["test"], forget, seed)

    @classmethod
    def from_dataset(cls, train, forget, *, val=None, test=None, train_eval=None,
                     num_classes: int | None = None, labels=None, ids=None,
                     deterministic: bool = False, in_memory: str | bool = "auto",
                     workers: int | None = None, name: str = "dataset", seed: int = 0) -> "Split":
        """A split over map-style ``torch.utils.data.Dataset`` objects yielding ``(x, y)`` (your
        own, with your transforms; e.g. torchvision's ``ImageFolder``).

        ``forget`` names the samples to delete: a spec (``random:0.1``, ``file:forget.txt`` with
        one sample id per line, ...), positions in ``train``, or the samples' ids (for an
        ``ImageFolder``: image paths relative to its root, e.g. ``"cat/001.png"``). ``val`` and
        ``test`` are the held-out datasets; ``train_eval`` the training samples without
        augmentation (for teacher outputs and evaluation). ``deterministic=True`` declares that
        ``train`` has no random transform: then frozen models' outputs are computed once, and the
        data is held in memory when it fits (``in_memory="auto"``); otherwise it is streamed
        through a ``DataLoader`` with ``workers`` (see :mod:`sftc.data.source`).
        """
        from .source import from_datasets

        data, train_idx, val_idx, test_idx, train_ids = from_datasets(
            train, val, test, train_eval=train_eval, num_classes=num_classes, labels=labels,
            ids=ids, deterministic=deterministic, in_memory=in_memory, workers=workers, name=name)
        positions, spec = forget_by_name(forget, train_ids, data.labels[train_idx], seed)
        split = cls.create(data, train_idx, val_idx, test_idx, positions, seed=seed)
        split.forget_spec = spec
        return split

    def indices(self, name: str) -> torch.Tensor:
        if name not in ("train", "retain", "forget", "val", "test"):
            raise SftcError(f"unknown subset {name!r}; use train, retain, forget, val or test")
        return getattr(self, name)

    def forget_summary(self) -> dict:
        """Size, per-class histogram and SHA-256 of the forget positions, for every result file."""
        labels = self.data.labels[self.forget.to(self.data.labels.device)].cpu()
        hist = torch.bincount(labels, minlength=self.data.num_classes).tolist()
        digest = hashlib.sha256(self.forget_positions.cpu().numpy().astype("<i8").tobytes())
        return {"spec": self.forget_spec, "size": int(len(self.forget)),
                "class_histogram": hist, "sha256": digest.hexdigest()}

    def content_sha256(self, name: str = "train") -> str:
        """SHA-256 of what a subset holds: its samples' inputs and labels, in order (computed once;
        for a streamed dataset its samples' ids and labels, see :mod:`sftc.data.source`).

        Two splits give the same digest exactly when a model trained on one saw the same data
        as a model trained on the other; checkpoints record it to be checked against the data.
        """
        if name not in self._digests:
            self._digests[name] = self.data.digest(self.indices(name), name)
        return self._digests[name]

    def data_fingerprint(self) -> str:
        """:meth:`ImageData.fingerprint` of the data, computed once per split (it reads every
        sample)."""
        if "data" not in self._digests:
            self._digests["data"] = self.data.fingerprint()
        return self._digests["data"]

    def sizes(self) -> dict:
        return {name: int(len(self.indices(name)))
                for name in ("train", "retain", "forget", "val", "test")}


def forget_by_name(forget, ids: list[str] | None, train_labels: torch.Tensor,
                   seed: int) -> tuple[torch.Tensor, str]:
    """Positions in the training set of a forget set given as a spec, positions, or sample ids
    (``ids``: the training samples' names); returns them with the spec to record."""
    where = "the training dataset"
    if isinstance(forget, str) and forget.strip().lower().startswith("file:") and ids is not None:
        path = expand_user(forget.strip()[5:], "--forget file:")
        if path.suffix.lower() not in (".npy", ".json"):
            rows = read_path_list(path, ids, where)
            return validate_positions(rows, len(train_labels), forget), forget
    if isinstance(forget, str):
        return resolve_forget(forget, train_labels, seed=seed), forget
    values = list(forget) if not isinstance(forget, (torch.Tensor, np.ndarray)) else None
    if values and all(isinstance(v, (str, Path)) for v in values):
        if ids is None:
            raise SftcError("the forget set names samples by id, but the training dataset has no "
                            "ids; pass ids=[...] (one name per training sample), or give "
                            "positions")
        rows = name_positions([(f"forget id #{i}", str(v)) for i, v in enumerate(values)], ids,
                              where)
        return validate_positions(rows, len(train_labels), "the forget ids"), \
            f"ids:{len(values)}"
    return resolve_forget(forget, train_labels, seed=seed), "custom"
