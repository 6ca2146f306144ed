"""The demo's report.md: its setting, the table of every method, the figure and the metrics."""
from __future__ import annotations

from pathlib import Path

from .plots import save_figure
from .table1 import gap_text, marking_rule_text
from .text import METRIC_HELP, table1_text

#: Row order of Table 1 after ORI and RT (section 5.5), NegGrad beside NegGrad+.
PAPER_METHOD_ORDER = ("ft", "neggrad+", "neggrad", "cf-k", "eu-k", "scrub", "bad-teaching", "sftc")


VERDICT_COLOURS = {"forgotten": "tab:green", "not-forgotten (remembered)": "tab:red",
                   "not-forgotten (over-forgotten)": "tab:orange", "inconclusive": "tab:gray"}


def attack_figure(rows: list[dict], path: str | Path, references: int) -> None:
    """attack.png: per row, RMIA's AUC of D_f against never-seen D_t (0.5: never seen) and its
    TPR at 1 % FPR (chance 0.01), coloured by the audit verdict; each axis fitted to its values
    so that the differences show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("rmia_auc") is not None]
    labels = [r["label"] for r in shown][::-1]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 0.32 * len(shown) + 1.6))
    for ax, key, chance, title in (
            (axes[0], "rmia_auc", 0.5, "RMIA AUC, D_f vs never-seen D_t (0.5: never seen)"),
            (axes[1], "rmia_tpr", 0.01, "RMIA TPR at 1% FPR (chance 0.01)")):
        values = [r.get(key) for r in shown][::-1]
        colours = [VERDICT_COLOURS.get(r.get("rmia_verdict"), "tab:blue") for r in shown][::-1]
        known = [v for v in values if v is not None]
        base = chance if key == "rmia_auc" else 0.0     # AUC bars grow from 0.5 either way
        ax.barh(labels, [(v - base) if v is not None else 0.0 for v in values], color=colours,
                left=base)
        ax.axvline(chance, color="black", ls="--", lw=1)
        if known:
            low = min(known + [chance])
            high = max(known + [chance])
            pad = 0.08 * (high - low or 1.0)
            ax.set_xlim(max(0.0, low - pad) if key == "rmia_tpr" else low - pad, high + pad)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in VERDICT_COLOURS.values()]
    fig.legend(handles, list(VERDICT_COLOURS), loc="lower center", ncol=4, fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Per-example attack on every model ({references} reference models); colour: "
                 "the audit verdict", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    save_figure(fig, path)


def demo_markdown(rows: list[dict], split, *, forget: str, model: str, epochs: int,
                  unlearn_epochs: int, lr: float, out, record: dict) -> str:
    attack = any(r.get("rmia_auc") is not None for r in rows)
    refs = next((r.get("rmia_references") for r in rows if r.get("rmia_references")), None)
    lines = [
        "# sftc demo: unlearning on digits", "",
        f"Forget set `{forget}`: {len(split.forget)} of {len(split.train)} training samples "
        f"(class histogram {split.forget_summary()['class_histogram']}); {len(split.test)} test "
        f"images. Model `{model}`, original and oracle trained {epochs} epochs (Adam, lr 1e-3, "
        f"cosine, batch 64, no augmentation), so the original memorises its training data; "
        f"every method unlearns for {unlearn_epochs} epochs at lr {lr:g} (Adam, batch 64). "
        "No learning-rate search here: `sftc benchmark --preset digits-memorising` runs the "
        "paper's protocol on the same data.", "",
        gap_text(rows, {"attack_references": refs}), "",
        table1_text(rows, style="markdown"), "",
        marking_rule_text() + " Seconds: unlearning wall time; the oracle's row shows its "
        "training time.", ""]
    if attack:
        lines += ["Audit verdict (`sftc audit`'s rule, RMIA online, α = 0.001): "
                  + "; ".join(f"{r['label']} {r.get('rmia_verdict')}" for r in rows) + ".", "",
                  "![attack](attack.png)", ""]
    lines += ["![convergence](convergence.png)", "", "## Metrics", ""]
    lines += [f"- `{key}`: {text}" for key, text in METRIC_HELP.items()]
    lines += ["", "## Reproduce", "", "```", "sftc demo --out " + str(out) + " --overwrite",
              "```", "", f"sftc {record['versions']['sftc']}, torch {record['versions']['torch']}, "
              f"{record['machine']['platform']}."]
    return "\n".join(lines) + "\n"
