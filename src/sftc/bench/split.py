"""The split of a benchmark or sweep: dataset, optional stratified subsets, forget set.

One forget set for every seed, as in the paper.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from ..data import Split, dataset_info, load_dataset
from ..data.registry import split_loaded
from ..errors import SftcError

#: Offsets of the generator seeds of the test and validation subsets from ``split_seed`` (the
#: training subset uses ``split_seed`` itself, as it always has).
_SUBSET_SEED_OFFSET = {"test": 1, "val": 2}


def stratified_subset(indices: torch.Tensor, labels: torch.Tensor, size: int, num_classes: int,
                      seed: int) -> torch.Tensor:
    """``size`` of ``indices`` (sorted), the same share of every class (at least one per class
    present), drawn with ``seed``; all of them when ``size`` is not smaller."""
    if size >= len(indices):
        return indices
    order = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))
    share = size / len(indices)
    own = labels[indices]
    keep = []
    for c in range(num_classes):
        members = order[own[order] == c]
        if len(members):
            keep.append(members[:max(1, round(share * len(members)))])
    return torch.sort(indices[torch.cat(keep)]).values


def make_split(config) -> Split:
    """The split of a :class:`~sftc.bench.config.ReferenceConfig`: the dataset, optionally
    stratified subsets of its training images (``train_subset``, drawn with ``split_seed``), of
    its test split (``test_subset``) and of its validation split (``val_subset``; each its own
    draw from ``split_seed``), and the forget set drawn with ``forget_seed``."""
    normalization = dict(mean=config.mean, std=config.std, normalize=config.normalize)
    loaded = load_dataset(config.dataset, data_dir=config.data_dir, image_size=config.image_size,
                          split_seed=config.split_seed, **normalization)
    labels, classes = loaded.data.labels, loaded.data.num_classes
    for part in ("test", "val"):
        size = getattr(config, f"{part}_subset", None)
        if size:
            seed = config.split_seed + _SUBSET_SEED_OFFSET[part]
            loaded = replace(loaded, **{part: stratified_subset(getattr(loaded, part), labels, size,
                                                                classes, seed)})
    if not getattr(config, "train_subset", None):
        return split_loaded(config.dataset, loaded, config.forget, seed=config.forget_seed,
                            data_dir=config.data_dir)
    spec = (config.forget or getattr(loaded, "default_forget", None)
            or dataset_info(config.dataset).default_forget)
    if not isinstance(spec, str) or not spec.startswith(("random:", "classes:")):
        raise SftcError(f"--train-subset needs a forget set drawn from the subset (random:... or "
                        f"classes:...), not {spec if isinstance(spec, str) else 'a fixed index set'}"
                        "; drop --train-subset or change --forget")
    train = stratified_subset(loaded.train, labels, config.train_subset, classes,
                              config.split_seed)
    return Split.create(loaded.data, train, loaded.val, loaded.test, spec, seed=config.forget_seed)
