"""Figures: convergence curves per method (the paper's Figure 4)."""
from __future__ import annotations

import io
import math
from pathlib import Path

from ..io import atomic_write_bytes

CURVES = (("acc_retain", "retain", "tab:blue"), ("acc_test", "test", "tab:green"),
          ("acc_forget", "forget", "tab:red"))


def save_figure(fig, path: str | Path) -> None:
    """Write a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())


def convergence_figure(panels: dict[str, list[dict]], oracle: dict | None, path: str | Path,
                       title: str | None = None) -> None:
    """One panel per method: retain (blue), test (green) and forget (red) accuracy per epoch from
    epoch 0 (the original model); the oracle's accuracies as dashed lines of the same colours.

    Every panel has its own y-axis, fitted to its curves and the oracle's lines: a shared axis
    would be stretched by the one method that collapses (EU-k starts near chance) and flatten
    every other curve onto the top of the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(panels), 1)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, (label, history) in zip(axes.flat, panels.items()):
        for key, name, colour in CURVES:
            points = [(r["epoch"], r[key]) for r in history if key in r]
            if points:
                ax.plot(*zip(*points), marker="o", ms=3, color=colour, label=name)
            if oracle and key in oracle:
                ax.axhline(oracle[key], color=colour, ls="--", lw=1)
        ax.set_title(label, fontsize=9)
        ax.margins(y=0.08)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        epochs = [r["epoch"] for r in history]
        if epochs:
            ax.set_xticks(range(min(epochs), max(epochs) + 1))
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    for row_axes in axes:
        row_axes[0].set_ylabel("accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(title or "Convergence (dashed: retrain-from-scratch oracle)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    save_figure(fig, path)
