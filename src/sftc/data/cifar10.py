"""CIFAR-10 from its python pickle batches (``cifar-10-batches-py/``), as the paper uses it.

The batches are read with a restricted unpickler: a pickle can run code, so only the few numpy
globals that an array's pickle names are resolved and everything else is refused (torchvision's
``CIFAR10`` would call ``pickle.load`` unrestricted, and with ``download=False`` it insists on the
md5 sums of the official files, which rules out any other copy).

The 10,000 held-out images are split in half into test and validation sets exactly as the NeurIPS
2023 unlearning challenge kit and the paper's code do (``random_split(held_out, [0.5, 0.5],
generator=torch.Generator().manual_seed(42))``: the first half is the test set).
"""
from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import SftcError
from .files import require_data_dir
from .images import ImageData
from .registry import LoadedDataset, register_dataset

BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
#: The normalisation of the challenge kit and the paper's code (ToTensor, then Normalize).
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
#: Seed of the kit's held-out split; ``--split-seed N`` uses ``42 + N``.
KIT_SEED = 42
FORGET_FILE = "forget_idx.npy"
SOURCE_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
FORGET_URL = "https://storage.googleapis.com/unlearning-challenge/forget_idx.npy"
LAYOUT = (f"{BATCH_DIR}/ with data_batch_1 .. data_batch_5 and test_batch (the python version of "
          f"CIFAR-10: cifar-10-python.tar.gz from {SOURCE_URL}, extracted)")


def _allowed_globals() -> dict:
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): codecs.encode}  # bytes in protocol-2 pickles from Python 3
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _BatchUnpickler(pickle.Unpickler):
    """Resolves only the globals a pickled numpy array needs; refuses every other one."""

    _allowed = None

    def find_class(self, module: str, name: str):
        if _BatchUnpickler._allowed is None:
            _BatchUnpickler._allowed = _allowed_globals()
        found = _BatchUnpickler._allowed.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR batch never "
                                         "does; refusing to load it")
        return found


def load_pickle(path: Path):
    """Unpickle a CIFAR batch file safely (dicts, lists, bytes, numbers and numpy arrays only)."""
    try:
        with open(path, "rb") as fh:
            return _BatchUnpickler(fh, encoding="bytes").load()
    except OSError as exc:
        raise SftcError(f"cannot read {path}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, ImportError, MemoryError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SftcError(f"{path} is not a CIFAR-10 python batch ({reason})") from None


def _as_str_keys(obj, path: Path) -> dict:
    if not isinstance(obj, dict):
        raise SftcError(f"{path} is not a CIFAR-10 python batch (it holds a "
                        f"{type(obj).__name__}, not a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch: uint8 images ``[n, 3, 32, 32]`` and int64 labels ``[n]``, checked."""
    if not path.is_file():
        raise SftcError(f"CIFAR-10 batch {path.name} not found in {path.parent}; expected {LAYOUT}")
    batch = _as_str_keys(load_pickle(path), path)
    if "fine_labels" in batch:
        raise SftcError(f"{path} is a CIFAR-100 batch (it has fine_labels); give CIFAR-10's "
                        "batches")
    for key in ("data", "labels"):
        if key not in batch:
            raise SftcError(f"{path} has no '{key}' entry; a CIFAR-10 batch holds 'data' "
                            "(N x 3072 uint8) and 'labels' (N integers)")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise SftcError(f"{path}: 'data' must be a uint8 array of N x 3072 pixels (3 x 32 x 32); "
                        f"found {dtype} shaped {shape}")
    try:
        labels = np.asarray(batch["labels"])
    except (TypeError, ValueError):
        labels = np.asarray([], dtype=object)
    if labels.ndim != 1 or len(labels) != len(data) or (len(labels) and not np.issubdtype(
            labels.dtype, np.integer)):
        raise SftcError(f"{path}: 'labels' must be {len(data)} integers, one per image; found "
                        f"{labels.dtype} shaped {labels.shape}")
    out_of_range = np.flatnonzero((labels < 0) | (labels > 9))
    if out_of_range.size:
        i = int(out_of_range[0])
        raise SftcError(f"{path}: label {int(labels[i])} of image {i} is outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def held_out_halves(n: int, split_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(val, test)`` positions in the held-out set: the kit's ``random_split([0.5, 0.5])``.

    The first ``n - n // 2`` of ``torch.randperm(n)`` (generator seeded 42 + ``split_seed``) are
    the test set and the rest the validation set, as in the challenge kit.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(KIT_SEED + split_seed)).numpy()
    n_test = n - n // 2
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _batch_dir(data_dir: Path) -> Path:
    if (data_dir / BATCH_DIR).is_dir():
        return data_dir / BATCH_DIR
    names = TRAIN_BATCHES + (TEST_BATCH,)
    if data_dir.is_dir() and any((data_dir / name).exists() for name in names):
        return data_dir
    if (data_dir / "cifar-10-python.tar.gz").is_file():
        raise SftcError(f"{data_dir} holds cifar-10-python.tar.gz but not {BATCH_DIR}/; extract it "
                        f"there first (tar xzf cifar-10-python.tar.gz -C {data_dir})")
    raise SftcError(f"CIFAR-10 folder {data_dir / BATCH_DIR} not found; --data-dir should hold "
                    f"{LAYOUT}")


def _class_names(directory: Path) -> list[str]:
    meta = directory / "batches.meta"
    if not meta.is_file():
        return list(CLASSES)
    names = _as_str_keys(load_pickle(meta), meta).get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        return list(CLASSES)
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


@register_dataset("cifar10", "CIFAR-10, 60,000 32x32 colour images, 10 classes (python batches)",
                  default_forget="random:0.1", default_model="resnet18", default_image_size=128,
                  forget_note=("the unlearning challenge's CIFAR-10 forget set (5,000 indices, 500 "
                               f"per class) is {FORGET_URL}"))
def load_cifar10(data_dir: Path | None = None, split_seed: int = 0) -> LoadedDataset:
    """50,000 training images (data_batch_1..5 in order); test_batch split in half into val and
    test. The default forget set is ``forget_idx.npy`` when it lies in ``--data-dir`` or in the
    batch folder (the challenge's 5,000 indices), otherwise ``random:0.1`` (500 per class)."""
    directory = _batch_dir(require_data_dir(data_dir, "CIFAR-10", LAYOUT))
    train = [read_batch(directory / name) for name in TRAIN_BATCHES]
    test_x, test_y = read_batch(directory / TEST_BATCH)
    images = np.concatenate([x for x, _ in train] + [test_x])
    labels = np.concatenate([y for _, y in train] + [test_y])
    n_train = sum(len(y) for _, y in train)
    val, test = held_out_halves(len(test_y), split_seed)
    data = ImageData(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels), 10,
                     mean=MEAN, std=STD, name="cifar10", class_names=_class_names(directory))
    forget_file = next((f for f in (data_dir / FORGET_FILE, directory / FORGET_FILE)
                        if f.is_file()), None)
    return LoadedDataset(data, torch.arange(n_train), torch.from_numpy(val + n_train),
                         torch.from_numpy(test + n_train), source=str(directory),
                         default_forget=f"file:{forget_file}" if forget_file else None,
                         root=directory)
