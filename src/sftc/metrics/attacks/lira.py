"""LiRA: the likelihood-ratio membership attack with per-example Gaussians (Carlini et al.,
"Membership Inference Attacks From First Principles", IEEE S&P 2022, Algorithm 1).

Data-first: every function takes the target model's signal on n samples (``target``, ``[n]``, the
logit-scaled confidence of :func:`~sftc.metrics.attacks.signals.logit_scaled_confidence`), the
reference models' signals on the same samples (``refs``, ``[K, n]``) and which reference trained
on which sample (``in_mask``, bool ``[K, n]``), and returns one score per sample, higher meaning
"more likely a member".

* Online (the paper's main attack): fit N(μ_in, σ_in²) to the IN references' signals of each
  sample and N(μ_out, σ_out²) to the OUT ones; score = log N(φ; μ_in, σ_in²) − log N(φ; μ_out,
  σ_out²). Needs IN and OUT references for every sample.
* Offline: only OUT references; a one-sided test, score = log Pr[Z ≤ φ], Z ~ N(μ_out, σ_out²)
  (the paper's Λ = 1 − Pr[Z > φ], in log space).

Variance: per example, or one global variance per side (the paper's "fixed variance", section
VI-A: better with few references, below 64 in its Figure 9). ``variance="auto"`` takes the
global one when some sample has fewer than :data:`GLOBAL_BELOW` IN or OUT scores. The global
variance is the pooled within-example variance (Σ squared deviations from each sample's own mean
over Σ (count − 1)). Means are sample means, as in the paper's text (its code uses medians).
The paper also queries augmented copies of each sample; sftc scores the sample itself only.
"""
from __future__ import annotations

import numpy as np

from ...errors import SftcError
from .base import Attack, AttackView, register_attack

VARIANCES = ("auto", "global", "per-example")
#: ``variance="auto"`` uses the global variance below this many IN (or OUT) signals per sample.
GLOBAL_BELOW = 32
#: Floor of every fitted standard deviation (signals are logits, of order 1-30): keeps the
#: density finite when all references agree exactly.
MIN_STD = 1e-6


def check_inputs(target, refs, in_mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``target`` [n], ``refs`` [K, n] float64 and ``in_mask`` [K, n] bool, checked."""
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    refs = np.asarray(refs, dtype=np.float64)
    in_mask = np.asarray(in_mask)
    if refs.ndim != 2 or refs.shape[1] != target.size:
        raise SftcError(f"reference signals must be shaped [references, {target.size}], got "
                        f"{refs.shape}")
    if in_mask.shape != refs.shape or in_mask.dtype != bool:
        raise SftcError(f"the IN/OUT mask must be a bool array shaped {refs.shape}, got "
                        f"{in_mask.dtype} {in_mask.shape}")
    if not (np.isfinite(target).all() and np.isfinite(refs).all()):
        raise SftcError("attack signals hold NaN or infinite values")
    return target, refs, in_mask


def _need(mask: np.ndarray, low: int, side: str, attack: str) -> None:
    counts = mask.sum(0)
    if counts.size and counts.min() < low:
        i = int(np.argmin(counts))
        raise SftcError(f"{attack} needs at least {low} {side} reference models for every sample; "
                        f"sample {i} has {int(counts[i])} of {mask.shape[0]}: train more reference "
                        "models (--references 4 or more)")


def gaussian_fit(refs: np.ndarray, mask: np.ndarray, variance: str = "auto"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample mean and standard deviation of ``refs`` where ``mask`` (≥ 2 per sample)."""
    if variance not in VARIANCES:
        raise SftcError(f"unknown LiRA variance {variance!r}; use {', '.join(VARIANCES)}")
    counts = mask.sum(0).astype(np.float64)
    mean = np.where(mask, refs, 0.0).sum(0) / counts
    squares = np.where(mask, (refs - mean) ** 2, 0.0).sum(0)
    if variance == "auto":
        variance = "global" if counts.min() < GLOBAL_BELOW else "per-example"
    if variance == "global":
        std = np.full_like(mean, np.sqrt(squares.sum() / (counts - 1).sum()))
    else:
        std = np.sqrt(squares / (counts - 1))
    return mean, np.maximum(std, MIN_STD)


def resolved_variance(in_mask: np.ndarray, variance: str = "auto", online: bool = True) -> str:
    """What ``variance="auto"`` becomes for this mask (recorded beside the figures)."""
    if variance not in VARIANCES:
        raise SftcError(f"unknown LiRA variance {variance!r}; use {', '.join(VARIANCES)}")
    if variance != "auto":
        return variance
    masks = [in_mask, ~in_mask] if online else [~in_mask]
    low = min(int(m.sum(0).min()) for m in masks)
    return "global" if low < GLOBAL_BELOW else "per-example"


def lira_online(target, refs, in_mask, variance: str = "auto") -> np.ndarray:
    """Online LiRA scores: log-likelihood ratio of IN against OUT Gaussians, per sample."""
    from scipy.stats import norm

    target, refs, in_mask = check_inputs(target, refs, in_mask)
    _need(in_mask, 2, "IN", "online LiRA")
    _need(~in_mask, 2, "OUT", "online LiRA")
    variance = resolved_variance(in_mask, variance, online=True)
    mu_in, sd_in = gaussian_fit(refs, in_mask, variance)
    mu_out, sd_out = gaussian_fit(refs, ~in_mask, variance)
    return norm.logpdf(target, mu_in, sd_in) - norm.logpdf(target, mu_out, sd_out)


def lira_offline(target, refs, in_mask, variance: str = "auto") -> np.ndarray:
    """Offline LiRA scores: log Pr[Z ≤ φ] under the OUT Gaussian (one-sided), per sample."""
    from scipy.stats import norm

    target, refs, in_mask = check_inputs(target, refs, in_mask)
    _need(~in_mask, 2, "OUT", "offline LiRA")
    variance = resolved_variance(in_mask, variance, online=False)
    mu_out, sd_out = gaussian_fit(refs, ~in_mask, variance)
    return norm.logcdf(target, mu_out, sd_out)



@register_attack
class LiRAOnline(Attack):
    name = "lira-online"
    label = "LiRA online"
    paper = ("Carlini et al., Membership Inference Attacks From First Principles, "
             "IEEE S&P 2022")
    meaning = ("LiRA (Carlini et al., S&P 2022): likelihood ratio of per-example Gaussians "
               "fitted to IN and OUT references' logit-scaled confidences")
    min_references = 4      # a mean and a variance for each side: two IN and two OUT
    needs_members = True

    def score(self, view: AttackView) -> np.ndarray:
        return lira_online(view.target("confidence"), view.refs("confidence"), view.in_mask)

    def settings(self, view: AttackView) -> dict:
        return {"variance": resolved_variance(view.in_mask, "auto", online=True)}


@register_attack
class LiRAOffline(Attack):
    name = "lira-offline"
    aliases = ("lira",)
    label = "LiRA offline"
    paper = LiRAOnline.paper
    meaning = "LiRA with OUT references only: one-sided test against the OUT Gaussian"
    min_references = 2      # a mean and a variance of the OUT side

    def score(self, view: AttackView) -> np.ndarray:
        return lira_offline(view.target("confidence"), view.refs("confidence"), view.in_mask)

    def settings(self, view: AttackView) -> dict:
        return {"variance": resolved_variance(view.in_mask, "auto", online=False)}
