"""`forgotten` as a claim that is shown: an interval for the deciding AUC, the level models that
never saw D_f reach, a margin around it, and two one-sided tests (docs/evidence.md, "The verdict
rule").

**The never-seen level.** A model that never trained on D_f scores it like never-seen data only
up to chance: the AUC of a retrained model scatters around 0.5 with the examples drawn, and, when
D_f is a group (one person's images, a block of rows), with the model's own training (its seed
decides how well it happens to generalise to the group), and it is offset by whatever the fixed
test split and the matching leave. The audit's reference models *are* such models (retrained on
D_r with their own seeds), so each is scored in turn against the others (leave-one-out): their
AUCs' mean is the level L, their spread s says how far a model that never saw D_f strays from it.

**Interval.** The target's AUC minus L varies with the examples (DeLong's variance over both
sides, :func:`~sftc.metrics.attacks.comparison.stratified_auc`) and as much as a never-seen model's
AUC does around L (s², plus s²/K for estimating L from K references). The interval is the normal
one at confidence 1 − 2α around the AUC: each end is a one-sided (1 − α) bound.

**Margin.** ``forgotten`` means "at least ``share`` of what the original remembered is gone": with
U_M the lower end of the original's interval, δ = (1 − share) · (U_M − L) (default share 0.8).
Using the lower end makes δ small when the original's own memory is uncertain; δ ≤ 0 (the attack
does not show that the original remembers D_f at all) certifies nothing. An absolute δ can be
given instead.

**Verdict** (two one-sided tests, Schuirmann 1987, at level α each):

* ``forgotten``: the interval lies inside (L − δ, L + δ): equivalence to never-seen data is shown
  at confidence 1 − α;
* ``not-forgotten``: the interval lies wholly outside [L − δ, L + δ]: a difference larger than the
  margin is shown (*remembered* above, *over-forgotten* below: a forget set that looks less
  familiar than never-seen data stands out too);
* ``not-proven``: neither; the record says the tightest margin this interval certifies and about
  how many forget (and comparison) samples the asked margin would need at this estimate.

Both claims need **power**: the original, judged the same way, must be shown to remember D_f (its
interval wholly above L + δ). Without it a model's distance from L says nothing about D_f's
memory (the calibration found retrained models "more familiar than never-seen data" than the
original itself on the easiest samples, which the original barely remembers), and the verdict is
``not-proven``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ...errors import SftcError

#: Default significance level of each one-sided test.
ALPHA = 0.05
#: Default share of the original's excess over 0.5 that must be gone.
SHARE = 0.8
NEVER_SEEN = 0.5
VERDICTS = ("forgotten", "not-forgotten", "not-proven")


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0.0 < alpha < 0.25):
        raise SftcError(f"--alpha must lie strictly between 0 and 0.25, got {alpha!r}")
    return float(alpha)


@dataclass(frozen=True)
class Interval:
    """An AUC with its (1 − 2α) normal interval, the never-seen level it is judged against, and
    where its spread comes from (the examples; how far never-seen models stray from the level)."""

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

    def to_dict(self) -> dict:
        return {**asdict(self), "confidence": self.confidence}


def _z(alpha: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1.0 - alpha))


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

    def variance(self) -> float:
        """How far one never-seen model strays from L, and L's own uncertainty: s² (1 + 1/K)."""
        return self.spread ** 2 * (1.0 + 1.0 / len(self.aucs))

    def to_dict(self) -> dict:
        return {"level": self.level, "spread": self.spread, "aucs": list(self.aucs)}


def auc_interval(estimate: float, var_examples: float, null: NeverSeen, alpha: float = ALPHA
                 ) -> Interval:
    """The interval of an AUC from its DeLong variance and the never-seen models' spread."""
    check_alpha(alpha)
    if not (math.isfinite(var_examples) and var_examples >= 0):
        raise SftcError(f"the examples' variance must be a finite number ≥ 0, got {var_examples}")
    var_null = null.variance()
    se = math.sqrt(var_examples + var_null)
    z = _z(alpha)
    return Interval(float(estimate), max(0.0, estimate - z * se), min(1.0, estimate + z * se),
                    float(alpha), se, math.sqrt(var_examples), math.sqrt(var_null), null.level)


@dataclass(frozen=True)
class Margin:
    """δ, the largest distance from 0.5 still called never-seen, and where it comes from."""

    delta: float
    rule: str                 # "share of the original's excess" | "absolute"
    share: float | None = None
    original_low: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        if self.rule == "absolute":
            return f"±{self.delta:.3f} (given)"
        return (f"±{self.delta:.3f} = {1 - self.share:g} × the original's shown excess "
                f"({self.original_low:.3f} − the never-seen level)")


def parse_margin(text) -> tuple[str, float]:
    """``"80%"`` (share of the original's excess that must be gone) or ``"0.05"`` (absolute δ)."""
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            share = float(raw[:-1]) / 100.0
            if not 0.0 < share < 1.0:
                raise ValueError
            return "share", share
        delta = float(raw)
        if not 0.0 < delta < 0.5:
            raise ValueError
        return "absolute", delta
    except ValueError:
        raise SftcError(f"--margin {text!r}: give a share of the original's excess that must be "
                        "gone, e.g. 80%, or an absolute AUC distance from 0.5 in (0, 0.5), e.g. "
                        "0.05") from None


def margin_for(original: Interval, spec: str | float = "80%") -> Margin:
    """The margin for ``spec`` (:func:`parse_margin`) given the original's interval."""
    kind, value = parse_margin(spec)
    if kind == "absolute":
        return Margin(value, "absolute")
    return Margin(max(0.0, (1.0 - value) * (original.low - original.level)),
                  "share of the original's excess", value, original.low)


@dataclass(frozen=True)
class Verdict:
    """The verdict on one model, with what it rests on."""

    verdict: str                  # forgotten | not-forgotten | not-proven
    direction: str | None         # remembered | over-forgotten (not-forgotten only)
    reason: str
    interval: Interval | None = None
    margin: Margin | None = None
    certifiable_margin: float | None = None
    needed: dict | None = None
    classes: dict | None = None   # the class test, for a class-level request

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "direction": self.direction, "reason": self.reason,
                "interval": self.interval.to_dict() if self.interval else None,
                "margin": self.margin.to_dict() if self.margin else None,
                "certifiable_margin": self.certifiable_margin, "needed": self.needed,
                "class_test": self.classes}

    @property
    def text(self) -> str:
        return self.verdict + (f" ({self.direction})" if self.direction else "")


def needed_samples(interval: Interval, delta: float, n_forget: int,
                   n_comparison: int) -> dict | None:
    """About how many forget and comparison samples (both scaled alike) would make an interval
    around this estimate fit in ±δ; None when no number would (the estimate itself is outside,
    or the references' spread alone is too wide: more references are needed)."""
    room = (delta - abs(interval.estimate - interval.level)) / _z(interval.alpha)
    if room <= 0:
        return None
    budget = room ** 2 - interval.se_null ** 2
    if budget <= 0:
        return {"forget": None, "comparison": None,
                "why": f"models retrained without D_f stray from one another by more than the "
                       f"margin allows (their spread alone takes ±"
                       f"{_z(interval.alpha) * interval.se_null:.3f}): no number of samples "
                       "certifies it; only a wider --margin could"}
    scale = interval.se_examples ** 2 / budget
    return {"forget": int(math.ceil(n_forget * max(scale, 1.0))),
            "comparison": int(math.ceil(n_comparison * max(scale, 1.0)))}


def judge(interval: Interval, margin: Margin, *, n_forget: int, n_comparison: int,
          power: bool = True) -> Verdict:
    """The verdict of the two one-sided tests (module docstring). ``power``: the attack shows
    that the original remembers D_f (its own interval lies wholly above the margin); without it
    neither claim is made: ``not-proven``."""
    d, level = margin.delta, interval.level
    low, high = level - d, level + d
    certifiable = max(level - interval.low, interval.high - level)
    ci = (f"AUC {interval.estimate:.3f}, {interval.confidence:.0%} interval "
          f"[{interval.low:.3f}, {interval.high:.3f}], never-seen level {level:.3f}")
    if d <= 0 or not power:
        why = (f"{ci}; the attack does not show that the original remembers D_f (its interval "
               "does not lie above the margin), so nothing can be shown either way")
        return Verdict("not-proven", None, why, interval, margin, certifiable, None)
    if low < interval.low and interval.high < high:
        return Verdict("forgotten", None,
                       f"{ci}: within the margin ±{d:.3f} of never-seen data", interval,
                       margin, certifiable)
    if interval.low > high or interval.high < low:
        direction = "remembered" if interval.low > high else "over-forgotten"
        what = "above" if direction == "remembered" else "below"
        return Verdict("not-forgotten", direction,
                       f"{ci}: wholly {what} the margin ±{d:.3f} of never-seen data", interval,
                       margin, certifiable)
    return Verdict("not-proven", None, f"{ci}: overlaps the margin ±{d:.3f} without lying within "
                   "it", interval, margin, certifiable,
                   needed_samples(interval, d, n_forget, n_comparison))
