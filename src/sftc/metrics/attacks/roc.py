"""How well attack scores separate positives (D_f) from negatives (never-seen samples, D_t).

The figures that an attack is judged by (Carlini et al., S&P 2022, section III: report the
true-positive rate at low false-positive rates, never accuracy alone): the area under the ROC
curve (scikit-learn's ``roc_auc_score``) and the TPR at a fixed FPR, read from scikit-learn's
``roc_curve`` as the highest TPR among the curve's points whose FPR does not exceed the target.

A FPR of f is *resolvable* only with at least 1/f negatives: with fewer, the first false positive
already costs more than f, and the TPR "at f" would be the TPR at FPR 0, a different figure.
Unresolvable rates are reported as ``None`` ("n/a"), never estimated.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import SftcError


def resolvable(fpr: float, n_negatives: int) -> bool:
    """Whether ``n_negatives`` samples can resolve a false-positive rate of ``fpr``
    (``n_negatives >= 1 / fpr``, with a little slack for the floating-point reciprocal)."""
    return n_negatives * fpr >= 1.0 - 1e-9


def check_fprs(fprs, n_negatives: int, what: str = "--fpr") -> tuple[float, ...]:
    """Validate requested false-positive rates: in (0, 1) and resolvable by ``n_negatives``.

    Used for rates a user asked for explicitly: an unresolvable one is refused in one line
    (default rates are reported as n/a instead)."""
    out = []
    for f in fprs:
        f = float(f)
        if not (0.0 < f < 1.0) or not math.isfinite(f):
            raise SftcError(f"{what} {f:g}: a false-positive rate must lie strictly between 0 and 1")
        if not resolvable(f, n_negatives):
            raise SftcError(f"{what} {f:g} cannot be resolved with {n_negatives} never-seen "
                            f"samples (it needs at least {math.ceil(1 / f - 1e-9)}); ask for a rate "
                            f"of at least {1 / max(n_negatives, 1):.2g} or use a larger test split")
        out.append(f)
    return tuple(out)


def _scores(pos, neg) -> tuple[np.ndarray, np.ndarray]:
    pos = np.asarray(pos, dtype=np.float64).reshape(-1)
    neg = np.asarray(neg, dtype=np.float64).reshape(-1)
    if pos.size == 0 or neg.size == 0:
        raise SftcError("an attack needs at least one positive and one negative sample")
    if np.isnan(pos).any() or np.isnan(neg).any():
        raise SftcError("attack scores hold NaN")
    return pos, neg


def auc(pos, neg) -> float:
    """Area under the ROC curve of scores ``pos`` (label 1) against ``neg`` (label 0): the
    probability that a random positive scores above a random negative (ties count ½)."""
    from sklearn.metrics import roc_auc_score

    pos, neg = _scores(pos, neg)
    y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    return float(roc_auc_score(y, np.concatenate([pos, neg])))


def tpr_at_fpr(pos, neg, fpr: float) -> float | None:
    """The TPR at false-positive rate ``fpr`` (highest TPR with FPR ≤ ``fpr`` on the ROC curve),
    or None when the negatives cannot resolve ``fpr``."""
    from sklearn.metrics import roc_curve

    pos, neg = _scores(pos, neg)
    if not resolvable(fpr, neg.size):
        return None
    y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    fprs, tprs, _ = roc_curve(y, np.concatenate([pos, neg]), drop_intermediate=False)
    return float(tprs[fprs <= fpr + 1e-12].max())


def roc_figures(pos, neg, fprs=(0.01, 0.001)) -> dict:
    """AUC and TPR at each of ``fprs`` (None where unresolvable), with the sample counts."""
    pos, neg = _scores(pos, neg)
    return {"auc": auc(pos, neg),
            "tpr_at_fpr": {f"{f:g}": tpr_at_fpr(pos, neg, f) for f in fprs},
            "n_positives": int(pos.size), "n_negatives": int(neg.size)}
