"""FER-2013 from ``fer2013.csv`` (columns ``emotion``, ``pixels``, ``Usage``), as the paper uses it.

Training rows are the training set, PublicTest the validation set and PrivateTest the test set,
each in file order. Forget index files count Training rows in file order (row 0 is the first
Training row), which is how the paper's ``data/fer_forget_idx.npy`` is defined.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import SftcError
from .files import BadRows, is_decimal, read_csv_rows, require_data_dir
from .images import ImageData
from .registry import LoadedDataset, register_dataset

CSV_NAME = "fer2013.csv"
CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48
#: The paper's code: Normalize(0.5, 0.5) after ToTensor on the grayscale images.
MEAN, STD = (0.5,), (0.5,)
SOURCE_URL = ("https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-"
              "recognition-challenge/data")
PAPER_FORGET = "fer_forget_idx.npy"
LAYOUT = (f"{CSV_NAME} (columns emotion, pixels, Usage; fer2013.tar.gz from {SOURCE_URL} "
          "unpacks it as fer2013/fer2013.csv)")


def find_csv(data_dir: Path) -> Path:
    if data_dir.is_file():
        return data_dir
    for candidate in (data_dir / CSV_NAME, data_dir / "fer2013" / CSV_NAME,
                      data_dir / "fer" / "fer2013" / CSV_NAME):
        if candidate.is_file():
            return candidate
    raise SftcError(f"{CSV_NAME} not found in {data_dir} (nor in {data_dir / 'fer2013'}); "
                    f"--data-dir should hold {LAYOUT}")


def parse_pixels(text: str) -> tuple[np.ndarray | None, str | None]:
    """48 x 48 = 2,304 space-separated integers 0..255 -> uint8 array, or (None, problem)."""
    try:
        values = np.fromstring(text, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        values = None
    if values is not None and values.size == SIDE * SIDE and values.min() >= 0 \
            and values.max() <= 255:
        return values.astype(np.uint8), None
    tokens = text.split()
    if len(tokens) != SIDE * SIDE:
        return None, f"pixels has {len(tokens)} values, expected {SIDE * SIDE} (48 x 48)"
    for k, token in enumerate(tokens):
        if not is_decimal(token) or int(token) > 255:
            return None, f"pixel {k} is {token!r}, expected an integer 0..255"
    return None, "pixels could not be parsed"  # pragma: no cover - fromstring disagreed


@register_dataset("fer2013", "FER-2013, 35,887 48x48 grayscale faces, 7 expressions (fer2013.csv)",
                  default_forget=f"file:{PAPER_FORGET}", default_model="resnet18",
                  default_image_size=128,
                  forget_note=("the paper's FER-2013 forget set (1,826 Training rows: minors "
                               "labelled fear or sadness) is data/fer_forget_idx.npy of "
                               "https://github.com/vperifan/SFTC-Unlearn; put it in --data-dir, "
                               "or choose another with --forget"))
def load_fer2013(data_dir: Path | None = None, split_seed: int = 0,
                 skip_bad: bool = False) -> LoadedDataset:
    """Fixed split by the Usage column (``split_seed`` plays no part); seven classes."""
    path = find_csv(require_data_dir(data_dir, "FER-2013", LAYOUT))
    bad = BadRows(skip_bad)
    pixels, labels, parts, train_rows = [], [], [], []
    n_train_rows = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for line, row, problem in read_csv_rows(path, ("emotion", "pixels", "Usage"),
                                                "the FER-2013 CSV"):
            where = f"{path} line {line}"
            if row is None:
                bad(f"{where}: {problem}")
                continue
            part = USAGE.get(row["Usage"])
            if part is None:
                bad(f"{where}: Usage {row['Usage']!r} is not Training, PublicTest or PrivateTest")
                continue
            if part == "train":  # a skipped Training row still counts, so indices keep their rows
                n_train_rows += 1
            emotion = row["emotion"]
            if not is_decimal(emotion) or int(emotion) >= len(CLASSES):
                bad(f"{where}: emotion {emotion!r} is not a class 0..{len(CLASSES) - 1}")
                continue
            values, problem = parse_pixels(row["pixels"])
            if values is None:
                bad(f"{where}: {problem}")
                continue
            pixels.append(values)
            labels.append(int(emotion))
            parts.append(part)
            if part == "train":
                train_rows.append(n_train_rows - 1)
    parts_arr = np.asarray(parts)
    for part, usage in (("train", "Training"), ("val", "PublicTest"), ("test", "PrivateTest")):
        if not (parts_arr == part).any():
            raise SftcError(f"{path} has no readable {usage} rows ({part} set); FER-2013 has "
                            "Training, PublicTest and PrivateTest rows")
    images = np.stack(pixels).reshape(-1, 1, SIDE, SIDE)
    data = ImageData(torch.from_numpy(images), torch.tensor(labels, dtype=torch.long), len(CLASSES),
                     mean=MEAN, std=STD, name="fer2013", class_names=list(CLASSES))
    index = {part: torch.from_numpy(np.flatnonzero(parts_arr == part)) for part in USAGE.values()}
    skipped_train = len(train_rows) != n_train_rows
    return LoadedDataset(data, index["train"], index["val"], index["test"], source=str(path),
                         root=path.parent, skipped=bad.lines,
                         train_rows=np.asarray(train_rows) if skipped_train else None,
                         train_rows_total=n_train_rows if skipped_train else None)
