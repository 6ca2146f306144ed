"""Per-epoch accuracies from logits, and the costly metrics (JS, MIA) from stored logits.

After every epoch of every run the benchmark computes the model's logits on three sets and keeps
them (small: ``|Df| + |Dt| + |members|`` rows of C floats), and on a fourth when the per-example
attack columns are asked for:

* ``forget``: D_f (forget accuracy, AccDis, JS);
* ``test``: D_t (test accuracy, AccErr{Mu,MR}, AccErr{Mu,M}, the non-members of the MIA);
* ``members``: the class-balanced sample of D_r that the MIA attacker trains on (as many per
  class as D_t has), which also gives the retain accuracy shown in the convergence figure.

So the setting is chosen from accuracies alone, and JS and MIA are computed afterwards for the
kept setting only, from exactly the model that was evaluated, with no checkpoint per epoch.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import Split
from ..engine import predict_logits
from ..errors import DivergedError
from ..metrics.js import js_divergence, js_paper
from ..metrics.mia import balanced_sample, membership_inference
from ..metrics.sape import acc_dis, acc_err_original, acc_err_retrain

def member_sample(split: Split, seed: int) -> torch.Tensor:
    """Indices (into the data) of the MIA's member sample: per class as many retain samples as
    the test set has (the same balanced draw :func:`sftc.metrics.mia.membership_inference` makes)."""
    labels = split.data.labels.cpu()
    retain, test = split.retain.cpu(), split.test.cpu()
    positions, _ = balanced_sample(labels[retain].numpy(), labels[test].numpy(),
                                   split.data.num_classes, seed)
    return torch.sort(retain[torch.as_tensor(positions, dtype=torch.long)]).values


def model_logits(model: nn.Module, split: Split, members: torch.Tensor,
                 device: torch.device, population: bool = False) -> dict[str, torch.Tensor]:
    """Logits (CPU, float32) of ``model`` on forget, test and the member sample, and on the
    validation split (``population``) when asked."""
    index = {"forget": split.forget, "test": split.test, "members": members}
    if population:
        index["population"] = split.val
    out = {name: predict_logits(model, split.data, idx.to(device), device).float().cpu()
           for name, idx in index.items()}
    for name, values in out.items():
        if not torch.isfinite(values).all():
            raise DivergedError(f"the model outputs non-finite logits on the {name} set")
    return out


def accuracies(logits: dict[str, torch.Tensor], split: Split, members: torch.Tensor) -> dict:
    labels = split.data.labels.cpu()
    index = {"forget": split.forget.cpu(), "test": split.test.cpu(), "members": members.cpu()}
    out = {}
    for name, values in logits.items():
        if name not in index:          # the attack's population: no accuracy of its own
            continue
        y = labels[index[name]]
        acc = float((values.argmax(1) == y).float().mean()) if len(y) else float("nan")
        out["acc_retain" if name == "members" else f"acc_{name}"] = acc
    return out


def accuracy_errors(acc: dict, ref_original: dict, ref_oracle: dict) -> dict:
    """Eq. 5, 6, 7 of the model with accuracies ``acc`` against the original's and the oracle's."""
    return {"acc_err_retrain": acc_err_retrain(ref_oracle["acc_test"], acc["acc_test"]),
            "acc_dis": acc_dis(ref_oracle["acc_forget"], acc["acc_forget"]),
            "acc_err_original": acc_err_original(ref_original["acc_test"], acc["acc_test"])}


def user_metrics(logits: dict, original_logits: dict, oracle_logits: dict | None, split: Split,
                 members: torch.Tensor) -> dict:
    """Every ``@register_metric`` metric from stored logits (``retain``: the member sample,
    ``val``: the validation split when stored)."""
    from ..metrics.registry import MetricInputs, compute_user_metrics, user_metrics as declared

    if not declared():
        return {}
    rename = {"forget": "forget", "test": "test", "members": "retain", "population": "val"}
    by_role = {"unlearned": logits, "original": original_logits}
    if oracle_logits is not None:
        by_role["oracle"] = oracle_logits
    labels = split.data.labels.cpu()
    index = {"forget": split.forget, "test": split.test, "retain": members, "val": split.val}
    inputs = {role: {rename[k]: v for k, v in lg.items() if k in rename}
              for role, lg in by_role.items()}
    return compute_user_metrics(MetricInputs(
        inputs, {k: labels[v.cpu()] for k, v in index.items()}))


def costly_metrics(logits: dict[str, torch.Tensor], original_logits: dict[str, torch.Tensor],
                   split: Split, members: torch.Tensor, *, seed: int, mia_iterations: int,
                   mia_features: str = "logits", mia_folds: int = 5, mia: bool = True,
                   mia_attacker: str = "catboost", oracle_logits: dict | None = None) -> dict:
    """JS (textbook and the paper's code) on D_f against the original, the CatBoost MIA, and
    every user metric."""
    out = {"js": js_divergence(logits["forget"], original_logits["forget"]),
           "js_paper": js_paper(logits["forget"], original_logits["forget"]),
           **user_metrics(logits, original_logits, oracle_logits, split, members)}
    if mia:
        labels = split.data.labels.cpu()
        attack = membership_inference(logits["members"], labels[members.cpu()], logits["test"],
                                      labels[split.test.cpu()], logits["forget"],
                                      features=mia_features, folds=mia_folds, seed=seed,
                                      iterations=mia_iterations, attacker=mia_attacker)
        out.update(mia=attack.mia, mia_attacker_acc=attack.attacker_acc, mia_features=attack.features,
                   mia_attacker=attack.attacker)
    return out
