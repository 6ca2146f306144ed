"""RMIA: the relative membership attack of Zarifzadeh et al., "Low-Cost High-Power Membership
Inference Attacks", ICML 2024 (section 3, Algorithm 1).

For a sample x and a population sample z (never in any model's training data),

    LR_θ(x, z) = [Pr(x | θ) / Pr(x)] / [Pr(z | θ) / Pr(z)],
    Score(x; θ) = Pr_z[ LR_θ(x, z) ≥ γ ]   (the share of population samples x "beats"),

where Pr(x | θ) is the target model's probability of x's true label and Pr(x) its average over
reference models. Comparing with population samples calibrates each x against how any model
treats typical data, which keeps the attack strong with few reference models.

* Online: Pr(x) = ½ (mean over IN references + mean over OUT references) of Pr(x | θ'), which
  with the balanced IN/OUT assignment of the audit's reference pool is the mean over all of them;
  Pr(z) = the mean over all references (z is OUT for every one).
* Offline (OUT references only): Pr(x) ≈ ½ ((1 + a) · mean_OUT Pr(x | θ') + (1 − a)), the
  paper's linear approximation of the missing IN half; the same for z. ``a`` defaults to 0.3.

Data-first: inputs are log Pr(·|θ) (see :func:`~sftc.metrics.attacks.signals.true_class_log_prob`)
of the target on the n candidate samples (``target_x`` [n]) and the m population samples
(``target_z`` [m]), the references' on the same samples (``refs_x`` [K, n], ``refs_z`` [K, m])
and the IN/OUT mask of the candidates (``in_mask`` [K, n]). Everything is computed in log space;
the score is a share in [0, 1], higher meaning "more likely a member".
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import SftcError
from .base import Attack, AttackView, register_attack
from .lira import check_inputs

#: The offline approximation's coefficient a (the value of the authors' reference code).
OFFLINE_A = 0.3


def _log_mean_exp(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """log of the mean of exp(values) over axis 0 (where ``mask``), stably."""
    if mask is None:
        mask = np.ones(values.shape, dtype=bool)
    masked = np.where(mask, values, -np.inf)
    top = masked.max(0)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.where(mask, np.exp(values - top), 0.0).sum(0)
    return top + np.log(total) - np.log(mask.sum(0))


def _offline_log_prob(log_mean_out: np.ndarray, a: float) -> np.ndarray:
    """log(½ ((1 + a) · Pr_OUT + (1 − a))), the paper's offline Pr(x)."""
    return np.logaddexp(math.log1p(a) + log_mean_out,
                        math.log(1 - a) if a < 1 else -np.inf) - math.log(2.0)


def log_marginal(refs: np.ndarray, in_mask: np.ndarray | None, offline: bool,
                 a: float = OFFLINE_A) -> np.ndarray:
    """log Pr(x) from the references' log Pr(x | θ'); ``in_mask`` None: no reference trained on
    any of these samples (population)."""
    out_mask = np.ones(refs.shape, dtype=bool) if in_mask is None else ~in_mask
    if offline:
        return _offline_log_prob(_log_mean_exp(refs, out_mask), a)
    if in_mask is None:
        return _log_mean_exp(refs)
    return np.logaddexp(_log_mean_exp(refs, in_mask), _log_mean_exp(refs, out_mask)) - math.log(2)


def rmia(target_x, refs_x, in_mask, target_z, refs_z, *, offline: bool = False,
         a: float = OFFLINE_A, gamma: float = 1.0) -> np.ndarray:
    """RMIA scores of the n candidates: the share of population samples z with LR(x, z) ≥ γ."""
    target_x, refs_x, in_mask = check_inputs(target_x, refs_x, in_mask)
    target_z = np.asarray(target_z, dtype=np.float64).reshape(-1)
    refs_z = np.asarray(refs_z, dtype=np.float64)
    if refs_z.shape != (refs_x.shape[0], target_z.size):
        raise SftcError(f"population signals must be shaped [{refs_x.shape[0]}, {target_z.size}], "
                        f"got {refs_z.shape}")
    if target_z.size == 0:
        raise SftcError("RMIA needs population samples (never in any training set): the "
                        "validation split is empty")
    if not (np.isfinite(target_z).all() and np.isfinite(refs_z).all()):
        raise SftcError("attack signals hold NaN or infinite values")
    if not 0.0 <= a <= 1.0:
        raise SftcError(f"RMIA's offline coefficient a must lie in [0, 1], got {a}")
    if not (gamma > 0 and math.isfinite(gamma)):
        raise SftcError(f"RMIA's threshold gamma must be a positive number, got {gamma}")
    out_counts = (~in_mask).sum(0)
    if out_counts.size and out_counts.min() < 1:
        raise SftcError("RMIA needs an OUT reference model for every sample; train more "
                        "reference models (--references 2 or more)")
    if not offline and in_mask.sum(0).min(initial=1) < 1:
        raise SftcError("online RMIA needs an IN reference model for every sample; train more "
                        "reference models (--references 2 or more)")
    ratio_x = target_x - log_marginal(refs_x, in_mask, offline, a)
    ratio_z = np.sort(target_z - log_marginal(refs_z, None, offline, a))
    wins = np.searchsorted(ratio_z, ratio_x - math.log(gamma), side="right")
    return wins / ratio_z.size


def _rmia_view(view: AttackView, offline: bool) -> np.ndarray:
    return rmia(view.target("log_prob"), view.refs("log_prob"), view.in_mask,
                view.target_population("log_prob"), view.refs_population("log_prob"),
                offline=offline)


@register_attack
class RMIAOnline(Attack):
    name = "rmia-online"
    label = "RMIA online"
    paper = "Zarifzadeh et al., Low-Cost High-Power Membership Inference Attacks, ICML 2024"
    meaning = ("RMIA (Zarifzadeh et al., ICML 2024): share of population samples a sample beats "
               "in Pr(x|θ)/Pr(x), Pr(x) from IN and OUT references")
    min_references = 2      # an IN and an OUT reference per sample
    needs_members = True

    def score(self, view: AttackView) -> np.ndarray:
        return _rmia_view(view, offline=False)


@register_attack
class RMIAOffline(Attack):
    name = "rmia-offline"
    aliases = ("rmia",)
    label = "RMIA offline"
    paper = RMIAOnline.paper
    meaning = ("RMIA with OUT references only (Pr(x) by the paper's linear approximation, "
               f"a = {OFFLINE_A})")
    min_references = 1

    def score(self, view: AttackView) -> np.ndarray:
        return _rmia_view(view, offline=True)

    def settings(self, view: AttackView) -> dict:
        return {"a": OFFLINE_A, "gamma": 1.0}
