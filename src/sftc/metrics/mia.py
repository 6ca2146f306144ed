"""CatBoost membership-inference attack of section 5.4 (Eq. 9)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SftcError

FEATURES = ("logits", "softmax")
ATTACKERS = ("catboost", "hist-gradient-boosting")
ATTACKER_NAMES = {"catboost": "CatBoost",
                  "hist-gradient-boosting": "scikit-learn HistGradientBoosting (not the paper's CatBoost)"}


@dataclass
class MiaResult:
    mia: float                 # TN / |Df|, averaged over the folds' attackers (Eq. 9)
    attacker_acc: float        # the attacker's own cross-validated accuracy (members vs test)
    features: str
    attacker: str
    n_members: int
    n_nonmembers: int
    folds: int


def balanced_sample(retain_labels: np.ndarray, test_labels: np.ndarray, num_classes: int,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of an equal number of retain and test samples per class (min of the two counts)."""
    rng = np.random.default_rng(seed)
    members, nonmembers = [], []
    for c in range(num_classes):
        r = np.flatnonzero(retain_labels == c)
        t = np.flatnonzero(test_labels == c)
        k = min(len(r), len(t))
        if k:
            members.append(rng.choice(r, k, replace=False))
            nonmembers.append(rng.choice(t, k, replace=False))
    if not members:
        raise SftcError("membership inference needs retain and test samples of a shared class")
    return np.concatenate(members), np.concatenate(nonmembers)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class MiaPlan:
    """Everything an attack needs before its folds are fitted: the features, the member labels,
    the folds and the attacker factory. The folds are independent; :meth:`fit_fold` fits one
    (any order, any thread) and :meth:`result` combines them in fold order."""

    x: np.ndarray
    y: np.ndarray
    x_forget: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    features: str
    attacker: str
    iterations: int
    seed: int
    n_members: int
    n_nonmembers: int

    def fit_fold(self, i: int, thread_count: int = -1) -> tuple[float, float]:
        """Fit fold ``i``'s attacker; returns (its accuracy on the held-out fold, the share of
        the forget set it calls non-member). The attacker's threads do not change its result."""
        train_idx, val_idx = self.folds[i]
        clf = _attacker_factory(self.attacker, self.iterations, self.seed, thread_count)()
        clf.fit(self.x[train_idx], self.y[train_idx])
        acc = float((clf.predict(self.x[val_idx]).astype(int) == self.y[val_idx]).mean())
        tnr = float((clf.predict(self.x_forget).astype(int) == 0).mean())
        return acc, tnr

    def result(self, fits: list[tuple[float, float]]) -> MiaResult:
        accs, tnr = [f[0] for f in fits], [f[1] for f in fits]
        return MiaResult(float(np.mean(tnr)), float(np.mean(accs)), self.features, self.attacker,
                         self.n_members, self.n_nonmembers, len(self.folds))


def plan_attack(retain_logits: torch.Tensor, retain_labels: torch.Tensor,
                test_logits: torch.Tensor, test_labels: torch.Tensor,
                forget_logits: torch.Tensor, features: str = "logits", folds: int = 5,
                seed: int = 0, iterations: int = 1000, attacker: str = "catboost") -> MiaPlan:
    """The inputs of :func:`membership_inference`, ready for its folds to be fitted."""
    from sklearn.model_selection import StratifiedKFold

    if features not in FEATURES:
        raise SftcError(f"unknown MIA features {features!r}; use logits or softmax")
    _attacker_factory(attacker, iterations, seed, -1)  # an unknown attacker fails here
    c = retain_logits.shape[1]
    m_pos, n_pos = balanced_sample(retain_labels.cpu().numpy(), test_labels.cpu().numpy(), c, seed)

    def prep(t: torch.Tensor) -> np.ndarray:
        t = t.double()
        return (torch.softmax(t, 1) if features == "softmax" else t).cpu().numpy()

    x = np.concatenate([prep(retain_logits)[m_pos], prep(test_logits)[n_pos]])
    y = np.concatenate([np.ones(len(m_pos), dtype=int), np.zeros(len(n_pos), dtype=int)])
    n_splits = min(folds, len(m_pos))
    if n_splits < 2:
        raise SftcError("membership inference needs at least 2 retain and 2 test samples")
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return MiaPlan(x, y, prep(forget_logits), list(splitter.split(x, y)), features, attacker,
                   iterations, seed, len(m_pos), len(n_pos))


def membership_inference(retain_logits: torch.Tensor, retain_labels: torch.Tensor,
                         test_logits: torch.Tensor, test_labels: torch.Tensor,
                         forget_logits: torch.Tensor, features: str = "logits", folds: int = 5,
                         seed: int = 0, iterations: int = 1000, thread_count: int = -1,
                         attacker: str = "catboost", workers: int | None = None) -> MiaResult:
    """MIA = TN / |Df| (Eq. 9).

    A CatBoost attacker learns to tell retain samples (members, label 1) from test samples
    (non-members, label 0) on a per-class balanced sample, with stratified ``folds``-fold
    cross-validation; each fold's attacker labels the forget set and the share it calls
    non-member is averaged over folds. ``features`` is ``logits`` (the paper's text) or
    ``softmax`` (the authors' code). ``attacker`` is ``catboost`` (the paper's) or
    ``hist-gradient-boosting`` (scikit-learn's gradient-boosted trees, for machines without
    CatBoost; recorded in the result, and not the paper's attacker).

    ``workers`` folds are fitted at once, each attacker on one thread (default: one per CPU core;
    ``workers=1`` fits them one after another, each with ``thread_count`` threads). The fitted
    attackers, and so the result, do not depend on either.
    """
    plan = plan_attack(retain_logits, retain_labels, test_logits, test_labels, forget_logits,
                       features, folds, seed, iterations, attacker)
    workers = min(workers or available_cores(), len(plan.folds))
    if workers <= 1:
        return plan.result([plan.fit_fold(i, thread_count) for i in range(len(plan.folds))])
    with ThreadPoolExecutor(workers) as pool:  # the attackers release the GIL while fitting
        fits = list(pool.map(lambda i: plan.fit_fold(i, 1), range(len(plan.folds))))
    return plan.result(fits)


def _attacker_factory(name: str, iterations: int, seed: int, thread_count: int):
    if name == "catboost":
        try:
            from catboost import CatBoostClassifier
        except ImportError:
            raise SftcError("the CatBoost attacker needs the catboost package: pip install catboost "
                            "(or choose --mia-attacker hist-gradient-boosting)") from None
        return lambda: CatBoostClassifier(iterations=iterations, random_seed=seed, verbose=0,
                                          thread_count=thread_count, allow_writing_files=False)
    if name == "hist-gradient-boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return lambda: HistGradientBoostingClassifier(max_iter=iterations, random_state=seed)
    raise SftcError(f"unknown MIA attacker {name!r}; use {' or '.join(ATTACKERS)}")
