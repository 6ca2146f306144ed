"""Results as text for people: metric meanings, aligned metric lines, the per-method table."""
from __future__ import annotations

from .tables import ACCURACY_COLUMNS, format_table, table1_columns

METRIC_HELP = {
    "acc_err_retrain": "SAPE of test accuracy vs the retrained oracle (Eq. 5), lower is better",
    "acc_dis": "SAPE of forget accuracy vs the retrained oracle (Eq. 6), lower is better",
    "acc_err_original": "SAPE of test accuracy vs the original model (Eq. 7), lower is better",
    "js": "Jensen-Shannon divergence from the original on the forget set (Eq. 8), higher = more changed",
    "js_paper": "the authors' unbounded JS variant, for comparison with the paper's Table 1",
    "mia": "share of forget samples a CatBoost attacker calls non-members (Eq. 9), higher is better",
    "mia_attacker_acc": "the attacker's own cross-validated accuracy (0.5 = it learned nothing)",
    "rmia_auc": "per-example attack (RMIA): AUC of telling the forget set from never-seen test "
                "data; 0.5 = as a model that never saw it, above = remembered, below = "
                "over-forgotten",
    "rmia_tpr": "share of the forget set RMIA flags at 1 % false positives on test data, lower "
                "is better (chance 0.01)",
    "unlearn_seconds": "wall-clock seconds of unlearning",
    "retrain_seconds": "wall-clock seconds of retraining from scratch",
    "time_ratio": "unlearning time / retraining time (the paper keeps every method under 0.15)",
}
ACCURACY_KEYS = ("acc_train", "acc_retain", "acc_forget", "acc_val", "acc_test")


def accuracy_line(title: str, metrics: dict) -> str:
    parts = [f"{k[4:]} {metrics[k]:.4f}" for k in ACCURACY_KEYS if k in metrics]
    return f"{title}: accuracy " + ", ".join(parts)


def metric_lines(metrics: dict) -> list[str]:
    """One line per metric with a short explanation."""
    keys = list(ACCURACY_KEYS) + list(METRIC_HELP)
    width = max(len(k) for k in keys)
    return [f"  {key.ljust(width)}  {metrics[key]:>10.4f}  {METRIC_HELP.get(key, '')}"
            for key in keys if key in metrics and isinstance(metrics[key], (int, float))]


def table1_text(rows: list[dict], style: str = "plain") -> str:
    """One row per method with Table 1's columns (and the attack's, when the rows have them) and
    the accuracies and seconds behind them."""
    return format_table(rows, table1_columns(rows) + ACCURACY_COLUMNS, style=style)
