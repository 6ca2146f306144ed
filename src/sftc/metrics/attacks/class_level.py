"""Class-level requests: when D_f holds a whole class, removal is judged by what the model does on
never-seen samples of that class (DESIGN.md, "Evidence").

A model that never trained on class c does not recognise it: its accuracy on never-seen samples of
c is (near) zero, whatever its membership scores say (they are low on every sample of c, D_f and
never-seen alike, so a membership comparison within the class sees nothing). A model retrained
without the class, the yardstick, recognises none of it. The class test therefore decides a
class-level request (membership can only veto it, :func:`sftc.bench.evidence.combine`): with a_M
the original's accuracy on never-seen samples of the removed classes, the unlearned model's
accuracy a_u must be shown (one-sided Clopper–Pearson bound at 1 − α) below (1 − share) · a_M for
``forgotten`` (default share :data:`CLASS_SHARE`: at most a fifth of the original's recognition
remains), and above it for ``not-forgotten``; otherwise ``not-proven``.

A class is *removed* when D_f holds all of its training samples; a class of which D_f holds at
least half (but not all) is reported as *mostly removed*, with the same figures, and judged by
membership alone (how a model trained on the rest of a class treats it is not known without
retraining).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ...errors import SftcError
from .equivalence import check_alpha

#: D_f holding at least this share of a class's training samples makes the request class-level.
MOSTLY = 0.5
#: The share of the original's accuracy on a removed class's never-seen samples that must be gone.
CLASS_SHARE = 0.8


def removed_classes(forget_labels, train_labels, num_classes: int) -> dict:
    """{"removed": [classes all of whose training samples are in D_f], "mostly": [...],
    "shares": {class: share}} (shares only for classes D_f touches)."""
    f = np.bincount(np.asarray(forget_labels, dtype=np.int64), minlength=num_classes)
    t = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=num_classes)
    shares = {int(c): float(f[c] / t[c]) for c in range(num_classes) if f[c] and t[c]}
    removed = [c for c, s in shares.items() if s >= 1.0]
    mostly = [c for c, s in shares.items() if MOSTLY <= s < 1.0]
    return {"removed": removed, "mostly": mostly, "shares": shares}


def clopper_pearson(successes: int, n: int, alpha: float) -> tuple[float, float]:
    """One-sided (1 − α) lower and upper bounds of a binomial proportion (exact)."""
    from scipy.stats import beta

    if n < 1:
        raise SftcError("a proportion needs at least one sample")
    low = 0.0 if successes == 0 else float(beta.ppf(alpha, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha, successes + 1, n - successes))
    return low, high


@dataclass(frozen=True)
class ClassTest:
    """The class test of one model on the never-seen samples of the removed classes."""

    verdict: str
    reason: str
    accuracy: float
    bounds: tuple[float, float]
    original_accuracy: float
    threshold: float
    confidence: float            # the model's mean probability of the true (removed) class
    original_confidence: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def class_test(hits: int, n: int, original_hits: int, probability: float,
               original_probability: float, *, share: float = CLASS_SHARE,
               alpha: float) -> ClassTest:
    """Judge a model with ``hits`` correct of ``n`` never-seen samples of the removed classes
    against the original's ``original_hits`` on the same samples; ``probability``: the models'
    mean probability of the true class there, reported beside."""
    check_alpha(alpha)
    hits, n, original_hits = int(hits), int(n), int(original_hits)
    if n < 1 or not (0 <= hits <= n and 0 <= original_hits <= n):
        raise SftcError("the class test needs counts of correct predictions on the same "
                        "non-empty never-seen samples for both models")
    if not 0.0 < share < 1.0:
        raise SftcError(f"the share of the original's behaviour that must be gone lies in (0, 1), "
                        f"got {share}")
    acc, acc_o = hits / n, original_hits / n
    low, high = clopper_pearson(hits, n, alpha)
    threshold = (1.0 - share) * acc_o
    what = (f"accuracy {acc:.3f} on {n} never-seen samples of the removed class(es) "
            f"(one-sided bounds [{low:.3f}, {high:.3f}]) against the original's {acc_o:.3f}")
    if high < threshold:
        verdict, reason = "forgotten", f"{what}: below {threshold:.3f}, at most {1 - share:.0%} of " \
                                       "the original's remains"
    elif low > threshold:
        verdict, reason = "not-forgotten", f"{what}: above {threshold:.3f}, the class is still " \
                                           "recognised"
    else:
        verdict, reason = "not-proven", f"{what}: the bounds straddle {threshold:.3f}"
    return ClassTest(verdict, reason, acc, (low, high), acc_o, threshold, float(probability),
                     float(original_probability), n)
