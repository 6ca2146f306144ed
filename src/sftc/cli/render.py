"""Printing results for people: short aligned lines and tables."""
from __future__ import annotations

from ..report import ACCURACY_COLUMNS, TABLE1_COLUMNS, format_table

METRIC_HELP = {
    "acc_err_retrain": "SAPE of test accuracy vs the retrained oracle (Eq. 5), lower is better",
    "acc_dis": "SAPE of forget accuracy vs the retrained oracle (Eq. 6), lower is better",
    "acc_err_original": "SAPE of test accuracy vs the original model (Eq. 7), lower is better",
    "js": "Jensen-Shannon divergence from the original on the forget set (Eq. 8), higher = more changed",
    "js_paper": "the authors' unbounded JS variant, for comparison with the paper's Table 1",
    "mia": "share of forget samples a CatBoost attacker calls non-members (Eq. 9), higher is better",
    "mia_attacker_acc": "the attacker's own cross-validated accuracy (0.5 = it learned nothing)",
    "unlearn_seconds": "wall-clock seconds of unlearning",
    "retrain_seconds": "wall-clock seconds of retraining from scratch",
    "time_ratio": "unlearning time / retraining time (the paper keeps every method under 0.15)",
}


def print_accuracies(title: str, metrics: dict) -> None:
    parts = [f"{k[4:]} {metrics[k]:.4f}" for k in ("acc_train", "acc_retain", "acc_forget", "acc_val",
                                                   "acc_test")
             if k in metrics]
    print(f"{title}: accuracy " + ", ".join(parts))


def print_metrics(metrics: dict) -> None:
    """One line per metric with a short explanation."""
    keys = ["acc_retain", "acc_forget", "acc_val", "acc_test"] + list(METRIC_HELP)
    width = max(len(k) for k in keys)
    for key in keys:
        if key in metrics and isinstance(metrics[key], (int, float)):
            note = METRIC_HELP.get(key, "")
            print(f"  {key.ljust(width)}  {metrics[key]:>10.4f}  {note}")


def table1_text(rows: list[dict], style: str = "plain") -> str:
    return format_table(rows, TABLE1_COLUMNS + ACCURACY_COLUMNS, style=style)
