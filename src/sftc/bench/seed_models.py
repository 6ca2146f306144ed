"""The original M and the oracle M_R of each seed of a benchmark or sweep, as typed objects
(the audit's reference models are :mod:`sftc.bench.reference_pool`'s).

Their accuracies, logits and training times (persisted in the store), and M itself while
unlearning runs still need it; the models come from :mod:`sftc.bench.cache`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..codeprint import combine, metrics_code, training_code
from ..recipes import TrainingRecipe
from .cache import TrainSpec, get_or_train, lookup
from .evaluation import accuracies, member_sample, model_logits
from .progress import Progress, Unit
from .store import Store

ROLES = (("original", "train", "M"), ("oracle", "retain", "M_R"))   # role, subset, symbol


@dataclass
class SeedModels:
    """M and M_R of one seed. ``acc`` and ``logits`` are keyed by role (``original``, ``oracle``);
    the logits by set (``forget``, ``test``, ``members``)."""

    seed: int
    acc: dict[str, dict]
    logits: dict[str, dict[str, torch.Tensor]]
    train_seconds: float
    retrain_seconds: float
    original: nn.Module | None = None   # M itself: loaded only while unlearning runs remain

    def release(self) -> None:
        """Free the model; its logits and accuracies are kept."""
        self.original = None


class OriginalsAndOracles:
    """The reference models of a benchmark or sweep, from the cache (trained once) and the store."""

    def __init__(self, config, split, store: Store, cache_dir, *, device_name: str,
                 device: torch.device, progress: bool = True, log=None):
        self.config = config
        self.split = split
        self.store = store
        self.cache_dir = cache_dir
        self.device_name = device_name
        self.device = device
        self.progress_enabled = progress
        self.log = log or (lambda text: None)
        self._refs: dict[int, SeedModels] = {}
        self._members: dict[int, torch.Tensor] = {}
        #: the code of a stored seed-S.json: the models' training and their evaluation
        self.code = combine(training_code(config.model), metrics_code())

    def spec(self, subset: str, seed: int) -> TrainSpec:
        c = self.config
        recipe = TrainingRecipe(c.model, c.train_epochs, c.train_lr, c.batch_size, c.augment)
        return TrainSpec(recipe, subset, seed)

    def members(self, seed: int) -> torch.Tensor:
        """The MIA's member sample of ``seed`` (also the retain set the runs are evaluated on)."""
        if seed not in self._members:
            self._members[seed] = member_sample(self.split, seed)
        return self._members[seed]

    def units(self, seed: int) -> list[Unit]:
        """Progress units: training M and M_R of ``seed`` (done when stored or cached)."""
        stored = self.store.read_result(self.store.reference_path(seed), self.code) is not None
        units = []
        for role, subset, symbol in ROLES:
            done = stored or lookup(self.cache_dir, self.spec(subset, seed), self.split,
                                   self.device_name) is not None
            units.append(Unit(f"ref:{role}:{seed}", "train", f"train {symbol} seed {seed}",
                              self.config.train_epochs * len(self.split.indices(subset)),
                              done=done))
        return units

    def get(self, seed: int, need_model: bool = False,
            progress: Progress | None = None) -> SeedModels:
        """M and M_R of ``seed`` (with M itself if ``need_model``), training what is missing."""
        ref = self._refs.get(seed)
        if ref is not None and (ref.original is not None or not need_model):
            return ref
        path = self.store.reference_path(seed)
        members = self.members(seed)
        stored = self.store.read_result(path, self.code)
        if stored is not None and not need_model:
            ref = SeedModels(seed, stored["acc"], self.store.load_logits(path.with_suffix(".pt")),
                                 stored["train_seconds"], stored["retrain_seconds"])
            self._refs[seed] = ref
            return ref
        models, info = {}, {}
        for role, subset, _ in ROLES:
            key = f"ref:{role}:{seed}"
            if progress:
                progress.start(key)
            found = get_or_train(self.cache_dir, self.spec(subset, seed), self.split,
                                 device=self.device_name, progress=self.progress_enabled,
                                 log=lambda text: say(progress, text, self.log))
            if progress:
                progress.finish(key, measured=not found.cached)
            models[role] = found.model
            info[role] = {"seconds": found.seconds, "cached": found.cached, "key": found.key,
                          "cache_entry": str(found.path), "history": found.history}
        population = bool(getattr(self.config, "attack_references", 0))
        logits = {role: model_logits(m, self.split, members, self.device, population)
                  for role, m in models.items()}
        acc = {role: accuracies(logits[role], self.split, members) for role in models}
        ref = SeedModels(seed, acc, logits, info["original"]["seconds"],
                             info["oracle"]["seconds"], original=models["original"])
        if stored is None:
            self.store.save_logits(path.with_suffix(".pt"), logits)
            self.store.write_result(path, {"seed": seed, "acc": acc,
                                           "train_seconds": ref.train_seconds,
                                           "retrain_seconds": ref.retrain_seconds, "models": info,
                                           "member_count": int(len(members))}, self.code)
        self._refs[seed] = ref
        return ref


def say(progress: Progress | None, text: str, log) -> None:
    """One line above the progress display when it is shown, else to ``log``."""
    if progress is not None and not progress.bar.disable:
        progress.write(text)
    else:
        log(text)
