"""The audit's verdict from two significance tests (docs/evidence.md, "The verdict rule").

* **Power.** The attack has power when, on the *original* model, D_f scores higher than the
  never-seen samples D_t with one-sided Mann–Whitney p < α (α = 0.001 by default).
* **Verdict on the unlearned model.** Without power: ``inconclusive`` (the attack cannot even
  tell the original's members from non-members, so nothing can be proved either way). With
  power: ``not-forgotten`` when D_f and D_t are distinguishable on the unlearned model, two-sided
  p < 2α — "remembered" when D_f scores higher, "over-forgotten" (the Streisand effect: D_f
  stands out by scoring lower than data never seen) when lower; otherwise ``forgotten``.

Because the two-sided p-value is 2 · min(one-sided p-values)
(:func:`~sftc.metrics.attacks.significance.mann_whitney`), the original passed as the unlearned
model gives two-sided p = 2 · p_greater < 2α whenever there is power: it is never ``forgotten``,
by construction. A retrained oracle treats D_f like D_t, so its two-sided p is uniform under the
null and it is ``not-forgotten`` only with probability 2α = 0.2 %.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import SftcError
from .significance import Significance

VERDICTS = ("forgotten", "not-forgotten", "inconclusive")
ALPHA = 0.001


@dataclass(frozen=True)
class Verdict:
    verdict: str            # forgotten | not-forgotten | inconclusive
    direction: str | None   # remembered | over-forgotten (not-forgotten only)
    reason: str

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "direction": self.direction, "reason": self.reason}


def check_alpha(alpha: float) -> float:
    if not 0.0 < alpha < 0.25:
        raise SftcError(f"--alpha must lie strictly between 0 and 0.25, got {alpha:g}")
    return alpha


def decide(power: Significance, target: Significance, alpha: float = ALPHA) -> Verdict:
    """The verdict on a target model from the test on the original (``power``) and on the
    target (``target``), both of the same attack's scores on D_f against D_t."""
    check_alpha(alpha)
    if not power.p_greater < alpha:
        return Verdict("inconclusive", None,
                       f"no power: on the original model D_f does not score higher than never-seen "
                       f"data (one-sided p = {power.p_greater:.3g}, not below {alpha:g})")
    if target.p_two_sided < 2 * alpha:
        direction = "remembered" if target.p_greater <= target.p_less else "over-forgotten"
        what = ("D_f still scores higher than never-seen data" if direction == "remembered"
                else "D_f scores lower than never-seen data, so it stands out")
        return Verdict("not-forgotten", direction,
                       f"{what} (two-sided p = {target.p_two_sided:.3g} < {2 * alpha:g})")
    return Verdict("forgotten", None,
                   f"D_f is not distinguishable from never-seen data (two-sided p = "
                   f"{target.p_two_sided:.3g}, not below {2 * alpha:g}) although the attack tells "
                   f"the original's D_f apart (one-sided p = {power.p_greater:.3g})")
