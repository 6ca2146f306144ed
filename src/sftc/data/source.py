"""Data sources: where the engine, the inference passes and the metrics get their batches.

One interface, two implementations:

* :class:`~sftc.data.images.ImageData`: every sample in memory (uint8 images, or float inputs),
  a batch cut from the tensor on the device; the fast path for data that fits.
* :class:`DatasetSource`: a map-style ``torch.utils.data.Dataset`` yielding ``(x, y)`` (a user's
  own, with their own transforms, augmentation included), read through a ``DataLoader`` with
  workers whose batch sampler yields exactly the batches the engine planned, so that the same plan
  gives the same batches on both paths.

What both offer (:class:`Source`): ``len``, ``labels`` (int64, in memory), ``num_classes``,
``name``, ``class_names``, ``channels``, ``input_shape``, ``preprocessing``,
``batch(index, device)`` for one batch and ``batches(indices, device, train=)`` for a sequence of
them (an epoch's plan, an inference pass), ``train_deterministic`` (may a frozen model's outputs on
training batches be computed once?) and ``digest(index)`` (what a subset holds, for fingerprints).

:func:`from_datasets` builds the source of a train/val/test triple of datasets and chooses the
path: in memory when the data is deterministic and fits (``in_memory="auto"``), streamed else.
"""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Sampler

from ..errors import SftcError
from .images import ImageData
from .protocol import Source  # noqa: F401  (the interface this module implements)

#: ``in_memory="auto"`` loads a deterministic dataset into memory when it takes at most this share
#: of the machine's memory (``SFTC_MEMORY_BUDGET`` in bytes overrides it).
MEMORY_SHARE = 0.25


class PlannedBatches(Sampler):
    """A batch sampler that yields the batches it is given (an epoch's plan), in order."""

    def __init__(self):
        self.plan: list[list[int]] = []

    def __iter__(self):
        return iter(self.plan)

    def __len__(self) -> int:
        return len(self.plan)


def _first_line(exc: BaseException) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _x_of(sample, where: str) -> torch.Tensor:
    if not isinstance(sample, (tuple, list)) or len(sample) < 2:
        raise SftcError(f"{where} must yield (x, y) pairs, got {type(sample).__name__}")
    x = sample[0]
    if not isinstance(x, torch.Tensor):
        raise SftcError(f"{where} yields x as {type(x).__name__}, not a tensor; end its transform "
                        "with torchvision.transforms.ToTensor() (or PILToTensor())")
    return x


def _collate_x(samples) -> torch.Tensor:
    return torch.stack([_x_of(s, "the dataset") for s in samples])


def default_workers() -> int:
    """DataLoader workers when none are given: one per core beyond the first, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class DatasetSource:
    """Samples of map-style datasets read through a ``DataLoader`` (see the module docstring).

    ``dataset`` serves training batches (``batches(..., train=True)``: the user's transforms,
    augmentation included); ``eval_dataset`` (default: ``dataset``) serves every other pass
    (teacher outputs, evaluation). ``labels`` are the samples' labels in order (read from
    ``targets`` when the dataset has them); ``ids`` name the training samples (file paths of an
    ``ImageFolder``) for forget lists. ``deterministic`` declares that ``dataset`` gives the same
    ``x`` for the same index every time: only then are frozen models' outputs on training batches
    computed once (a dataset with random transforms is treated as augmented).
    """

    is_uint8 = False
    image_size = None
    mean = None
    std = None

    def __init__(self, dataset: Dataset, labels: torch.Tensor, num_classes: int, *,
                 eval_dataset: Dataset | None = None, deterministic: bool = False,
                 workers: int | None = None, name: str = "dataset",
                 class_names: list[str] | None = None, ids: list[str] | None = None,
                 id_files: list[Path] | None = None, transforms: dict | None = None):
        self.dataset = dataset
        self.eval_dataset = eval_dataset if eval_dataset is not None else dataset
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.num_classes = int(num_classes)
        self.deterministic = bool(deterministic)
        self.workers = default_workers() if workers is None else int(workers)
        self.name = name
        self.class_names = class_names
        self.ids = ids
        self.id_files = id_files
        self.transforms = transforms or {
            "train": _transform_text(dataset), "eval": _transform_text(self.eval_dataset)}
        if len(self.labels) != len(self.dataset) or len(self.eval_dataset) != len(self.dataset):
            raise SftcError(f"{name}: {len(self.dataset)} samples but {len(self.labels)} labels "
                            f"and {len(self.eval_dataset)} evaluation samples; they must match")
        if len(self.labels) and (int(self.labels.min()) < 0
                                 or int(self.labels.max()) >= self.num_classes):
            raise SftcError(f"labels must lie in [0, {self.num_classes - 1}]; got "
                            f"{int(self.labels.min())}..{int(self.labels.max())}")
        self._shape: tuple[int, ...] | None = None

    # -- what the data is ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self._shape is None:
            if not len(self):
                raise SftcError(f"{self.name} holds no samples")
            self._shape = tuple(_x_of(self.eval_dataset[0], f"{self.name}").shape)
        return self._shape

    @property
    def channels(self) -> int:
        return int(self.sample_shape[0]) if len(self.sample_shape) == 3 else 0

    @property
    def input_size(self) -> int:
        return int(self.sample_shape[-1]) if len(self.sample_shape) == 3 else 0

    @property
    def in_channels(self) -> int:
        """A sample's first dimension (what a model builder gets as ``in_channels``)."""
        from .images import sample_in_channels

        return sample_in_channels(self.sample_shape)

    @property
    def input_shape(self) -> list[int]:
        return list(self.sample_shape)

    @property
    def train_deterministic(self) -> bool:
        return self.deterministic

    @property
    def preprocessing(self) -> dict:
        """The dataset's own transforms do the preprocessing: recorded as their text."""
        return {"mean": None, "std": None, "image_size": self.input_size or None,
                "transform": self.transforms.get("train"),
                "eval_transform": self.transforms.get("eval")}

    def normalise_with(self, mean=None, std=None, normalize=None) -> "DatasetSource":
        if mean is not None or std is not None or normalize not in (None, "dataset"):
            raise SftcError(f"{self.name} is normalised by its own transforms; drop --mean/--std/"
                            "--normalize (add transforms.Normalize to the dataset instead)")
        return self

    def to(self, device) -> "DatasetSource":
        return self            # batches are moved as they are read

    # -- batches ---------------------------------------------------------------------------
    def batch(self, index: torch.Tensor, device, augment: bool = False,
              generator: torch.Generator | None = None,
              train: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch, read in this process (for probes and small passes)."""
        self._no_augment(augment)
        dataset = self.dataset if train else self.eval_dataset
        index = index.cpu()
        try:
            x = _collate_x([dataset[int(i)] for i in index])
        except SftcError:
            raise
        except Exception as exc:  # the user's dataset failed on a sample: say which
            raise SftcError(f"{self.name} failed to give samples {index[:3].tolist()}...: "
                            f"{_first_line(exc)}") from None
        device = torch.device(device)
        return x.to(device), self.labels[index].to(device)

    def batches(self, indices: Sequence[torch.Tensor], device, augment: bool = False,
                train: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches ``indices`` (in that order) through a DataLoader with ``workers``.

        Each call starts its workers afresh, seeded from the run's seed and the plan (never from
        torch's global generator, which it leaves as it was): the same run gives the same
        batches, random transforms included."""
        self._no_augment(augment)
        device = torch.device(device)
        plan = [i.cpu() for i in indices]
        if not plan:
            return
        sampler = PlannedBatches()
        sampler.plan = [i.tolist() for i in plan]
        key = f"{torch.initial_seed()}:{len(plan)}:{sampler.plan[0][:16]}:{int(train)}"
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1
        loader = DataLoader(self.dataset if train else self.eval_dataset, batch_sampler=sampler,
                            num_workers=self.workers, collate_fn=_collate_x,
                            pin_memory=device.type == "cuda",
                            generator=torch.Generator().manual_seed(seed))
        try:
            for index, x in zip(plan, loader):
                yield x.to(device, non_blocking=True), self.labels[index].to(device)
        except SftcError:
            raise
        except Exception as exc:  # a worker failed on the user's dataset: one line
            raise SftcError(f"{self.name} failed to give a batch: {_first_line(exc)}") from None

    def _no_augment(self, augment: bool) -> None:
        if augment:
            raise SftcError(f"{self.name} brings its own transforms: put any augmentation in its "
                            "transform, not augment=True")

    # -- fingerprints ----------------------------------------------------------------------
    def fingerprint(self) -> str:
        """SHA-256 of every sample's id (or position) and label (what a cache key needs)."""
        return self.digest(torch.arange(len(self)), "all")

    def digest(self, index: torch.Tensor, label: str) -> str:
        """SHA-256 of a subset: its samples' ids (with each file's size and modification time),
        or positions where there are no ids, and labels. The pixels are not read."""
        h = hashlib.sha256(f"{label}:{len(index)}:{self.num_classes}:{self.name}".encode())
        index = index.cpu()
        for i in index.tolist():
            h.update(f"{self._id(i)}\n".encode())
        h.update(self.labels[index].numpy().astype("<i8").tobytes())
        return h.hexdigest()

    def _id(self, i: int) -> str:
        if self.ids is None or i >= len(self.ids):
            return str(i)
        if self.id_files is not None and i < len(self.id_files):
            try:
                stat = self.id_files[i].stat()
                return f"{self.ids[i]} {stat.st_size} {stat.st_mtime_ns}"
            except OSError:
                pass
        return self.ids[i]


def _transform_text(dataset) -> str | None:
    transform = getattr(dataset, "transform", None)
    return repr(transform) if transform is not None else None


def dataset_labels(dataset: Dataset, what: str) -> torch.Tensor:
    """The labels of a dataset: its ``targets`` (torchvision's datasets), else read sample by
    sample."""
    targets = getattr(dataset, "targets", None)
    if targets is not None and len(targets) == len(dataset):
        return torch.as_tensor(list(targets) if not isinstance(targets, torch.Tensor)
                               else targets, dtype=torch.long)
    labels = []
    for i in range(len(dataset)):
        sample = dataset[i]
        _x_of(sample, what)
        labels.append(int(sample[1]))
    return torch.tensor(labels, dtype=torch.long)


def dataset_ids(dataset: Dataset) -> tuple[list[str], list[Path]] | None:
    """Sample ids of an ``ImageFolder``-like dataset (``samples`` and ``root``): file paths
    relative to its root, and the files."""
    samples = getattr(dataset, "samples", None) or getattr(dataset, "imgs", None)
    root = getattr(dataset, "root", None)
    if not samples or root is None or len(samples) != len(dataset):
        return None
    files = [Path(s[0]) for s in samples]
    ids = [os.path.relpath(f, root).replace(os.sep, "/") for f in files]
    return ids, files


def memory_budget() -> int:
    from ..settings import memory_budget as given

    if given() is not None:
        return given()
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2 ** 30
    return int(MEMORY_SHARE * total)


def from_datasets(train: Dataset, val: Dataset | None = None, test: Dataset | None = None, *,
                  train_eval: Dataset | None = None, num_classes: int | None = None,
                  labels: Sequence | None = None, ids: Sequence[str] | None = None,
                  deterministic: bool = False, in_memory: str | bool = "auto",
                  workers: int | None = None, name: str = "dataset"):
    """The samples of train (+ val, test) datasets as one source, and the index of each part.

    Returns ``(source, train_index, val_index, test_index, train_ids)``. ``train_eval``: the
    training samples without augmentation, for every pass that is not training (defaults to
    ``train``); ``labels``: the training samples' labels when ``train`` has no ``targets`` (val and
    test are read); ``ids``: names of the training samples (default: an ImageFolder's relative
    paths). ``in_memory``: ``"auto"`` loads everything into memory when it is deterministic
    (``deterministic=True``, or a ``train_eval`` given for a random ``train``: then only the
    evaluation view) and fits in :func:`memory_budget`; True insists, False streams.
    """
    parts = [train] + [p for p in (val, test) if p is not None]
    for part in parts:
        if not hasattr(part, "__getitem__") or not hasattr(part, "__len__"):
            raise SftcError(f"{type(part).__name__} is not a map-style dataset (it needs "
                            "__getitem__ and __len__)")
    if train_eval is not None and len(train_eval) != len(train):
        raise SftcError(f"train_eval has {len(train_eval)} samples, train has {len(train)}")
    train_labels = (torch.as_tensor(list(labels), dtype=torch.long) if labels is not None
                    else dataset_labels(train, "the training dataset"))
    all_labels = torch.cat([train_labels] + [dataset_labels(p, "a held-out dataset")
                                             for p in parts[1:]])
    classes = getattr(train, "classes", None)
    k = num_classes or (len(classes) if classes else int(all_labels.max()) + 1)
    found = dataset_ids(train)
    train_ids = list(ids) if ids is not None else (found[0] if found else None)
    if train_ids is not None and len(train_ids) != len(train):
        raise SftcError(f"ids names {len(train_ids)} samples, the training dataset has "
                        f"{len(train)}")
    files = found[1] if found and ids is None else None
    sizes = [len(p) for p in parts]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    index = [torch.arange(s, s + n) for s, n in zip(starts, sizes)]
    while len(index) < 3:
        index.append(torch.arange(0))
    if val is None and test is not None:
        index = [index[0], torch.arange(0), index[1]]
    source = DatasetSource(ConcatDataset(parts), all_labels, k,
                           eval_dataset=ConcatDataset([train_eval or train] + parts[1:]),
                           deterministic=deterministic, workers=workers, name=name,
                           class_names=list(classes) if classes else None, ids=train_ids,
                           id_files=files,
                           transforms={"train": _transform_text(train),
                                       "eval": _transform_text(train_eval or train)})
    source.sample_shape             # one sample read now: a dataset that cannot work says so here
    if in_memory not in ("auto", True, False):
        raise SftcError(f"in_memory must be 'auto', True or False, got {in_memory!r}")
    fits = in_memory is True or (in_memory == "auto" and deterministic and _fits(source))
    if fits:
        if not deterministic and in_memory is True:
            raise SftcError("in_memory=True holds every sample once: declare deterministic=True "
                            "(transforms without randomness)")
        source = materialise(source)
    return (source, *index[:3], train_ids)


def _fits(source: DatasetSource) -> bool:
    shape = source.sample_shape
    return len(source) * math.prod(shape) * 4 <= memory_budget()


def materialise(source: DatasetSource) -> ImageData:
    """Every sample of ``source`` read once (with its workers) into an in-memory
    :class:`ImageData`: uint8 images stay uint8, anything else float32, used as it is."""
    order = torch.arange(len(source))
    chunks = [order[i:i + 256] for i in range(0, len(order), 256)]
    xs = [x for x, _ in source.batches(chunks, "cpu")]
    images = torch.cat(xs) if xs else torch.empty(0)
    if images.dtype != torch.uint8:
        images = images.float()
    # uint8 pixels (PILToTensor) are fed as pixels / 255, floats as they are
    return ImageData(images, source.labels.clone(), source.num_classes, name=source.name,
                     class_names=source.class_names, ids=source.ids)
