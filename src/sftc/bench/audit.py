"""``sftc audit`` as data: is the forget set forgotten, held against how models retrained without
it land.

Given the original model M, the unlearned model M_u (and the oracle M_R when there is one) and
the split, :func:`audit` runs a few steps over an :class:`AuditConfig`:

1. :func:`check`: everything that could make the evidence meaningless, before any training (the
   forget set lies in the training set and outside the test and validation splits, the test split
   is never-seen, the attack can decide, the models take this data);
2. :func:`describe_models`: what was removed and which models were audited (SHA-256 of the
   checkpoints and of the weights);
3. :func:`reference_logits`: K models retrained without D_f
   (:class:`~sftc.bench.reference_pool.ReferencePool`, cached);
4. :func:`attack_models`: every applicable registered attack on every model, D_f against
   never-seen test samples matched in class and difficulty
   (:class:`~sftc.bench.evidence.Comparison`), and the verdict of the deciding one: the band
   the references land in, the power the original gives it, and for a class-level request the
   class test;
5. the paper's own metrics (accuracies, Eq. 5-7, JS, the CatBoost MIA of Eq. 9) under their own
   names.

The result is data (:class:`AuditResult`; :meth:`AuditResult.to_dict` is ``audit.json``);
:mod:`sftc.report.audit` renders it.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, fields
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .. import distributed
from ..data import Split
from ..data.forget import check_seed
from ..errors import SftcError
from ..io import file_sha256
from ..metrics.attacks import attack_class, check_fprs, list_attacks, resolvable
from ..recipes import TrainingRecipe, as_recipe
from .evidence import DEFAULT_ATTACK, DEFAULT_FPRS, Comparison, EvidenceSettings
from .reference_pool import ReferencePool, check_reference_count

#: Default number of reference models (each a retraining on D_r).
REFERENCES = 8


@dataclass
class AuditConfig:
    """What an audit does and how it decides (recorded in ``audit.json``)."""

    references: int = REFERENCES
    attack: str = DEFAULT_ATTACK
    alpha: float = EvidenceSettings.alpha
    resolution: str = EvidenceSettings.resolution
    fprs: tuple[float, ...] | None = None
    recipe: TrainingRecipe | str | dict = "small-cnn"
    reference_seed: int = 0
    cache_dir: object = None
    device: str = "auto"
    paper_metrics: bool = True
    mia: bool = True
    mia_features: str = "logits"
    mia_iterations: int = 1000
    mia_attacker: str = "catboost"
    seed: int = 0
    progress: bool = True
    accel: object = None

    def evidence(self, n_test: int) -> EvidenceSettings:
        fprs = check_fprs(self.fprs, n_test) if self.fprs is not None else DEFAULT_FPRS
        return EvidenceSettings(attack_class(self.attack).name, float(self.alpha),
                                str(self.resolution), tuple(fprs)).check()


@dataclass
class AuditResult:
    """Everything the audit found; :meth:`to_dict` is ``audit.json``."""

    verdict: object                   # verdict.Verdict of the unlearned model
    decisive: str                     # the attack that decides, e.g. "rmia-offline"
    evidence: dict                    # the settings: attack, alpha, resolution, fprs
    original: object                  # verdict.Verdict of the original (the attack's power)
    attacks: dict                     # attack -> role -> figures
    comparison: dict                  # how D_f was matched, the never-seen level
    removed: dict
    models: dict                      # role -> weights digest, checkpoint path and SHA-256
    references: dict
    oracle_verdict: object = None
    paper_metrics: dict | None = None
    data: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    cost: dict = field(default_factory=dict)

    @property
    def has_power(self) -> bool:
        """The attack tells the original from retrained models (beyond the band's refute line)."""
        return bool(self.original.power and self.original.power.shown)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict.verdict, "direction": self.verdict.direction,
                "reason": self.verdict.reason, "decision": self.verdict.to_dict(),
                "decisive_attack": self.decisive, "evidence": self.evidence,
                "original_as_unlearned": self.original.to_dict(),
                "oracle_as_unlearned": self.oracle_verdict.to_dict() if self.oracle_verdict
                else None, "comparison": self.comparison, "removed": self.removed,
                "models": self.models, "data": self.data, "references": self.references,
                "attacks": self.attacks,
                "attack_meanings": {a: attack_class(a).meaning for a in self.attacks},
                "paper_metrics": self.paper_metrics, "timings": self.timings,
                "cost": self.cost, "notes": list(self.notes)}


# -- 1. checks --------------------------------------------------------------------------------

def _overlap(a: torch.Tensor, b: torch.Tensor) -> int:
    return int(np.intersect1d(a.cpu().numpy(), b.cpu().numpy()).size)


def check_split(split: Split) -> None:
    """The forget set lies in the training set and D_t and the population are never-seen."""
    forget, train, test, val = (split.forget.cpu(), split.train.cpu(), split.test.cpu(),
                                split.val.cpu())
    if len(forget) < 2:
        raise SftcError(f"the audit needs at least 2 forget samples to give an interval, got "
                        f"{len(forget)}; name more training samples with --forget")
    if len(torch.unique(forget)) != len(forget):
        raise SftcError("the forget set names a sample twice; give each training sample once")
    outside = len(forget) - _overlap(forget, train)
    if outside:
        raise SftcError(f"{outside} forget sample(s) are not in the training set (a model can only "
                        "forget what it trained on); give forget positions within the training "
                        "set")
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
    if len(split.retain) < 2:
        raise SftcError("the forget set is (almost) the whole training set: the reference models "
                        "retrained without it would have nothing to train on")


def check_mia_options(features: str, attacker: str, iterations) -> None:
    """The paper's MIA options, checked before any reference model is trained."""
    from ..metrics.mia import ATTACKERS, FEATURES

    if features not in FEATURES:
        raise SftcError(f"unknown MIA features {features!r}; use {' or '.join(FEATURES)}")
    if attacker not in ATTACKERS:
        raise SftcError(f"unknown MIA attacker {attacker!r}; use {' or '.join(ATTACKERS)}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise SftcError(f"mia-iterations must be a whole number 1 or more, got {iterations!r}")


def check(config: AuditConfig, split: Split, models: dict) -> EvidenceSettings:
    """Step 1: refuse, in one line and before any training, what would make the evidence
    meaningless; returns the evidence settings."""
    from .. import api
    from ..checkpoints import check_finite

    check_reference_count(config.references)
    check_split(split)
    evidence = config.evidence(len(split.test))
    low = max(4, attack_class(evidence.attack).min_references + 1)
    if config.references < low:
        raise SftcError(f"--attack {evidence.attack} needs at least {low} reference models, got "
                        f"--references {config.references}; pass --references {low} or more")
    check_seed(config.reference_seed, "--reference-seed")
    if config.paper_metrics and config.mia:
        check_mia_options(config.mia_features, config.mia_attacker, config.mia_iterations)
    for role, model in models.items():
        check_finite(model.state_dict().items(), f"the {role} model")
        api.check_model_fits(model, split, config.device)
    return evidence


# -- 2. what was removed, and what was audited ----------------------------------------------------

def weights_sha256(model: nn.Module) -> str:
    """SHA-256 of a model's state_dict (names, dtypes, shapes and values, in name order)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def describe_models(split: Split, models: dict, checkpoints: dict | None,
                    train_names: Sequence[str] | None) -> tuple[dict, dict, list[str]]:
    """Step 2: the removed samples (positions, names, histogram, SHA-256) and each model's
    digests; notes on what stands out."""
    summary = split.forget_summary()
    positions = split.forget_positions.cpu().tolist()
    removed = {"count": summary["size"], "sha256": summary["sha256"], "spec": summary["spec"],
               "class_histogram": summary["class_histogram"], "positions": positions,
               "names": [train_names[p] for p in positions] if train_names is not None else None}
    described, notes = {}, []
    for role, model in models.items():
        path = (checkpoints or {}).get(role)
        described[role] = {"weights_sha256": weights_sha256(model),
                           "checkpoint": str(path) if path else None,
                           "sha256": file_sha256(path) if path else None}
    if described["unlearned"]["weights_sha256"] == described["original"]["weights_sha256"]:
        notes.append("the unlearned model's weights are the original's: nothing was unlearned")
    return removed, described, notes


# -- 3. references -----------------------------------------------------------------------------

def reference_logits(config: AuditConfig, split: Split):
    """Step 3: the K references' logits (trained now or from the cache) and their record."""
    from ..limits import check_references

    pool_size = len(split.forget) + len(split.test) + len(split.val)
    check_references(check_reference_count(config.references), pool_size,
                     split.data.num_classes)
    recipe = as_recipe(config.recipe)
    pool = ReferencePool(split, recipe, cache_dir=config.cache_dir, seed=config.reference_seed,
                         device=config.device, progress=config.progress, accel=config.accel)
    started = time.perf_counter()
    refs = pool.get(config.references)
    trained = [e for e in refs.entries if not e["cached"]]
    record = {"count": config.references, "kind": "retrained on D_r (never saw D_f)",
              "recipe": recipe.key_dict(), "recipe_source": recipe.source,
              "seed": config.reference_seed, "train_size": len(split.retain),
              "population": "validation", "population_size": len(split.val),
              "cache_dir": str(pool.cache_dir), "trained_now": len(trained),
              "from_cache": config.references - len(trained),
              "train_seconds": sum(e["seconds"] or 0.0 for e in trained),
              "one_retraining_seconds": one_retraining(refs.entries),
              "entries": refs.entries}
    return refs, record, time.perf_counter() - started


def one_retraining(entries: list[dict]) -> float | None:
    """What one retraining on D_r costs here: the median training time of the references, each a
    retraining on D_r with the original's recipe (cached ones keep the time they took)."""
    seconds = sorted(e["seconds"] for e in entries if e.get("seconds"))
    if not seconds:
        return None
    mid = len(seconds) // 2
    return seconds[mid] if len(seconds) % 2 else 0.5 * (seconds[mid - 1] + seconds[mid])


def cost_record(total_seconds: float, references: dict) -> dict:
    """The audit's whole cost, references included, against one retraining."""
    one = references.get("one_retraining_seconds")
    return {"total_seconds": total_seconds, "one_retraining_seconds": one,
            "retraining_source": "the median training time of the references (each a "
                                 "retraining on D_r with the original's recipe)",
            "references_trained_now": references["trained_now"],
            "retrainings": total_seconds / one if one else None}


# -- 4. attacks and verdicts ------------------------------------------------------------------

def applicable_attacks(references: int) -> list[str]:
    """The registered attacks the audit's references can serve (those that read models that
    never saw the candidates, with few enough references)."""
    out = []
    for name in list_attacks():
        cls = attack_class(name)
        if not cls.needs_members and references >= max(4, cls.min_references + 1):
            out.append(cls.name)
    return out


def attack_models(split: Split, refs, evidence: EvidenceSettings, logits: dict) -> tuple:
    """Step 4: every applicable attack's figures for every model, and the deciding attack's
    comparison (figures by role)."""
    attacks, deciding = {}, None
    for name in applicable_attacks(refs.count):
        comparison = Comparison(split, refs, EvidenceSettings(name, evidence.alpha,
                                                              evidence.resolution, evidence.fprs))
        figures = {role: comparison.figures_of(values) for role, values in logits.items()}
        attacks[name] = {role: f.to_dict() for role, f in figures.items()}
        if name == evidence.attack:
            deciding = (comparison, figures)
    return attacks, deciding


def _logits(model: nn.Module, split: Split, index: torch.Tensor, device: str) -> torch.Tensor:
    from ..engine import predict_logits, resolve_device
    from ..metrics.evaluate import on_device

    target = resolve_device(device)
    return predict_logits(on_device(model, target), split.data, index.to(target),
                          target).float().cpu()


# -- the audit --------------------------------------------------------------------------------

def audit(original: nn.Module, unlearned: nn.Module, split: Split, *,
          oracle: nn.Module | None = None, config: AuditConfig | None = None,
          train_names: Sequence[str] | None = None, checkpoints: dict | None = None,
          notes: Sequence[str] = (), **options) -> AuditResult | None:
    """Audit ``unlearned`` for the forget set of ``split`` (see the module docstring).

    ``config`` (or its fields as keyword ``options``): :class:`AuditConfig`. ``train_names``: the
    training samples' names (image paths), to list what was removed; ``checkpoints``: role ->
    file path, whose SHA-256 is recorded. Under torchrun (every rank calling it) the reference
    models are trained by all ranks and rank 0 alone does the rest and returns the result (the
    other ranks return None).
    """
    if config is None:
        known = {f.name for f in fields(AuditConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise SftcError(f"sftc.audit has no option {unknown[0]!r}; the options are "
                            f"{', '.join(sorted(known))}")
        config = AuditConfig(**options)
    started = time.perf_counter()
    models = {"original": original, "unlearned": unlearned}
    if oracle is not None:
        models["oracle"] = oracle
    evidence = check(config, split, models)
    removed, described, found = describe_models(split, models, checkpoints, train_names)
    refs, ref_record, ref_seconds = reference_logits(config, split)
    if not distributed.is_main():   # under torchrun: the references were this rank's share
        return None
    t0 = time.perf_counter()
    logits = {role: _logits(m, split, refs.index, config.device) for role, m in models.items()}
    attacks, (comparison, figures) = attack_models(split, refs, evidence, logits)
    verdicts = {role: comparison.verdict(figures["original"], f) for role, f in figures.items()}
    attack_seconds = time.perf_counter() - t0
    metrics, paper_seconds = None, 0.0
    if config.paper_metrics:
        from .. import api

        t0 = time.perf_counter()
        metrics = api.evaluate(original, unlearned, split, oracle, device=config.device,
                               mia=config.mia, mia_features=config.mia_features,
                               mia_iterations=config.mia_iterations, seed=config.seed,
                               mia_attacker=config.mia_attacker)
        paper_seconds = time.perf_counter() - t0
    n_t = len(split.test)
    evidence_record = {**evidence.to_dict(), "references": config.references,
                       "fprs_resolvable": {f"{f:g}": resolvable(f, n_t) for f in evidence.fprs}}
    return AuditResult(
        verdict=verdicts["unlearned"], decisive=evidence.attack, evidence=evidence_record,
        original=verdicts["original"], attacks=attacks, comparison=comparison.describe(),
        removed=removed, models=described, references=ref_record,
        oracle_verdict=verdicts.get("oracle"), paper_metrics=metrics,
        data={"dataset": split.data.name, "sizes": split.sizes(),
              "num_classes": split.data.num_classes, "n_positives": len(split.forget),
              "n_negatives": n_t},
        timings={"references_seconds": ref_seconds, "attacks_seconds": attack_seconds,
                 "paper_metrics_seconds": paper_seconds,
                 "total_seconds": time.perf_counter() - started},
        cost=cost_record(time.perf_counter() - started, ref_record),
        notes=[*notes, *found])
