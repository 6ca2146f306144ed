"""FT: fine-tuning on the retain set (paper, section 5.3)."""
from __future__ import annotations

from .registry import register_method
from .supervised import Supervised


@register_method
class FineTune(Supervised):
    """Fine-tuning (FT), the simplest baseline of the SFTC paper (Perifanis et al., EICC 2024,
    section 5.3; also Golatkar et al., CVPR 2020, and Kurmanji et al., NeurIPS 2023).

    Starting from the original model, minimise cross-entropy on the retain set for a few epochs;
    each epoch is one pass over the shuffled retain set. The forget set is never read: forgetting
    comes from catastrophic forgetting alone.

    Hyperparameters: none (the learning rate, epochs and batch size are the run's recipe).

    Differences from the authors' code (``simple_finetuning.py``): none in the optimisation; the
    per-epoch evaluation of the whole retain set is done only when the caller asks (``track``).

    Example::

        result = sftc.unlearn(model, split, method="ft", epochs=3, lr=1e-4)
    """

    name = "ft"
    label = "FT"
    summary = "Fine-tune on the retain set"
    paper = "baseline of Perifanis et al., EICC 2024, section 5.3 (Golatkar et al., CVPR 2020)"
    hparams = {}
    sees_forget = False
    subset = "retain"
