"""Unlearning that stops on the evidence, without an oracle: ``sftc unlearn --until forgotten``.

An operator has no retrained oracle (paper, section 6) and must not choose on the data the report
is judged on. :func:`unlearn_until_forgotten`

1. carves a **selection split** out of the validation split (:func:`selection_split`): half A is
   the never-seen comparison of the checks, half B their population and, with A, the utility
   measure (validation accuracy). The test split is never read before the final audit;
2. trains (or loads) the audit's reference models (retrained on D_r: the same models the final
   audit uses, so a check costs forward passes only);
3. searches the method's learning rate with Optuna (TPE, seeded; or a given grid) and checks every
   run after each epoch: the audit's matched comparison on the selection split
   (:class:`~sftc.bench.evidence.Comparison`: the retrain band, with the power the original gives
   it on the same split)
   and the accuracy drop on validation against the original. A run stops at its first check that
   lies inside the retrain band, with the original shown beyond the refute line there, within the
   accuracy budget (``--max-accuracy-drop``). The resolution is not asked of the selection split
   (half the validation split: less power than the test split); the certificate, with its
   resolution, is the final audit's (step 5). A run that leaves the
   budget or over-forgets (below the band's refute line) is pruned, and Optuna's median
   pruner stops runs that trail the others;
4. keeps the cheapest passing model (fewest epochs, then the run found first); when none passes,
   the best trade-off within the budget (the smallest distance from the never-seen level), else
   the smallest
   accuracy drop, and says so;
5. audits the kept model on the held-out test split (:func:`sftc.bench.audit.audit`): that is
   what it reports.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import torch

from ..data import Split
from ..errors import SftcError
from ..limits import check_trials
from ..recipes import UNLEARN_EPOCHS, TrainingRecipe
from .evidence import Comparison, EvidenceSettings

#: Default accuracy budget: at most two points of validation accuracy below the original's.
MAX_ACCURACY_DROP = 0.02
#: The learning-rate range searched by default: the paper's grid's (section 5.5, 1e-5 ... 5e-3).
LR_RANGE = (1e-5, 5e-3)


def require_optuna():
    try:
        import optuna
    except ModuleNotFoundError as exc:
        if exc.name not in (None, "optuna"):
            raise SftcError(f"--until forgotten searches with Optuna, whose install is broken "
                            f"(it needs the module {exc.name!r}, which is missing); reinstall "
                            "it: pip install --force-reinstall optuna") from None
        raise SftcError("--until forgotten searches with Optuna, which is not installed; "
                        "pip install \"sftc[search]\" (or pip install optuna)") from None
    except Exception as exc:      # installed but broken: an ImportError, or its own error
        first = next((t.strip() for t in str(exc).splitlines() if t.strip()), "")
        raise SftcError(f"--until forgotten searches with Optuna, whose install is broken "
                        f"(importing it raised {type(exc).__name__}: {first}); reinstall it: "
                        "pip install --force-reinstall optuna") from None
    return optuna


def selection_split(split: Split, seed: int = 0) -> Split:
    """The split the search reads: D_r and D_f as given, the comparison (``test``) one random
    half of the validation split and the population (``val``) the other; never the test split."""
    val = split.val.cpu()
    if len(val) < 16:
        raise SftcError(f"--until forgotten needs a validation split of at least 16 samples to "
                        f"choose on (it never reads the test split), got {len(val)}")
    order = torch.randperm(len(val), generator=torch.Generator().manual_seed(seed + 0x5E1))
    half = len(val) // 2
    a, b = torch.sort(val[order[:half]]).values, torch.sort(val[order[half:]]).values
    return Split(split.data, split.train, split.retain, split.forget, b, a,
                 split.forget_positions, forget_spec=split.forget_spec)


@dataclass
class SearchConfig:
    """How the search runs (recorded in run.json)."""

    method: str = "sftc"
    hparams: dict = field(default_factory=dict)
    trials: int = 8
    max_epochs: int = 4
    lrs: tuple[float, ...] | None = None        # a grid; None: log-uniform over LR_RANGE
    max_accuracy_drop: float = MAX_ACCURACY_DROP
    batch_size: int = 64
    seed: int = 0
    model_name: str | None = None

    def check(self) -> "SearchConfig":
        for name in ("trials", "max_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SftcError(f"--{name.replace('_', '-')} must be a whole number 1 or more, "
                                f"got {value!r}")
        check_trials(self.trials, self.max_epochs)
        if not (0.0 <= self.max_accuracy_drop < 1.0):
            raise SftcError(f"--max-accuracy-drop must lie in [0, 1), got "
                            f"{self.max_accuracy_drop!r}")
        if self.lrs is not None and (not self.lrs or any(
                not (v > 0 and math.isfinite(v)) for v in self.lrs)):
            raise SftcError("--lrs must be positive numbers, e.g. 1e-3,5e-4")
        return self


@dataclass
class SearchResult:
    model: torch.nn.Module
    chosen: dict
    certified: bool
    trace: list[dict]
    audit: object                 # the final audit on the test split (bench.audit.AuditResult)
    timings: dict
    settings: dict

    def to_dict(self) -> dict:
        return {"certified": self.certified, "chosen": self.chosen, "trace": self.trace,
                "timings": self.timings, "settings": self.settings}


class _Stop(Exception):
    """A run reached a decision at a check (passed, or pruned): stop its epochs."""

    def __init__(self, why: str):
        self.why = why


class _Checker:
    """Judges a run after each epoch on the selection split, and keeps the best model so far."""

    def __init__(self, original, selection: Split, comparison: Comparison, config: SearchConfig,
                 device):
        from ..engine import resolve_device

        self.selection, self.comparison, self.config = selection, comparison, config
        self.device = resolve_device(device)
        self.original_figures, self.original_acc = self._evaluate(original)
        self.band = comparison.band
        self.power = comparison.power(self.original_figures)
        self.trace: list[dict] = []
        self.best: tuple | None = None          # (rank key, row, state_dict)

    def _evaluate(self, model):
        from ..engine import predict_logits

        s = self.selection
        parts = [predict_logits(model, s.data, idx.to(self.device), self.device).float().cpu()
                 for idx in (s.forget, s.test, s.val)]
        figures = self.comparison.figures(*parts)
        labels = s.data.labels.cpu()
        hits = torch.cat([(parts[i].argmax(1) == labels[idx.cpu()]) for i, idx in
                          ((1, s.test), (2, s.val))])
        return figures, float(hits.float().mean())

    def check(self, trial, lr: float, epoch: int, model, row: dict) -> None:
        t0 = time.perf_counter()
        figures, acc = self._evaluate(model)
        verdict = self.comparison.verdict(self.original_figures, figures)
        drop = self.original_acc - acc
        within = drop <= self.config.max_accuracy_drop
        passes = within and verdict.in_band
        i = figures.interval
        entry = {"trial": trial.number, "lr": lr, "epoch": epoch, "steps": row.get("steps"),
                 "auc": figures.auc, "low": i.low, "high": i.high, "level": i.level,
                 "delta": self.band.certify, "verdict": verdict.text,
                 "certifiable_margin": verdict.certifiable_margin, "val_accuracy": acc,
                 "accuracy_drop": drop, "within_budget": within, "passes": passes,
                 "unlearn_seconds": row.get("seconds"),
                 "check_seconds": time.perf_counter() - t0}
        self.trace.append(entry)
        self._keep(entry, model)
        excess = max(0.0, (verdict.certifiable_margin or 1.0) - self.band.certify)
        trial.report(epoch if passes else self.config.max_epochs + 1 + excess, epoch)
        if passes:
            raise _Stop("passed")
        if not within:
            raise _Stop("left the accuracy budget")
        if verdict.verdict == "not-forgotten" and verdict.direction == "over-forgotten":
            raise _Stop("over-forgotten")
        if trial.should_prune():
            raise _Stop("pruned by the median rule")

    def _keep(self, entry: dict, model) -> None:
        """Cheapest passing first; else the smallest distance from the level within the budget; else
        the smallest accuracy drop."""
        if entry["passes"]:
            key = (0, entry["epoch"], len(self.trace))
        elif entry["within_budget"]:
            key = (1, entry["certifiable_margin"], len(self.trace))
        else:
            key = (2, entry["accuracy_drop"], len(self.trace))
        if self.best is None or key < self.best[0]:
            self.best = (key, entry, copy.deepcopy(model.state_dict()))


def _sampler(optuna, config: SearchConfig):
    if config.lrs:
        return optuna.samplers.GridSampler({"lr": list(config.lrs)}, seed=config.seed)
    return optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=min(4, config.trials))


def search(original, split: Split, checker: _Checker, config: SearchConfig, device: str,
           progress: bool) -> dict:
    """The Optuna study over the learning rate; returns timings (the trace is the checker's)."""
    import sys

    from .. import api
    from ..phase import advance, describe, phase

    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=_sampler(optuna, config),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    unlearn_seconds, epochs_run = 0.0, 0

    def objective(trial):
        nonlocal unlearn_seconds, epochs_run
        lr = trial.suggest_float("lr", *LR_RANGE, log=True) if not config.lrs else \
            trial.suggest_categorical("lr", list(config.lrs))
        seen = []

        def on_epoch_end(epoch, model, row):
            seen.append(row)
            checker.check(trial, lr, epoch, model, row)

        try:
            api.unlearn(original, split, config.method, epochs=config.max_epochs, lr=lr,
                        batch_size=config.batch_size, seed=config.seed, device=device,
                        progress=progress, model_name=config.model_name,
                        on_epoch_end=on_epoch_end, **config.hparams)
        except _Stop:
            pass
        if seen:
            unlearn_seconds += seen[-1]["seconds"]
            epochs_run += len(seen)
        last = checker.trace[-1]
        return last["epoch"] if last["passes"] else \
            config.max_epochs + 1 + max(0.0, (last["certifiable_margin"] or 1.0) - last["delta"])

    trials = min(config.trials, len(config.lrs)) if config.lrs else config.trials
    with phase("search", trials, "trials at most"):
        for _ in range(trials):
            study.optimize(objective, n_trials=1)
            advance()
            if progress:
                print(f"until forgotten: {describe()}", file=sys.stderr, flush=True)
            if checker.best is not None and checker.best[1]["passes"] and \
                    checker.best[1]["epoch"] == 1:
                break                   # nothing is cheaper than one epoch
    return {"unlearn_seconds": unlearn_seconds, "epochs_run": epochs_run,
            "trials_run": len(study.trials)}


def unlearn_until_forgotten(original, split: Split, *, config: SearchConfig | None = None,
                            audit_config=None, recipe: TrainingRecipe | None = None,
                            device: str = "auto", progress: bool = True, **options
                            ) -> SearchResult:
    """Search, stop on the evidence, keep the cheapest passing model, audit it on the test split
    (module docstring). ``config``: :class:`SearchConfig` (or its fields as ``options``);
    ``audit_config``: :class:`~sftc.bench.audit.AuditConfig` of the checks and the final audit
    (its references, resolution, α, attack); ``recipe``: how the references are trained (the
    original's)."""
    from .audit import AuditConfig, audit, check_split, one_retraining, reference_logits

    config = (config or SearchConfig(**options)).check()
    require_optuna()
    audit_config = audit_config or AuditConfig()
    if recipe is not None:
        audit_config.recipe = recipe
    audit_config.device, audit_config.progress = device, progress
    check_split(split)
    started = time.perf_counter()
    selection = selection_split(split, config.seed)
    refs, ref_record, ref_seconds = reference_logits(audit_config, split)
    evidence = EvidenceSettings(audit_config.attack, audit_config.alpha,
                                audit_config.resolution)
    comparison = Comparison(selection, refs, evidence.check())
    checker = _Checker(original, selection, comparison, config, device)
    t0 = time.perf_counter()
    timings = search(original, split, checker, config, device, progress)
    search_seconds = time.perf_counter() - t0
    _, chosen, state = checker.best
    model = copy.deepcopy(original)
    model.load_state_dict(state)
    model.eval()
    final = audit(original, model, split, config=audit_config)
    retrain = one_retraining(refs.entries) or 0.0
    per_epoch = timings["unlearn_seconds"] / max(timings["epochs_run"], 1)
    fixed = per_epoch * UNLEARN_EPOCHS
    total = time.perf_counter() - started
    timings.update(search_seconds=search_seconds, references_seconds=ref_seconds,
                   total_seconds=total,
                   fixed_run_seconds_estimate=fixed, retrain_seconds=retrain,
                   search_over_fixed_run=search_seconds / fixed if fixed else None,
                   search_over_retrain=search_seconds / retrain if retrain else None,
                   total_over_retrain=total / retrain if retrain else None)
    settings = {**asdict(config), "lr_range": list(LR_RANGE) if not config.lrs else None,
                "selection": {"comparison": "validation half A", "population":
                              "validation half B", "comparison_size": len(selection.test),
                              "population_size": len(selection.val),
                              "original_val_accuracy": checker.original_acc,
                              "band": checker.band.to_dict(),
                              "power": checker.power.to_dict()},
                "references": ref_record}
    return SearchResult(model, chosen, bool(chosen["passes"]), checker.trace, final, timings,
                        settings)
