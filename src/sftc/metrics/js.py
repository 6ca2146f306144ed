"""Jensen-Shannon distinguishability between the unlearned and the original model on D_f (Eq. 8).

Both variants are computed from log-softmax in float64, so neither is ever NaN:

* :func:`js_divergence` — the textbook JS of Eq. 8, ½·KL(P‖R) + ½·KL(Q‖R) with R = ½(P + Q),
  averaged over samples; bounded by ln 2. The default.
* :func:`js_paper` — what the authors' code computes, ½·KL(R‖P) + ½·KL(R‖Q) (``kl_div`` with its
  arguments swapped); unbounded, which is why Table 1 shows values above ln 2 and ∞. Use it to
  compare with the paper's numbers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _log_probs(p_logits: torch.Tensor, q_logits: torch.Tensor):
    log_p = F.log_softmax(p_logits.double(), dim=1)
    log_q = F.log_softmax(q_logits.double(), dim=1)
    log_r = torch.logaddexp(log_p, log_q) - math.log(2.0)
    return log_p, log_q, log_r


def js_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> float:
    """Textbook JS(P‖Q) in nats, mean over rows; P, Q = softmax of the given logits."""
    if len(p_logits) == 0:
        return 0.0
    log_p, log_q, log_r = _log_probs(p_logits, q_logits)
    kl_pr = (log_p.exp() * (log_p - log_r)).sum(1)
    kl_qr = (log_q.exp() * (log_q - log_r)).sum(1)
    return float((0.5 * kl_pr + 0.5 * kl_qr).mean().clamp(min=0.0))


def js_paper(p_logits: torch.Tensor, q_logits: torch.Tensor) -> float:
    """The authors' JS: ½·KL(R‖P) + ½·KL(R‖Q), mean over rows (unbounded)."""
    if len(p_logits) == 0:
        return 0.0
    log_p, log_q, log_r = _log_probs(p_logits, q_logits)
    r = log_r.exp()
    return float((0.5 * (r * (log_r - log_p)).sum(1) + 0.5 * (r * (log_r - log_q)).sum(1))
                 .mean().clamp(min=0.0))
