"""The selection rule of section 5.5: keep the (learning rate, epoch) of lowest mean Eq. 5+6+7.

Per method, the setting whose Eq. 5 + Eq. 6 + Eq. 7 (AccErr{Mu,MR} + AccDis + AccErr{Mu,M}) is
lowest averaged over seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

SCORE_KEYS = ("acc_err_retrain", "acc_dis", "acc_err_original")


def selection_score(metrics: dict) -> float:
    """Eq. 5 + Eq. 6 + Eq. 7 of one evaluated model (lower is better); NaN when one is missing."""
    values = [metrics.get(k) for k in SCORE_KEYS]
    if any(v is None or not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
        return float("nan")
    return float(sum(values))


@dataclass(frozen=True)
class Setting:
    lr: float
    epoch: int
    score: float          # mean of Eq. 5 + 6 + 7 over the seeds
    n_seeds: int


def candidate_scores(points: dict[tuple[float, int, int], dict], seeds) -> dict[tuple[float, int], float]:
    """Mean score per (lr, epoch) over ``seeds``; a setting enters only when every seed has a
    finite score there (a failed or diverged run drops its settings rather than biasing the mean).

    ``points`` maps (lr, epoch, seed) to the metrics of that evaluated model.
    """
    seeds = list(seeds)
    grouped: dict[tuple[float, int], list[float]] = {}
    for (lr, epoch, seed), metrics in points.items():
        if seed in seeds:
            grouped.setdefault((lr, epoch), []).append(selection_score(metrics))
    out = {}
    for key, scores in grouped.items():
        if len(scores) == len(seeds) and all(math.isfinite(s) for s in scores):
            out[key] = sum(scores) / len(scores)
    return out


def select_setting(points: dict[tuple[float, int, int], dict], seeds) -> Setting | None:
    """The kept (lr, epoch): the argmin of the seed-averaged Eq. 5 + 6 + 7. Ties go to the fewer
    epochs, then the smaller learning rate (the cheaper, gentler setting). None if no candidate."""
    scores = candidate_scores(points, seeds)
    if not scores:
        return None
    (lr, epoch), score = min(scores.items(), key=lambda kv: (kv[1], kv[0][1], kv[0][0]))
    return Setting(lr=lr, epoch=epoch, score=score, n_seeds=len(list(seeds)))
