"""The sensitivity figure (the paper's Figure 5): forget accuracy, test accuracy and MIA against
one hyperparameter, the oracle's accuracies as dashed reference lines."""
from __future__ import annotations

from pathlib import Path

from .plots import save_figure

SERIES = (("acc_forget", "forget accuracy", "tab:red", "o"),
          ("acc_test", "test accuracy", "tab:green", "s"),
          ("mia", "MIA", "tab:purple", "^"))
PARAM_LABELS = {"lr": "learning rate", "tau": "KL temperature τ", "c": "confusion fraction c"}


def sensitivity_figure(points: list[dict], param: str, oracle: dict | None, path: str | Path,
                       title: str | None = None) -> None:
    """``points``: one dict per parameter value with ``value`` and the means (and ``*_std``) of
    ``acc_forget``, ``acc_test``, ``mia``; ``oracle``: the oracle's ``acc_forget``/``acc_test``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(points, key=lambda p: p["value"])
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    xs = [p["value"] for p in points]
    for key, name, colour, marker in SERIES:
        pts = [(p["value"], p[key], p.get(f"{key}_std")) for p in points if p.get(key) is not None]
        if not pts:
            continue
        x, y, err = zip(*pts)
        if any(e is not None for e in err):
            ax.errorbar(x, y, yerr=[e or 0.0 for e in err], color=colour, marker=marker, ms=4,
                        capsize=2, label=name)
        else:
            ax.plot(x, y, color=colour, marker=marker, ms=4, label=name)
    if oracle:
        for key, name, colour in (("acc_forget", "oracle forget", "tab:red"),
                                  ("acc_test", "oracle test", "tab:green")):
            if oracle.get(key) is not None:
                ax.axhline(oracle[key], color=colour, ls="--", lw=1, label=name)
    if param == "lr" and xs and min(xs) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(PARAM_LABELS.get(param, param))
    ax.set_ylabel("accuracy / MIA")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or f"SFTC sensitivity to {PARAM_LABELS.get(param, param)}")
    fig.tight_layout()
    save_figure(fig, path)
