"""Writers of tiny data sets in the exact on-disk formats the loaders read (for the tests).

Each writer returns what it wrote (pixels and labels in file order) so tests can check that a
loader maps rows, labels and forget indices to the right samples.
"""
from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def write_cifar(root: Path, per_batch: int = 20, n_test: int = 20, seed: int = 0) -> dict:
    """``root/cifar-10-batches-py/`` with five training batches, test_batch and batches.meta.

    Batches alternate between pickle protocol 2 (as Python 3 writes it: bytes via _codecs) and
    protocol 4; keys are bytes, as in the official files.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for i, name in enumerate(CIFAR_BATCHES + ["test_batch"]):
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [int(v) for v in (np.arange(n) + i) % 10]
        batch = {b"batch_label": name.encode(), b"labels": y, b"data": data,
                 b"filenames": [f"{name}_{k}.png".encode() for k in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2 if i % 2 else 4))
        images.append(data.reshape(-1, 3, 32, 32))
        labels += y
    meta = {b"label_names": [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer",
                                                  "dog", "frog", "horse", "ship", "truck")],
            b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"folder": folder, "images": np.concatenate(images), "labels": np.asarray(labels)}


def fer_pixels(value_seed: int) -> str:
    rng = np.random.default_rng(value_seed)
    return " ".join(str(int(v)) for v in rng.integers(0, 256, 48 * 48))


def write_fer(path: Path, usages=(("Training", 21), ("PublicTest", 7), ("PrivateTest", 7)),
              interleave: bool = True) -> dict:
    """A fer2013.csv; rows of the three Usages interleaved (as in no real file, to test order)."""
    rows = []
    for usage, n in usages:
        rows += [(usage, k) for k in range(n)]
    if interleave:
        rows = rows[::3] + rows[1::3] + rows[2::3]
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {"rows": [], "train_pixels": [], "train_labels": []}
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for i, (usage, _) in enumerate(rows):
            label = i % 7
            pixels = fer_pixels(i)
            writer.writerow([label, pixels, usage])
            out["rows"].append((label, pixels, usage))
            if usage == "Training":
                out["train_pixels"].append(np.array(pixels.split(), dtype=np.uint8))
                out["train_labels"].append(label)
    return out


def append_csv_line(path: Path, line: str) -> None:
    with open(path, "a", newline="") as fh:
        fh.write(line + "\r\n")


def solid_color(i: int) -> tuple[int, int, int]:
    return ((37 * i) % 256, (91 * i + 50) % 256, (13 * i + 200) % 256)


def write_mufac(root: Path, sizes=(("train", 16), ("val", 6), ("test", 6)), side: int = 16) -> dict:
    """``root/custom_korean_family_dataset_resolution_128/`` with the three CSVs (pandas-style,
    with an unnamed index column) and solid-colour JPEGs, one colour per row."""
    base = root / "custom_korean_family_dataset_resolution_128"
    out = {"base": base}
    counter = 0
    for part, n in sizes:
        folder = base / f"{part}_images"
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for k in range(n):
            name = f"F{counter:04d}_AGE_D_18_{'abcdefgh'[counter % 8]}{k}.jpg"
            Image.new("RGB", (side, side), solid_color(counter)).save(folder / name, quality=95)
            rows.append((k, f"F{counter:04d}", f"P{counter}", "abcdefgh"[counter % 8], name))
            counter += 1
        with open(base / f"custom_{part}_dataset.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["", "family_id", "person_id", "age_class", "image_path"])
            writer.writerows(rows)
        out[part] = rows
    return out


def write_imagefolder(root: Path, classes=("cat", "dog", "owl"), per_class: int = 10,
                      held: tuple[str, ...] = ("val", "test"), held_per_class: int = 3,
                      side: int = 12, gray: bool = False, nested_train: bool = True) -> dict:
    """Class sub-folders of PNGs, under ``train/`` (plus the ``held`` sibling folders) or directly
    under ``root`` (``nested_train=False``)."""
    mode = "L" if gray else "RGB"
    out = {}
    counter = 0
    parts = [("train", per_class)] + [(h, held_per_class) for h in held]
    for part, n in parts:
        folder = root / part if nested_train else root
        names = []
        for c in classes:
            (folder / c).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                color = solid_color(counter)
                Image.new(mode, (side, side), color[0] if gray else color).save(
                    folder / c / f"img_{k:02d}.png")
                names.append(f"{c}/img_{k:02d}.png")
                counter += 1
        out[part] = names
        if not nested_train:
            break
    return out


def write_idx(path: Path, array) -> None:
    """One gzipped idx file (the MNIST format): magic, big-endian dims, uint8 data."""
    import gzip

    array = np.asarray(array)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def write_fashion_mnist(root: Path, n_train: int = 100, n_test: int = 20, seed: int = 0) -> Path:
    """The four Fashion-MNIST idx files (28 x 28, random pixels, labels cycling 0..9)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(root / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    write_idx(root / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)
    return root
