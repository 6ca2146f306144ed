"""Printing results for people (the text itself comes from :mod:`sftc.report.text`)."""
from __future__ import annotations

from ..report.text import METRIC_HELP, accuracy_line, metric_help, metric_lines, table1_text

__all__ = ["METRIC_HELP", "metric_help", "print_accuracies", "print_metrics", "table1_text"]


def print_accuracies(title: str, metrics: dict) -> None:
    print(accuracy_line(title, metrics))


def print_metrics(metrics: dict) -> None:
    """One line per metric with a short explanation."""
    for line in metric_lines(metrics):
        print(line)
