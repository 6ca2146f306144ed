"""Is D_f distinguishable from never-seen data? The Mann–Whitney U test of attack scores.

The test statistic is the AUC itself (U = AUC · n_f · n_t), so "significant" and "AUC away from
½" are one statement. scipy's ``mannwhitneyu`` gives the p-values (exact for small samples
without ties, else the normal approximation with tie and continuity corrections).

The two-sided p-value is computed here as ``min(1, 2 · min(p_greater, p_less))`` from the two
one-sided ones, so that a one-sided p < α always implies a two-sided p < 2α for the same scores:
the audit's verdict rule relies on it (:mod:`sftc.metrics.attacks.verdict`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import SftcError


@dataclass(frozen=True)
class Significance:
    p_greater: float     # one-sided: D_f scores higher than D_t (remembered)
    p_less: float        # one-sided: D_f scores lower (over-forgotten)
    p_two_sided: float   # min(1, 2 · min(p_greater, p_less))

    def to_dict(self) -> dict:
        return {"p_greater": self.p_greater, "p_less": self.p_less,
                "p_two_sided": self.p_two_sided}


def mann_whitney(pos, neg) -> Significance:
    """One- and two-sided Mann–Whitney U p-values of ``pos`` (D_f scores) against ``neg``."""
    from scipy.stats import mannwhitneyu

    pos = np.asarray(pos, dtype=np.float64).reshape(-1)
    neg = np.asarray(neg, dtype=np.float64).reshape(-1)
    if pos.size == 0 or neg.size == 0:
        raise SftcError("the significance test needs at least one sample on each side")
    if np.ptp(np.concatenate([pos, neg])) == 0:   # every score equal: no evidence either way
        return Significance(1.0, 1.0, 1.0)
    greater = float(mannwhitneyu(pos, neg, alternative="greater").pvalue)
    less = float(mannwhitneyu(pos, neg, alternative="less").pvalue)
    return Significance(greater, less, min(1.0, 2.0 * min(greater, less)))


def smallest_p(n_pos: int, n_neg: int) -> float:
    """The smallest one-sided p-value :func:`mann_whitney` can give for these sample sizes: the
    p-value of perfect separation (every positive above every negative)."""
    from scipy.stats import mannwhitneyu

    pos = np.arange(n_pos, dtype=np.float64) + n_neg
    return float(mannwhitneyu(pos, np.arange(n_neg, dtype=np.float64),
                              alternative="greater").pvalue)
