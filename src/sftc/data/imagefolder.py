"""A user's own images, one sub-folder per class (torchvision's ``ImageFolder`` layout).

Two layouts are accepted::

    DIR/train/<class>/*.png   (+ DIR/val/<class>/..., DIR/test/<class>/...)
    DIR/<class>/*.png         (no train/ folder: a seeded split draws val and test)

Classes are the training folder's sub-folders in sorted order; files are found recursively and
sorted, and only image endings count (``.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp``). With
``train/`` and both ``val/`` and ``test/``, those are the splits; with only one of them, it is split
in half per class (seeded); with neither, or without ``train/``, 10 % of each class goes to val
and 10 % to test (seeded by ``--split-seed``). The forget set may be a text file of image paths
relative to the training folder, one per line (``--forget file:forget.txt``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import SftcError
from .files import (IMAGE_EXTENSIONS, BadRows, channel_stats, contained, decode_images,
                    require_data_dir)
from .images import ImageData
from .registry import LoadedDataset, register_dataset

VAL_NAMES = ("val", "valid", "validation")
LAYOUT = ("one sub-folder of images per class, either directly or under train/ (with optional "
          "val/ and test/ beside it)")


def _class_dirs(folder: Path, root: Path) -> list[Path]:
    """The class sub-folders of ``folder``. A class folder that is a symlink must stay inside
    ``root`` and may not be ``folder`` itself, one above it, or another class's folder."""
    dirs = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)
    here = folder.resolve()
    seen: dict[Path, Path] = {}
    for d in dirs:
        target = contained(d, root, "class folder")
        if target == here or target in here.parents:
            raise SftcError(f"class folder {d} is a symlink to {target}, which contains it (a loop); "
                            "a class folder must hold that class's images only")
        if target in seen:
            raise SftcError(f"class folders {seen[target]} and {d} are the same folder ({target}); "
                            "each image must belong to one class")
        seen[target] = d
    return dirs


def _images_in(folder: Path, root: Path) -> list[Path]:
    """Image files under ``folder`` (symlinked folders are not followed; a symlinked file must
    stay inside ``root``)."""
    found = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            if p.is_symlink():
                contained(p, root, "image")
            found.append(p)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _scan(folder: Path, classes: list[str] | None,
          root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names and (relative path, label) of every image under ``folder`` (inside ``root``)."""
    dirs = _class_dirs(folder, root)
    if classes is None:
        classes = [d.name for d in dirs]
        if not classes:
            raise SftcError(f"{folder} has no class sub-folders; an image folder holds {LAYOUT}")
    else:
        unknown = [d.name for d in dirs if d.name not in classes]
        if unknown:
            raise SftcError(f"{folder / unknown[0]} is a class the training folder does not have "
                            f"(its classes: {', '.join(classes)})")
    samples = []
    for d in dirs:
        files = _images_in(d, root)
        label = classes.index(d.name)
        samples += [(p.relative_to(folder).as_posix(), label) for p in files]
    return classes, samples


def _draw(labels: np.ndarray, fractions: tuple[float, float], rng: np.random.Generator,
          keep_one: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class seeded draw: (rest, first, second) positions, with the given fractions.

    ``keep_one``: leave at least one sample of each class in ``rest`` (the training set) and,
    where rounding gives a part no sample at all, give it one from the largest class.
    Otherwise ``first`` takes its fraction and ``second`` all the rest.
    """
    classes = np.unique(labels)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    sizes = np.array([len(m) for m in members])
    n1 = np.rint(fractions[0] * sizes).astype(int)
    n2 = np.rint(fractions[1] * sizes).astype(int) if keep_one else sizes - n1
    if keep_one:
        for counts in (n1, n2):
            spare = sizes - n1 - n2 - 1
            if counts.sum() == 0 and spare.max() > 0:
                counts[int(np.argmax(spare))] += 1
        for i in range(len(sizes)):  # at least one training sample per class
            while n1[i] + n2[i] > sizes[i] - 1 and n1[i] + n2[i] > 0:
                if n1[i] >= n2[i]:
                    n1[i] -= 1
                else:
                    n2[i] -= 1
    rest, first, second = [], [], []
    for m, a, b in zip(members, n1, n2):
        first.append(m[:a])
        second.append(m[a:a + b])
        rest.append(m[a + b:])
    return tuple(np.sort(np.concatenate(group)).astype(np.int64) for group in (rest, first, second))


@register_dataset("imagefolder", "your own images, one sub-folder per class (ImageFolder layout)",
                  default_forget="random:0.1")
def load_imagefolder(data_dir: Path | None = None, split_seed: int = 0,
                     image_size: int | None = None, skip_bad: bool = False) -> LoadedDataset:
    """Images are stored at their own size when they all share one square size (or at
    ``image_size`` when that is smaller); otherwise at ``image_size`` (default 128), resized on the
    shorter side and centre-cropped. Grayscale when every image is, else RGB. Normalised with the
    training images' per-channel mean and std."""
    root = require_data_dir(data_dir, "imagefolder", LAYOUT)
    if not root.is_dir():
        raise SftcError(f"--data-dir {root} is not a folder; it should hold {LAYOUT}")
    rng = np.random.default_rng(split_seed)
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes, train = _scan(train_dir, None, root)
    held = {}
    if train_dir != root:
        val_dir = next((root / n for n in VAL_NAMES if (root / n).is_dir()), None)
        for name, folder in (("val", val_dir), ("test", root / "test")):
            if folder is not None and folder.is_dir():
                held[name] = [(folder / rel, label)
                              for rel, label in _scan(folder, classes, root)[1]]
    if not train:
        raise SftcError(f"{train_dir} has no images (looked for files ending in "
                        f"{' '.join(IMAGE_EXTENSIONS)} inside its class sub-folders)")
    train_labels = np.asarray([label for _, label in train], dtype=np.int64)
    empty = [c for i, c in enumerate(classes) if not (train_labels == i).any()]
    if empty:
        raise SftcError(f"class folder {train_dir / empty[0]} has no images")
    if len(held) == 1:  # split the one held-out folder in half, per class
        only = next(iter(held.values()))
        _, first, second = _draw(np.asarray([label for _, label in only]), (0.5, 0.5), rng,
                                 keep_one=False)
        held = {"val": [only[i] for i in first], "test": [only[i] for i in second]}
    keep = np.arange(len(train))
    if not held:  # draw val and test from the training images
        keep, val_pos, test_pos = _draw(train_labels, (0.1, 0.1), rng, keep_one=True)
        held = {"val": [(train_dir / train[i][0], train[i][1]) for i in val_pos],
                "test": [(train_dir / train[i][0], train[i][1]) for i in test_pos]}
    names = [train[i][0] for i in keep]
    entries = ([(train_dir / name, int(train_labels[i]), "train") for name, i in zip(names, keep)]
               + [(path, label, part) for part in ("val", "test") for path, label in held[part]])
    bad = BadRows(skip_bad)
    images, kept = decode_images([(path, f"image folder {part} set") for path, _, part in entries],
                                 bad, channels=None, side=image_size)
    labels = np.asarray([entries[i][1] for i in kept], dtype=np.int64)
    parts = np.asarray([entries[i][2] for i in kept])
    for part in ("train", "val", "test"):
        if not (parts == part).any():
            raise SftcError(f"the {part} set of {root} is empty after reading its images; add "
                            "images or give val/ and test/ folders")
    index = {part: np.flatnonzero(parts == part) for part in ("train", "val", "test")}
    mean, std = channel_stats(images, index["train"])
    data = ImageData(torch.from_numpy(images), torch.from_numpy(labels), len(classes), mean=mean,
                     std=std, name="imagefolder", class_names=classes)
    train_rows = np.asarray([i for i in kept if i < len(names)], dtype=np.int64)
    skipped_train = len(train_rows) != len(names)
    if train_dir != root:
        where = f"the training folder {train_dir}"
        aliases = ("train", str(train_dir), str(train_dir.resolve()))
    else:
        where = (f"the training part of {root} (the seeded split puts some images in val and "
                 "test; see 'sftc data')")
        aliases = (str(root), str(root.resolve()))
    return LoadedDataset(data, *(torch.from_numpy(index[p]) for p in ("train", "val", "test")),
                         source=str(root), root=root, train_names=names, names_where=where,
                         name_aliases=aliases, skipped=bad.lines,
                         train_rows=train_rows if skipped_train else None,
                         train_rows_total=len(names) if skipped_train else None)
