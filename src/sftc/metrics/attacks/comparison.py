"""D_f against never-seen samples that match it: strata of class and difficulty, the stratified
AUC and its variance over the examples.

A membership comparison is valid only against samples exchangeable with D_f (DESIGN.md,
"Evidence"). Deletion requests are not random samples: a class, the hardest examples, one
person's images. RMIA's and LiRA's scores are lower wherever a sample is atypical, hard or of a
class the model never saw, so comparing such a D_f with the whole test split measures how D_f
differs from it, not whether the model remembers D_f.

**Strata.** Each forget sample is compared only with never-seen samples of its own class and of
similar *difficulty*: how models that never trained on the sample treat it (the mean
logit-scaled confidence of the OUT reference models, which the pool has for every sample). Within
each class the never-seen candidates are cut at quantiles of their difficulty into bins of at
least ``per_bin`` samples (at most ``max_bins``); a forget sample joins the bin its difficulty
falls in. A forget sample whose class has no candidate, or whose difficulty lies outside the
class's candidates' range by more than ``reach`` times that range, has no comparable never-seen
sample and is left out (counted and listed, never silently).

**Statistic.** The stratified AUC: over forget samples, the share of same-stratum never-seen
samples each one out-scores (ties ½), averaged with weight 1 per forget sample. It is 0.5 when,
within strata, D_f scores like never-seen data. Its variance over the examples is DeLong's
(DeLong, DeLong & Clarke-Pearson, Biometrics 1988), per stratum from the structural components,
combined as Σ w_s² Var_s (strata are independent samples).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import SftcError

#: Fewest never-seen samples in a difficulty bin, and most bins per class.
PER_BIN = 8
MAX_BINS = 5
#: A forget sample may lie this share of its class's candidate range beyond it and still match.
REACH = 0.1


@dataclass(frozen=True)
class Strata:
    """Stratum of every forget sample and candidate (-1: left out) and how they were made."""

    forget: np.ndarray          # [n_f] stratum id or -1 (unmatched)
    candidates: np.ndarray      # [n_c] stratum id or -1 (class absent from D_f)
    count: int
    settings: dict = field(default_factory=dict)

    @property
    def matched(self) -> np.ndarray:
        return self.forget >= 0

    def describe(self) -> dict:
        used = self.candidates >= 0
        return {"strata": self.count, "matched_forget": int(self.matched.sum()),
                "unmatched_forget": int((~self.matched).sum()),
                "comparison_samples": int(used.sum()), **self.settings}


def match_strata(forget_class, forget_difficulty, cand_class, cand_difficulty, *,
                 per_bin: int = PER_BIN, max_bins: int = MAX_BINS, reach: float = REACH,
                 by_difficulty: bool = True) -> Strata:
    """Strata of class × difficulty bin (module docstring); ``by_difficulty=False``: by class
    only."""
    fc, fd = np.asarray(forget_class), np.asarray(forget_difficulty, dtype=np.float64)
    cc, cd = np.asarray(cand_class), np.asarray(cand_difficulty, dtype=np.float64)
    if fc.shape != fd.shape or cc.shape != cd.shape:
        raise SftcError("each sample needs one class and one difficulty")
    if per_bin < 1 or max_bins < 1 or reach < 0:
        raise SftcError("per_bin and max_bins must be 1 or more and reach 0 or more")
    f_out = np.full(fc.shape, -1, dtype=np.int64)
    c_out = np.full(cc.shape, -1, dtype=np.int64)
    count = 0
    for cls in np.unique(fc):
        fi, ci = np.where(fc == cls)[0], np.where(cc == cls)[0]
        if ci.size == 0:
            continue
        bins = max(1, min(max_bins, ci.size // per_bin)) if by_difficulty else 1
        edges = np.quantile(cd[ci], np.linspace(0.0, 1.0, bins + 1)[1:-1]) if bins > 1 else []
        lo, hi = cd[ci].min(), cd[ci].max()
        slack = reach * max(hi - lo, 1e-12)
        inside = (fd[fi] >= lo - slack) & (fd[fi] <= hi + slack) if by_difficulty else \
            np.ones(fi.size, dtype=bool)
        f_bin = np.searchsorted(edges, fd[fi], side="right")
        c_bin = np.searchsorted(edges, cd[ci], side="right")
        f_out[fi[inside]] = count + f_bin[inside]
        c_out[ci] = count + c_bin
        count += bins
    empty = ~np.isin(f_out, c_out) & (f_out >= 0)   # a bin no candidate fell in (tied edges)
    f_out[empty] = -1
    settings = {"by": "class and difficulty" if by_difficulty else "class",
                "per_bin": per_bin, "max_bins": max_bins, "reach": reach}
    return Strata(f_out, c_out, count, settings)


def _components(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: for each positive the share of negatives it beats, for
    each negative the share of positives that beat it (ties ½)."""
    neg_sorted, pos_sorted = np.sort(neg), np.sort(pos)
    below = np.searchsorted(neg_sorted, pos, side="left")
    equal = np.searchsorted(neg_sorted, pos, side="right") - below
    v10 = (below + 0.5 * equal) / neg.size
    above = pos.size - np.searchsorted(pos_sorted, neg, side="right")
    tied = np.searchsorted(pos_sorted, neg, side="right") - np.searchsorted(pos_sorted, neg,
                                                                            side="left")
    v01 = (above + 0.5 * tied) / pos.size
    return v10, v01


def _variance(values: np.ndarray) -> float:
    """Sample variance; a single value carries no spread estimate, so it takes ψ's bound ¼."""
    return float(np.var(values, ddof=1)) if values.size > 1 else 0.25


def stratified_auc(pos, neg, strata: Strata) -> tuple[float, float]:
    """The stratified AUC of forget scores ``pos`` [n_f] against candidate scores ``neg``
    [n_c], and its DeLong variance over the examples."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if pos.shape != strata.forget.shape or neg.shape != strata.candidates.shape:
        raise SftcError("scores and strata must cover the same samples")
    total = int(strata.matched.sum())
    if total == 0:
        raise SftcError("no forget sample has a comparable never-seen sample (same class, "
                        "similar difficulty); the comparison is empty")
    estimate, variance = 0.0, 0.0
    for s in np.unique(strata.forget[strata.matched]):
        p, n = pos[strata.forget == s], neg[strata.candidates == s]
        v10, v01 = _components(p, n)
        weight = p.size / total
        estimate += weight * float(v10.mean())
        variance += weight ** 2 * (_variance(v10) / p.size + _variance(v01) / n.size)
    return estimate, variance
