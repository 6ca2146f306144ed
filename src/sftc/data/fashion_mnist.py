"""Fashion-MNIST from its four idx ``.gz`` files (Debian package ``dataset-fashion-mnist``)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import SftcError
from .images import ImageData
from .registry import LoadedDataset, register_dataset

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
MEAN, STD = (0.2860,), (0.3530,)


def read_idx(path: Path) -> np.ndarray:
    """Read an idx file (optionally gzipped): magic 0x0000 0x08 NDIM, big-endian dims, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise SftcError(f"cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SftcError(f"{path} is not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise SftcError(f"{path} is truncated: header says {dims}, found {body.size} bytes of data")
    return body.reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise SftcError(f"Fashion-MNIST file {stem}.gz not found in {directory}; install it with "
                    "'apt-get install dataset-fashion-mnist' or pass --data-dir DIR holding the "
                    "four idx files (train/t10k images and labels)")


@register_dataset("fashion-mnist", "Fashion-MNIST, 70,000 28x28 grayscale images, 10 classes",
                  default_forget="random:0.1")
def load_fashion_mnist(data_dir: Path | None = None, split_seed: int = 0) -> LoadedDataset:
    """60,000 training images; the 10,000 test images are split in half into val and test with a
    fixed seed, as the paper does with CIFAR-10's held-out set."""
    directory = data_dir or DEFAULT_DIR
    if not directory.is_dir():
        raise SftcError(f"Fashion-MNIST directory {directory} does not exist; install it with "
                        "'apt-get install dataset-fashion-mnist' or pass --data-dir DIR")
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in FILES.items()}
    for part in ("train", "test"):
        if len(arrays[f"{part}_images"]) != len(arrays[f"{part}_labels"]):
            raise SftcError(f"Fashion-MNIST {part} images and labels differ in count "
                            f"({len(arrays[f'{part}_images'])} vs {len(arrays[f'{part}_labels'])})")
    images = np.concatenate([arrays["train_images"], arrays["test_images"]])[:, None]
    labels = np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64)
    if labels.max() > 9:
        raise SftcError(f"Fashion-MNIST labels must be 0..9, found {int(labels.max())}")
    n_train = len(arrays["train_labels"])
    held_out = n_train + np.random.default_rng(split_seed).permutation(len(arrays["test_labels"]))
    half = len(held_out) // 2
    data = ImageData(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels), 10,
                     mean=MEAN, std=STD, name="fashion-mnist", class_names=CLASSES)
    return LoadedDataset(data, torch.arange(n_train), torch.from_numpy(np.sort(held_out[:half])),
                         torch.from_numpy(np.sort(held_out[half:])), source=str(directory))
