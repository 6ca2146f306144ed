"""The split object: index sets train (= retain ∪ forget), retain, forget, val, test."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from ..errors import SftcError
from .forget import resolve_forget
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
        """SHA-256 of what a subset holds: its samples' inputs and labels, in order (computed once).

        Two splits give the same digest exactly when a model trained on one saw the same data
        as a model trained on the other; checkpoints record it to be checked against the data.
        """
        if name not in self._digests:
            index = self.indices(name).to(self.data.images.device)
            h = hashlib.sha256()
            h.update(f"{name}:{len(index)}:{self.data.num_classes}".encode())
            for start in range(0, len(index), 4096):
                chunk = index[start:start + 4096]
                images = self.data.images[chunk].detach().cpu().contiguous()
                if images.dtype == torch.bfloat16:
                    images = images.float()
                h.update(images.numpy().tobytes())
                h.update(self.data.labels[chunk].cpu().numpy().astype("<i8").tobytes())
            self._digests[name] = h.hexdigest()
        return self._digests[name]

    def sizes(self) -> dict:
        return {name: int(len(self.indices(name)))
                for name in ("train", "retain", "forget", "val", "test")}
