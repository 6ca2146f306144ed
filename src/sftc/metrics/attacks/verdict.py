"""The verdict on one model against the retrain band (:mod:`.equivalence`), what would decide a
``not-proven`` verdict in numbers, and what fewer references cost (docs/evidence.md, "A next
step on every answer").

The band's width is its spread s times a factor of K (:func:`~.equivalence.band_factor`). Two
things shrink it:

* **More samples.** s is the spread of K statistics computed on the same examples, and it falls
  like 1/√n with the number of forget (and comparison) samples (measured: docs/evidence.md's
  calibration, random sets of 30, 90 and 300). So a band ``f`` times narrower needs about f² as
  many samples of each kind, which a deletion request rarely has to give: it is said so, and
  retraining (the yardstick itself) is named beside it.
* **More references.** The factor falls with K (the t quantile and 1/K), towards
  z_{1−α} + z_{1−β} for the detectable excess; at the same spread the smallest K that reaches the
  asked resolution is named, up to :data:`~.equivalence.MAX_PROPOSED_REFERENCES`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .equivalence import (FULL_REFERENCES, MAX_PROPOSED_REFERENCES, Band, Interval, Power,
                          band_factor)


def _samples(scale: float, n_forget: int, n_comparison: int) -> dict:
    scale = max(scale, 1.0)
    return {"forget": int(math.ceil(n_forget * scale)),
            "comparison": int(math.ceil(n_comparison * scale))}


def _references(band: Band, excess: float) -> int | None:
    """The fewest references whose band, at this spread, detects ``excess``."""
    for k in range(band.references + 1, MAX_PROPOSED_REFERENCES + 1):
        if band_factor(k, band.alpha, band.beta)[2] * band.spread <= excess:
            return k
    return None


def needed_for_power(band: Band, power: Power, n_forget: int, n_comparison: int) -> dict:
    """Within the band, but the resolution is short: what would reach it."""
    target = ((1.0 - power.required) * power.original_excess if power.rule == "share"
              else power.required)
    scale = (band.detectable / target) ** 2 if target > 0 else math.inf
    out = {"kind": "resolution", "target_detectable": target,
           **(_samples(scale, n_forget, n_comparison) if math.isfinite(scale) else
              {"forget": None, "comparison": None}),
           "references": _references(band, target), "retrain": True}
    refs = (f"{out['references']} references at this spread" if out["references"] else
            f"more references alone cannot (even {MAX_PROPOSED_REFERENCES} leave more than "
            f"{target:.3f} undetected at this spread)")
    samples = (f"about {out['forget']} forget and {out['comparison']} comparison samples (the "
               "band narrows like 1/√n)" if out["forget"] else "no number of samples")
    out["why"] = (f"to vouch for the asked share the band must detect an excess of "
                  f"{target:.3f} (now {band.detectable:.3f}): {samples}, or {refs}; or retrain "
                  "from scratch (--method retrain), the yardstick itself")
    return out


def needed_for_borderline(band: Band, distance: float, n_forget: int, n_comparison: int) -> dict:
    """Between certify and refute: what would tell it either way at this distance."""
    scale = (band.refute / abs(distance)) ** 2 if distance else math.inf
    out = {"kind": "borderline", **_samples(scale, n_forget, n_comparison),
           "references": None, "retrain": True}
    out["why"] = (f"at this distance ({distance:+.3f}) about {out['forget']} forget and "
                  f"{out['comparison']} comparison samples would show it differs from retrained "
                  "models (the band narrows like 1/√n); a further unlearning epoch or the search "
                  "(--until forgotten) may bring it inside; or retrain from scratch "
                  "(--method retrain)")
    return out


def reference_cost(band: Band) -> str | None:
    """Below :data:`FULL_REFERENCES` references, what the band's small-K correction costs."""
    if band.references >= FULL_REFERENCES:
        return None
    few = band_factor(band.references, band.alpha, band.beta)
    full = band_factor(FULL_REFERENCES, band.alpha, band.beta)
    width, ratio = few[0] / full[0], few[2] / full[2]
    return (f"with {band.references} references the band is {width:.2f}× as wide as with "
            f"{FULL_REFERENCES} at the same spread (Student's t on {band.references - 1} degrees "
            f"of freedom): the original needs {ratio:.2f}× the excess for the same resolution")


@dataclass(frozen=True)
class Verdict:
    """The verdict on one model, with what it rests on."""

    verdict: str                  # one of VERDICTS
    direction: str | None         # remembered | over-forgotten (not-forgotten only)
    reason: str
    interval: Interval | None = None
    band: Band | None = None
    certifiable_margin: float | None = None   # |d|: the band half-width that would certify it
    needed: dict | None = None
    classes: dict | None = None   # the class test, for a class-level request
    power: Power | None = None
    #: inside the band with the original shown beyond the refute line, whatever the resolution
    #: (what a search on a smaller selection split stops on; the certificate is the final audit's)
    in_band: bool = False

    @property
    def resolution(self) -> float | None:
        return self.power.resolution if self.power else None

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "direction": self.direction, "reason": self.reason,
                "interval": self.interval.to_dict() if self.interval else None,
                "band": self.band.to_dict() if self.band else None,
                "certifiable_margin": self.certifiable_margin, "needed": self.needed,
                "class_test": self.classes,
                "power": self.power.to_dict() if self.power else None, "in_band": self.in_band}

    @property
    def text(self) -> str:
        return self.verdict + (f" ({self.direction})" if self.direction else "")


def judge(interval: Interval, band: Band, power: Power, *, n_forget: int,
          n_comparison: int) -> Verdict:
    """The verdict on a model whose AUC record is ``interval`` (module docstring)."""
    d = interval.estimate - band.level
    where = (f"AUC {interval.estimate:.3f}, {d:+.3f} from the never-seen level "
             f"{band.level:.3f}, against {band.text()}")
    common = dict(interval=interval, band=band, certifiable_margin=abs(d), power=power,
                  in_band=bool(abs(d) <= band.certify and power.shown))
    if abs(d) > band.refute:
        direction = "remembered" if d > 0 else "over-forgotten"
        side = "above" if d > 0 else "below"
        return Verdict("not-forgotten", direction,
                       f"{where}: {side} the refute line ±{band.refute:.3f}, beyond which a "
                       f"retrained model lands {band.alpha:.0%} of the time", **common)
    if not power.shown:
        return Verdict("nothing-detectable", None,
                       f"{where}: the original itself ({power.original_excess:+.3f}) is within "
                       f"±{band.refute:.3f}, so the attack cannot tell it from models retrained "
                       f"without D_f: there is nothing detectable to remove at this size (an "
                       f"excess below {band.refute:.3f} AUC goes unseen)", **common)
    if abs(d) <= band.certify:
        if power.enough:
            return Verdict("forgotten", None, f"{where}: inside it; {power.text()}", **common)
        return Verdict("not-proven", None,
                       f"{where}: inside it, but {power.text()}, short of the asked "
                       f"{_asked(power)}", needed=needed_for_power(band, power, n_forget,
                                                                   n_comparison), **common)
    return Verdict("not-proven", None,
                   f"{where}: outside it but within the refute line ±{band.refute:.3f} (a fresh "
                   f"retrain lands here {band.alpha:.0%} of the time)",
                   needed=needed_for_borderline(band, d, n_forget, n_comparison), **common)


def _asked(power: Power) -> str:
    if power.rule == "share":
        return f"{power.required:.0%}"
    return f"undetected excess ≤ {power.required:.3f}"
