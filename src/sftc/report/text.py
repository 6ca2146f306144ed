"""Results as text for people: metric meanings, aligned metric lines, the per-method table."""
from __future__ import annotations

from .tables import ACCURACY_COLUMNS, format_table, table1_columns

def metric_help() -> dict[str, str]:
    """Every declared metric's meaning (sftc's and plugins'), but the accuracies'."""
    from ..metrics.registry import METRICS

    return {k: METRICS.find(k).meaning for k in METRICS.names() if not k.startswith("acc_")
            or k.startswith("acc_err") or k == "acc_dis"}


METRIC_HELP = metric_help()
ACCURACY_KEYS = ("acc_train", "acc_retain", "acc_forget", "acc_val", "acc_test")


def accuracy_line(title: str, metrics: dict) -> str:
    parts = [f"{k[4:]} {metrics[k]:.4f}" for k in ACCURACY_KEYS if k in metrics]
    return f"{title}: accuracy " + ", ".join(parts)


def metric_lines(metrics: dict) -> list[str]:
    """One line per metric with a short explanation."""
    helps = metric_help()
    keys = list(ACCURACY_KEYS) + list(helps)
    width = max(len(k) for k in keys)
    return [f"  {key.ljust(width)}  {metrics[key]:>10.4f}  {helps.get(key, '')}"
            for key in keys if key in metrics and isinstance(metrics[key], (int, float))]


def table1_text(rows: list[dict], style: str = "plain") -> str:
    """One row per method with Table 1's columns (and the attack's, when the rows have them) and
    the accuracies and seconds behind them."""
    return format_table(rows, table1_columns(rows) + ACCURACY_COLUMNS, style=style)
