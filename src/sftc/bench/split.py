"""The split of a benchmark or sweep: dataset, optional stratified subsets, forget set.

One forget set for every seed, as in the paper.
"""
from __future__ import annotations

from ..data import Split, load_dataset
from ..data.subsets import stratified_subset, subset_split  # noqa: F401  (re-exported)


def make_split(config) -> Split:
    """The split of a :class:`~sftc.bench.config.ReferenceConfig`: the dataset, optionally
    stratified subsets of its training images (``train_subset``, drawn with ``split_seed``), of
    its test split (``test_subset``) and of its validation split (``val_subset``; each its own
    draw from ``split_seed``), and the forget set drawn with ``forget_seed``."""
    from .config import table_options

    normalization = dict(mean=config.mean, std=config.std, normalize=config.normalize)
    loaded = load_dataset(config.dataset, data_dir=config.data_dir, image_size=config.image_size,
                          split_seed=config.split_seed, table=table_options(config),
                          **normalization)
    return subset_split(config.dataset, loaded, config.forget, forget_seed=config.forget_seed,
                        split_seed=config.split_seed, train=getattr(config, "train_subset", None),
                        test=getattr(config, "test_subset", None),
                        val=getattr(config, "val_subset", None), data_dir=config.data_dir)
