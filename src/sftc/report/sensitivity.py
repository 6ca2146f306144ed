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
    ``acc_forget``, ``acc_test``, ``mia``; ``oracle``: the oracle's ``acc_forget``/``acc_test``.

    Two panels sharing the x axis: accuracies (with the oracle's as dashed lines) and MIA (with
    0.5 dotted), each on its own scale so that small differences stay visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(points, key=lambda p: p["value"])
    fig, (ax_acc, ax_mia) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    xs = [p["value"] for p in points]
    for key, name, colour, marker in SERIES:
        ax = ax_mia if key == "mia" else ax_acc
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
                ax_acc.axhline(oracle[key], color=colour, ls="--", lw=1, label=name)
    ax_mia.axhline(0.5, color="grey", ls=":", lw=1, label="0.5")
    for ax, ylabel in ((ax_acc, "accuracy"), (ax_mia, "MIA (TN / |Df|)")):
        if param == "lr" and xs and min(xs) > 0:
            ax.set_xscale("log")
        ax.set_xlabel(PARAM_LABELS.get(param, param))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    ax_acc.set_title("forget and test accuracy (dashed: oracle)", fontsize=10)
    ax_mia.set_title("membership inference", fontsize=10)
    fig.suptitle(title or f"SFTC sensitivity to {PARAM_LABELS.get(param, param)}")
    fig.tight_layout()
    save_figure(fig, path)
