"""The paper's presentation conventions: row order of Table 1 and per-model method settings."""
from __future__ import annotations

#: Row order of Table 1 after ORI and RT (section 5.5).
PAPER_METHOD_ORDER = ("ft", "neggrad+", "neggrad", "cf-k", "eu-k", "scrub", "bad-teaching", "sftc")

#: CF-k / EU-k count "layers" per model (see sftc.models.layer_sequence): the paper's k = 5 fits
#: ResNet-18 (conv1, bn1, relu, maxpool, layer1) but would freeze all of the small CNN's four
#: layers, so the small CNN freezes its first stage instead.
K_FOR_MODEL = {"small-cnn": 1}


def demo_hparams(method: str, model: str) -> dict:
    """Hyperparameters the demo passes: the paper's defaults, except k where the model needs it."""
    if method in ("cf-k", "eu-k") and model in K_FOR_MODEL:
        return {"k": K_FOR_MODEL[model]}
    return {}
