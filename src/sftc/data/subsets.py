"""Stratified subsets of a loaded dataset's training, test and validation parts, and the split
carved from them: the memorising settings (a few hundred or thousand training images) on the
command line, in the API and in the benchmark alike."""
from __future__ import annotations

from dataclasses import replace

import torch

from ..errors import SftcError
from .registry import LoadedDataset, dataset_info, split_loaded
from .split import Split

#: Offsets of the generator seeds of the test and validation subsets from ``split_seed`` (the
#: training subset uses ``split_seed`` itself).
SEED_OFFSET = {"train": 0, "test": 1, "val": 2}
#: Forget specifications that draw from whatever training set they are given (a ``file:`` or a
#: dataset's protocol names rows of the full training set, which a subset renumbers).
SUBSET_SPECS = ("random:", "classes:", "first:")


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


def subset_split(name: str, loaded: LoadedDataset, forget, *, forget_seed: int = 0,
                 split_seed: int = 0, train: int | None = None, test: int | None = None,
                 val: int | None = None, data_dir=None,
                 train_origin: str = "--train-subset") -> Split:
    """The split of ``loaded`` with stratified subsets of ``train``, ``test`` and ``val`` images
    (each its own draw from ``split_seed``; None: the whole part) and the forget set ``forget``
    drawn with ``forget_seed``. The sizes are kept on the split (``split.subsets``) so that a
    model's record can say what it was trained on. Each class keeps its share, rounded (at least
    one), so a subset can differ from ``size`` by a few images; the split's parts have the exact
    counts. ``train_origin`` names where ``train`` came from, for the messages."""
    sizes = {"train": train, "test": test, "val": val}
    what = {"train": "training", "test": "test", "val": "validation"}
    for part, size in sizes.items():
        if size is None:
            continue
        if size < 2:
            raise SftcError(f"--{part}-subset must be at least 2 images, got {size}")
        available = len(getattr(loaded, part))
        if size > available:
            raise SftcError(f"--{part}-subset {size} is more than the {available} {what[part]} "
                            f"images of {name}; drop --{part}-subset to use them all, or give "
                            f"at most {available}")
    labels, classes = loaded.data.labels, loaded.data.num_classes
    for part in ("test", "val"):
        if sizes[part]:
            loaded = replace(loaded, **{part: stratified_subset(
                getattr(loaded, part), labels, sizes[part], classes,
                split_seed + SEED_OFFSET[part])})
    if not train:
        split = split_loaded(name, loaded, forget, seed=forget_seed, data_dir=data_dir)
    else:
        spec = forget or loaded.default_forget or dataset_info(name).default_forget
        if not isinstance(spec, str) or not spec.startswith(SUBSET_SPECS):
            fix = "drop --train-subset or change --forget" if train_origin == "--train-subset" \
                else "give such a --forget"
            raise SftcError(f"{train_origin} needs a forget set drawn from the subset (random:..., "
                            f"classes:... or first:...: a subset renumbers the training rows), not "
                            f"{spec if isinstance(spec, str) else 'a fixed index set'}; {fix}")
        indices = stratified_subset(loaded.train, labels, train, classes, split_seed)
        split = Split.create(loaded.data, indices, loaded.val, loaded.test, spec,
                             seed=forget_seed)
    given = {part: size for part, size in sizes.items() if size}
    split.subsets = given or None
    return split
