"""`forgotten` as a claim held against retraining: the band within which models retrained without
D_f land on *this* D_f, the attack's power against the original, and the verdict
(docs/evidence.md, "The verdict rule").

**The retrain band.** The audit's K reference models are retrained on D_r with their own seeds.
Each is scored in turn against the others (leave-one-out) on the same forget and comparison
samples, which gives K draws of the statistic a model that never saw D_f reaches: their mean is
the never-seen level L, their standard deviation s. The examples are the same for every model, so
s already holds the examples' noise (it falls like 1/√n with the forget set's size) and the
model-to-model stray; nothing is added to it. For one more retrain R, independent of the K,
(R − L) / (s √(1 + 1/K)) follows Student's t with K − 1 degrees of freedom when the K draws are
normal (the prediction interval for one new observation). So

* ``certify`` = t_{K−1}(1 − α) · s √(1 + 1/K): a fresh retrain lands within L ± certify with
  probability 1 − 2α (90 % at the default α = 0.05);
* ``refute`` = t_{K−1}(1 − α/2) · s √(1 + 1/K): a fresh retrain lands beyond L ± refute with
  probability α (5 %).

The small-K correction (the t quantile, and the 1/K for L's own error) makes a band from 4
references wider than one from 8 at the same spread; it does not make a spread that happened to
come out small any less random, which is what the correction pays for.

**Power.** The original M is judged on the same band. Its excess d_M = AUC_M − L must lie beyond
``refute`` (the attack tells it from retrained models); otherwise there is nothing the attack can
detect to remove at this size: ``nothing-detectable``. The *detectable excess*
e* = certify + t_{K−1}(1 − β) · s √(1 + 1/K) is the excess a model could keep and still be
certified at most β of the time (β = 0.1). The certificate's **resolution** ρ = 1 − e* / d_M is
the share of the original's shown excess a certificate vouches is gone: a model that kept more
than 1 − ρ of it would be certified at most 10 % of the time. ``forgotten`` needs ρ at least the
asked share (``--resolution``, default 50 %: a model keeping half the original's excess is
certified at most 10 % of the time), or e* at most an asked absolute AUC excess.

**Verdict** on a model with d = AUC − L:

* ``not-forgotten``: |d| > refute, *remembered* above, *over-forgotten* below (a fresh retrain is
  called so at most α of the time; a forget set less familiar than never-seen data stands out
  too);
* ``nothing-detectable``: the original itself is within ``refute``;
* ``forgotten``: |d| ≤ certify and the resolution is met;
* ``not-proven``: within the band without the resolution, or between ``certify`` and
  ``refute``; the record says what would decide it (more forget samples, more references, or
  retraining).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ...errors import SftcError

#: Default significance level of each one-sided test.
ALPHA = 0.05
#: A model that keeps the detectable excess is certified at most this share of the time.
BETA = 0.10
#: Default share of the original's excess a certificate must vouch is gone.
RESOLUTION = 0.5
#: The references a band needs to be as wide as this many would make it (the cost line).
FULL_REFERENCES = 8
#: Most references the "what would decide it" line proposes.
MAX_PROPOSED_REFERENCES = 64
NEVER_SEEN = 0.5
VERDICTS = ("forgotten", "not-forgotten", "not-proven", "nothing-detectable")


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 0.25):
        raise SftcError(f"--alpha must lie strictly between 0 and 0.25, got {alpha!r}")
    return float(alpha)


def _t(q: float, k: int) -> float:
    """Student's t quantile on k − 1 degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(q, k - 1))


@dataclass(frozen=True)
class NeverSeen:
    """The level L and spread s of the AUCs of models that never saw D_f (leave-one-out)."""

    level: float
    spread: float
    aucs: tuple[float, ...]

    @classmethod
    def from_aucs(cls, aucs) -> "NeverSeen":
        values = np.asarray(aucs, dtype=np.float64)
        if values.size < 3 or not np.isfinite(values).all():
            raise SftcError("the never-seen level needs the AUCs of at least 3 models that never "
                            "saw D_f (pass --references 4 or more)")
        return cls(float(values.mean()), float(values.std(ddof=1)), tuple(values.tolist()))

    @property
    def count(self) -> int:
        return len(self.aucs)

    def stray(self) -> float:
        """The standard deviation of one more retrain's distance from L: s √(1 + 1/K)."""
        return self.spread * math.sqrt(1.0 + 1.0 / self.count)

    def to_dict(self) -> dict:
        return {"level": self.level, "spread": self.spread, "aucs": list(self.aucs)}


@dataclass(frozen=True)
class Band:
    """Where retrained models land on this D_f (module docstring): L ± certify holds a fresh
    retrain with probability 1 − 2α, beyond L ± refute lies one with probability α."""

    level: float
    spread: float
    references: int
    alpha: float
    beta: float
    stray: float
    certify: float
    refute: float
    detectable: float

    @property
    def confidence(self) -> float:
        return 1.0 - 2.0 * self.alpha

    @property
    def delta(self) -> float:
        """The half-width a model's distance from L must not exceed to be certified."""
        return self.certify

    def to_dict(self) -> dict:
        return {**asdict(self), "confidence": self.confidence, "rule": "retrain band"}

    def text(self) -> str:
        return (f"the retrain band {self.level:.3f} ± {self.certify:.3f} "
                f"({self.confidence:.0%} of retrained models)")


def band_factor(k: int, alpha: float = ALPHA, beta: float = BETA) -> tuple[float, float, float]:
    """(certify, refute, detectable) per unit of spread for K references."""
    if k < 3:
        raise SftcError(f"a retrain band needs at least 3 references, got {k}")
    root = math.sqrt(1.0 + 1.0 / k)
    certify = _t(1.0 - alpha, k) * root
    return certify, _t(1.0 - alpha / 2.0, k) * root, certify + _t(1.0 - beta, k) * root


def retrain_band(null: NeverSeen, alpha: float = ALPHA, beta: float = BETA) -> Band:
    """The band of :class:`NeverSeen`'s K leave-one-out AUCs (module docstring)."""
    check_alpha(alpha)
    if not 0.0 < beta < 0.5:
        raise SftcError(f"β (the power's miss rate) lies in (0, 0.5), got {beta}")
    certify, refute, detectable = band_factor(null.count, alpha, beta)
    s = null.spread
    return Band(null.level, s, null.count, float(alpha), float(beta), null.stray(), certify * s,
                refute * s, detectable * s)


@dataclass(frozen=True)
class Interval:
    """A model's AUC with the band a retrain at this estimate would stray within (estimate ±
    certify), the level it is judged against, and the examples' DeLong standard error (recorded
    for comparison: the band's spread already holds the examples' noise)."""

    estimate: float
    low: float
    high: float
    alpha: float
    se: float
    se_examples: float
    se_null: float
    level: float = NEVER_SEEN

    @property
    def confidence(self) -> float:
        return 1.0 - 2.0 * self.alpha

    @property
    def distance(self) -> float:
        return self.estimate - self.level

    def to_dict(self) -> dict:
        return {**asdict(self), "confidence": self.confidence}


def auc_interval(estimate: float, var_examples: float, band: Band) -> Interval:
    """The record of one model's AUC against ``band``."""
    if not (math.isfinite(var_examples) and var_examples >= 0):
        raise SftcError(f"the examples' variance must be a finite number ≥ 0, got {var_examples}")
    estimate = float(estimate)
    return Interval(estimate, max(0.0, estimate - band.certify), min(1.0, estimate + band.certify),
                    band.alpha, band.stray, math.sqrt(var_examples), band.stray, band.level)


def parse_resolution(text) -> tuple[str, float]:
    """``"50%"`` (share of the original's excess a certificate must vouch is gone) or ``"0.05"``
    (the largest AUC excess a certificate may leave undetected)."""
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            share = float(raw[:-1]) / 100.0
            if not 0.0 < share < 1.0:
                raise ValueError
            return "share", share
        excess = float(raw)
        if not 0.0 < excess < 0.5:
            raise ValueError
        return "absolute", excess
    except ValueError:
        raise SftcError(f"--resolution {text!r}: give the share of the original's excess a "
                        "certificate must vouch is gone, e.g. 50%, or the largest AUC excess it "
                        "may leave undetected, in (0, 0.5), e.g. 0.05") from None


@dataclass(frozen=True)
class Power:
    """What the attack can show on this D_f: the original's excess over L against the band, and
    the certificate's resolution (module docstring)."""

    original_excess: float
    shown: bool               # the original lies beyond the refute line
    detectable: float         # e*
    resolution: float | None  # 1 − e*/d_M (None: the original shows no excess)
    rule: str                 # "share" | "absolute"
    required: float           # the share, or the absolute e* bound
    enough: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        if self.resolution is None or self.resolution <= 0:
            return (f"resolution: none (the original's excess {self.original_excess:+.3f} is no "
                    f"more than a certificate could leave undetected, {self.detectable:.3f})")
        return (f"resolution {self.resolution:.0%}: a model keeping more than "
                f"{1 - self.resolution:.0%} of the original's excess "
                f"({self.original_excess:.3f}) is certified at most 10% of the time")


def power_of(original: Interval, band: Band, spec: str | float = f"{RESOLUTION:.0%}") -> Power:
    """The power the original's AUC gives the band (``spec``: :func:`parse_resolution`)."""
    rule, value = parse_resolution(spec)
    excess = original.estimate - band.level
    resolution = 1.0 - band.detectable / excess if excess > 0 else None
    shown = excess > band.refute
    enough = shown and (resolution is not None and resolution >= value if rule == "share"
                        else band.detectable <= value)
    return Power(float(excess), bool(shown), band.detectable, resolution, rule, value,
                 bool(enough))
