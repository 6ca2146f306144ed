"""All metrics of section 5.4 for an (original, unlearned, optional retrained) triple."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from ..data import Split
from ..engine import predict_logits, resolve_device
from .js import js_divergence, js_paper
from .mia import available_cores, plan_attack
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


class PendingMetrics:
    """The metrics of one model, some still being computed (the MIA's attackers); :meth:`result`
    waits for them and returns the dict of :func:`evaluate_models`."""

    def __init__(self, head: dict, tail: dict, attack=None, fits=None):
        self._head, self._tail, self._attack, self._fits = head, tail, attack, fits
        self._done: dict | None = None

    def result(self) -> dict:
        if self._done is None:
            out = dict(self._head)
            if self._attack is not None:
                fits = [f.result() if hasattr(f, "result") else f for f in self._fits]
                attack = self._attack.result(fits)
                out.update(mia=attack.mia, mia_attacker_acc=attack.attacker_acc,
                           mia_features=attack.features, mia_attacker=attack.attacker)
            out.update(self._tail)
            self._done = out
        return self._done


class Evaluator:
    """The metrics of section 5.4 for any number of models against one original M and, when
    given, the oracle M_R (what :func:`evaluate_models` computes, number for number).

    Cheaper than calling :func:`evaluate_models` per model: the references' logits are computed
    once (a model that *is* the original or the oracle reuses them: the ORI and RT rows), each
    model's logits once per subset, and the MIA's attackers (5 CatBoost fits per model) run on a
    pool of ``workers`` threads, one attacker per core on one thread each, while the caller goes
    on; :meth:`submit` returns after the model's forward passes. The attackers' threads do not
    change their results. While the pool is open, torch's intra-op threads are limited to the
    cores the attackers leave (at least one) and restored by :meth:`close`. The references must
    not change while the evaluator is in use.

    Example::

        with Evaluator(original, split, oracle) as ev:
            pending = [ev.submit(model, unlearn_seconds=s) for model, s in runs]
            rows = [p.result() for p in pending]
    """

    def __init__(self, original: nn.Module, split: Split, retrained: nn.Module | None = None, *,
                 device="auto", mia: bool = True, mia_features: str = "logits",
                 mia_iterations: int = 1000, mia_folds: int = 5, mia_attacker: str = "catboost",
                 seed: int = 0, workers: int | None = None):
        self.device = resolve_device(device)
        self.split = split
        self.original, self.retrained = original, retrained
        self.mia, self.seed = mia, seed
        self.mia_options = dict(features=mia_features, folds=mia_folds, seed=seed,
                                iterations=mia_iterations, attacker=mia_attacker)
        self.workers = min(workers or available_cores(), max(mia_folds, 1)) if mia else 1
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        # The attackers take `workers` cores; torch gets the rest (at least one) while they may
        # run, or its threads and theirs oversubscribe the cores and torch crawls (the demo's
        # reference models took 12x longer beside the attackers with torch on 2 threads).
        self._torch_threads = torch.get_num_threads() if self._pool is not None else None
        if self._torch_threads is not None:
            torch.set_num_threads(max(1, min(self._torch_threads,
                                             available_cores() - self.workers)))
        self._references: dict[int, dict[str, torch.Tensor]] = {}
        self._accuracies: dict[int, dict[str, float]] = {}

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._torch_threads is not None:
            torch.set_num_threads(self._torch_threads)
            self._torch_threads = None

    def logits(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Logits (CPU) of ``model`` on retain, forget, val and test; the references' are kept."""
        key = id(model)
        if key in self._references:
            return self._references[key]
        logits = subset_logits(on_device(model, self.device), self.split, self.device)
        if model is self.original or model is self.retrained:
            self._references[key] = logits
        return logits

    def _reference_accuracies(self, model: nn.Module) -> dict[str, float]:
        if id(model) not in self._accuracies:
            self._accuracies[id(model)] = accuracies(self.logits(model), self.split)
        return self._accuracies[id(model)]

    def reference_accuracies(self) -> dict[str, dict[str, float]]:
        """The original's (and the oracle's) accuracies: the ``reference`` of every row."""
        out = {"original": self._reference_accuracies(self.original)}
        if self.retrained is not None:
            out["retrained"] = self._reference_accuracies(self.retrained)
        return out

    def submit(self, unlearned: nn.Module, unlearn_seconds: float | None = None,
               retrain_seconds: float | None = None) -> PendingMetrics:
        """Start evaluating ``unlearned``; ``.result()`` of the returned object gives the dict."""
        split = self.split
        logits_u = self.logits(unlearned)
        acc_u = accuracies(logits_u, split)
        acc_o = self._reference_accuracies(self.original)
        head: dict = dict(acc_u)
        reference = {"original": acc_o}
        if self.retrained is not None:
            acc_r = self._reference_accuracies(self.retrained)
            reference["retrained"] = acc_r
            head["acc_err_retrain"] = acc_err_retrain(acc_r["acc_test"], acc_u["acc_test"])
            head["acc_dis"] = acc_dis(acc_r["acc_forget"], acc_u["acc_forget"])
        head["acc_err_original"] = acc_err_original(acc_o["acc_test"], acc_u["acc_test"])
        forget_original = self.logits(self.original)["forget"]
        head["js"] = js_divergence(logits_u["forget"], forget_original)
        head["js_paper"] = js_paper(logits_u["forget"], forget_original)
        head.update(self._user_metrics(logits_u, unlearn_seconds, retrain_seconds))
        attack = fits = None
        if self.mia:
            labels = split.data.labels.cpu()
            attack = plan_attack(logits_u["retain"], labels[split.retain], logits_u["test"],
                                 labels[split.test], logits_u["forget"], **self.mia_options)
            folds = range(len(attack.folds))
            if self._pool is None:
                fits = [attack.fit_fold(i, -1) for i in folds]
            else:
                fits = [self._pool.submit(attack.fit_fold, i, 1) for i in folds]
        tail: dict = {}
        if unlearn_seconds is not None:
            tail["unlearn_seconds"] = unlearn_seconds
        if retrain_seconds is not None:
            tail["retrain_seconds"] = retrain_seconds
            if unlearn_seconds is not None and retrain_seconds > 0:
                tail["time_ratio"] = unlearn_seconds / retrain_seconds
        tail["reference"] = reference
        return PendingMetrics(head, tail, attack, fits)

    def _user_metrics(self, logits_u: dict, unlearn_seconds, retrain_seconds) -> dict:
        """Every ``@register_metric`` metric of the unlearned model."""
        from .registry import MetricInputs, compute_user_metrics, user_metrics

        if not user_metrics():
            return {}
        logits = {"unlearned": logits_u, "original": self.logits(self.original)}
        if self.retrained is not None:
            logits["oracle"] = self.logits(self.retrained)
        labels = {name: self.split.data.labels[self.split.indices(name).to(
            self.split.data.labels.device)].cpu() for name in SUBSETS}
        seconds = {k: v for k, v in (("unlearn", unlearn_seconds), ("retrain", retrain_seconds))
                   if v is not None}
        return compute_user_metrics(MetricInputs(logits, labels, seconds))

    def evaluate(self, unlearned: nn.Module, unlearn_seconds: float | None = None,
                 retrain_seconds: float | None = None) -> dict:
        return self.submit(unlearned, unlearn_seconds, retrain_seconds).result()


def evaluate_models(original: nn.Module, unlearned: nn.Module, split: Split,
                    retrained: nn.Module | None = None, *, device="auto", mia: bool = True,
                    mia_features: str = "logits", mia_iterations: int = 1000, mia_folds: int = 5,
                    mia_attacker: str = "catboost",
                    seed: int = 0, unlearn_seconds: float | None = None,
                    retrain_seconds: float | None = None, mia_workers: int | None = None) -> dict:
    """Metrics of the unlearned model M_u against the original M and, when given, the oracle M_R.

    Returns the keys of :data:`METRIC_KEYS` (the ones needing M_R, MIA or timings are absent when
    those are not available) plus ``reference`` with the original's and oracle's accuracies.
    ``mia_workers``: attackers fitted at once (default one per core; see :class:`Evaluator`,
    which also evaluates many models against the same references without recomputing theirs).
    """
    with Evaluator(original, split, retrained, device=device, mia=mia, mia_features=mia_features,
                   mia_iterations=mia_iterations, mia_folds=mia_folds, mia_attacker=mia_attacker,
                   seed=seed, workers=mia_workers) as evaluator:
        return evaluator.evaluate(unlearned, unlearn_seconds, retrain_seconds)
