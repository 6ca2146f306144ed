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


NO_VERDICT = "#c7c7c7"          # rows the audit did not judge (no colour of verdicts.COLOURS)


def _verdict_of(row: dict) -> str | None:
    """A row's audit verdict: its own, or the most frequent over its seeds."""
    if row.get("rmia_verdict"):
        return row["rmia_verdict"]
    counts = row.get("rmia_verdicts") or {}
    return max(sorted(counts), key=lambda v: counts[v]) if counts else None


def attack_figure(rows: list[dict], path: str | Path, references: int,
                  title: str | None = None) -> None:
    """attack.png: per row, RMIA's AUC of D_f against never-seen D_t (0.5: never seen; bars grow
    from 0.5) and its TPR at 1 % FPR (chance 0.01), with the spread over seeds where the rows have
    one, coloured by the audit verdict (the most frequent over seeds); each axis fitted to its
    values so that the differences show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .verdicts import colour

    shown = [r for r in rows if r.get("rmia_auc") is not None]
    labels = [r["label"] for r in shown][::-1]
    unknown: list[str] = []
    legend = {}                     # verdict -> colour, for the verdicts shown, in order
    for r in shown:
        v = _verdict_of(r)
        legend.setdefault(v or "no verdict", colour(v, unknown) if v else NO_VERDICT)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 0.32 * len(shown) + 1.6))
    for ax, key, chance, panel in (
            (axes[0], "rmia_auc", 0.5, "RMIA AUC, D_f vs never-seen D_t (0.5: never seen)"),
            (axes[1], "rmia_tpr", 0.01, "RMIA TPR at 1% FPR (chance 0.01)")):
        values = [r.get(key) for r in shown][::-1]
        colours = [legend[_verdict_of(r) or "no verdict"] for r in shown][::-1]
        spread = [r.get(f"{key}_std") or 0.0 for r in shown][::-1]
        known = [v for v in values if v is not None]
        base = chance if key == "rmia_auc" else 0.0     # AUC bars grow from 0.5 either way
        ax.barh(labels, [(v - base) if v is not None else 0.0 for v in values], color=colours,
                left=base, xerr=spread if any(spread) else None, ecolor="black", capsize=2)
        ax.axvline(chance, color="black", ls="--", lw=1)
        if known:
            ends = [v - e for v, e in zip(values, spread) if v is not None]
            ends += [v + e for v, e in zip(values, spread) if v is not None]
            low = min(ends + [chance])
            high = max(ends + [chance])
            pad = 0.08 * (high - low or 1.0)
            ax.set_xlim(max(0.0, low - pad) if key == "rmia_tpr" else low - pad, high + pad)
        ax.set_title(panel, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in legend.values()]
    fig.legend(handles, list(legend), loc="lower center", ncol=4, fontsize=8,
               bbox_to_anchor=(0.5, -0.02), title="audit verdict", title_fontsize=8)
    fig.suptitle(title or f"Per-example attack on every model ({references} reference models); "
                 "colour: the audit verdict", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(fig, path)


def search_figure(trace: list[dict], budget: float, path: str | Path,
                  title: str | None = None, chosen: dict | None = None) -> None:
    """``sftc unlearn --until forgotten``'s search: per run (learning rate), the matched AUC with
    its band half-width after each epoch against the retrain band (shaded; a line when the band
    is 0), and the validation accuracy drop against the budget (dashed); passing checks are
    filled, the kept check (``chosen``, a trace row) is starred. One legend entry per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 5.6), sharex=True)
    if trace:
        level, delta = trace[0]["level"], trace[0]["delta"]
        if delta > 0:
            top.axhspan(level - delta, level + delta, color="tab:green", alpha=0.15,
                        label=f"retrain band {level:.3f} ± {delta:.3f}")
        else:
            top.axhline(level, color="tab:green", lw=1.5,
                        label=f"retrain band {level:.3f} (band of width 0)")
    runs: dict[int, list[dict]] = {}
    for row in trace:
        runs.setdefault(row["trial"], []).append(row)
    offset = {trial: 0.06 * (i - len(runs) / 2) for i, trial in enumerate(sorted(runs))}
    for i, (trial, rows) in enumerate(sorted(runs.items())):
        colour = f"C{i % 10}"
        x = [r["epoch"] + offset[trial] for r in rows]
        top.errorbar(x, [r["auc"] for r in rows],
                     yerr=[[r["auc"] - r["low"] for r in rows], [r["high"] - r["auc"] for r in rows]],
                     color=colour, marker="o", ms=4, capsize=2,
                     label=f"run {trial}: lr {rows[0]['lr']:.3g}",
                     mfc="none" if not any(r["passes"] for r in rows) else colour)
        bottom.plot(x, [r["accuracy_drop"] for r in rows], color=colour, marker="o", ms=4)
    if chosen is not None and chosen.get("trial") in offset:
        x = chosen["epoch"] + offset[chosen["trial"]]
        label = f"kept: run {chosen['trial']}, epoch {chosen['epoch']}"
        top.plot([x], [chosen["auc"]], marker="*", ms=15, color="gold", mec="black",
                 ls="none", label=label, zorder=5)
        bottom.plot([x], [chosen["accuracy_drop"]], marker="*", ms=15, color="gold",
                    mec="black", ls="none", zorder=5)
    bottom.axhline(budget, color="k", ls="--", lw=1, label=f"budget {budget:g}")
    top.set_ylabel("matched AUC (selection split)")
    bottom.set_ylabel("validation accuracy drop")
    bottom.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))     # epochs are whole numbers
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))           # one entry per label
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="best")
    fig.suptitle(title or "Search until forgotten (filled: a passing check; star: the kept one)")
    fig.tight_layout()
    save_figure(fig, path)
