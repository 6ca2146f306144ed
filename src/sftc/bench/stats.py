"""Means and sample standard deviations over seeds."""
from __future__ import annotations

import math
import statistics

#: What a Table-1 row averages over its seeds.
NUMERIC_KEYS = ("acc_err_retrain", "acc_dis", "acc_err_original", "js", "js_paper", "mia",
                "mia_attacker_acc", "acc_retain", "acc_forget", "acc_test", "unlearn_seconds",
                "retrain_seconds", "time_ratio", "score", "rmia_auc", "rmia_tpr", "rmia_p_greater",
                "rmia_p_two_sided", "rmia_mean_score_forget", "rmia_mean_score_test",
                "rmia_references", "rmia_low", "rmia_high", "rmia_level", "rmia_auc_unmatched",
                "rmia_band")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def mean_std(values: list) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation of the numbers among ``values`` (NaN and None left out;
    an infinite value makes the mean infinite and the spread undefined)."""
    nums = [float(v) for v in values if is_number(v)]
    if not nums:
        return None, None
    if any(math.isinf(v) for v in nums):
        return float("inf") if sum(1 for v in nums if v > 0) else float("-inf"), None
    mean = statistics.fmean(nums)
    std = statistics.stdev(nums) if len(nums) > 1 else None
    return mean, std


def aggregate(per_seed: list[dict], keys=None) -> dict:
    """Mean and (sample) standard deviation over seeds, as ``key`` and ``key_std`` (default
    keys: :data:`NUMERIC_KEYS` and every user metric's, ``@register_metric``)."""
    if keys is None:
        from ..metrics.registry import user_metrics

        keys = NUMERIC_KEYS + tuple(m.key for m in user_metrics())
    out = {}
    for key in keys:
        mean, std = mean_std([r.get(key) for r in per_seed])
        if mean is not None:
            out[key] = mean
            if std is not None:
                out[f"{key}_std"] = std
    return out
