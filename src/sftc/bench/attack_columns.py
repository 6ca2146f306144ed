"""The benchmark's per-example attack columns: ``sftc audit``'s evidence for every Table-1 row at
its kept setting (and for any models of one split: :meth:`AttackColumns.for_recipe`, the demo).

The paper's CatBoost MIA is a population attack that sees nothing on a model that generalises
(docs/evidence.md). These columns ask the audit's question of every row instead, with the same
comparison and the same verdict (:class:`sftc.bench.evidence.Comparison`):

* **References**: :class:`sftc.bench.reference_pool.ReferencePool` with the benchmark's own
  recipe of M and M_R: ``attack_references`` models retrained on D_r, pool seed 0, in the one
  model cache (``sftc audit`` on the same data and recipe reuses them). Shared by every seed and
  every row (the calibration of the attack, fixed like the forget set; the seeds vary the models
  that are attacked).
* **Figures** per row and seed, from the logits the benchmark keeps (D_f, D_t and the validation
  split, RMIA's population): the deciding attack's AUC of D_f against never-seen test samples of
  its class and difficulty, its interval, the never-seen level, TPR at 1 % FPR against the whole
  test split, and the class test's counts for a class-level request.
* **Verdict** per row and seed against that seed's original (:func:`AttackColumns.verdict`).
"""
from __future__ import annotations

from .. import distributed
from ..errors import SftcError
from ..recipes import TrainingRecipe
from .evidence import Comparison, EvidenceSettings, ModelFigures
from .progress import Progress, Unit
from .reference_pool import ReferencePool

#: The false-positive rate of the TPR column.
ATTACK_FPR = 0.01
#: The pool's seed (the references' training seeds): fixed, shared by every benchmark.
POOL_SEED = 0


class AttackColumns:
    """The audit's evidence for the benchmark's rows; inactive when ``attack_references`` is 0."""

    def __init__(self, config, split, cache_dir, *, device_name: str,
                 recipe: TrainingRecipe | None = None, progress: bool = False, accel=None,
                 settings: EvidenceSettings | None = None):
        self.config = config
        self.split = split
        self.references = int(getattr(config, "attack_references", 0) or 0)
        attack = getattr(config, "attack", None) or EvidenceSettings.attack
        self.settings = (settings or EvidenceSettings(attack, fprs=(ATTACK_FPR,))).check()
        self._recipe = recipe
        self._progress = progress
        self._accel = accel
        self._pool: ReferencePool | None = None
        self._cache_dir = cache_dir
        self._device_name = device_name
        self.comparison: Comparison | None = None
        if self.active:
            from .audit import check_split

            check_split(split)      # a split the references cannot serve: one line, before any run

    @property
    def active(self) -> bool:
        return self.references > 0

    @classmethod
    def for_recipe(cls, split, recipe: TrainingRecipe, references: int, cache_dir=None, *,
                   device_name: str = "auto", progress: bool = True,
                   accel=None) -> "AttackColumns":
        """The attack for models of ``split`` whose original was trained with ``recipe``."""
        from types import SimpleNamespace

        return cls(SimpleNamespace(attack_references=references, train_epochs=recipe.epochs),
                   split, cache_dir, device_name=device_name, recipe=recipe, progress=progress,
                   accel=accel)

    def recipe(self) -> TrainingRecipe:
        if self._recipe is not None:
            return self._recipe
        c = self.config
        return TrainingRecipe(c.model, int(c.train_epochs), float(c.train_lr), int(c.batch_size),
                              bool(c.augment), source="the benchmark's recipe of M and M_R")

    def pool(self) -> ReferencePool:
        if self._pool is None:
            self._pool = ReferencePool(self.split, self.recipe(), cache_dir=self._cache_dir,
                                       seed=POOL_SEED, device=self._device_name,
                                       progress=self._progress, accel=self._accel)
        return self._pool

    def units(self) -> list[Unit]:
        """One progress unit per reference model (done when cached)."""
        if not self.active:
            return []
        weight = self.config.train_epochs * len(self.split.retain)
        pool = self.pool()
        return [Unit(f"attack-ref:{k}", "train", f"train attack reference {k}", weight,
                     done=pool.cached(k)) for k in range(self.references)]

    def prepare(self, progress: Progress | None = None) -> None:
        """Train (or load) the references, one at a time (with the benchmark's ``progress``;
        without one, the pool's own progress bar), and build the comparison. Under torchrun
        every rank calls it, and the missing references are trained at once, spread over the
        ranks."""
        if not self.active or self.comparison is not None:
            return
        pool = self.pool()
        if progress is not None and not distributed.active():   # torchrun: all at once, spread
            for k in range(self.references):
                key = f"attack-ref:{k}"
                progress.start(key)
                cached = pool.cached(k)
                pool._one(k)
                progress.finish(key, measured=not cached)
        refs = pool.get(self.references)
        self.comparison = Comparison(self.split, refs, self.settings)

    def figures(self, logits: dict) -> ModelFigures:
        if self.comparison is None:
            raise RuntimeError("AttackColumns.prepare() must run before figures()")
        if "population" not in logits:
            raise SftcError("these stored logits have no population (validation) set: they were "
                            "written without attack columns; run the benchmark into a new --out")
        return self.comparison.figures(logits["forget"], logits["test"], logits["population"])

    def metrics(self, logits: dict) -> dict:
        """The columns of one model from its logits on forget, test and population."""
        if not self.active:
            return {}
        f = self.figures(logits)
        i = f.interval
        tpr = f.unmatched["tpr_at_fpr"].get(f"{ATTACK_FPR:g}")
        return {"rmia_auc": f.auc, "rmia_low": i.low, "rmia_high": i.high, "rmia_level": i.level,
                "rmia_band": self.comparison.band.certify,
                "rmia_tpr": tpr, "rmia_auc_unmatched": f.unmatched["auc"],
                "rmia_p_greater": f.unmatched["p_greater"], "rmia_p_less": f.unmatched["p_less"],
                "rmia_p_two_sided": f.unmatched["p_two_sided"],
                "rmia_mean_score_forget": f.mean_score_forget,
                "rmia_mean_score_test": f.mean_score_test, "rmia_references": self.references,
                "rmia_figures": f.to_dict()}

    def model_metrics(self, model, device) -> dict:
        """:meth:`metrics` of a model itself (its logits on forget, test and population)."""
        from ..engine import predict_logits
        from ..metrics.evaluate import on_device

        model = on_device(model, device)
        logits = {name: predict_logits(model, self.split.data, idx.to(device), device).float().cpu()
                  for name, idx in (("forget", self.split.forget), ("test", self.split.test),
                                    ("population", self.split.val))}
        return self.metrics(logits)

    def verdict(self, original: dict, target: dict) -> str | None:
        """``sftc audit``'s verdict on ``target`` from the columns of the original and the
        target (``forgotten``, ``not-forgotten (remembered)``, ..., ``not-proven``); None
        without the figures."""
        if self.comparison is None or "rmia_figures" not in original or \
                "rmia_figures" not in target:
            return None
        found = self.comparison.verdict(ModelFigures.from_dict(original["rmia_figures"]),
                                        ModelFigures.from_dict(target["rmia_figures"]))
        return found.text

    def describe(self) -> dict | None:
        """What the references were (for the report): count, recipe, matching, cache entries."""
        if not self.active or self.comparison is None:
            return None
        return {"attack": self.settings.attack, "references": self.references,
                "recipe": self.recipe().key_dict(), "kind": "retrained on D_r (never saw D_f)",
                "population": "validation", "population_size": len(self.split.val),
                "fpr": ATTACK_FPR, "evidence": self.settings.to_dict(),
                "comparison": self.comparison.describe(),
                "cache_entries": [e["entry"] for e in self.comparison.refs.entries]}
