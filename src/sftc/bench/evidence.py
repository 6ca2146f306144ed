"""The matched comparison and the verdict, for any model of one split and one set of references:
what ``sftc audit``, the benchmark's attack columns and the demo all compute.

:class:`Comparison` is built once from the split and the reference models' logits
(:class:`~sftc.bench.reference_pool.ReferenceLogits`, models retrained without D_f):

* the deciding attack (:mod:`sftc.metrics.attacks`, by registry name; one that reads models
  that never saw the candidates, RMIA offline by default);
* the strata that match D_f with never-seen test samples of its class and difficulty
  (:func:`~sftc.metrics.attacks.comparison.match_strata`; difficulty: the references' mean
  logit-scaled confidence);
* the never-seen level and the retrain band: each reference scored against the others,
  leave-one-out (:class:`~sftc.metrics.attacks.equivalence.NeverSeen`,
  :func:`~sftc.metrics.attacks.equivalence.retrain_band`);
* when D_f holds whole classes, the never-seen samples of those classes (test and validation).

:meth:`Comparison.figures` scores one model from its logits on D_f, D_t and the population;
:meth:`Comparison.verdict` judges it on the band, with the power the original's figures give
(:mod:`sftc.metrics.attacks.verdict`, :mod:`~sftc.metrics.attacks.class_level`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..data import Split
from ..errors import SftcError
from ..metrics.attacks import (AttackView, NeverSeen, auc_interval, class_test,
                               create_attack, judge, logit_scaled_confidence, mann_whitney,
                               match_strata, power_of, reference_cost, removed_classes,
                               retrain_band, roc_figures, stratified_auc)
from ..metrics.attacks.equivalence import ALPHA, RESOLUTION, check_alpha, parse_resolution
from ..metrics.attacks.verdict import Verdict

DEFAULT_FPRS = (0.01, 0.001)
DEFAULT_ATTACK = "rmia-offline"


@dataclass(frozen=True)
class EvidenceSettings:
    """How the evidence is computed and judged (recorded in every result)."""

    attack: str = DEFAULT_ATTACK
    alpha: float = ALPHA
    resolution: str = f"{RESOLUTION:.0%}"
    fprs: tuple[float, ...] = DEFAULT_FPRS

    def check(self) -> "EvidenceSettings":
        check_alpha(self.alpha)
        parse_resolution(self.resolution)
        attack = create_attack(self.attack)      # an unknown attack: one line, before any work
        if attack.needs_members:
            raise SftcError(f"attack {attack.name!r} reads reference models that trained on the "
                            "samples it scores; the audit's references never trained on D_f or "
                            "its comparison samples: decide with rmia-offline or lira-offline")
        return self

    def to_dict(self) -> dict:
        return {"attack": self.attack, "alpha": self.alpha, "resolution": self.resolution,
                "rule": "retrain band", "fprs": list(self.fprs)}


@dataclass
class ModelFigures:
    """One model's evidence: the deciding attack on D_f against matched never-seen samples."""

    auc: float                       # stratified (matched) AUC
    interval: object                 # equivalence.Interval
    unmatched: dict                  # AUC, TPR@FPR and Mann-Whitney p against the whole D_t
    mean_score_forget: float
    mean_score_test: float
    #: a class-level request: correct predictions on the n never-seen samples of the removed
    #: classes, and the mean probability of their true class
    class_hits: int | None = None
    class_n: int | None = None
    class_probability: float | None = None
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"auc": self.auc, "interval": self.interval.to_dict(),
                "unmatched": self.unmatched, "mean_score_forget": self.mean_score_forget,
                "mean_score_test": self.mean_score_test, "class_hits": self.class_hits,
                "class_n": self.class_n, "class_probability": self.class_probability,
                "settings": self.settings}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelFigures":
        """The figures a record holds (:meth:`to_dict`), to judge them again."""
        return cls(d["auc"], interval_from_dict(d["interval"]), d.get("unmatched", {}),
                   d.get("mean_score_forget", float("nan")), d.get("mean_score_test", float("nan")),
                   d.get("class_hits"), d.get("class_n"), d.get("class_probability"),
                   d.get("settings", {}))


def interval_from_dict(d: dict):
    from ..metrics.attacks import Interval

    return Interval(d["estimate"], d["low"], d["high"], d["alpha"], d["se"], d["se_examples"],
                    d["se_null"], d["level"])


class Comparison:
    """The matched comparison of ``split`` calibrated on ``refs`` (module docstring)."""

    def __init__(self, split: Split, refs, settings: EvidenceSettings | None = None):
        self.settings = (settings or EvidenceSettings()).check()
        self.attack = create_attack(self.settings.attack)
        low = max(4, self.attack.min_references + 1)
        if refs.count < low:
            raise SftcError(f"the {self.attack.label or self.attack.name} verdict needs at least "
                            f"{low} reference models (each is scored against the others to find "
                            f"the never-seen level), got {refs.count}; pass --references {low} "
                            "or more")
        self.split, self.refs = split, refs
        labels = split.data.labels.cpu()
        self.cols_f = refs.columns(split.forget.cpu())
        self.cols_t = refs.columns(split.test.cpu())
        self.cols_pop = refs.columns(split.val.cpu())
        self.labels = labels[refs.index]
        self._cand = np.concatenate([self.cols_f, self.cols_t])
        difficulty = self._difficulty()
        n_f = len(self.cols_f)
        self.strata = match_strata(self.labels[self.cols_f].numpy(), difficulty[:n_f],
                                   self.labels[self.cols_t].numpy(), difficulty[n_f:])
        self._check_matched()
        self.classes = removed_classes(labels[split.forget.cpu()].numpy(),
                                       labels[split.train.cpu()].numpy(), split.data.num_classes)
        self.null = self._never_seen()
        self.band = retrain_band(self.null, self.settings.alpha)

    def _difficulty(self) -> np.ndarray:
        """Per candidate: the references' mean logit-scaled confidence (how models that never
        saw it treat it)."""
        phi = logit_scaled_confidence(self.refs.logits[:, self._cand], self.labels[self._cand])
        return phi.mean(0)

    def _check_matched(self) -> None:
        info = self.strata.describe()
        if info["matched_forget"] < 2:
            raise SftcError(f"only {info['matched_forget']} of {len(self.cols_f)} forget samples "
                            "have a never-seen test sample of their class and difficulty to be "
                            "compared with; the test split needs samples of every class D_f "
                            "holds (at least 8 per class)")

    def describe(self) -> dict:
        """How the comparison was matched (for the record)."""
        unmatched = np.where(~self.strata.matched)[0]
        return {"attack": self.attack.name, "positives": "D_f (forget set)",
                "negatives": "D_t samples of the same class and difficulty",
                "difficulty": "mean logit-scaled confidence of the reference models",
                **self.strata.describe(),
                "unmatched_positions": self.split.forget_positions.cpu()[unmatched].tolist(),
                "classes": self.classes, "never_seen": self.null.to_dict(),
                "band": self.band.to_dict(), "references": self.refs.count,
                "reference_cost": reference_cost(self.band)}

    # -- scoring -------------------------------------------------------------------------------
    def _scores(self, target_cand: torch.Tensor, target_pop: torch.Tensor,
                rows: list[int]) -> tuple[np.ndarray, np.ndarray, dict]:
        refs = self.refs.logits[rows]
        view = AttackView(target_cand.float().cpu(), refs[:, self._cand],
                          self.labels[self._cand], np.zeros((len(rows), len(self._cand)), bool),
                          (target_pop.float().cpu(), refs[:, self.cols_pop],
                           self.labels[self.cols_pop]))
        scores = self.attack.scores_checked(view)
        n_f = len(self.cols_f)
        return scores[:n_f], scores[n_f:], self.attack.settings(view)

    def _never_seen(self) -> NeverSeen:
        """Each reference scored as the target against the others."""
        k = self.refs.count
        aucs = []
        for held in range(k):
            others = [r for r in range(k) if r != held]
            logits = self.refs.logits[held]
            sf, st, _ = self._scores(logits[self._cand], logits[self.cols_pop], others)
            aucs.append(stratified_auc(sf, st, self.strata)[0])
        return NeverSeen.from_aucs(aucs)

    def figures(self, forget: torch.Tensor, test: torch.Tensor,
                population: torch.Tensor) -> ModelFigures:
        """The evidence of a model from its logits on D_f, D_t and the population."""
        sf, st, settings = self._scores(torch.cat([forget, test]), population,
                                        list(range(self.refs.count)))
        estimate, variance = stratified_auc(sf, st, self.strata)
        interval = auc_interval(estimate, variance, self.band)
        unmatched = roc_figures(sf, st, self.settings.fprs)
        unmatched.update(mann_whitney(sf, st).to_dict())
        hits = n = prob = None
        if self.classes["removed"]:
            correct, probability = self._class_behaviour(test, population,
                                                         self.classes["removed"])
            hits, n, prob = int(correct.sum()), int(correct.size), float(probability.mean())
        return ModelFigures(estimate, interval, unmatched, float(sf.mean()), float(st.mean()),
                            hits, n, prob, settings)

    def figures_of(self, logits: torch.Tensor) -> ModelFigures:
        """:meth:`figures` from logits on every column of ``refs.index``."""
        return self.figures(logits[self.cols_f], logits[self.cols_t], logits[self.cols_pop])

    def _class_behaviour(self, test, population, removed) -> tuple[np.ndarray, np.ndarray]:
        labels = torch.cat([self.labels[self.cols_t], self.labels[self.cols_pop]])
        logits = torch.cat([test, population]).float().cpu()
        keep = torch.isin(labels, torch.tensor(removed))
        y = labels[keep]
        probs = torch.softmax(logits[keep], 1).gather(1, y[:, None])[:, 0]
        return (logits[keep].argmax(1) == y).numpy(), probs.numpy()

    # -- verdicts ------------------------------------------------------------------------------
    def _interval(self, figures: ModelFigures):
        """``figures``' AUC on this comparison's band (a stored record is judged anew)."""
        var = figures.interval.se_examples ** 2
        return auc_interval(figures.auc, var, self.band)

    def power(self, original: ModelFigures):
        """What the original's figures give the band (:func:`~sftc.metrics.attacks.power_of`)."""
        return power_of(self._interval(original), self.band, self.settings.resolution)

    def verdict(self, original: ModelFigures, target: ModelFigures) -> Verdict:
        """The verdict on ``target``: membership on the retrain band, with the power the original
        gives it; for a class-level request the class test decides and membership may veto."""
        n_f = int(self.strata.matched.sum())
        n_c = int((self.strata.candidates >= 0).sum())
        membership = judge(self._interval(target), self.band, self.power(original),
                           n_forget=n_f, n_comparison=n_c)
        if target.class_hits is None:
            return membership
        test = class_test(target.class_hits, target.class_n, original.class_hits,
                          target.class_probability, original.class_probability,
                          alpha=self.settings.alpha)
        return combine(membership, test)


def combine(membership: Verdict, test) -> Verdict:
    """A class-level request: the class test decides (a model retrained without the class
    recognises none of it), and membership vetoes only by showing the model differs from
    retrained models (``not-forgotten``)."""
    if test.verdict == "not-forgotten":
        verdict, direction = "not-forgotten", "class still recognised"
    elif membership.verdict == "not-forgotten":
        verdict, direction = "not-forgotten", membership.direction
    elif test.verdict == "forgotten":
        verdict, direction = "forgotten", None
    else:
        verdict, direction = "not-proven", None
    reason = (f"class test {test.verdict}: {test.reason}; membership {membership.verdict}: "
              f"{membership.reason}")
    needed = None
    if verdict == "not-proven":
        needed = {"kind": "class", "forget": None, "comparison": None, "references": None,
                  "retrain": True,
                  "why": "the class test's bounds straddle its threshold: more never-seen samples "
                         "of the class (a larger test or validation split), a further unlearning "
                         "epoch, or retrain from scratch (--method retrain)"}
    return replace(membership, verdict=verdict, direction=direction, reason=reason,
                   needed=needed, classes=test.to_dict(), in_band=verdict == "forgotten")
