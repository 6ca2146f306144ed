"""Per-sample signals that membership attacks read from a model's logits.

* :func:`logit_scaled_confidence` — φ = log p_y − log Σ_{k≠y} p_k, the statistic of LiRA
  (Carlini et al., "Membership Inference Attacks From First Principles", IEEE S&P 2022, section
  IV-B: the logit of the true-class probability, which makes the per-example distributions close
  to Gaussian) and of the NeurIPS 2023 unlearning challenge's forgetting score.
* :func:`true_class_log_prob` — log p_y (optionally at a softmax temperature), RMIA's Pr(x | θ)
  (Zarifzadeh et al., "Low-Cost High-Power Membership Inference Attacks", ICML 2024, section 3)
  kept in log space.

Both are computed in float64 without forming the probabilities: φ = z_y − logsumexp_{k≠y} z_k,
which is exact for any logits (no 1 − p_y cancellation, no log 0).
"""
from __future__ import annotations

import numpy as np

from ...errors import SftcError


def _arrays(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits.detach().cpu() if hasattr(logits, "detach") else logits,
                   dtype=np.float64)
    y = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels)
    if z.ndim < 2:
        raise SftcError(f"logits must be shaped [..., samples, classes], got {z.shape}")
    if y.shape != z.shape[-2:-1]:
        raise SftcError(f"need one label per sample: logits for {z.shape[-2]} samples, labels "
                        f"shaped {y.shape}")
    if z.shape[-1] < 2:
        raise SftcError("membership signals need at least 2 classes")
    if y.size and (y.min() < 0 or y.max() >= z.shape[-1]):
        raise SftcError(f"labels must lie in [0, {z.shape[-1] - 1}]")
    if not np.isfinite(z).all():
        raise SftcError("logits hold NaN or infinite values")
    return z, y.astype(np.int64)


def _logsumexp(z: np.ndarray, axis: int = -1) -> np.ndarray:
    top = np.max(z, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(z - top), axis=axis))


def logit_scaled_confidence(logits, labels) -> np.ndarray:
    """φ(x, y) = log p_y − log(1 − p_y) = z_y − logsumexp_{k≠y} z_k, float64.

    ``logits`` is ``[n, C]`` (or ``[models, n, C]``), ``labels`` ``[n]``; returns ``[n]``
    (or ``[models, n]``). Large φ: the model is confident in the true class.
    """
    z, y = _arrays(logits, labels)
    index = np.expand_dims(np.broadcast_to(y, z.shape[:-1]), -1)
    correct = np.take_along_axis(z, index, axis=-1)[..., 0]
    others = z.copy()
    np.put_along_axis(others, index, -np.inf, axis=-1)
    return correct - _logsumexp(others)


def true_class_log_prob(logits, labels, temperature: float = 1.0) -> np.ndarray:
    """log softmax(z / T)_y, float64: RMIA's log Pr(x | θ). Shapes as in
    :func:`logit_scaled_confidence`."""
    if not (temperature > 0 and np.isfinite(temperature)):
        raise SftcError(f"the softmax temperature must be a positive number, got {temperature}")
    z, y = _arrays(logits, labels)
    z = z / temperature
    index = np.expand_dims(np.broadcast_to(y, z.shape[:-1]), -1)
    return np.take_along_axis(z, index, axis=-1)[..., 0] - _logsumexp(z)
