"""The forgetting score of the NeurIPS 2023 Machine Unlearning challenge (Triantafillou et al.,
"Are we making progress in unlearning?", 2024; google-deepmind/unlearning_evaluation, metric.py
and main.py), as a pure function: confidences in, score out.

For every forget example, N unlearned models (the method run N times) and N retrained models
(trained without the forget set) each give one logit-scaled confidence φ
(:func:`~sftc.metrics.attacks.signals.logit_scaled_confidence`). The example's ε is the privacy
loss of the best threshold attack that tells the two groups of N apart:

* the "positive" group is the one with the larger median;
* two families of decision rules are tried on a grid of :data:`THRESHOLDS_PER_UNIT` thresholds per
  unit of φ: one threshold t over the range of both groups (predict positive when φ ≥ t), and two
  thresholds l ≤ φ ≤ r, an interval around the peakier group (the one with the smaller range,
  which is then the positive one): r runs from min + width − 2 to max + 2 of that group (width =
  its range), and for each r, l runs over r − width ± 2 (400 values);
* for a threshold with false-positive rate FPR and false-negative rate FNR,
  ε = max(log(1 − δ − FPR) − log FNR, log(1 − δ − FNR) − log FPR), clipped at 0 (a term whose
  logarithm is undefined is left out), with δ = 1e-5; FPR = FNR = 0 (perfect separation) gives ∞;
  thresholds where exactly one of them is 0 are discarded (too few samples to say);
* ε is the largest over all thresholds, clipped to [0, 50]; when the smaller group's range is below
  1 % of the larger one's, ε = 50 outright (a collapsed, "peaky" group).

ε is then bucketed: buckets of width 0.5 from 0 up to ceil(ln(N − 1)) are worth 1, ½, ¼, ...
points, and an ε beyond the last bucket earns none. The forgetting quality is the mean of the
points over the forget examples (1: indistinguishable from retraining everywhere; 0: always told apart), and the
final score multiplies it by the ratios of mean retain accuracy and of mean test accuracy of the
unlearned models to those of the retrained ones.

Where this departs from metric.py (results agree otherwise): rates are exact float64 fractions
(metric.py averages in float32); the interval family's left thresholds are computed for all right
thresholds at once (equal to numpy's per-row ``linspace`` up to rounding); an example with no usable
threshold at all (both groups one identical constant) gets ε = 0 where metric.py stops on an
assertion. Rates come from sorted samples (binary search), so the cost per example grows with
log N and any N runs in seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import SftcError

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
BUFFER = 2.0
BUCKET = 0.5


def _count_at_least(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return sorted_values.size - np.searchsorted(sorted_values, thresholds, side="left")


def _count_between(sorted_values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    inside = (np.searchsorted(sorted_values, right, side="right")
              - np.searchsorted(sorted_values, left, side="left"))
    return np.maximum(inside, 0)


def single_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of "φ ≥ t → positive" over the single-threshold grid."""
    pos, neg = np.sort(pos), np.sort(neg)
    low, high = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    thresholds = np.linspace(low, high, int(math.ceil((high - low) * THRESHOLDS_PER_UNIT)))
    tp = _count_at_least(pos, thresholds)
    fp = _count_at_least(neg, thresholds)
    return fp / neg.size, (pos.size - tp) / pos.size


def double_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of "l ≤ φ ≤ r → the peakier group" over the interval grid."""
    if np.ptp(pos) >= np.ptp(neg):
        pos, neg = neg, pos                      # the peakier group is the positive one
    pos, neg = np.sort(pos), np.sort(neg)
    width = pos[-1] - pos[0]
    low = pos[0] + width - BUFFER
    high = pos[-1] + BUFFER
    right = np.linspace(low, high, int(math.ceil((high - low) * THRESHOLDS_PER_UNIT)))
    n_left = int(math.ceil(2 * BUFFER * THRESHOLDS_PER_UNIT))
    start, stop = right - width - BUFFER, right - width + BUFFER
    steps = np.arange(n_left) / (n_left - 1)
    left = (start[:, None] + (stop - start)[:, None] * steps[None, :]).reshape(-1)
    right = np.repeat(right, n_left)
    tp = _count_between(pos, left, right)
    fp = _count_between(neg, left, right)
    return fp / neg.size, (pos.size - tp) / pos.size


def threshold_epsilons(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """ε of each threshold; NaN for the discarded ones, ∞ for perfect separation."""
    fpr, fnr = np.asarray(fpr, dtype=np.float64), np.asarray(fnr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.log(1 - delta - fpr) - np.log(fnr)
        second = np.log(1 - delta - fnr) - np.log(fpr)
        both = np.stack([first, second])
        best = np.where(np.isnan(both).all(0), np.nan, np.nanmax(np.where(np.isnan(both), -np.inf,
                                                                           both), axis=0))
    eps = np.clip(best, 0, None)
    perfect = (fpr == 0) & (fnr == 0)
    one_zero = (fpr * fnr == 0) & ~perfect
    eps = np.where(perfect, np.inf, eps)
    return np.where(one_zero, np.nan, eps)


def example_epsilon(unlearned, retrained, delta: float = DELTA) -> float:
    """ε of one forget example from its N unlearned and N retrained confidences."""
    unlearned = np.asarray(unlearned, dtype=np.float64).reshape(-1)
    retrained = np.asarray(retrained, dtype=np.float64).reshape(-1)
    if np.median(retrained) > np.median(unlearned):
        pos, neg = retrained, unlearned
    else:
        pos, neg = unlearned, retrained
    spreads = sorted([np.ptp(pos), np.ptp(neg)])
    if spreads[1] > 0 and spreads[0] / spreads[1] < 0.01:
        return EPSILON_CAP
    rates = [single_threshold_rates(pos, neg), double_threshold_rates(pos, neg)]
    eps = threshold_epsilons(np.concatenate([r[0] for r in rates]),
                             np.concatenate([r[1] for r in rates]), delta)
    if np.isnan(eps).all():
        return 0.0
    return float(np.clip(np.nanmax(eps), 0.0, EPSILON_CAP))


def bucket_points(epsilons, n_models: int) -> np.ndarray:
    """Points of each ε: buckets [0, 0.5), [0.5, 1), ... up to ceil(ln(N − 1)) are worth 1, ½, ¼,
    ...; an ε beyond the last bucket earns 0."""
    n_buckets = int(math.ceil(math.log(n_models - 1)) / BUCKET) if n_models > 2 else 0
    eps = np.asarray(epsilons, dtype=np.float64).reshape(-1)
    which = np.floor(eps / BUCKET)
    return np.where(which < n_buckets, 0.5 ** np.minimum(which, n_buckets), 0.0)


@dataclass
class ForgettingQuality:
    quality: float           # mean points over the forget examples, in [0, 1]
    epsilons: np.ndarray     # [n] per-example ε in [0, 50]
    points: np.ndarray       # [n] per-example points
    n_models: int

    def to_dict(self) -> dict:
        return {"forgetting_quality": self.quality, "n_models": self.n_models,
                "epsilon_mean": float(self.epsilons.mean()),
                "epsilon_median": float(np.median(self.epsilons)),
                "epsilons": self.epsilons.tolist()}


def forgetting_quality(unlearned_confs, retrained_confs, delta: float = DELTA) -> ForgettingQuality:
    """The challenge's forgetting quality from confidences shaped [N models, n forget examples]."""
    u = np.asarray(unlearned_confs, dtype=np.float64)
    r = np.asarray(retrained_confs, dtype=np.float64)
    if u.ndim != 2 or u.shape != r.shape:
        raise SftcError(f"unlearned and retrained confidences must both be shaped [models, "
                        f"examples]; got {u.shape} and {r.shape}")
    if u.shape[0] < 3:
        raise SftcError(f"the forgetting score needs at least 3 unlearned and 3 retrained models "
                        f"(its buckets end at ceil(ln(N - 1)), which is 0 for N = {u.shape[0]}); "
                        "pass more models (the challenge used 512, sftc suggests 16 or more)")
    if u.shape[1] == 0:
        raise SftcError("the forgetting score needs at least one forget example")
    if not (np.isfinite(u).all() and np.isfinite(r).all()):
        raise SftcError("confidences hold NaN or infinite values")
    eps = np.array([example_epsilon(u[:, i], r[:, i], delta) for i in range(u.shape[1])])
    points = bucket_points(eps, u.shape[0])
    return ForgettingQuality(float(points.mean()), eps, points, u.shape[0])


def forgetting_score(quality: float, retain_acc_unlearned, retain_acc_retrained,
                     test_acc_unlearned, test_acc_retrained) -> float:
    """Final score = quality × (mean retain acc, unlearned / retrained) × (mean test acc,
    unlearned / retrained); accuracies per model, averaged here."""
    ratios = []
    for mine, theirs, what in ((retain_acc_unlearned, retain_acc_retrained, "retain"),
                               (test_acc_unlearned, test_acc_retrained, "test")):
        denominator = float(np.mean(theirs))
        if not denominator > 0:
            raise SftcError(f"the retrained models' mean {what} accuracy is 0: the score's "
                            "utility ratio is undefined")
        ratios.append(float(np.mean(mine)) / denominator)
    return float(quality) * ratios[0] * ratios[1]


def null_quality(n_models: int, n_examples: int = 200, seed: int = 0) -> float:
    """The forgetting quality of a perfect unlearner at ``n_models`` models per side: both groups
    drawn from one distribution (a standard Gaussian; ε depends on the samples' order, not their
    scale, up to the threshold grid). With few models the best of many thresholds finds chance
    differences, so this is well below 1 (about 0.17 at N = 16): the ceiling to compare with."""
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((2, n_models, n_examples))
    return forgetting_quality(draws[0], draws[1]).quality
