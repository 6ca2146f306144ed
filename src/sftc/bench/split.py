"""The split of a benchmark or sweep: dataset, optional stratified training subset, forget set.

One forget set for every seed, as in the paper.
"""
from __future__ import annotations

import torch

from ..data import Split, dataset_info, load_dataset, load_split
from ..errors import SftcError


def make_split(config) -> Split:
    """The split of a :class:`~sftc.bench.config.ReferenceConfig`: the dataset, optionally a
    stratified subset of its training images (``train_subset``: the same share of every class,
    drawn with ``split_seed``), and the forget set drawn with ``forget_seed``."""
    normalization = dict(mean=config.mean, std=config.std, normalize=config.normalize)
    if not getattr(config, "train_subset", None):
        return load_split(config.dataset, forget=config.forget, data_dir=config.data_dir,
                          image_size=config.image_size, seed=config.forget_seed,
                          split_seed=config.split_seed, **normalization)
    loaded = load_dataset(config.dataset, data_dir=config.data_dir, image_size=config.image_size,
                          split_seed=config.split_seed, **normalization)
    spec = (config.forget or getattr(loaded, "default_forget", None)
            or dataset_info(config.dataset).default_forget)
    if not isinstance(spec, str) or not spec.startswith(("random:", "classes:")):
        raise SftcError(f"--train-subset needs a forget set drawn from the subset (random:... or "
                        f"classes:...), not {spec if isinstance(spec, str) else 'a fixed index set'}"
                        "; drop --train-subset or change --forget")
    train = loaded.train
    if config.train_subset < len(train):
        labels = loaded.data.labels[train]
        gen = torch.Generator().manual_seed(config.split_seed)
        order = torch.randperm(len(train), generator=gen)
        share = config.train_subset / len(train)
        keep = []
        for c in range(loaded.data.num_classes):
            members = order[labels[order] == c]
            keep.append(members[:max(1, round(share * len(members)))])
        train = torch.sort(train[torch.cat(keep)]).values
    return Split.create(loaded.data, train, loaded.val, loaded.test, spec, seed=config.forget_seed)
