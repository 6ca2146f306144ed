"""Datasets by name. Each loader returns the samples and its train/val/test indices."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import SftcError
from .images import ImageData
from .split import Split


@dataclass
class DatasetInfo:
    """What the registry knows about a dataset before loading it."""

    name: str
    loader: Callable[..., "LoadedDataset"]
    summary: str
    default_forget: str
    default_model: str
    default_image_size: int | None = None


@dataclass
class LoadedDataset:
    data: ImageData
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    source: str


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, summary: str, default_forget: str, default_model: str = "small-cnn",
                     default_image_size: int | None = None):
    def wrap(fn):
        _DATASETS[name] = DatasetInfo(name, fn, summary, default_forget, default_model,
                                      default_image_size)
        return fn
    return wrap


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return _DATASETS[name]
    except KeyError:
        raise SftcError(f"unknown dataset {name!r}; choose one of: {', '.join(list_datasets())}") from None


def load_dataset(name: str, data_dir: str | Path | None = None, image_size: int | None = None,
                 split_seed: int = 0) -> LoadedDataset:
    """Load a dataset by name. ``image_size`` resizes per batch (None: the dataset's default)."""
    info = dataset_info(name)
    loaded = info.loader(data_dir=Path(data_dir) if data_dir else None, split_seed=split_seed)
    size = image_size if image_size is not None else info.default_image_size
    if size is not None and size <= 0:
        raise SftcError(f"--image-size must be positive, got {size}")
    loaded.data.image_size = size
    return loaded


def load_split(name: str, forget: str | None = None, data_dir: str | Path | None = None,
               image_size: int | None = None, seed: int = 0, split_seed: int = 0) -> Split:
    """Load a dataset and carve its forget set (``forget=None``: the dataset's default spec)."""
    loaded = load_dataset(name, data_dir=data_dir, image_size=image_size, split_seed=split_seed)
    spec = forget or dataset_info(name).default_forget
    return Split.create(loaded.data, loaded.train, loaded.val, loaded.test, spec, seed=seed)
