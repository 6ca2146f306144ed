"""Everything a sweep writes: sensitivity.{csv,json}, report.md and sensitivity.png (Figure 5).

The figure: forget accuracy, test accuracy and MIA against one hyperparameter, the oracle's
accuracies as dashed reference lines.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..io import atomic_write_json, atomic_write_text
from ..metrics.mia import ATTACKER_NAMES
from .plots import save_figure
from .tables import fmt

#: What a sweep point reports (mean and spread over seeds).
SWEEP_KEYS = ("acc_retain", "acc_forget", "acc_test", "acc_err_retrain", "acc_dis",
              "acc_err_original", "score", "js", "js_paper", "mia", "mia_attacker_acc",
              "unlearn_seconds")

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
    fig.suptitle(title or f"sensitivity to {PARAM_LABELS.get(param, param)}")
    fig.tight_layout()
    save_figure(fig, path)


def write_sweep(out: Path, summary: dict, config: dict, manifest: dict, split) -> None:
    """sensitivity.csv, sensitivity.json, sensitivity.png and report.md in ``out``."""
    atomic_write_text(out / "sensitivity.csv", sensitivity_csv(summary["points"]))
    atomic_write_json(out / "sensitivity.json", {"config": config, **summary})
    ok_points = [p for p in summary["points"] if p.get("n_seeds")]
    title = (f"{summary.get('label', 'SFTC')} on {config['dataset']} ({config['model']}, "
             f"{config['epochs']} epochs, {len(config['seeds'])} seed(s)): "
             f"{PARAM_LABELS.get(config['param'], config['param'])}")
    sensitivity_figure(ok_points, config["param"], summary["references"]["oracle"],
                       out / "sensitivity.png", title=title)
    atomic_write_text(out / "report.md", sweep_markdown(summary, config, manifest, split))


def sensitivity_csv(points: list[dict]) -> str:
    """One row per value: the point's parameters, then mean and spread of every reported key."""
    reported = {"value", "n_seeds", "status", *SWEEP_KEYS, *(f"{k}_std" for k in SWEEP_KEYS)}
    params = list(dict.fromkeys(k for p in points for k in p if k not in reported))
    columns = ["value", *params, "n_seeds"]
    for key in SWEEP_KEYS:
        columns += [key, f"{key}_std"]
    columns.append("status")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for p in points:
        writer.writerow({k: ("" if p.get(k) is None else p.get(k)) for k in columns})
    return buffer.getvalue()


def sweep_markdown(summary: dict, c: dict, manifest: dict, split) -> str:
    """report.md of a sweep: command, data, fixed values, attacker, machine, the references'
    accuracies, the figure and one table row per value."""
    param = c["param"]
    last = manifest["sessions"][-1]
    total = sum(s.get("wall_seconds") or 0.0 for s in manifest["sessions"])
    fixed = summary.get("fixed") or {k: c[k] for k in ("lr", "tau", "c") if k != param}
    label = summary.get("label", "SFTC")
    ref_o, ref_r = summary["references"]["original"], summary["references"]["oracle"]
    lines = [f"# Sensitivity of {label} to {param}", "", "```", last.get("command") or
             "(Python API)", "```", "",
             f"- dataset {c['dataset']}" + (f" (training subset {c['train_subset']})"
                                           if c["train_subset"] else "")
             + f", image size {split.data.input_size}, forget `{split.forget_spec}` "
             f"({len(split.forget)} samples); model {c['model']} trained {c['train_epochs']} "
             f"epochs; seeds {', '.join(map(str, c['seeds']))}",
             f"- {label} {c['epochs']} epochs, fixed: "
             + (", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                         for k, v in fixed.items()) or "nothing"),
             f"- MIA: {ATTACKER_NAMES[c.get('mia_attacker', 'catboost')]} {c['mia_iterations']} "
             f"iterations, {c['mia_folds']}-fold, {c['mia_features']}",
             f"- device {last.get('device')}; machine: "
             + ", ".join(f"{k} {v}" for k, v in (last.get("machine") or {}).items()),
             "- versions: " + ", ".join(f"{k} {v}" for k, v in (last.get("versions") or {}).items()),
             f"- wall time: {fmt(last.get('wall_seconds'), '{:.0f}')} s this session, "
             f"{total:.0f} s in all", "",
             f"Original: forget {fmt(ref_o.get('acc_forget'))}, test {fmt(ref_o.get('acc_test'))}; "
             f"oracle: forget {fmt(ref_r.get('acc_forget'))}, test {fmt(ref_r.get('acc_test'))}.",
             "", "![sensitivity](sensitivity.png)", "",
             f"| {param} | forget acc | test acc | MIA | JS | Eq.5+6+7 | seconds |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for p in summary["points"]:
        if not p.get("n_seeds"):
            lines.append(f"| {p['value']:g} | failed: {p.get('status')} | | | | | |")
            continue
        lines.append(f"| {p['value']:g} | {fmt(p.get('acc_forget'))} | {fmt(p.get('acc_test'))} | "
                     f"{fmt(p.get('mia'))} | {fmt(p.get('js'))} | {fmt(p.get('score'))} | "
                     f"{fmt(p.get('unlearn_seconds'), '{:.1f}')} |")
    return "\n".join(lines) + "\n"


def sweep_text(summary: dict) -> str:
    """The points as aligned text (what ``sftc sweep`` prints)."""
    lines = [f"{summary['param']:>8}  {'forget':>7}  {'test':>7}  {'MIA':>7}"]
    for p in summary["points"]:
        if p.get("n_seeds"):
            lines.append(f"{p['value']:>8g}  {p['acc_forget']:7.4f}  {p['acc_test']:7.4f}  "
                         f"{p.get('mia', float('nan')):7.4f}")
        else:
            lines.append(f"{p['value']:>8g}  failed: {p.get('status')}")
    return "\n".join(lines)
