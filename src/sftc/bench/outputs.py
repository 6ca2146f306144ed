"""What a benchmark writes: table1.{md,csv,json,tex}, selection.csv, convergence.png, report.md."""
from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

from ..io import atomic_write_json, atomic_write_text
from ..metrics.mia import ATTACKER_NAMES
from ..report import TABLE1_COLUMNS, Column, format_table, rank_marks, table_rows_csv
from ..report.latex import latex_table
from ..report.plots import convergence_figure

EXTRA_COLUMNS = (
    Column("lr", "kept lr", fmt="{:g}"), Column("epoch", "kept epoch", fmt="{:d}"),
    Column("acc_retain", "Acc retain"), Column("acc_forget", "Acc forget"),
    Column("acc_test", "Acc test"), Column("js_paper", "JS (authors' code)"),
    Column("mia_attacker_acc", "MIA attacker acc"), Column("unlearn_seconds", "seconds", fmt="{:.2f}"),
    Column("retrain_seconds", "retrain seconds", fmt="{:.2f}"),
    Column("time_ratio", "time / retrain", fmt="{:.3f}"), Column("n_seeds", "seeds", fmt="{:d}"))
TIME_BUDGET = 0.15


def _fmt(value, fmt="{:.4f}") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def display_rows(rows: list[dict]) -> list[dict]:
    """Rows for the human-readable tables: a method with failed or diverged runs gets a †."""
    out = []
    for row in rows:
        r = dict(row)
        r["display"] = row["label"] + (" †" if row.get("problems") and not row.get("failed") else "")
        out.append(r)
    return out


def _footnotes(rows: list[dict]) -> list[str]:
    notes = []
    for row in rows:
        if row.get("failed"):
            notes.append(f"{row['label']}: failed: {row.get('reason')}")
        problems = row.get("problems") or []
        if problems and not row.get("failed"):
            shown = "; ".join(f"lr {p['lr']:g} seed {p['seed']}: {p['status']} ({p['reason']})"
                              for p in problems[:3])
            more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
            notes.append(f"† {row['label']}: {len(problems)} run(s) of the grid did not finish: "
                         f"{shown}{more}. Settings they did not reach were not candidates.")
    return notes


def times_table(rows: list[dict]) -> str:
    lines = ["| Method | kept lr | kept epochs | unlearning s | retraining s | time / retrain | "
             f"≤ {TIME_BUDGET:.0%} |", "|---|---:|---:|---:|---:|---:|:---:|"]
    for row in rows:
        if row["label"] in ("ORI",) or row.get("failed"):
            continue
        ratio = row.get("time_ratio")
        flag = "—" if ratio is None or row["label"] == "RT" else (
            "yes" if ratio <= TIME_BUDGET else "**no, exceeds**")
        lines.append(f"| {row['label']} | {_fmt(row.get('lr'), '{:g}')} | "
                     f"{_fmt(row.get('epoch'), '{:d}')} | {_fmt(row.get('unlearn_seconds'), '{:.2f}')} | "
                     f"{_fmt(row.get('retrain_seconds'), '{:.2f}')} | "
                     f"{_fmt(ratio, '{:.1%}')} | {flag} |")
    return "\n".join(lines)


def accuracy_table(rows: list[dict]) -> str:
    """Accuracies behind the errors, and the MIA attacker's own cross-validated accuracy."""
    lines = ["| Method | Acc retain | Acc forget | Acc test | MIA attacker acc | JS (authors' code) |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        if row.get("failed"):
            continue
        lines.append(f"| {row['label']} | {_fmt(row.get('acc_retain'))} | "
                     f"{_fmt(row.get('acc_forget'))} | {_fmt(row.get('acc_test'))} | "
                     f"{_fmt(row.get('mia_attacker_acc'))} | {_fmt(row.get('js_paper'))} |")
    return "\n".join(lines)


def mean_history(results_by_seed: list[dict]) -> list[dict]:
    """Per-epoch accuracies averaged over the seeds' runs (epochs every seed reached)."""
    by_epoch: dict[int, list[dict]] = {}
    for result in results_by_seed:
        for r in result["rows"]:
            by_epoch.setdefault(r["epoch"], []).append(r)
    out = []
    for epoch in sorted(by_epoch):
        group = by_epoch[epoch]
        if len(group) != len(results_by_seed):
            continue
        row = {"epoch": epoch}
        for key in ("acc_retain", "acc_forget", "acc_test"):
            vals = [g[key] for g in group if isinstance(g.get(key), (int, float))]
            if len(vals) == len(group):
                row[key] = sum(vals) / len(vals)
        out.append(row)
    return out


def selection_csv(table: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["method", "lr", "epoch", "mean_score_eq5_6_7", "kept"])
    kept = {r["key"]: (r.get("lr"), r.get("epoch")) for r in table["rows"]}
    for mkey, grid in table["selection_grid"].items():
        for (lr, epoch), score in sorted(grid.items()):
            writer.writerow([mkey, f"{lr:g}", epoch, f"{score:.6f}",
                             "yes" if kept.get(mkey) == (lr, epoch) else ""])
    return buffer.getvalue()


def write_outputs(bench, table: dict, manifest: dict) -> None:
    out: Path = bench.out
    c = bench.config
    rows = table["rows"]
    shown = display_rows(rows)
    columns = TABLE1_COLUMNS
    marks = rank_marks(rows, columns)
    js_name = "textbook Jensen-Shannon (Eq. 8, ≤ ln 2)" if c.js == "textbook" else \
        "the authors' code's JS (½KL(R‖P) + ½KL(R‖Q), unbounded)"

    # -- table1.md ---------------------------------------------------------------------
    md = [f"# Table 1: {c.dataset}, {c.model}", "",
          f"Mean ± standard deviation over {len(c.seeds)} seed(s) ({', '.join(map(str, c.seeds))}). "
          "Best per column in **bold**, second <u>underlined</u>, among the unlearning methods "
          "(ORI and RT are references, not ranked), as in the paper. JS is the " + js_name + ".",
          "", format_table(shown, columns, style="markdown", label_key="display"), ""]
    notes = _footnotes(rows)
    if notes:
        md += [*(f"- {n}" for n in notes), ""]
    md += ["## Kept settings and unlearning time", "",
           "Kept (learning rate, epochs): the argmin of Eq. 5 + 6 + 7 averaged over seeds. Time: "
           "the method's own wall time (evaluation excluded) as a fraction of the oracle's "
           f"training time; the paper keeps every method under {TIME_BUDGET:.0%}.", "",
           times_table(rows), "",
           "## Accuracies and the MIA attacker", "",
           "Means over seeds. Retain accuracy is measured on the MIA's member sample (a class-"
           "balanced sample of the retain set as large as the test set). The attacker's accuracy is "
           "its own cross-validated accuracy at telling those members from test samples: near 0.5 "
           "it cannot tell them apart even on the data it trained on, and its MIA column says "
           "little about forgetting.", "", accuracy_table(rows), ""]
    atomic_write_text(out / "table1.md", "\n".join(md))

    # -- table1.csv / json / tex -------------------------------------------------------
    atomic_write_text(out / "table1.csv", table_rows_csv(rows, tuple(columns) + EXTRA_COLUMNS))
    atomic_write_json(out / "table1.json", {
        "dataset": c.dataset, "model": c.model, "seeds": list(c.seeds),
        "columns": [{"key": col.key, "header": col.header, "better": col.better}
                    for col in columns],
        "rows": [{k: v for k, v in r.items()} for r in rows],
        "marks": [{"row": rows[i]["label"], "column": key, "mark": mark}
                  for (i, key), mark in sorted(marks.items())],
        "js": c.js, "config": c.to_dict()})
    caption = (f"Unlearning on {c.dataset} with {c.model}: mean over {len(c.seeds)} seed(s); best "
               "in bold, second underlined.")
    atomic_write_text(out / "table1.tex", latex_table(shown, columns, caption=caption,
                                                      label=f"tab:{c.dataset}-{c.model}",
                                                      label_key="display"))
    atomic_write_text(out / "selection.csv", selection_csv(table))

    # -- convergence.png (Figure 4) ----------------------------------------------------
    panels = {}
    for row in rows:
        if row["label"] in ("ORI", "RT") or row.get("failed"):
            continue
        runs = [table["results"][row["key"]][(row["lr"], s)] for s in c.seeds]
        panels[f"{row['label']} (lr {row['lr']:g}, kept epoch {row['epoch']})"] = mean_history(runs)
    oracle = {}
    rt = next((r for r in rows if r["label"] == "RT"), None)
    if rt:
        oracle = {k: rt[k] for k in ("acc_retain", "acc_test", "acc_forget") if k in rt}
    if panels:
        convergence_figure(panels, oracle, out / "convergence.png",
                           title=f"Convergence on {c.dataset} ({c.model}, mean over "
                                 f"{len(c.seeds)} seed(s); dashed: oracle)")

    # -- report.md ---------------------------------------------------------------------
    atomic_write_text(out / "report.md", report_text(bench, table, manifest, "\n".join(md)))


def report_text(bench, table: dict, manifest: dict, table_md: str) -> str:
    c = bench.config
    sessions = manifest.get("sessions", [])
    last = sessions[-1] if sessions else {}
    wall_total = sum(s.get("wall_seconds") or 0.0 for s in sessions)
    split = bench.split
    sizes = split.sizes()
    lines = ["# Benchmark report", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by `sftc benchmark`.", "",
             "## Command", "", "```", last.get("command") or "(Python API)", "```", ""]
    if len(sessions) > 1:
        lines += [f"The benchmark ran in {len(sessions)} sessions (it was resumed); commands:", ""]
        lines += [f"- `{s.get('command')}` ({_fmt(s.get('wall_seconds'), '{:.0f}')} s)"
                  for s in sessions]
        lines.append("")
    lines += ["## Machine and versions", "",
              f"- device: {last.get('device')}",
              *(f"- {k}: {v}" for k, v in (last.get("machine") or {}).items()),
              "- versions: " + ", ".join(f"{k} {v}" for k, v in (last.get("versions") or {}).items()),
              f"- wall time: {_fmt(last.get('wall_seconds'), '{:.0f}')} s this session, "
              f"{wall_total:.0f} s over all sessions "
              "(reference models loaded from the cache cost no time here)", "",
              "## Configuration", "",
              f"- dataset: {c.dataset} (sizes: " + ", ".join(f"{k} {v}" for k, v in sizes.items())
              + f"; forget `{split.forget_spec}`, drawn with seed {c.forget_seed}, the same for every "
              "seed" + (f"; training set: a stratified subset of {len(split.train)} images"
                        if c.train_subset else "") + "); image size: " + str(split.data.input_size),
              f"- model: {c.model}; original and oracle: {c.train_epochs} epochs, Adam lr "
              f"{c.train_lr:g}, cosine annealing, batch {c.batch_size}"
              + (", augmentation" if c.augment else ""),
              f"- seeds: {', '.join(map(str, c.seeds))}",
              f"- learning-rate grid: {', '.join(f'{v:g}' for v in c.lrs)}; unlearning epochs "
              f"1-{c.max_epochs} (constant learning rate, Adam, batch {c.batch_size})",
              "- methods: " + ", ".join(f"{n}" + (f" ({', '.join(f'{k}={v}' for k, v in h.items())})"
                                                  if h else "") for n, h in c.methods),
              f"- MIA: {ATTACKER_NAMES[c.mia_attacker]}, {c.mia_iterations} iterations, {c.mia_folds}-fold CV, features: "
              f"{c.mia_features}; JS column: {c.js}", ""]
    preset = getattr(bench, "preset", None)
    if preset is not None:
        lines += [f"Preset `{preset.name}`: {preset.description}", ""]
    lines += ["## Protocol", "",
              "Section 5.5 of the paper: for each seed the original model M and the oracle M_R "
              "(retrained from scratch on the retain set); for each method and learning rate one "
              f"run of {c.max_epochs} epochs at a constant learning rate, evaluated after every "
              "epoch; per method the (learning rate, epoch) with the lowest Eq. 5 + 6 + 7 averaged "
              "over seeds is kept (`selection.csv` has every candidate's score); JS and MIA are "
              "computed at the kept setting only. As in the paper, the setting is chosen on the "
              "same test set the table reports (no separate validation step). The retain accuracy "
              "(convergence figure) is measured on the MIA's member sample, a class-balanced random "
              "sample of the retain set as large as the test set.", "",
              "## Results", "", table_md.split("\n", 1)[1].lstrip(), "",
              "## Convergence (Figure 4)", "",
              "![convergence](convergence.png)", "",
              "Each panel: retain (blue), test (green) and forget (red) accuracy per epoch at the "
              "method's kept learning rate, epoch 0 being the original model, mean over seeds; "
              "dashed: the oracle's accuracies.", ""]
    return "\n".join(lines) + "\n"
