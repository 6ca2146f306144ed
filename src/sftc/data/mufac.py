"""MUFAC (Machine Unlearning for Facial Age Classifier) in its released 128 x 128 layout.

``custom_korean_family_dataset_resolution_128/`` holds ``custom_{train,val,test}_dataset.csv``
(columns include ``image_path`` and ``age_class``) and the image folders ``train_images/``,
``val_images/``, ``test_images/``. ``age_class`` letters a..h are the classes 0..7. The forget set
of the MUFAC protocol, as the paper uses it, is the first 1,500 rows of the training CSV.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import SftcError
from .files import BadRows, contained, decode_images, read_csv_rows, require_data_dir
from .images import ImageData
from .registry import LoadedDataset, register_dataset

ROOT_NAME = "custom_korean_family_dataset_resolution_128"
PARTS = (("train", "custom_train_dataset.csv", "train_images"),
         ("val", "custom_val_dataset.csv", "val_images"),
         ("test", "custom_test_dataset.csv", "test_images"))
AGE_CLASSES = "abcdefgh"
#: Age groups of the letters (years), from the dataset's description.
CLASS_NAMES = ["a (0-6)", "b (7-12)", "c (13-19)", "d (20-30)", "e (31-45)", "f (46-55)",
               "g (56-66)", "h (67-80)"]
#: The paper's code feeds MUFAC images as ToTensor gives them (no Normalize).
MEAN, STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
SOURCE_URL = "https://github.com/ndb796/korean_family_dataset"
LAYOUT = (f"{ROOT_NAME}/ with custom_train_dataset.csv, custom_val_dataset.csv, "
          "custom_test_dataset.csv (columns image_path, age_class) and the folders train_images/, "
          f"val_images/, test_images/ ({ROOT_NAME}.zip, linked from {SOURCE_URL})")


def find_root(data_dir: Path) -> Path:
    if (data_dir / PARTS[0][1]).is_file():
        return data_dir
    if (data_dir / ROOT_NAME).is_dir():
        return data_dir / ROOT_NAME
    raise SftcError(f"MUFAC not found in {data_dir}: no {PARTS[0][1]} there nor a {ROOT_NAME}/ "
                    f"folder; --data-dir should hold {LAYOUT}")


@register_dataset("mufac", "MUFAC, 13,068 128x128 colour faces, 8 age groups (CSV + image folders)",
                  default_forget="first:1500", default_model="resnet18", default_image_size=128)
def load_mufac(data_dir: Path | None = None, split_seed: int = 0, image_size: int | None = None,
               skip_bad: bool = False) -> LoadedDataset:
    """Fixed split by the three CSVs (``split_seed`` plays no part); training order is the
    training CSV's row order. Images are stored at their own size (128) or, when ``image_size``
    is smaller, at that size, which saves memory."""
    root = find_root(require_data_dir(data_dir, "MUFAC", LAYOUT))
    bad = BadRows(skip_bad)
    items, labels, parts, rows = [], [], [], []
    train_total = 0
    for part, csv_name, folder in PARTS:
        csv_path, image_dir = root / csv_name, root / folder
        for needed in (csv_path, image_dir):
            if not needed.exists():
                raise SftcError(f"MUFAC file {needed} not found; {root} should hold {LAYOUT}")
        n_rows = 0
        for line, row, problem in read_csv_rows(csv_path, ("image_path", "age_class"),
                                                "a MUFAC metadata CSV"):
            row_id, n_rows = n_rows, n_rows + 1  # a skipped row still counts for first:N
            where = f"{csv_path} line {line}"
            if row is None:
                bad(f"{where}: {problem}")
                continue
            age = row["age_class"].lower()
            if len(age) != 1 or age not in AGE_CLASSES:
                bad(f"{where}: age_class {row['age_class']!r} is not one of the letters a..h")
                continue
            if not row["image_path"]:
                bad(f"{where}: image_path is empty")
                continue
            try:
                image = contained(image_dir / row["image_path"], root, f"{where}: image_path")
            except SftcError as exc:
                bad(str(exc))
                continue
            items.append((image, where))
            labels.append(AGE_CLASSES.index(age))
            parts.append(part)
            rows.append(row_id)
        if part == "train":
            train_total = n_rows
    images, kept = decode_images(items, bad, channels=3, side=image_size)
    labels_arr = np.asarray(labels, dtype=np.int64)[kept]
    parts_arr = np.asarray(parts)[kept] if kept else np.asarray([], dtype=str)
    rows_arr = np.asarray(rows, dtype=np.int64)[kept]
    for part, csv_name, _ in PARTS:
        if not (parts_arr == part).any():
            raise SftcError(f"{root / csv_name} has no readable rows; the MUFAC {part} set is "
                            "empty")
    data = ImageData(torch.from_numpy(images), torch.from_numpy(labels_arr), len(AGE_CLASSES),
                     mean=MEAN, std=STD, name="mufac", class_names=list(CLASS_NAMES))
    index = {part: torch.from_numpy(np.flatnonzero(parts_arr == part)) for part, _, _ in PARTS}
    train_rows = rows_arr[parts_arr == "train"]
    skipped_train = len(train_rows) != train_total
    return LoadedDataset(data, index["train"], index["val"], index["test"], source=str(root),
                         root=root, skipped=bad.lines,
                         train_rows=train_rows if skipped_train else None,
                         train_rows_total=train_total if skipped_train else None)
