"""scikit-learn's handwritten digits: 1,797 8x8 images, the embedded default (no download)."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .images import ImageData
from .registry import LoadedDataset, register_dataset


@register_dataset("digits", "scikit-learn digits, 1,797 8x8 grayscale images, 10 classes (embedded)",
                  default_forget="random:0.1")
def load_digits_dataset(data_dir=None, split_seed: int = 0) -> LoadedDataset:
    """Stratified, seeded 60/20/20 split into train/val/test; pixel values 0..16 scaled to 0..255."""
    bunch = load_digits()
    images = np.clip(bunch.images * 16.0, 0, 255).round().astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    order = np.arange(len(labels))
    train, rest = train_test_split(order, test_size=0.4, stratify=labels, random_state=split_seed)
    val, test = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=split_seed)
    train_pixels = images[np.sort(train)] / 255.0
    data = ImageData(torch.from_numpy(images), torch.from_numpy(labels), 10,
                     mean=(float(train_pixels.mean()),), std=(float(train_pixels.std()),),
                     name="digits", class_names=[str(i) for i in range(10)])
    return LoadedDataset(data, torch.from_numpy(np.sort(train)), torch.from_numpy(np.sort(val)),
                         torch.from_numpy(np.sort(test)), source="sklearn.datasets.load_digits")
