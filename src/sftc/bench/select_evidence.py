"""The benchmark's oracle-free selection rule, ``--select evidence`` (beside the paper's Eq. 5 + 6
+ 7, :mod:`sftc.bench.selection`), and the regret of both rules.

The rule reads what ``sftc unlearn --until forgotten`` reads (:mod:`sftc.bench.until`): for every
evaluated (learning rate, epoch, seed), the audit's matched comparison on the **selection split**
(validation halves: A the comparison, B the population; the benchmark keeps every model's logits
on the validation split) against the retrain band, with the power that seed's original gives it
there, and the drop of
validation accuracy below the original's. A check *passes* when it lies inside the retrain band
(the original shown beyond the refute line; the resolution is the test split's to meet, as in
``--until forgotten``) within the accuracy budget. Kept setting: one that passes on every seed with the fewest epochs (then the
smaller learning rate); without one, the setting passing on the most seeds, then within the budget
on the most, then of the smallest mean distance from the never-seen level; where no setting is within the budget
on any seed, the one of the smallest mean accuracy drop (as ``--until forgotten`` keeps one).
Neither the oracle nor the test split is read.

**Regret** (:func:`regret`): the kept models of each rule judged on the test split (Eq. 5 + 6 + 7,
which needs the oracle, and the attack's matched AUC against its never-seen level), against the
best setting of the grid in hindsight on the test split: within the accuracy budget on test
accuracy, the closest matched AUC to the never-seen level.
"""
from __future__ import annotations

import math
import statistics

import torch

from .evidence import Comparison
from .selection import Setting, selection_score
from .until import MAX_ACCURACY_DROP, selection_split

RULES = ("paper", "evidence")


class EvidenceRule:
    """Checks of stored logits on the selection split, and the kept setting."""

    def __init__(self, attack, split, budget: float = MAX_ACCURACY_DROP):
        self.attack, self.split, self.budget = attack, split, budget
        self.selection = selection_split(split)
        self.comparison = Comparison(self.selection, attack.comparison.refs, attack.settings)
        where = {int(v): i for i, v in enumerate(split.val.tolist())}
        self._a = torch.tensor([where[int(v)] for v in self.selection.test.tolist()])
        self._b = torch.tensor([where[int(v)] for v in self.selection.val.tolist()])
        labels = split.data.labels.cpu()
        self._val_labels = labels[split.val.cpu()]
        self._originals: dict[int, tuple] = {}

    def _figures(self, logits: dict):
        population = logits["population"]
        figures = self.comparison.figures(logits["forget"], population[self._a], population[self._b])
        accuracy = float((population.argmax(1) == self._val_labels).float().mean())
        return figures, accuracy

    def original(self, seed: int, logits: dict) -> tuple:
        if seed not in self._originals:
            self._originals[seed] = self._figures(logits)
        return self._originals[seed]

    def check(self, logits: dict, original: tuple) -> dict:
        """One model's check on the selection split (as :class:`~sftc.bench.until._Checker`)."""
        figures, accuracy = self._figures(logits)
        verdict = self.comparison.verdict(original[0], figures)
        drop = original[1] - accuracy
        within = drop <= self.budget
        return {"verdict": verdict.text, "passes": within and verdict.in_band,
                "within_budget": within, "accuracy_drop": drop, "auc": figures.auc,
                "certifiable_margin": verdict.certifiable_margin,
                "delta": verdict.band.certify}

    def select(self, checks: dict[tuple[float, int, int], dict], seeds) -> Setting | None:
        """The kept (lr, epoch) from checks keyed (lr, epoch, seed) (module docstring)."""
        seeds = list(seeds)
        grouped: dict[tuple[float, int], list[dict]] = {}
        for (lr, epoch, seed), check in checks.items():
            grouped.setdefault((lr, epoch), []).append(check)
        complete = {k: v for k, v in grouped.items() if len(v) == len(seeds)}
        if not complete:
            return None

        def key(item):
            (lr, epoch), found = item
            passing = sum(c["passes"] for c in found)
            within = sum(c["within_budget"] for c in found)
            margin = statistics.fmean(c["certifiable_margin"] for c in found)
            if passing == len(seeds):
                return (0, epoch, lr, 0.0)
            # within the budget on no seed: the budget binds, the smallest accuracy drop comes
            # first (as --until forgotten keeps it), never a broken model for its distance
            drop = statistics.fmean(c["accuracy_drop"] for c in found) if within == 0 else 0.0
            return (1, -passing, -within, drop, margin, epoch, lr)

        (lr, epoch), _ = min(complete.items(), key=key)
        return Setting(lr=lr, epoch=epoch, score=float("nan"), n_seeds=len(seeds))


def hindsight(points: dict, test_auc: dict, seeds, budget: float, original_acc: dict
              ) -> tuple[float, int] | None:
    """The grid's best setting on the test split: within ``budget`` of the originals' test
    accuracy on every seed, the smallest mean |matched AUC − never-seen level|. ``test_auc``:
    (lr, epoch) -> seed -> (matched AUC, level, ...)."""
    best, best_key = None, None
    for (lr, epoch), per_seed in test_auc.items():
        if len(per_seed) != len(list(seeds)):
            continue
        drops = [original_acc[s] - points[(lr, epoch, s)]["acc_test"] for s in seeds]
        if max(drops) > budget:
            continue
        distance = statistics.fmean(abs(v[0] - v[1]) for v in per_seed.values())
        key = (distance, epoch, lr)
        if best_key is None or key < best_key:
            best, best_key = (lr, epoch), key
    return best


def setting_figures(points: dict, test_auc: dict, lr: float, epoch: int, seeds,
                    verdicts: dict | None = None) -> dict:
    """One setting judged on the test split, means over seeds: Eq. 5 + 6 + 7, the matched AUC
    (with its interval's ends when ``test_auc`` holds them) and its distance from the never-seen
    level, the test and forget accuracies, and the audit verdict per seed when ``verdicts``
    ((lr, epoch, seed) -> text) holds them."""
    seeds = list(seeds)
    scores = [selection_score(points[(lr, epoch, s)]) for s in seeds]
    aucs = test_auc.get((lr, epoch), {})
    distance = [abs(v[0] - v[1]) for v in aucs.values()]

    def mean_of(values):
        values = [v for v in values if v is not None]
        return statistics.fmean(values) if values else None

    out = {"lr": lr, "epoch": epoch,
           "eq567": statistics.fmean(scores) if all(map(math.isfinite, scores)) else None,
           "auc": mean_of(v[0] for v in aucs.values()),
           "auc_low": mean_of(v[2] if len(v) > 2 else None for v in aucs.values()),
           "auc_high": mean_of(v[3] if len(v) > 3 else None for v in aucs.values()),
           "auc_distance": statistics.fmean(distance) if distance else None,
           "acc_test": mean_of(points[(lr, epoch, s)].get("acc_test") for s in seeds),
           "acc_forget": mean_of(points[(lr, epoch, s)].get("acc_forget") for s in seeds)}
    if verdicts:
        found = [verdicts[(lr, epoch, s)] for s in seeds if (lr, epoch, s) in verdicts]
        out["verdicts"] = {v: found.count(v) for v in sorted(set(found))}
    return out
