"""All metrics of section 5.4 for an (original, unlearned, optional retrained) triple."""
from __future__ import annotations

import torch
from torch import nn

from ..data import Split
from ..engine import predict_logits, resolve_device
from .js import js_divergence, js_paper
from .mia import membership_inference
from .sape import acc_dis, acc_err_original, acc_err_retrain

SUBSETS = ("retain", "forget", "val", "test")
METRIC_KEYS = ("acc_retain", "acc_forget", "acc_val", "acc_test", "acc_err_retrain", "acc_dis",
               "acc_err_original", "js", "js_paper", "mia", "mia_attacker_acc", "unlearn_seconds",
               "retrain_seconds")


def on_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` itself when its parameters are already on ``device``, else a copy moved there
    (the caller's model is left where it is)."""
    import copy

    first = next(iter(model.parameters()), None)
    if first is None or first.device == device:
        return model
    return copy.deepcopy(model).to(device)


def subset_logits(model: nn.Module, split: Split, device: torch.device,
                  subsets=SUBSETS) -> dict[str, torch.Tensor]:
    return {name: predict_logits(model, split.data, split.indices(name).to(device), device).cpu()
            for name in subsets}


def accuracies(logits: dict[str, torch.Tensor], split: Split) -> dict[str, float]:
    out = {}
    for name, values in logits.items():
        labels = split.data.labels[split.indices(name).to(split.data.labels.device)].cpu()
        out[f"acc_{name}"] = float((values.argmax(1) == labels).float().mean()) if len(labels) else float("nan")
    return out


def evaluate_models(original: nn.Module, unlearned: nn.Module, split: Split,
                    retrained: nn.Module | None = None, *, device="auto", mia: bool = True,
                    mia_features: str = "logits", mia_iterations: int = 1000, mia_folds: int = 5,
                    mia_attacker: str = "catboost",
                    seed: int = 0, unlearn_seconds: float | None = None,
                    retrain_seconds: float | None = None) -> dict:
    """Metrics of the unlearned model M_u against the original M and, when given, the oracle M_R.

    Returns the keys of :data:`METRIC_KEYS` (the ones needing M_R, MIA or timings are absent when
    those are not available) plus ``reference`` with the original's and oracle's accuracies.
    """
    device = resolve_device(device)
    original, unlearned = on_device(original, device), on_device(unlearned, device)
    retrained = on_device(retrained, device) if retrained is not None else None
    logits_u = subset_logits(unlearned, split, device)
    acc_u = accuracies(logits_u, split)
    acc_o = accuracies(subset_logits(original, split, device), split)
    result: dict = dict(acc_u)
    reference = {"original": acc_o}
    if retrained is not None:
        acc_r = accuracies(subset_logits(retrained, split, device), split)
        reference["retrained"] = acc_r
        result["acc_err_retrain"] = acc_err_retrain(acc_r["acc_test"], acc_u["acc_test"])
        result["acc_dis"] = acc_dis(acc_r["acc_forget"], acc_u["acc_forget"])
    result["acc_err_original"] = acc_err_original(acc_o["acc_test"], acc_u["acc_test"])
    forget_original = predict_logits(original, split.data, split.forget.to(device), device).cpu()
    result["js"] = js_divergence(logits_u["forget"], forget_original)
    result["js_paper"] = js_paper(logits_u["forget"], forget_original)
    if mia:
        labels = split.data.labels.cpu()
        attack = membership_inference(logits_u["retain"], labels[split.retain],
                                      logits_u["test"], labels[split.test], logits_u["forget"],
                                      features=mia_features, folds=mia_folds, seed=seed,
                                      iterations=mia_iterations, attacker=mia_attacker)
        result["mia"] = attack.mia
        result["mia_attacker_acc"] = attack.attacker_acc
        result["mia_features"] = attack.features
        result["mia_attacker"] = attack.attacker
    if unlearn_seconds is not None:
        result["unlearn_seconds"] = unlearn_seconds
    if retrain_seconds is not None:
        result["retrain_seconds"] = retrain_seconds
        if unlearn_seconds is not None and retrain_seconds > 0:
            result["time_ratio"] = unlearn_seconds / retrain_seconds
    result["reference"] = reference
    return result
