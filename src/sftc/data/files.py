"""Reading datasets from disk: image decoding, CSV rows, bad-row bookkeeping.

Shared by the on-disk loaders (CIFAR-10, FER-2013, MUFAC, image folders). Every problem with a
user's file is a one-line :class:`~sftc.errors.SftcError` naming the file and the row, unless the
user asked to skip bad rows (``skip_bad``), in which case the row is recorded in a
:class:`BadRows` list and left out.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SftcError

#: File endings taken as images in a folder (torchvision's ImageFolder list).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: Side length images are stored at when a folder's images differ in size and no size is given.
FALLBACK_SIDE = 128
_GRAY_MODES = {"1", "L", "LA"}


@dataclass
class BadRows:
    """Collects bad rows: raises at the first one, or (``skip=True``) records and continues."""

    skip: bool = False
    lines: list[str] = field(default_factory=list)

    def __call__(self, message: str) -> None:
        if not self.skip:
            raise SftcError(message + " (pass --skip-bad-rows to leave such rows out)")
        self.lines.append(message)


def is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²' and other digits ``int`` refuses."""
    return text.isascii() and text.isdigit()


def contained(path: Path, root: Path, what: str) -> Path:
    """``path`` resolved (symlinks followed), refused in one line unless it lies inside ``root``.

    Dataset files name other files (a MUFAC CSV its images, an image folder its classes); none
    of them may lead outside the dataset's folder, whether by ``..``, an absolute path or a
    symlink, and a symlink loop is refused too.
    """
    try:
        resolved = Path(path).resolve(strict=False)
        base = Path(root).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # a symlink loop, a vanished folder
        raise SftcError(f"{what} {path} cannot be resolved ({exc}); remove the symlink loop") from None
    if resolved != base and base not in resolved.parents:
        raise SftcError(f"{what} {path} leads outside the dataset folder {base} (to {resolved}); "
                        "sftc reads only files inside it")
    return resolved


def require_data_dir(data_dir: Path | None, dataset: str, layout: str) -> Path:
    if data_dir is None:
        raise SftcError(f"{dataset} is read from disk: pass --data-dir DIR, where DIR holds "
                        f"{layout}")
    if not data_dir.exists():
        raise SftcError(f"--data-dir {data_dir} does not exist; it should hold {layout}")
    return data_dir


def read_csv_rows(path: Path, required: tuple[str, ...], what: str):
    """Yield ``(line_number, {column: value} or None, problem)`` for each data row of ``path``.

    Column names are matched after stripping spaces. A row whose field count differs from the
    header's yields ``None`` and a description of the problem. Blank lines are not rows.
    """
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SftcError(f"cannot open {path}: {exc}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise SftcError(f"{path} is empty; expected {what} with a header row naming the "
                                f"columns {', '.join(required)}")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise SftcError(f"{path} line 1: the header has no column {missing[0]!r}; expected "
                                f"{what} with columns {', '.join(required)} (found: "
                                f"{', '.join(header) or 'nothing'})")
            columns = {name: header.index(name) for name in required}
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(header):
                    yield reader.line_num, None, (f"has {len(row)} fields, the header has "
                                                  f"{len(header)}")
                    continue
                yield reader.line_num, {c: row[i].strip() for c, i in columns.items()}, None
        except UnicodeDecodeError:
            raise SftcError(f"{path} is not a UTF-8 text CSV file") from None
        except csv.Error as exc:
            raise SftcError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None


def _open_image(path: Path):
    from PIL import Image

    return Image.open(path)


def _describe_failure(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text


def decode_images(items: list[tuple[Path, str]], bad: BadRows, channels: int | None = None,
                  side: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Decode images into one uint8 array ``[N, C, S, S]``; return it and the kept item numbers.

    ``items`` are ``(path, where)`` with ``where`` naming the row for messages (e.g.
    ``custom_train_dataset.csv line 7``). ``channels``: 3 (RGB), 1 (grayscale) or None (1 when
    every image is grayscale, else 3). ``side``: the stored side length; None keeps the images'
    own size when they all share one square size, and otherwise uses 128. A given ``side`` larger
    than the images' common square size keeps their own size (the per-batch resize upsamples).
    Images that must change size are resized (shorter side to S, bilinear with antialiasing) and
    centre-cropped to S x S.
    """
    from PIL import Image, UnidentifiedImageError

    failures = (OSError, UnidentifiedImageError, ValueError, SyntaxError,
                Image.DecompressionBombError)
    heads = []  # (item number, mode, size)
    for i, (path, where) in enumerate(items):
        if not path.is_file():
            bad(f"{where}: image {path} does not exist")
            continue
        try:
            with _open_image(path) as im:
                heads.append((i, im.mode, im.size))
        except failures as exc:
            bad(f"{where}: {path} is not a readable image ({_describe_failure(exc)})")
    if channels is None:
        channels = 1 if heads and all(mode in _GRAY_MODES for _, mode, _ in heads) else 3
    sizes = {size for _, _, size in heads}
    common = next(iter(sizes)) if len(sizes) == 1 else None
    if common is not None and common[0] == common[1] and (side is None or side >= common[0]):
        side = common[0]
    elif side is None:
        side = FALLBACK_SIDE
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(heads), channels, side, side), dtype=np.uint8)
    kept = []
    for i, _, _ in heads:
        path, where = items[i]
        try:
            with _open_image(path) as im:
                im.load()
                im = im.convert(mode)
                if im.size != (side, side):
                    im = _resize_center_crop(im, side)
                pixels = np.asarray(im, dtype=np.uint8)
        except failures as exc:
            bad(f"{where}: {path} does not decode ({_describe_failure(exc)})")
            continue
        out[len(kept)] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
        kept.append(i)
    return out[:len(kept)], kept


def _resize_center_crop(im, side: int):
    from PIL import Image

    w, h = im.size
    scale = side / min(w, h)
    nw, nh = max(side, round(w * scale)), max(side, round(h * scale))
    bilinear = getattr(Image, "Resampling", Image).BILINEAR
    im = im.resize((nw, nh), bilinear)
    left, top = (nw - side) // 2, (nh - side) // 2
    return im.crop((left, top, left + side, top + side))


def channel_stats(images: np.ndarray,
                  rows: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (in [0, 1] units) of ``images[rows]``, computed in chunks."""
    c = images.shape[1]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    count = 0
    for start in range(0, len(rows), 1024):
        chunk = images[rows[start:start + 1024]].astype(np.float64) / 255.0
        total += chunk.sum(axis=(0, 2, 3))
        total_sq += (chunk ** 2).sum(axis=(0, 2, 3))
        count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    if count == 0:
        return (0.0,) * c, (1.0,) * c
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
