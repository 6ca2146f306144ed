"""The NeurIPS 2023 unlearning challenge's forgetting score, end to end (the metric itself:
:mod:`sftc.metrics.attacks.neurips`).

N originals are trained on D (``originals="independent"``, what the issue asks for: the spread of
the unlearned models then includes the spread of training, as the retrained models' does) or one
original is trained and reused for all N unlearning runs (``originals="shared"``, what the
challenge's main.py does; the N runs then differ only by the unlearning seed). The method runs on
each, N oracles are retrained on D_r, and the forget examples' logit-scaled confidences under the
two groups give the per-example ε, the forgetting quality and the final score (× retain and test
accuracy ratios). U-LiRA (Hayes et al., 2024) is computed on the same 2N models, leave-one-out.

Originals and oracles come from the benchmark's reference cache (:mod:`sftc.bench.cache`), keyed by
data, recipe and seed (seed + k for model k), so a second run, or a run of another method on the
same split, trains none of them again.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import Split
from ..errors import SftcError
from ..metrics.attacks import forgetting_quality, forgetting_score as final_score, u_lira
from ..metrics.attacks.neurips import ForgettingQuality, null_quality
from ..metrics.attacks.signals import logit_scaled_confidence
from ..metrics.attacks.ulira import ULiraResult
from ..recipes import TRAIN_EPOCHS, TRAIN_LR, BATCH_SIZE, TrainingRecipe
from .cache import TrainSpec, get_or_train
from .evidence import Comparison
from .reference_pool import ReferenceLogits, query_index

ORIGINALS = ("independent", "shared")


@dataclass
class ForgettingResult:
    score: float                      # forgetting quality × accuracy ratios
    quality: ForgettingQuality
    ulira: ULiraResult
    accuracies: dict                  # group -> subset -> per-model accuracies
    null_quality: float | None        # the quality of a perfect unlearner at this N
    median_confidence: dict = field(default_factory=dict)   # group -> per-example medians of φ
    settings: dict = field(default_factory=dict)
    audit: dict | None = None         # sftc audit's verdict on each unlearned model
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        mean = {g: {s: float(np.mean(v)) for s, v in subsets.items()}
                for g, subsets in self.accuracies.items()}
        return {"final_score": self.score, **self.quality.to_dict(),
                "null_quality": self.null_quality, "u_lira": self.ulira.to_dict(),
                "median_confidence": {g: {"mean_over_examples": float(np.mean(v)),
                                          "per_example": np.asarray(v).tolist()}
                                      for g, v in self.median_confidence.items()},
                "mean_accuracies": mean, "accuracies": self.accuracies,
                "audit": self.audit, "settings": self.settings, "timings": self.timings}


def _evaluate(model, split: Split, device) -> tuple[np.ndarray, dict, torch.Tensor]:
    """φ on D_f, accuracies, and the logits the audit's comparison reads (D_f, D_t, validation)."""
    from ..engine import predict_logits
    from ..metrics.evaluate import on_device

    model = on_device(model, device)
    labels = split.data.labels.cpu()
    out, acc = None, {}
    for name in ("forget", "retain", "test"):
        index = split.indices(name)
        logits = predict_logits(model, split.data, index.to(device), device).cpu()
        acc[name] = float((logits.argmax(1) == labels[index.cpu()]).float().mean())
        if name == "forget":
            out = logit_scaled_confidence(logits, labels[index.cpu()])
    queried = predict_logits(model, split.data, query_index(split).to(device), device).float()
    return out, acc, queried.cpu()


def audit_verdicts(split: Split, logits: dict) -> dict | None:
    """``sftc audit``'s verdict on each unlearned model, with the N retrained models as the
    references (models retrained on D_r, the audit's kind) and each unlearned model's own
    original giving the attack its power; None with fewer than 4 retrained models."""
    if len(logits["retrained"]) < 4:
        return None
    refs = ReferenceLogits(query_index(split), torch.stack(logits["retrained"]))
    comparison = Comparison(split, refs)
    verdicts = []
    for original, unlearned in zip(logits["original"], logits["unlearned"]):
        verdicts.append(comparison.verdict(comparison.figures_of(original),
                                           comparison.figures_of(unlearned)).text)
    counts = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    return {"verdicts": verdicts, "counts": counts, "attack": comparison.attack.name,
            "never_seen": comparison.null.to_dict(), "matched_forget":
            int(comparison.strata.matched.sum())}


def forgetting_score(split: Split, method: str = "sftc", *, n_models: int = 16,
                     originals: str = "independent", model: str = "small-cnn",
                     train_epochs: int = TRAIN_EPOCHS, train_lr: float = TRAIN_LR,
                     batch_size: int = BATCH_SIZE,
                     unlearn_epochs: int | None = None, unlearn_lr: float | None = None,
                     hparams: dict | None = None, seed: int = 0, cache_dir=None,
                     device: str = "auto", null: bool = True,
                     progress: bool = True) -> ForgettingResult:
    """Run ``method`` from N originals and score it against N retrained models (module docstring).

    ``hparams``: the method's hyperparameters; ``unlearn_epochs``/``unlearn_lr``: its recipe
    (None: the method's defaults). Model k uses seed ``seed + k``. ``null``: also compute the
    quality a perfect unlearner gets at this N (simulated; a few seconds).
    """
    from ..engine import resolve_device
    from ..models import canonical_model_name

    started = time.perf_counter()
    cls, algorithm = _checked_method(method, n_models, originals, hparams)
    model = canonical_model_name(model)
    device_t = resolve_device(device)
    run = _Models(split, cls.name, TrainingRecipe(model, train_epochs, train_lr, batch_size),
                  dict(epochs=unlearn_epochs, lr=unlearn_lr, hparams=hparams or {}), seed,
                  cache_dir, device, device_t)
    run.collect(n_models, originals, progress)
    u, r = np.stack(run.confs["unlearned"]), np.stack(run.confs["retrained"])
    accs = run.accs
    t0 = time.perf_counter()
    quality = forgetting_quality(u, r)
    score = final_score(quality.quality, accs["unlearned"]["retain"], accs["retrained"]["retain"],
                        accs["unlearned"]["test"], accs["retrained"]["test"])
    ulira = u_lira(u, r)
    verdicts = audit_verdicts(split, run.queried)
    ceiling = null_quality(n_models) if null else None
    metric_seconds = time.perf_counter() - t0
    settings = {"method": cls.name, "hparams": algorithm.values, "n_models": n_models,
                "originals": originals, "model": model, "train_epochs": train_epochs,
                "train_lr": train_lr, "batch_size": batch_size, "unlearn_epochs": unlearn_epochs,
                "unlearn_lr": unlearn_lr, "seed": seed, "device": str(device_t),
                "forget": split.forget_summary()}
    medians = {"unlearned": np.median(u, axis=0), "retrained": np.median(r, axis=0)}
    return ForgettingResult(score, quality, ulira, accs, ceiling, medians, settings, verdicts,
                            {"total_seconds": time.perf_counter() - started,
                             "metric_seconds": metric_seconds,
                             "unlearn_seconds_mean": float(np.mean(run.unlearn_seconds)),
                             "models_trained_now": run.trained_now})


def _checked_method(method: str, n_models, originals: str, hparams: dict | None):
    """The method's class and instance, after the arguments' checks (bad values fail before
    any training)."""
    from ..methods import create_method, method_class

    if isinstance(n_models, bool) or not isinstance(n_models, int) or n_models < 3:
        raise SftcError(f"--models must be a whole number 3 or more (the score's buckets end at "
                        f"ceil(ln(N - 1))), got {n_models!r}")
    if originals not in ORIGINALS:
        raise SftcError(f"--originals must be {' or '.join(ORIGINALS)}, got {originals!r}")
    cls = method_class(method)
    if cls.fresh_start:
        raise SftcError(f"{cls.name!r} is the retrain oracle itself; score an unlearning method")
    return cls, create_method(cls.name, **(hparams or {}))


class _Models:
    """The 2N (or N + 1) models of a forgetting score and what the score reads from them: each
    forget example's logit-scaled confidence, the accuracies, and the logits the audit reads."""

    def __init__(self, split: Split, method: str, recipe: TrainingRecipe, unlearning: dict,
                 seed: int, cache_dir, device, device_t):
        self.split, self.method, self.recipe, self.unlearning = split, method, recipe, unlearning
        self.seed, self.cache_dir, self.device, self.device_t = seed, cache_dir, device, device_t
        self.confs = {"unlearned": [], "retrained": []}
        self.queried = {"original": [], "unlearned": [], "retrained": []}
        self.accs = {g: {"forget": [], "retain": [], "test": []} for g in self.confs}
        self.unlearn_seconds: list[float] = []
        self.trained_now = 0

    def _trained(self, subset: str, k: int):
        found = get_or_train(self.cache_dir, TrainSpec(self.recipe, subset, self.seed + k),
                             self.split, device=self.device)
        self.trained_now += int(not found.cached)
        return found.model

    def _unlearned(self, original, k: int):
        from .. import api

        u = self.unlearning
        result = api.unlearn(original, self.split, self.method, epochs=u["epochs"], lr=u["lr"],
                             batch_size=self.recipe.batch_size, seed=self.seed + k,
                             device=self.device, progress=False, model_name=self.recipe.model,
                             **u["hparams"])
        self.unlearn_seconds.append(result.seconds)
        return result.model

    def _record(self, group: str, model) -> None:
        phi, acc, logits = _evaluate(model, self.split, self.device_t)
        self.confs[group].append(phi)
        self.queried[group].append(logits)
        for name, value in acc.items():
            self.accs[group][name].append(value)

    def collect(self, n_models: int, originals: str, progress: bool) -> None:
        """Model k: its original (its own, or the one shared), the method run from it with seed
        ``seed + k``, and the oracle retrained with seed ``seed + k``."""
        from tqdm.auto import tqdm

        n_originals = n_models if originals == "independent" else 1
        bar = tqdm(total=n_originals + 2 * n_models, unit="model", desc="forgetting score",
                   disable=not progress, dynamic_ncols=True)
        try:
            original = original_logits = None
            for k in range(n_models):
                if originals == "independent" or original is None:
                    bar.set_postfix_str(f"original #{k}")
                    original = self._trained("train", k)
                    original_logits = _evaluate(original, self.split, self.device_t)[2]
                    bar.update(1)
                self.queried["original"].append(original_logits)
                bar.set_postfix_str(f"{self.method} #{k}")
                unlearned = self._unlearned(original, k)
                bar.update(1)
                bar.set_postfix_str(f"oracle #{k}")
                oracle = self._trained("retain", k)
                bar.update(1)
                self._record("unlearned", unlearned)
                self._record("retrained", oracle)
        finally:
            bar.close()
