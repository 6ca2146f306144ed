"""``sftc audit`` as data: per-example membership attacks on D_f against never-seen samples, with
the attack's power on the original model, the paper's metrics beside them, and one verdict.

Given the original model M, the unlearned model M_u (and the oracle M_R when there is one) and
the split, :func:`audit`:

1. checks everything that could make the evidence meaningless before any training (the forget
   set lies in the training set and outside the test and validation splits, the test split is
   never-seen, the number of references suits the attack, requested false-positive rates are
   resolvable, the significance level is reachable with these sample counts);
2. gets K reference models (:class:`~sftc.bench.reference_pool.ReferencePool`: trained on
   balanced random halves of train ∪ test with the original's recipe, or read from the cache);
3. scores D_f (positives) and D_t (negatives, never seen by any of M, M_u, M_R) under four
   attacks: RMIA online/offline (Zarifzadeh et al., ICML 2024; population = the validation
   split) and LiRA online/offline (Carlini et al., S&P 2022), for every model given;
4. decides (:func:`sftc.metrics.attacks.decide`): power = the decisive attack tells the
   original's D_f from D_t (one-sided Mann–Whitney p < α); verdict on M_u = ``not-forgotten`` if
   D_f and D_t are distinguishable on M_u (two-sided p < 2α), ``forgotten`` if not,
   ``inconclusive`` without power. The decisive attack is ``attack`` (online); every other
   attack's figures are reported beside it, never swapped in;
5. adds the paper's own metrics (accuracies, Eq. 5-7, JS, the CatBoost MIA of Eq. 9) under their
   own names.

The result is data (:class:`AuditResult`, :meth:`AuditResult.to_dict` is ``audit.json``);
:mod:`sftc.report.audit` renders it.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..checkpoints import check_finite
from ..data import Split
from ..data.forget import check_seed
from ..errors import SftcError
from ..io import file_sha256
from ..metrics.attacks import (ALPHA, Significance, Verdict, check_fprs, decide, lira_offline,
                               lira_online, logit_scaled_confidence, mann_whitney, resolvable,
                               rmia, roc_figures, smallest_p, true_class_log_prob)
from ..metrics.attacks.lira import resolved_variance
from ..metrics.attacks.rmia import OFFLINE_A
from ..metrics.attacks.verdict import check_alpha
from .reference_pool import ReferencePool, ReferenceRecipe, check_reference_count

ATTACKS = ("rmia", "lira")
VARIANTS = ("rmia-online", "rmia-offline", "lira-online", "lira-offline")
#: Fewest references each decisive attack accepts: online RMIA needs one IN and one OUT model per
#: sample; online LiRA fits a mean and a variance to each side, so two of each.
MIN_REFERENCES = {"rmia": 2, "lira": 4}
#: Fewest references of every attack reported beside the decisive one (fewer: reported as skipped).
VARIANT_MIN_REFERENCES = {"rmia-online": 2, "rmia-offline": 2, "lira-online": 4, "lira-offline": 4}
DEFAULT_FPRS = (0.01, 0.001)
MEANINGS = {
    "rmia-online": "RMIA (Zarifzadeh et al., ICML 2024): share of population samples a sample "
                   "beats in Pr(x|θ)/Pr(x), Pr(x) from IN and OUT references",
    "rmia-offline": "RMIA with OUT references only (Pr(x) by the paper's linear approximation, "
                    f"a = {OFFLINE_A})",
    "lira-online": "LiRA (Carlini et al., S&P 2022): likelihood ratio of per-example Gaussians "
                   "fitted to IN and OUT references' logit-scaled confidences",
    "lira-offline": "LiRA with OUT references only: one-sided test against the OUT Gaussian",
}


@dataclass
class AuditResult:
    """Everything the audit found; :meth:`to_dict` is ``audit.json``."""

    verdict: Verdict
    decisive: str                     # the attack that decides, e.g. "rmia-online"
    alpha: float
    power: dict                       # the decisive attack on the original
    attacks: dict                     # variant -> role -> figures
    removed: dict
    models: dict                      # role -> weights digest, checkpoint path and SHA-256
    references: dict
    oracle_verdict: Verdict | None = None
    paper_metrics: dict | None = None
    data: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def has_power(self) -> bool:
        return bool(self.power.get("has_power"))

    def to_dict(self) -> dict:
        return {"verdict": self.verdict.verdict, "direction": self.verdict.direction,
                "reason": self.verdict.reason, "decisive_attack": self.decisive,
                "alpha": self.alpha, "power_on_original": self.power,
                "oracle_as_unlearned": self.oracle_verdict.to_dict() if self.oracle_verdict
                else None,
                "removed": self.removed, "models": self.models, "data": self.data,
                "references": self.references, "attacks": self.attacks,
                "attack_meanings": {v: MEANINGS[v] for v in self.attacks},
                "paper_metrics": self.paper_metrics, "settings": self.settings,
                "timings": self.timings, "notes": list(self.notes)}


# -- checks -------------------------------------------------------------------------------------

def check_attack(attack: str, references: int) -> None:
    """The decisive attack is known and has the references it needs."""
    if attack not in ATTACKS:
        raise SftcError(f"unknown --attack {attack!r}; use {' or '.join(ATTACKS)}")
    check_reference_count(references)
    low = MIN_REFERENCES[attack]
    if references < low:
        why = ("online LiRA fits a mean and a variance to the IN and to the OUT models of every "
               "sample, 2 or more each") if attack == "lira" else \
            "online RMIA needs an IN and an OUT model for every sample"
        raise SftcError(f"--attack {attack} needs at least {low} reference models ({why}), got "
                        f"--references {references}; pass --references {low} or more")


def _overlap(a: torch.Tensor, b: torch.Tensor) -> int:
    return int(np.intersect1d(a.cpu().numpy(), b.cpu().numpy()).size)


def check_split(split: Split) -> None:
    """The forget set can be keyed to the reference pool and D_t is never-seen data."""
    forget, train, test, val = (split.forget.cpu(), split.train.cpu(), split.test.cpu(),
                                split.val.cpu())
    if len(forget) == 0:
        raise SftcError("the forget set is empty; name at least one training sample with --forget")
    if len(torch.unique(forget)) != len(forget):
        raise SftcError("the forget set names a sample twice; give each training sample once")
    outside = len(forget) - _overlap(forget, train)
    if outside:
        raise SftcError(f"{outside} forget sample(s) are not in the training set, so the "
                        "reference pool cannot key them (a model can only forget what it trained "
                        "on); give forget positions within the training set")
    for name, other in (("test", test), ("validation", val)):
        shared = _overlap(forget, other)
        if shared:
            raise SftcError(f"{shared} forget sample(s) are also in the {name} split; the audit "
                            f"compares D_f with never-seen data, so the splits must be disjoint")
    if len(test) == 0:
        raise SftcError("the test split is empty; the audit needs never-seen samples to compare "
                        "D_f with")
    if _overlap(train, test):
        raise SftcError(f"{_overlap(train, test)} test sample(s) are also training samples, so "
                        "they are not never-seen; use disjoint train and test splits")
    if len(val) == 0:
        raise SftcError("the validation split is empty; RMIA needs population samples that no "
                        "model trained on: give the split a validation part")
    if _overlap(val, torch.cat([train, test])):
        raise SftcError("the validation split shares samples with train or test; RMIA's "
                        "population must be samples no model trained on")


def check_mia_options(features: str, attacker: str, iterations) -> None:
    """The paper's MIA options, checked before any reference model is trained."""
    from ..metrics.mia import ATTACKERS, FEATURES

    if features not in FEATURES:
        raise SftcError(f"unknown MIA features {features!r}; use {' or '.join(FEATURES)}")
    if attacker not in ATTACKERS:
        raise SftcError(f"unknown MIA attacker {attacker!r}; use {' or '.join(ATTACKERS)}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise SftcError(f"mia-iterations must be a whole number 1 or more, got {iterations!r}")


def check_reachable(n_forget: int, n_test: int, alpha: float) -> None:
    """Refuse an audit that could only ever be inconclusive: even D_f scoring above every
    never-seen sample would not reach p < α."""
    best = smallest_p(n_forget, n_test)
    if not best < alpha:
        raise SftcError(f"with {n_forget} forget and {n_test} test samples the attack can never "
                        f"reach p < {alpha:g} (perfect separation gives p = {best:.3g}), so the "
                        "audit could only be inconclusive; audit a larger forget set or raise "
                        "--alpha")


# -- helpers ------------------------------------------------------------------------------------

def weights_sha256(model: nn.Module) -> str:
    """SHA-256 of a model's state_dict (names, dtypes, shapes and values, in name order)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _as_recipe(recipe) -> ReferenceRecipe:
    if isinstance(recipe, ReferenceRecipe):
        return recipe
    if isinstance(recipe, str):
        return ReferenceRecipe(recipe)
    if isinstance(recipe, dict):
        return ReferenceRecipe(**{"source": "given", **recipe})
    raise SftcError("recipe must be a model name, a dict of ReferenceRecipe fields or a "
                    "ReferenceRecipe")


@dataclass
class _Signals:
    phi: np.ndarray       # logit-scaled confidence, [..., columns]
    logp: np.ndarray      # log Pr(y | x), [..., columns]


def _signals(logits: torch.Tensor, labels: torch.Tensor) -> _Signals:
    return _Signals(logit_scaled_confidence(logits, labels), true_class_log_prob(logits, labels))


def _attack(variant: str, target: _Signals, refs: _Signals, cols: np.ndarray,
            in_mask: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """Scores of ``variant`` for the columns ``cols`` (higher: more likely a member)."""
    offline = variant.endswith("offline")
    if variant.startswith("rmia"):
        return rmia(target.logp[cols], refs.logp[:, cols], in_mask, target.logp[pop],
                    refs.logp[:, pop], offline=offline)
    fn = lira_offline if offline else lira_online
    return fn(target.phi[cols], refs.phi[:, cols], in_mask)


def _figures(variant, target, refs, cols_f, cols_t, mask_f, mask_t, pop, fprs) -> dict:
    scores_f = _attack(variant, target, refs, cols_f, mask_f, pop)
    scores_t = _attack(variant, target, refs, cols_t, mask_t, pop)
    figures = roc_figures(scores_f, scores_t, fprs)
    figures.update(mann_whitney(scores_f, scores_t).to_dict())
    figures["mean_score_forget"] = float(np.mean(scores_f))
    figures["mean_score_test"] = float(np.mean(scores_t))
    return figures


# -- the audit ----------------------------------------------------------------------------------

def audit(original: nn.Module, unlearned: nn.Module, split: Split, *,
          oracle: nn.Module | None = None, references: int = 16, attack: str = "rmia",
          recipe: ReferenceRecipe | dict | str = "small-cnn", fprs: Sequence[float] | None = None,
          alpha: float = ALPHA, reference_seed: int = 0, cache_dir=None, device: str = "auto",
          paper_metrics: bool = True, mia: bool = True, mia_features: str = "logits",
          mia_iterations: int = 1000, mia_attacker: str = "catboost", seed: int = 0,
          train_names: Sequence[str] | None = None, checkpoints: dict | None = None,
          notes: Sequence[str] = (), progress: bool = True) -> AuditResult | None:
    """Audit ``unlearned`` for the forget set of ``split`` (see the module docstring).

    ``recipe``: how the reference models are trained (the original's recipe; a model name takes
    the paper's: 30 epochs, Adam at 1e-3, cosine, batch 64). ``fprs``: false-positive rates for
    TPR@FPR; None takes 1 % and 0.1 % and reports "n/a" where the test split cannot resolve one,
    while rates given explicitly must be resolvable. ``reference_seed`` draws the pool's halves
    and the references' seeds; ``seed`` is the CatBoost MIA's. ``train_names``: the training
    samples' names (image paths), to list what was removed; ``checkpoints``: role -> file path,
    whose SHA-256 is recorded. ``paper_metrics``/``mia``: add the paper's metrics (and its
    CatBoost MIA). Returns an :class:`AuditResult`; under torchrun (every rank calling it) the
    reference models are trained by all ranks and rank 0 alone does the rest and returns the
    result (the other ranks return None).
    """
    from .. import api
    from ..engine import predict_logits, resolve_device
    from ..metrics.evaluate import on_device

    started = time.perf_counter()
    check_attack(attack, references)
    alpha = check_alpha(float(alpha))
    check_split(split)
    n_f, n_t = len(split.forget), len(split.test)
    explicit = fprs is not None
    fprs = check_fprs(fprs, n_t) if explicit else DEFAULT_FPRS
    check_reachable(n_f, n_t, alpha)
    check_seed(reference_seed, "--reference-seed")
    if paper_metrics and mia:
        check_mia_options(mia_features, mia_attacker, mia_iterations)
    recipe = _as_recipe(recipe)
    device_t = resolve_device(device)
    models = {"original": original, "unlearned": unlearned}
    if oracle is not None:
        models["oracle"] = oracle
    for role, model in models.items():
        check_finite(model.state_dict().items(), f"the {role} model")
        api._check_model_fits(model, split, device)   # one line if it does not take this data
    notes = list(notes)

    # What was removed, and what was audited.
    summary = split.forget_summary()
    positions = split.forget_positions.cpu().tolist()
    removed = {"count": summary["size"], "sha256": summary["sha256"], "spec": summary["spec"],
               "class_histogram": summary["class_histogram"], "positions": positions,
               "names": [train_names[p] for p in positions] if train_names is not None else None}
    digests = {role: weights_sha256(m) for role, m in models.items()}
    described = {}
    for role in models:
        path = (checkpoints or {}).get(role)
        described[role] = {"weights_sha256": digests[role],
                           "checkpoint": str(path) if path else None,
                           "sha256": file_sha256(path) if path else None}
    if digests["unlearned"] == digests["original"]:
        notes.append("the unlearned model's weights are the original's: nothing was unlearned")

    # References.
    t0 = time.perf_counter()
    pool = ReferencePool(split, recipe, cache_dir=cache_dir, seed=reference_seed, device=device,
                         progress=progress)
    refs = pool.get(references)
    ref_seconds = time.perf_counter() - t0
    if not distributed.is_main():   # under torchrun: the references were this rank's share
        return None

    # Signals on D_f, D_t and the population (columns of the reference logits).
    t0 = time.perf_counter()
    cols_f, cols_t = refs.columns(split.forget.cpu()), refs.columns(split.test.cpu())
    pop = refs.columns(split.val.cpu())
    labels = split.data.labels.cpu()[refs.index]
    ref_signals = _signals(refs.logits, labels)
    mask_f, mask_t = refs.in_mask[:, cols_f], refs.in_mask[:, cols_t]
    index = refs.index.to(device_t)
    attacks: dict = {v: {} for v in VARIANTS}
    for role, model in models.items():
        logits = predict_logits(on_device(model, device_t), split.data, index, device_t).cpu()
        target = _signals(logits, labels)
        for variant in VARIANTS:
            if references < VARIANT_MIN_REFERENCES[variant]:
                attacks[variant][role] = {"skipped": f"needs {VARIANT_MIN_REFERENCES[variant]} "
                                                     "or more reference models"}
                continue
            attacks[variant][role] = _figures(variant, target, ref_signals, cols_f, cols_t,
                                              mask_f, mask_t, pop, fprs)
    attack_seconds = time.perf_counter() - t0

    decisive = f"{attack}-online"
    on_original = attacks[decisive]["original"]
    power_sig = _sig(on_original)
    verdict = decide(power_sig, _sig(attacks[decisive]["unlearned"]), alpha)
    oracle_verdict = decide(power_sig, _sig(attacks[decisive]["oracle"]), alpha) \
        if oracle is not None else None
    power = {"attack": decisive, "has_power": power_sig.p_greater < alpha,
             "auc": on_original["auc"], "tpr_at_fpr": on_original["tpr_at_fpr"],
             "p_greater": on_original["p_greater"], "alpha": alpha}

    # The paper's metrics, under their own names.
    metrics, paper_seconds = None, 0.0
    if paper_metrics:
        t0 = time.perf_counter()
        metrics = api.evaluate(original, unlearned, split, oracle, device=device, mia=mia,
                               mia_features=mia_features, mia_iterations=mia_iterations,
                               seed=seed, mia_attacker=mia_attacker)
        paper_seconds = time.perf_counter() - t0

    n_pool = refs.n_pool
    trained = [e for e in refs.entries if not e["cached"]]
    return AuditResult(
        verdict=verdict, decisive=decisive, alpha=alpha, power=power, attacks=attacks,
        removed=removed, models=described, oracle_verdict=oracle_verdict, paper_metrics=metrics,
        references={"count": references, "recipe": recipe.key_dict(),
                    "recipe_source": recipe.source, "seed": reference_seed,
                    "pool": "train ∪ test", "pool_size": n_pool,
                    "population": "validation", "population_size": len(split.val),
                    "members_per_reference": n_pool // 2, "in_per_sample": references // 2,
                    "cache_dir": str(pool.cache_dir), "trained_now": len(trained),
                    "from_cache": references - len(trained),
                    "train_seconds": sum(e["seconds"] or 0.0 for e in trained),
                    "entries": refs.entries},
        data={"dataset": split.data.name, "sizes": split.sizes(),
              "num_classes": split.data.num_classes, "positives": "D_f (forget set)",
              "negatives": "D_t (test split, never seen by any model audited)",
              "n_positives": n_f, "n_negatives": n_t},
        settings={"attack": attack, "references": references, "fprs": list(fprs),
                  "fprs_resolvable": {f"{f:g}": resolvable(f, n_t) for f in fprs},
                  "rmia_offline_a": OFFLINE_A, "rmia_gamma": 1.0,
                  "lira_variance": {
                      "online": resolved_variance(mask_f, "auto", online=True),
                      "offline": resolved_variance(mask_f, "auto", online=False)}
                  if references >= VARIANT_MIN_REFERENCES["lira-online"] else None,
                  "seed": seed, "device": str(device_t)},
        timings={"references_seconds": ref_seconds, "attacks_seconds": attack_seconds,
                 "paper_metrics_seconds": paper_seconds,
                 "total_seconds": time.perf_counter() - started},
        notes=notes)


def _sig(figures: dict) -> Significance:
    return Significance(figures["p_greater"], figures["p_less"], figures["p_two_sided"])
