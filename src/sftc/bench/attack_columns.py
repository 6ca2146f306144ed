"""The benchmark's per-example attack columns: RMIA (online) on D_f against D_t at each row's kept
setting, calibrated on ``attack_references`` reference models.

The paper's CatBoost MIA is a population attack that sees nothing on a model that generalises
(docs/evidence.md). These columns ask the audit's question of every Table-1 row instead: does the
row's model score its forget set D_f higher than never-seen test data D_t, per example, against
reference models that did and did not train on each sample?

* **References**: :class:`sftc.bench.reference_pool.ReferencePool` with the benchmark's own
  recipe of M and M_R (architecture, epochs, learning rate, batch size, augmentation), pool seed 0:
  K models, each on a random half of train ∪ test, in complementary pairs. They are shared by
  every seed and every row (calibration of the attack, fixed like the forget set; the seeds vary the
  models that are attacked) and cached with the audit's references, so ``sftc audit`` on the same
  data and recipe reuses them.
* **Population** (RMIA's z): the validation split. The benchmark keeps every evaluated model's
  logits on it (``population`` in :mod:`sftc.bench.evaluation`), so the kept model of every row
  is attacked from its stored logits, without a checkpoint.
* **Figures** per row and seed: AUC of D_f against D_t (0.5: indistinguishable; below 0.5: D_f
  looks *less* familiar than never-seen data), TPR at 1 % FPR (None where the test split has fewer
  than 100 samples), and the Mann–Whitney p-values (one-sided "D_f higher", two-sided).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import distributed
from ..errors import SftcError
from ..metrics.attacks import (ALPHA, Significance, decide, mann_whitney, rmia, roc_figures,
                               true_class_log_prob)
from .progress import Progress, Unit
from .reference_pool import ReferencePool, ReferenceRecipe, half_masks

#: The false-positive rate of the TPR column.
ATTACK_FPR = 0.01
#: The pool's seed (halves and reference training seeds): fixed, shared by every benchmark.
POOL_SEED = 0


class AttackColumns:
    """RMIA online for the benchmark's rows (or any models of one split: :meth:`for_recipe`);
    inactive when ``config.attack_references`` is 0."""

    def __init__(self, config, split, cache_dir, *, device_name: str,
                 recipe: ReferenceRecipe | None = None, progress: bool = False, accel=None):
        self.config = config
        self.split = split
        self.references = int(getattr(config, "attack_references", 0) or 0)
        self._recipe = recipe
        self._progress = progress
        self._accel = accel
        self._pool: ReferencePool | None = None
        self._cache_dir = cache_dir
        self._device_name = device_name
        self._refs = None
        if self.active:
            from .audit import check_split

            check_split(split)      # a split the references cannot serve: one line, before any run

    @property
    def active(self) -> bool:
        return self.references > 0

    @classmethod
    def for_recipe(cls, split, recipe: ReferenceRecipe, references: int, cache_dir=None, *,
                   device_name: str = "auto", progress: bool = True,
                   accel=None) -> "AttackColumns":
        """The attack for models of ``split`` whose original was trained with ``recipe``
        (``progress``: the pool's progress bar while references train; ``accel``: the engine's
        speed options for training them, None: auto)."""
        from types import SimpleNamespace

        return cls(SimpleNamespace(attack_references=references, train_epochs=recipe.epochs),
                   split, cache_dir, device_name=device_name, recipe=recipe, progress=progress,
                   accel=accel)

    def recipe(self) -> ReferenceRecipe:
        if self._recipe is not None:
            return self._recipe
        c = self.config
        return ReferenceRecipe(c.model, int(c.train_epochs), float(c.train_lr), int(c.batch_size),
                               bool(c.augment), source="the benchmark's recipe of M and M_R")

    def pool(self) -> ReferencePool:
        if self._pool is None:
            self._pool = ReferencePool(self.split, self.recipe(), cache_dir=self._cache_dir,
                                       seed=POOL_SEED, device=self._device_name,
                                       progress=self._progress, accel=self._accel)
        return self._pool

    def _pair_cached(self, pair: int) -> bool:
        pool = self.pool()
        masks = half_masks(len(pool.pool), self.references, POOL_SEED)
        return all(pool.lookup(pool.key(pool.key_inputs(k, masks[k]))) is not None
                   for k in (2 * pair, 2 * pair + 1))

    def units(self) -> list[Unit]:
        """One progress unit per pair of reference models (done when cached)."""
        if not self.active:
            return []
        weight = self.config.train_epochs * len(self.pool().pool)   # two models on a half each
        return [Unit(f"attack-ref:{pair}", "train",
                     f"train attack references {2 * pair}-{2 * pair + 1}", weight,
                     done=self._pair_cached(pair))
                for pair in range(self.references // 2)]

    def prepare(self, progress: Progress | None = None) -> None:
        """Train (or load) the references, a pair at a time (with the benchmark's ``progress``;
        without one, the pool's own progress bar), and their signals. Under torchrun every rank
        calls it, and the missing references are trained at once, spread over the ranks."""
        if not self.active or self._refs is not None:
            return
        pool = self.pool()
        if progress is not None and not distributed.active():   # torchrun: all at once, spread
            for pair in range(self.references // 2):
                key = f"attack-ref:{pair}"
                progress.start(key)
                cached = self._pair_cached(pair)
                pool.get(2 * pair + 2)         # references 0 .. 2·pair + 1 (earlier pairs cached)
                progress.finish(key, measured=not cached)
        refs = pool.get(self.references)
        labels = self.split.data.labels.cpu()[refs.index]
        self._refs = refs
        self._logp = true_class_log_prob(refs.logits, labels)
        self._cols = {"forget": refs.columns(self.split.forget.cpu()),
                      "test": refs.columns(self.split.test.cpu()),
                      "population": refs.columns(self.split.val.cpu())}

    def metrics(self, logits: dict[str, torch.Tensor]) -> dict:
        """The attack's figures for one model from its logits on forget, test and population."""
        if not self.active:
            return {}
        if self._refs is None:
            raise RuntimeError("AttackColumns.prepare() must run before metrics()")
        if "population" not in logits:
            raise SftcError("these stored logits have no population (validation) set: they were "
                            "written without attack columns; run the benchmark into a new --out")
        labels = self.split.data.labels.cpu()
        own = {name: true_class_log_prob(logits[name], labels[idx.cpu()])
               for name, idx in (("forget", self.split.forget), ("test", self.split.test),
                                 ("population", self.split.val))}
        pop = self._cols["population"]
        scores = {}
        for name in ("forget", "test"):
            cols = self._cols[name]
            scores[name] = rmia(own[name], self._logp[:, cols], self._refs.in_mask[:, cols],
                                own["population"], self._logp[:, pop])
        figures = roc_figures(scores["forget"], scores["test"], (ATTACK_FPR,))
        sig = mann_whitney(scores["forget"], scores["test"])
        tpr = figures["tpr_at_fpr"].get(f"{ATTACK_FPR:g}")
        return {"rmia_auc": float(figures["auc"]), "rmia_tpr": tpr,
                "rmia_p_greater": sig.p_greater, "rmia_p_less": sig.p_less,
                "rmia_p_two_sided": sig.p_two_sided,
                "rmia_mean_score_forget": float(np.mean(scores["forget"])),
                "rmia_mean_score_test": float(np.mean(scores["test"])),
                "rmia_references": self.references}

    def model_metrics(self, model, device) -> dict:
        """:meth:`metrics` of a model itself (its logits on forget, test and population)."""
        from ..engine import predict_logits
        from ..metrics.evaluate import on_device

        model = on_device(model, device)
        logits = {name: predict_logits(model, self.split.data, idx.to(device), device).float().cpu()
                  for name, idx in (("forget", self.split.forget), ("test", self.split.test),
                                    ("population", self.split.val))}
        return self.metrics(logits)

    def describe(self) -> dict | None:
        """What the references were (for the report): count, recipe, pool, cache entries."""
        if not self.active or self._refs is None:
            return None
        return {"attack": "rmia-online", "references": self.references,
                "recipe": self.recipe().key_dict(), "pool": "train ∪ test",
                "pool_size": self._refs.n_pool, "population": "validation",
                "population_size": len(self.split.val), "fpr": ATTACK_FPR,
                "cache_entries": [e["entry"] for e in self._refs.entries]}


def _significance(figures: dict) -> Significance:
    """The Mann–Whitney p-values of a record; a record without ``rmia_p_less`` (written before it
    was kept) has it restored where the verdict needs it: when the two-sided p is not the
    doubled ``p_greater``, it is the doubled ``p_less``."""
    greater, two = figures["rmia_p_greater"], figures["rmia_p_two_sided"]
    less = figures.get("rmia_p_less")
    if less is None:
        less = two / 2 if greater > (two / 2) * (1 + 1e-9) else 1.0
    return Significance(greater, less, two)


def verdict(original: dict, target: dict, alpha: float = ALPHA) -> str | None:
    """``sftc audit``'s verdict on ``target`` from the attack's figures (:meth:`AttackColumns.
    metrics`) on the original and on the target: ``forgotten``, ``not-forgotten (remembered)``,
    ``not-forgotten (over-forgotten)`` or ``inconclusive``; None without the figures."""
    keys = ("rmia_p_greater", "rmia_p_two_sided")
    if any(original.get(k) is None for k in keys) or any(target.get(k) is None for k in keys):
        return None
    result = decide(_significance(original), _significance(target), alpha)
    return result.verdict + (f" ({result.direction})" if result.direction else "")
