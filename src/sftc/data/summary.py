"""What a split holds, per class: the table and the figure of the paper's Figure 3."""
from __future__ import annotations

import io

import torch

from .split import Split

SUBSETS = ("train", "retain", "forget", "val", "test")


def class_counts(split: Split) -> dict[str, list[int]]:
    """Samples per class in each subset: ``{"train": [...], "retain": [...], ...}``."""
    labels = split.data.labels.cpu()
    k = split.data.num_classes
    return {name: torch.bincount(labels[split.indices(name).cpu()], minlength=k).tolist()
            for name in SUBSETS}


def class_names(split: Split) -> list[str]:
    names = split.data.class_names
    if names and len(names) == split.data.num_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(split.data.num_classes)]


def distribution_png(counts: dict[str, list[int]], names: list[str], title: str) -> bytes:
    """Grouped bars of train, validation, test and forget samples per class, as PNG bytes.

    Drawn on a bare Agg canvas (no pyplot state), so it is safe in any process.
    """
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = [("train", "Training"), ("val", "Validation"), ("test", "Test"), ("forget", "Forget")]
    x = np.arange(len(names))
    width = 0.8 / len(groups)
    fig = Figure(figsize=(max(6.0, 0.9 * len(names) + 2.0), 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, (key, label) in enumerate(groups):
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, counts[key], width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30 if max(len(n) for n in names) > 6 else 0,
                       ha="right" if max(len(n) for n in names) > 6 else "center")
    ax.set_ylabel("samples")
    ax.set_title(title)
    top = max(max(counts[key]) for key, _ in groups)
    ax.set_ylim(0, max(1.0, top) * 1.2)  # head room for the legend
    ax.legend(frameon=False, ncol=len(groups), loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
