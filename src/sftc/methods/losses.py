"""Loss pieces shared by the distillation-based methods (Bad-Teaching, SCRUB)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_to_target(student_logits: torch.Tensor, target_logits: torch.Tensor,
                 tau: float = 1.0) -> torch.Tensor:
    """KL(softmax(target / tau) || softmax(student / tau)), averaged over the batch ("batchmean").

    This is the shape of the KL term of SFTC's Eq. 2 and of Bad-Teaching's loss. An empty batch
    gives 0 (not NaN).
    """
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0.0
    target = F.softmax(target_logits.float() / tau, dim=1)
    return F.kl_div(F.log_softmax(student_logits / tau, dim=1), target, reduction="batchmean")
