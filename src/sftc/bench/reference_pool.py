"""The audit's reference models: models that never saw the forget set, retrained on D_r with the
original's recipe, each with its own seed.

Membership attacks calibrate a target model's output on a sample against models that did not
train on it (LiRA, Carlini et al., S&P 2022; RMIA, Zarifzadeh et al., ICML 2024). For an
unlearning audit the question is narrower: does the unlearned model treat D_f as a model that
*never saw D_f* does? Such models are exactly what the references are: K retrainings on D_r
(:class:`~sftc.bench.cache.TrainSpec` with subset ``retain``), which differ from one another only
by their seeds (initialisation and batch order), so

* every forget sample, and every never-seen test sample it is compared with, is OUT for every
  reference, and the references never saw D_f *as a whole* either: a request that is a group
  (one person's images, a block of rows, a class) is calibrated by models that lack the whole
  group, as the oracle does. Earlier sftc trained references on random halves of train ∪ test,
  which saw half of every group: there a retrained oracle scored a block of rows as "less
  familiar than never-seen data" (AUC 0.35-0.38 on digits ``first:300``, docs/evidence.md);
* each reference is itself a model that never saw D_f, so scoring each in turn against the
  others gives the never-seen level and spread the verdict is judged against
  (:class:`~sftc.metrics.attacks.equivalence.NeverSeen`);
* the cache never holds a model trained on a removed sample (a deletion tool must not keep the
  deleted data's influence in its own cache), and the benchmark's oracles M_R and the
  forgetting score's retrained models live in the same cache (:class:`~sftc.bench.cache.ModelCache`).

Where it pays (:func:`sftc.engine.batched.default_group_size`: a rule by device type, no clock;
on CUDA groups of 8, on the CPU one at a time) the references are trained G at a time as one
batched computation, in fixed groups aligned at multiples of G (references 0-7, 8-15, ...): a
reference's bits depend on its group and slot, which its cache key says, and never on how many
references a pool asks for. A pool of 16 reuses the entries of a pool of 8; a pool of 4 trains
the whole first group of 8 (and keeps all 8). Models that cannot be batched (dropout, streamed
data, anything ``vmap`` cannot run) are trained one at a time, and each entry records which.

The references' logits are stored beside each cached model on the queried samples: D_f, the test
split D_t (the comparison) and the validation split (RMIA's population), so a second audit of
the same request trains and evaluates nothing.
"""
from __future__ import annotations

import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import distributed
from ..codeprint import StaleCache
from ..data import Split
from ..errors import SftcError
from ..recipes import TrainingRecipe
from .cache import ModelCache, TrainSpec

ReferenceRecipe = TrainingRecipe       # the earlier name of the recipe type
#: Fewest references: the never-seen level needs three leave-one-out AUCs or more.
MIN_REFERENCES = 4


def reference_seed(seed: int, k: int) -> int:
    """The training seed of reference ``k`` (initialisation and batch order); never a small
    integer, so never the seed of a benchmark's own oracle M_R."""
    return int(np.random.SeedSequence([seed, k, 0x5EED]).generate_state(1)[0])


def check_reference_count(references) -> int:
    if isinstance(references, bool) or not isinstance(references, (int, np.integer)) \
            or references < MIN_REFERENCES:
        raise SftcError(f"--references must be a whole number {MIN_REFERENCES} or more (each is "
                        f"a model retrained without D_f; the never-seen level needs {MIN_REFERENCES}"
                        f" or more), got {references!r}")
    return int(references)


def query_index(split: Split) -> torch.Tensor:
    """The samples the references are evaluated on: D_f, D_t, then the validation split."""
    return torch.cat([split.forget.cpu(), split.test.cpu(), split.val.cpu()])


@dataclass
class ReferenceLogits:
    """The references' logits on the queried samples.

    ``index``: dataset indices of the columns; ``logits``: float32 [K, len(index), C]. No
    reference trained on any column (``in_mask`` is all False)."""

    index: torch.Tensor
    logits: torch.Tensor
    entries: list[dict] = field(default_factory=list)

    @property
    def in_mask(self) -> np.ndarray:
        return np.zeros(tuple(self.logits.shape[:2]), dtype=bool)

    @property
    def count(self) -> int:
        return int(self.logits.shape[0])

    def columns(self, dataset_indices: torch.Tensor) -> np.ndarray:
        """Column positions of ``dataset_indices`` (each must be a queried sample)."""
        lookup = {int(v): i for i, v in enumerate(self.index.tolist())}
        try:
            return np.array([lookup[int(v)] for v in dataset_indices.tolist()], dtype=np.int64)
        except KeyError as missing:
            raise SftcError(f"sample {missing} is not among the references' queried samples "
                            "(forget, test and validation)") from None

    def subset(self, rows) -> "ReferenceLogits":
        """The references ``rows`` only (e.g. all but one, to score that one against the rest)."""
        rows = list(rows)
        return ReferenceLogits(self.index, self.logits[rows], [self.entries[r] for r in rows])


class ReferencePool:
    """K references for ``split`` trained with ``recipe``, from the cache or trained now."""

    def __init__(self, split: Split, recipe: TrainingRecipe, *, cache_dir=None, seed: int = 0,
                 device: str = "auto", progress: bool = True, accel=None,
                 group: int | None = None):
        if group is not None and (isinstance(group, bool) or not isinstance(group, int)
                                  or group < 1):
            raise SftcError(f"a reference group is a whole number of models 1 or more (1: one at "
                            f"a time), got {group!r}")
        self._group_asked = group     # None: the default rule for the device
        self._group: int | None = None
        self.batch_refused: str | None = None
        self.split = split
        self.recipe = recipe
        self.cache = ModelCache(cache_dir)
        self.seed = seed
        self.device = device
        self.progress = progress
        self.accel = accel      # the engine's speed options (None: the default rule)
        self.index = query_index(split)

    @property
    def cache_dir(self):
        return self.cache.root

    @property
    def group(self) -> int:
        """How many references train together (1: one at a time): the size asked for, else
        the device's rule; 1 when this recipe's models cannot be batched (``batch_refused``
        says why)."""
        if self._group is None:
            from ..engine.batched import default_group_size
            from .grouped import batch_refusal

            size = self._group_asked or default_group_size(self.device)
            if size > 1:
                self.batch_refused = batch_refusal(
                    self.recipe, self.split, [reference_seed(self.seed, k) for k in range(2)],
                    self.device, self.accel)
            self._group = 1 if self.batch_refused else size
        return self._group

    def members(self, k: int) -> range:
        """The references trained with reference ``k`` (its fixed group)."""
        start = k // self.group * self.group
        return range(start, start + self.group)

    def spec(self, k: int) -> TrainSpec:
        seed = reference_seed(self.seed, k)
        if self.group == 1:
            return TrainSpec(self.recipe, "retain", seed)
        seeds = tuple(reference_seed(self.seed, j) for j in self.members(k))
        return TrainSpec(self.recipe, "retain", seed, seeds)

    def cached(self, k: int) -> bool:
        return self.cache.lookup(self.spec(k), self.split, self.device, self.accel) is not None

    def _one(self, k: int) -> tuple[torch.Tensor, dict]:
        """Reference ``k`` (with its group when batched), from the cache or trained now."""
        found = self.cache.get(self.spec(k), self.split, device=self.device, accel=self.accel,
                               log=lambda text: None)   # stale entries: said once, in get()
        return self._entry(k, found)

    def _entry(self, k: int, found) -> tuple[torch.Tensor, dict]:
        """Reference ``k``'s logits on the queried samples, and what its record says."""
        logits, _ = self.cache.logits(found, self.split, self.index, self.device)
        entry = {"reference": k, "seed": found.spec.seed, "key": found.key,
                 "entry": str(found.path), "cached": found.cached, "seconds": found.seconds,
                 "batched": self.group}
        if self.batch_refused:
            entry["batch_refused"] = self.batch_refused
        return logits, entry

    def _train(self, k: int) -> dict:
        """Train (or load) reference ``k`` with its whole group: {reference: Cached}."""
        members = list(self.members(k))
        found = self.cache.get_many([self.spec(j) for j in members], self.split,
                                    device=self.device, accel=self.accel, log=lambda text: None)
        return dict(zip(members, found))

    def _say_stale(self, missing: list[int]) -> None:
        """One warning for the missing references the cache holds only as made by other code."""
        stale = [self.cache.stale(self.spec(k), self.split, self.device, self.accel)
                 for k in missing]
        stale = [found for found in stale if found]
        if stale:
            changed = sorted({c for found in stale for _, changes in found for c in changes})
            warnings.warn(StaleCache(
                f"{len(stale)} audit reference model(s) in {self.cache.root / 'models'} were "
                f"trained by other code (changed: {', '.join(changed[:4])}); training them "
                "again"), stacklevel=3)

    def get(self, references: int) -> ReferenceLogits:
        """The logits of references 0 .. ``references`` − 1, training those the cache lacks
        (with a progress bar: models done, rate, ETA). Under torchrun every rank must call it:
        each trains its share of the missing references, and all return every reference."""
        from tqdm.auto import tqdm

        references = check_reference_count(references)
        missing = [k for k in range(references) if not self.cached(k)]
        self._say_stale(missing)
        # whole groups (a model's bits depend on its group): the first missing member of each
        groups = list(dict.fromkeys(self.members(k)[0] for k in missing))
        spread = distributed.active()   # under torchrun: each rank trains its share of groups
        share = distributed.mine(distributed.share(groups)) if spread else groups
        bar = tqdm(total=references, initial=references - len(missing), unit="model",
                   desc="reference models", dynamic_ncols=True,
                   disable=not self.progress or not missing or not distributed.is_main())
        found: dict[int, tuple] = {}
        from ..phase import advance, phase

        try:
            with phase("reference models", references, "trained",
                       initial=references - len(missing)) if missing else nullcontext():
                for first in share:
                    wanted = [k for k in self.members(first) if k in missing]
                    bar.set_postfix_str(f"training #{first}" if self.group == 1 else
                                        f"training #{first}-{first + self.group - 1} together")
                    trained = self._train(first)
                    for k in wanted:
                        found[k] = self._entry(k, trained[k])
                    bar.update(len(wanted))
                    advance(len(wanted))
        finally:
            bar.close()
        if spread:
            distributed.barrier("training the audit's reference models")
        for k in range(references):
            if k not in found:
                logits, entry = self._one(k)
                found[k] = (logits, {**entry, "cached": k not in missing})
        entries = [found[k][1] for k in range(references)]
        logits = torch.stack([found[k][0] for k in range(references)])
        return ReferenceLogits(self.index, logits, entries)
