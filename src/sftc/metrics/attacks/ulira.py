"""U-LiRA: LiRA turned on unlearning (Hayes et al., "Inexact Unlearning Needs More Careful
Evaluations to Avoid a False Sense of Privacy", 2024).

For each forget example the attacker holds the example's signal under models that were trained
on it and then unlearned (the "unlearned" distribution) and under models retrained without it;
it fits a Gaussian to each and, given a model, asks by likelihood ratio which of the two produced
it. An unlearning method is as good as retraining on an example when this test is at chance
(accuracy ½, AUC ½).

sftc evaluates it on the N unlearned and M retrained models of the forgetting score
(:mod:`sftc.bench.forgetting`), leave-one-out: each model in turn is the target and the Gaussians
are fitted on the others. This is the paper's test with the challenge's shadow models: every
unlearned model forgot the same forget set from a model trained on the same data, where the paper
draws a fresh training set per shadow model.

Data-first: ``unlearned`` [N, n] and ``retrained`` [M, n] logit-scaled confidences.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import SftcError
from .lira import GLOBAL_BELOW, MIN_STD, VARIANCES
from .roc import auc


@dataclass
class ULiraResult:
    auc: float                    # unlearned (positive) against retrained (negative) targets
    accuracy: float               # balanced accuracy of "LR > 0 → unlearned"
    variance: str
    scores_unlearned: np.ndarray  # [N, n] log-likelihood ratios with each model held out
    scores_retrained: np.ndarray  # [M, n]

    def to_dict(self) -> dict:
        return {"auc": self.auc, "accuracy": self.accuracy, "variance": self.variance,
                "n_unlearned": int(self.scores_unlearned.shape[0]),
                "n_retrained": int(self.scores_retrained.shape[0])}


def _fit(values: np.ndarray, global_variance: bool) -> tuple[np.ndarray, np.ndarray]:
    mean = values.mean(0)
    squares = ((values - mean) ** 2).sum(0)
    dof = values.shape[0] - 1
    var = np.full_like(mean, squares.sum() / (dof * values.shape[1])) if global_variance \
        else squares / dof
    return mean, np.maximum(np.sqrt(var), MIN_STD)


def _log_ratio(x, fit_u, fit_r) -> np.ndarray:
    from scipy.stats import norm

    return norm.logpdf(x, *fit_u) - norm.logpdf(x, *fit_r)


def u_lira(unlearned, retrained, variance: str = "auto") -> ULiraResult:
    """Leave-one-out U-LiRA over N unlearned and M retrained models' confidences [models, n]."""
    u = np.asarray(unlearned, dtype=np.float64)
    r = np.asarray(retrained, dtype=np.float64)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1] or u.shape[1] == 0:
        raise SftcError(f"U-LiRA needs confidences shaped [models, examples] for the same "
                        f"examples; got {u.shape} and {r.shape}")
    if min(u.shape[0], r.shape[0]) < 3:
        raise SftcError("U-LiRA needs at least 3 unlearned and 3 retrained models (each is held "
                        "out in turn and the Gaussians need 2 or more); pass more models")
    if variance not in VARIANCES:
        raise SftcError(f"unknown U-LiRA variance {variance!r}; use {', '.join(VARIANCES)}")
    if variance == "auto":
        variance = "global" if min(u.shape[0], r.shape[0]) - 1 < GLOBAL_BELOW else "per-example"
    glob = variance == "global"
    fit_u, fit_r = _fit(u, glob), _fit(r, glob)
    scores_u = np.stack([_log_ratio(u[j], _fit(np.delete(u, j, 0), glob), fit_r)
                         for j in range(u.shape[0])])
    scores_r = np.stack([_log_ratio(r[j], fit_u, _fit(np.delete(r, j, 0), glob))
                         for j in range(r.shape[0])])
    accuracy = 0.5 * (float((scores_u > 0).mean()) + float((scores_r <= 0).mean()))
    return ULiraResult(auc(scores_u, scores_r), accuracy, variance, scores_u, scores_r)
