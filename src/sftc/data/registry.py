"""Datasets by name. Each loader returns the samples and its train/val/test indices."""
from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import SftcError
from ..io import expand_user
from ..plugins import GROUPS
from ..registry import Registry
from .forget import map_rows, read_path_list, resolve_forget, validate_positions
from .images import ImageData
from .split import Split


class SkippedSamplesWarning(UserWarning):
    """Samples were left out (``skip_bad=True``, ``--skip-bad-rows``), or a forget set names
    some of them."""


@dataclass
class DatasetInfo:
    """What the registry knows about a dataset before loading it."""

    name: str
    loader: Callable[..., "LoadedDataset"]
    summary: str
    default_forget: str
    default_model: str
    default_image_size: int | None = None
    forget_note: str | None = None


@dataclass
class LoadedDataset:
    """What a loader returns: the samples, the train/val/test indices into them, and provenance.

    The optional fields serve forget specifications that name rows of the source files:
    ``default_forget`` is the loader's own choice of default (e.g. an index file it found beside
    the data); ``root`` is a folder where a relative ``file:`` path is also looked up;
    ``train_names`` are the training rows by relative path (a ``file:`` text list then names
    images, not indices); ``train_rows`` (with ``train_rows_total``) says which rows of the
    source's training part each loaded training sample is, when unreadable rows were skipped, so
    that index files still point at the same images; ``skipped`` has one line per skipped row;
    ``train_groups`` each training sample's data owner (a table's ``--group-column``), for
    ``--forget group:A,B``.
    """

    data: ImageData
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    source: str
    default_forget: str | None = None
    root: Path | None = None
    train_names: list[str] | None = None
    names_where: str = "the training folder"
    name_aliases: tuple[str, ...] = ()
    train_rows: np.ndarray | None = None
    train_rows_total: int | None = None
    skipped: list[str] = field(default_factory=list)
    train_groups: list[str] | None = None

    @classmethod
    def from_datasets(cls, train, val=None, test=None, *, source: str = "", **options):
        """A user's own map-style datasets (e.g. torchvision's ``ImageFolder`` with their
        transforms) as a registered dataset's loader returns them; ``options`` as for
        :func:`sftc.data.source.from_datasets` (``train_eval``, ``deterministic``, ``workers``,
        ``name``, ...). The training samples' ids (an ImageFolder's relative paths) name them in
        ``--forget file:LIST.txt``."""
        from .source import from_datasets

        data, train_idx, val_idx, test_idx, ids = from_datasets(train, val, test, **options)
        root = getattr(train, "root", None)
        return cls(data, train_idx, val_idx, test_idx,
                   source=source or str(root or type(train).__name__), train_names=ids,
                   root=Path(root).parent if root else None,
                   names_where=f"the training dataset{f' {root}' if root else ''}",
                   name_aliases=(str(root), str(Path(root).resolve())) if root else ())


def _adopt(name: str, info) -> None:
    """An entry point that names a :class:`DatasetInfo` registers it (a module that calls
    ``@register_dataset`` registers itself by being imported)."""
    if not isinstance(info, DatasetInfo):
        raise SftcError(f"plugin dataset {name!r} is a {type(info).__name__}; name the module "
                        "that calls @register_dataset (or a DatasetInfo)")
    DATASETS.add(info.name or name, info)


#: What the registry knows about each dataset, by name (listed alphabetically). Installed
#: packages add datasets through the entry-point group ``sftc.datasets`` (see :mod:`sftc.plugins`).
DATASETS: Registry[DatasetInfo] = Registry("dataset", sort=True, group=GROUPS["dataset"],
                                           adopt=_adopt)


def register_dataset(name: str, summary: str, default_forget: str, default_model: str = "small-cnn",
                     default_image_size: int | None = None, forget_note: str | None = None):
    """Register ``loader(data_dir, split_seed[, image_size][, skip_bad]) -> LoadedDataset``.

    ``forget_note`` is appended to the error when a forget index file is missing (where the
    protocol's file comes from).
    """
    def wrap(fn):
        DATASETS.add(name, DatasetInfo(name, fn, summary, default_forget, default_model,
                                       default_image_size, forget_note))
        return fn
    return wrap


def list_datasets() -> list[str]:
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.find(name)


def load_dataset(name: str, data_dir: str | Path | None = None, image_size: int | None = None,
                 split_seed: int = 0, skip_bad: bool = False, mean=None, std=None,
                 normalize: str | None = None, table: dict | None = None) -> LoadedDataset:
    """Load a dataset by name. ``image_size`` resizes per batch (None: the dataset's default).

    ``skip_bad=True`` leaves out malformed rows and images that do not decode instead of
    stopping at the first; each is listed in ``LoadedDataset.skipped`` and their count is
    reported as a :class:`SkippedSamplesWarning`. ``mean``/``std`` (one value or one per channel,
    in [0, 1] units) replace the dataset's normalisation; ``normalize="none"`` feeds pixels / 255.
    ``table``: a table's options (``file``, ``target``, ``id_column``, ``group_column``, and the
    ``encoding`` recorded beside a checkpoint), for datasets that read tables
    (:mod:`sftc.data.tables`).
    """
    info = dataset_info(name)
    size = image_size if image_size is not None else info.default_image_size
    if size is not None and size <= 0:
        raise SftcError(f"--image-size must be positive, got {size}")
    options = inspect.signature(info.loader).parameters
    kwargs = {}
    if "image_size" in options:
        kwargs["image_size"] = size
    if "skip_bad" in options:
        kwargs["skip_bad"] = skip_bad
    if "table" in options:
        kwargs["table"] = table
    elif any(v is not None for k, v in (table or {}).items() if k != "encoding"):
        given = next(k for k, v in table.items() if v is not None and k != "encoding")
        raise SftcError(f"--{given.replace('_', '-').replace('file', 'data-file')} applies to "
                        f"tables (--dataset csv); {name} is not read from a table")
    loaded = info.loader(data_dir=expand_user(data_dir, "--data-dir") if data_dir else None,
                         split_seed=split_seed, **kwargs)
    if isinstance(loaded.data, ImageData) and loaded.data.images.dim() != 4 \
            and image_size is not None:
        raise SftcError(f"--image-size {image_size}: {name} gives inputs shaped "
                        f"{list(loaded.data.input_shape)}, not images; drop --image-size")
    if isinstance(loaded.data, ImageData):
        loaded.data.image_size = size
    elif image_size is not None and image_size != loaded.data.input_size:
        raise SftcError(f"--image-size {image_size}: {name} gives {loaded.data.input_size}-pixel "
                        "inputs from its own transforms; resize there, or drop --image-size")
    loaded.data.normalise_with(mean, std, normalize)
    if loaded.skipped:
        warnings.warn(SkippedSamplesWarning(
            f"{name}: skipped {len(loaded.skipped)} unreadable sample(s) as asked; first: "
            f"{loaded.skipped[0]}"), stacklevel=2)
    return loaded


def load_split(name: str, forget: str | None = None, data_dir: str | Path | None = None,
               image_size: int | None = None, seed: int = 0, split_seed: int = 0,
               skip_bad: bool = False, mean=None, std=None,
               normalize: str | None = None, table: dict | None = None) -> Split:
    """Load a dataset and carve its forget set (``forget=None``: the dataset's default spec);
    the other options as for :func:`load_dataset`."""
    loaded = load_dataset(name, data_dir=data_dir, image_size=image_size, split_seed=split_seed,
                          skip_bad=skip_bad, mean=mean, std=std, normalize=normalize,
                          table=table)
    return split_loaded(name, loaded, forget, seed=seed, data_dir=data_dir)


def split_loaded(name: str, loaded: LoadedDataset, forget=None, seed: int = 0,
                 data_dir: str | Path | None = None) -> Split:
    """Carve the forget set of an already loaded dataset (see :func:`load_split`)."""
    info = dataset_info(name)
    spec = forget if forget is not None else (loaded.default_forget or info.default_forget)
    if not isinstance(spec, str):
        return Split.create(loaded.data, loaded.train, loaded.val, loaded.test, spec, seed=seed)
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    rows = None
    if kind == "file" and arg:
        path = _locate_forget_file(arg, [data_dir, loaded.root], info)
        spec = f"file:{path}"
        total = loaded.train_rows_total or len(loaded.train)
        if loaded.train_names is not None and path.suffix.lower() not in (".npy", ".json"):
            rows = read_path_list(path, loaded.train_names, loaded.names_where,
                                  loaded.name_aliases)
            rows = validate_positions(rows, total, spec).numpy()
        elif loaded.train_rows is not None:
            rows = resolve_forget(spec, torch.zeros(total, dtype=torch.long), seed).numpy()
    elif kind == "group":
        rows = validate_positions(group_rows(loaded, arg, spec), len(loaded.train), spec).numpy()
    elif kind == "first" and loaded.train_rows is not None:
        rows = resolve_forget(spec, torch.zeros(loaded.train_rows_total, dtype=torch.long),
                              seed).numpy()
    if rows is None:
        return Split.create(loaded.data, loaded.train, loaded.val, loaded.test, spec, seed=seed)
    positions = rows
    if loaded.train_rows is not None:
        positions, missing = map_rows(rows, loaded.train_rows)
        if missing.size:
            if positions.size == 0:
                raise SftcError(f"forget set {spec}: every sample it names was skipped as "
                                "unreadable; nothing is left to forget")
            warnings.warn(SkippedSamplesWarning(
                f"forget set {spec}: {missing.size} of its samples were skipped as unreadable and "
                f"are not in the training data (first: training row {int(missing[0])})"),
                stacklevel=2)
    split = Split.create(loaded.data, loaded.train, loaded.val, loaded.test,
                         torch.from_numpy(np.asarray(positions, dtype=np.int64)), seed=seed)
    split.forget_spec = spec
    return split


def group_rows(loaded: LoadedDataset, arg: str, spec: str) -> np.ndarray:
    """The training positions of every row whose data owner is one of ``arg``'s (``A,B``)."""
    if loaded.train_groups is None:
        raise SftcError(f"forget spec {spec!r} names data owners: load a table with "
                        "--group-column COLUMN (the column naming each row's owner)")
    wanted = [g.strip() for g in arg.split(",") if g.strip()]
    if not wanted:
        raise SftcError(f"forget spec {spec!r} names no group; e.g. group:alice,bob")
    owners = set(loaded.train_groups)
    unknown = next((g for g in wanted if g not in owners), None)
    if unknown is not None:
        raise SftcError(f"forget spec {spec!r}: no training row belongs to group {unknown!r}")
    chosen = set(wanted)
    return np.asarray([i for i, g in enumerate(loaded.train_groups) if g in chosen],
                      dtype=np.int64)


def _locate_forget_file(arg: str, folders: list, info: DatasetInfo) -> Path:
    """A relative forget file is looked up in the working directory, then the data folders."""
    path = expand_user(arg.strip(), "--forget file:")
    if path.is_absolute() or path.exists():
        candidates = [path]
    else:
        candidates = [path] + [expand_user(f, "--data-dir") / path for f in folders if f is not None]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(dict.fromkeys(str(c.parent) if str(c.parent) != "." else "the working "
                                     "directory" for c in candidates))
    note = info.forget_note or "give a .npy, .txt or .json file of indices into the training set"
    raise SftcError(f"forget file {arg} not found (looked in {looked}); {note}")
