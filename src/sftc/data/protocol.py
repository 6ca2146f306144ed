"""The data interface: what every data source sftc reads provides (:class:`Source`)."""
from __future__ import annotations

from typing import Iterator, Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class Source(Protocol):
    """The data interface sftc's engine, inference passes, metrics, caches and records use:
    what :class:`~sftc.data.images.ImageData` (tensors in memory) and :class:`DatasetSource` (a
    user's ``Dataset``, streamed) both provide. ``tests/test_data_sources.py`` checks both
    against it."""

    labels: torch.Tensor          # [N] int64, every sample's class
    num_classes: int
    name: str                     # the dataset's name (keys, records, messages)
    mean: tuple | None            # the normalisation applied to inputs (None: none)
    std: tuple | None
    class_names: list | None

    def __len__(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def in_channels(self) -> int: ...         # a sample's first dimension (C, or F features)

    @property
    def input_size(self) -> int: ...          # the side of an input as the model sees it

    @property
    def input_shape(self) -> list[int]: ...   # [C, H, W], [F], any shape, as the model sees it

    @property
    def train_deterministic(self) -> bool: ...   # no random transform: teacher outputs cached

    @property
    def preprocessing(self) -> dict: ...      # recorded beside every checkpoint

    def batch(self, index: torch.Tensor, device, augment: bool = False,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def batches(self, indices: Sequence[torch.Tensor], device, augment: bool = False,
                train: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def normalise_with(self, mean=None, std=None, normalize=None) -> "Source": ...

    def to(self, device) -> "Source": ...

    def digest(self, index: torch.Tensor, label: str) -> str: ...   # content SHA-256 of a subset

    def fingerprint(self) -> str: ...        # SHA-256 of every sample and the normalisation
