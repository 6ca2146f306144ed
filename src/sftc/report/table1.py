"""A benchmark's Table 1 as files: table1.{md,csv,json,tex} and selection.csv.

Rendered from the rows and the configuration, which table1.json holds, so the tables can be
rendered again from it (:func:`table1_files_from_json`).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .latex import latex_table
from .regret import BAND_RULES_TEXT, RULES_TEXT, rules_table, signed  # noqa: F401 (signed: re-exported)
from .tables import Column, fmt, format_table, rank_marks, table1_columns, table_rows_csv

EXTRA_COLUMNS = (
    Column("lr", "kept lr", fmt="{:g}"), Column("epoch", "kept epoch", fmt="{:d}"),
    Column("acc_retain", "Acc retain"), Column("acc_forget", "Acc forget"),
    Column("acc_test", "Acc test"), Column("js_paper", "JS (authors' code)"),
    Column("mia_attacker_acc", "MIA attacker acc"),
    Column("rmia_p_greater", "RMIA p (D_f > D_t)", fmt="{:.3g}"),
    Column("rmia_p_two_sided", "RMIA p two-sided", fmt="{:.3g}"),
    Column("unlearn_seconds", "seconds", fmt="{:.2f}"),
    Column("retrain_seconds", "retrain seconds", fmt="{:.2f}"),
    Column("time_ratio", "time / retrain", fmt="{:.3f}"), Column("n_seeds", "seeds", fmt="{:d}"))
#: The paper keeps every method's time under this fraction of the oracle's training time.
TIME_BUDGET = 0.15


def display_rows(rows: list[dict]) -> list[dict]:
    """Rows for the human-readable tables: a method with failed or diverged runs gets a †."""
    out = []
    for row in rows:
        r = dict(row)
        r["display"] = row["label"] + (" †" if row.get("problems") and not row.get("failed") else "")
        out.append(r)
    return out


def footnotes(rows: list[dict]) -> list[str]:
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
        lines.append(f"| {row['label']} | {fmt(row.get('lr'), '{:g}')} | "
                     f"{fmt(row.get('epoch'), '{:d}')} | {fmt(row.get('unlearn_seconds'), '{:.2f}')} | "
                     f"{fmt(row.get('retrain_seconds'), '{:.2f}')} | "
                     f"{fmt(ratio, '{:.1%}')} | {flag} |")
    return "\n".join(lines)


def verdicts_text(counts: dict | None, n_seeds: int) -> str:
    if not counts:
        return "—"
    return ", ".join(f"{v} {n}/{n_seeds}" for v, n in sorted(counts.items(),
                                                              key=lambda kv: (-kv[1], kv[0])))


def accuracy_table(rows: list[dict]) -> str:
    """Accuracies behind the errors, the MIA attacker's own cross-validated accuracy and, with
    the attack, the audit's verdict per seed."""
    attack = any(r.get("rmia_verdicts") for r in rows)
    lines = ["| Method | Acc retain | Acc forget | Acc test | MIA attacker acc | JS (authors' code) |"
             + (" audit verdict (RMIA, per seed) |" if attack else ""),
             "|---|---:|---:|---:|---:|---:|" + ("---|" if attack else "")]
    for row in rows:
        if row.get("failed"):
            continue
        lines.append(f"| {row['label']} | {fmt(row.get('acc_retain'))} | "
                     f"{fmt(row.get('acc_forget'))} | {fmt(row.get('acc_test'))} | "
                     f"{fmt(row.get('mia_attacker_acc'))} | {fmt(row.get('js_paper'))} |"
                     + (f" {verdicts_text(row.get('rmia_verdicts'), row['n_seeds'])} |"
                        if attack else ""))
    return "\n".join(lines)


def matched(rows: list[dict]) -> bool:
    """Whether the rows carry the audit's matched comparison and intervals (sftc 0.2 on); the
    earlier records (RMIA online against the whole test split) render as they were written."""
    return any(r.get("rmia_low") is not None for r in rows)


def banded(rows: list[dict]) -> bool:
    """Whether the rows were judged on the retrain band (sftc 0.2's rule, issue 26); earlier
    records (the margin rule) render as they were written."""
    return any(r.get("rmia_band") is not None for r in rows)


def verdict_rule(rows: list[dict]) -> str:
    if banded(rows):
        return VERDICT_RULE
    return MARGIN_VERDICT_RULE if matched(rows) else EARLIER_VERDICT_RULE


def evidence_table(rows: list[dict]) -> str:
    """Per row: the matched AUC, its interval (means over seeds), the never-seen level and the
    audit's verdict per seed."""
    band = banded(rows)
    lines = ["| Method | matched AUC | " + ("AUC ± band" if band else "interval")
             + " (mean over seeds) | never-seen level | AUC vs all D_t | audit verdict per seed |",
             "|---|---:|---|---:|---:|---|"]
    for row in rows:
        if row.get("failed") or row.get("rmia_auc") is None:
            continue
        lines.append(f"| {row['label']} | {fmt(row.get('rmia_auc'), '{:.3f}')} | "
                     f"[{fmt(row.get('rmia_low'), '{:.3f}')}, {fmt(row.get('rmia_high'), '{:.3f}')}]"
                     f" | {fmt(row.get('rmia_level'), '{:.3f}')} | "
                     f"{fmt(row.get('rmia_auc_unmatched'), '{:.3f}')} | "
                     f"{row.get('rmia_verdict') or verdicts_text(row.get('rmia_verdicts'), row.get('n_seeds', 1))} |")
    return "\n".join(lines)


VERDICT_RULE = (
    " The audit verdict is `sftc audit`'s rule applied to each seed's figures (docs/evidence.md): "
    "the matched AUC against the band within which models retrained without D_f land (90 % of "
    "them; Student's t on the references' leave-one-out AUCs): forgotten when the row lies "
    "inside it and the original far enough outside for a resolution of at least 50 %, "
    "not-forgotten beyond the refute line (5 % of retrained models; remembered above, "
    "over-forgotten below), nothing-detectable when the original itself is within it, else "
    "not-proven.")
MARGIN_VERDICT_RULE = (
    " The audit verdict is `sftc audit`'s rule applied to each seed's figures (docs/evidence.md): "
    "the matched AUC's interval (90 %, counting the examples and how far models that never saw "
    "D_f stray from their level) against the never-seen level ± a margin of a fifth of the "
    "original's shown excess: forgotten when the interval lies within it, not-forgotten when it "
    "lies wholly outside (remembered above, over-forgotten below), else not-proven.")
EARLIER_VERDICT_RULE = (
    " The audit verdict is `sftc audit`'s rule applied to each seed's figures "
    "(docs/evidence.md): inconclusive when the attack cannot tell the original's D_f "
    "from D_t (one-sided p ≥ 0.001), else not-forgotten when the row's D_f and D_t "
    "differ (two-sided p < 0.002; remembered: D_f scores higher, over-forgotten: "
    "lower), else forgotten.")


def _row(rows: list[dict], label: str) -> dict:
    return next((r for r in rows if r["label"] == label and not r.get("failed")), {})


def gap_text(rows: list[dict], config: dict) -> str:
    """The gap the methods have to close, in one paragraph: forget accuracy of the original
    against the oracle's, and what the attacks see in the original (and in the oracle)."""
    ori, rt = _row(rows, "ORI"), _row(rows, "RT")
    text = (f"Gap to close: the original (ORI) is at {fmt(ori.get('acc_forget'))} accuracy on "
            f"the forget set D_f and the oracle (RT) at {fmt(rt.get('acc_forget'))} (ORI's AccDis "
            f"{fmt(ori.get('acc_dis'))}; test accuracy {fmt(ori.get('acc_test'))} and "
            f"{fmt(rt.get('acc_test'))}).")
    if ori.get("rmia_auc") is not None:
        k = config.get("attack_references")
        text += (f" The per-example attack (RMIA, {k} reference models) tells D_f from D_t in the "
                 f"original with AUC {fmt(ori['rmia_auc'], '{:.3f}')} and TPR@1% FPR "
                 f"{fmt(ori.get('rmia_tpr'), '{:.3f}')} (mean one-sided p "
                 f"{fmt(ori.get('rmia_p_greater'), '{:.2g}')}), in the oracle with AUC "
                 f"{fmt(rt.get('rmia_auc'), '{:.3f}')} and TPR@1% "
                 f"{fmt(rt.get('rmia_tpr'), '{:.3f}')}.")
    else:
        text += " (No per-example attack: this benchmark ran without attack references.)"
    text += (f" The paper's MIA on the original: {fmt(ori.get('mia'))}, its attacker's own "
             f"accuracy {fmt(ori.get('mia_attacker_acc'))} (0.5: chance).")
    return text


def marking_rule_text(held: bool = False, seeds: int = 1) -> str:
    if held and seeds > 1:
        return ("Best per column in **bold**, second <u>underlined</u>, only where the difference "
                f"holds over the {seeds} seeds (Welch's one-sided t-test at 5 % on the means and "
                "their spreads): rows not shown worse than the best share its mark, so a tie "
                "prints as a tie. Every row is ranked, ORI (do nothing) and RT (retrain from "
                "scratch) included. In a forgetting column (AccDis, JS, MIA and the attack's "
                "columns) a row is marked only when it is shown better than ORI.")
    return ("Best per column in **bold**, second <u>underlined</u>. Every row is ranked, ORI (do "
            "nothing) and RT (retrain from scratch) included, with values compared as printed. In "
            "a forgetting column (AccDis, JS, MIA and the attack's columns) a row is marked only "
            "when it does strictly better than ORI: a method that forgets no better than doing "
            "nothing is never marked there.")


def table1_markdown(rows: list[dict], config: dict, held: bool = False) -> str:
    """table1.md: Table 1 with its marks and footnotes, the kept settings and times, and the
    accuracies behind the errors."""
    seeds = config["seeds"]
    js_name = ("textbook Jensen-Shannon (Eq. 8, ≤ ln 2)" if config["js"] == "textbook" else
               "the authors' code's JS (½KL(R‖P) + ½KL(R‖Q), unbounded)")
    md = [f"# Table 1: {config['dataset']}, {config['model']}", "",
          f"Mean ± standard deviation over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}). "
          + marking_rule_text(held, len(seeds)) + " JS is the " + js_name + "."
          + attack_text(rows, config), "",
          gap_text(rows, config), "",
          format_table(display_rows(rows), table1_columns(rows), style="markdown",
                       label_key="display", held=held), ""]
    notes = footnotes(rows)
    if notes:
        md += [*(f"- {n}" for n in notes), ""]
    md += ["## Kept settings and unlearning time", "",
           KEPT_TEXT[config.get("select", "paper")] + " Time: "
           "the method's own wall time (evaluation excluded) as a fraction of the oracle's "
           f"training time; the paper keeps every method under {TIME_BUDGET:.0%}.", "",
           times_table(rows), "",
           "## Accuracies and the MIA attacker", "",
           "Means over seeds. Retain accuracy is measured on the MIA's member sample (a class-"
           "balanced sample of the retain set as large as the test set). The attacker's accuracy is "
           "its own cross-validated accuracy at telling those members from test samples: near 0.5 "
           "it cannot tell them apart even on the data it trained on, and its MIA column says "
           "little about forgetting."
           + (verdict_rule(rows) if any(r.get("rmia_verdicts") for r in rows) else ""),
           "", accuracy_table(rows), ""]
    if matched(rows):
        md += ["## The audit's evidence per row", "", evidence_table(rows), ""]
    if any(r.get("rules") for r in rows):
        text = BAND_RULES_TEXT if banded(rows) else RULES_TEXT
        md += ["## Selection rules and their regret", "", text.format(
            rule=config.get("select", "paper"), budget=config.get("max_accuracy_drop", 0.02)), "",
            rules_table(rows, config.get("max_accuracy_drop", 0.02)), ""]
    return "\n".join(md)


KEPT_TEXT = {
    "paper": "Kept (learning rate, epochs): the argmin of Eq. 5 + 6 + 7 averaged over seeds.",
    "evidence": "Kept (learning rate, epochs): by the oracle-free evidence rule (`--select "
                "evidence`, below).",
}

def attack_text(rows: list[dict], config: dict) -> str:
    if not any(r.get("rmia_auc") is not None for r in rows):
        return ""
    k = config.get("attack_references")
    if matched(rows):
        return (f" RMIA AUC: the audit's matched AUC (RMIA offline, calibrated on {k} models "
                "retrained without D_f): how well it tells D_f from never-seen test samples of "
                "the same class and difficulty in the row's model; a model that never saw D_f "
                "sits at the never-seen level (near 0.5; below the table), above it D_f is still "
                "remembered, below it D_f stands out as less familiar than unseen data, so the "
                "best is the closest to 0.5. RMIA TPR@1%: the share of D_f the attack flags at "
                "a 1 % false-positive rate on all of D_t (chance: 0.01), lower is better.")
    return (f" RMIA AUC: how well the per-example attack (RMIA online, {k} reference models)"
            " tells D_f from never-seen test data D_t in the row's model; 0.5 is "
            "a model that never saw D_f, above 0.5 D_f is still remembered, below 0.5 it stands "
            "out as less familiar than unseen data (over-forgetting), so the best is the closest "
            "to 0.5. RMIA TPR@1%: the share of D_f the attack flags at a 1 % false-positive rate "
            "on D_t (chance: 0.01), lower is better.")


HELD_RULE = ("all rows ranked (ORI and RT included); a mark only where the difference holds over "
             "the seeds (Welch's one-sided t-test at 5 %), ties share a mark; in a forgetting "
             "column only rows shown better than ORI are marked")
PRINTED_RULE = ("all rows ranked (ORI and RT included), values as printed; in a forgetting column "
                "only rows strictly better than ORI are marked")


def table1_files(rows: list[dict], config: dict, held: bool = True) -> dict[str, str | dict]:
    """``{file name: text}`` for table1.md, .csv and .tex, and the object of table1.json;
    ``held``: marks only where a difference holds over seeds (False: the earlier rule, as
    printed, which tables written before it are rendered again with)."""
    columns = table1_columns(rows)
    marks = rank_marks(rows, columns, held=held)
    caption = (f"Unlearning on {config['dataset']} with {config['model']}: mean over "
               f"{len(config['seeds'])} seed(s); best in bold, second underlined (all rows ranked; "
               "in forgetting columns only rows that beat ORI)."
               if not held or len(config["seeds"]) < 2 else
               f"Unlearning on {config['dataset']} with {config['model']}: mean over "
               f"{len(config['seeds'])} seed(s); best in bold, second underlined where the "
               "difference holds over the seeds (Welch's one-sided t-test, 5 %; ties share a "
               "mark; in forgetting columns only rows shown better than ORI).")
    return {
        "table1.md": table1_markdown(rows, config, held),
        "table1.csv": table_rows_csv(rows, tuple(columns) + EXTRA_COLUMNS),
        "table1.json": {
            "dataset": config["dataset"], "model": config["model"],
            "seeds": list(config["seeds"]),
            "columns": [{"key": col.key, "header": col.header, "better": col.better,
                         "forgetting": col.forgetting} for col in columns],
            "marking_rule": HELD_RULE if held else PRINTED_RULE,
            "rows": [dict(r) for r in rows],
            "marks": [{"row": rows[i]["label"], "column": key, "mark": mark}
                      for (i, key), mark in sorted(marks.items())],
            "js": config["js"], "config": config},
        "table1.tex": latex_table(display_rows(rows), columns, caption=caption, held=held,
                                  label=f"tab:{config['dataset']}-{config['model']}",
                                  label_key="display"),
    }


def selection_csv(rows: list[dict], selection_grid: dict) -> str:
    """selection.csv: every (method, lr, epoch) candidate, its mean score, and the kept one."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["method", "lr", "epoch", "mean_score_eq5_6_7", "kept"])
    kept = {r["key"]: (r.get("lr"), r.get("epoch")) for r in rows}
    for mkey, grid in selection_grid.items():
        for (lr, epoch), score in sorted(grid.items()):
            writer.writerow([mkey, f"{lr:g}", epoch, f"{score:.6f}",
                             "yes" if kept.get(mkey) == (lr, epoch) else ""])
    return buffer.getvalue()


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def table1_files_from_json(path: str | Path) -> dict[str, str | dict]:
    """:func:`table1_files` again from a written table1.json (non-finite numbers, which JSON
    stores as ``"inf"``, read back as floats)."""
    data = json.loads(Path(path).read_text())
    rows = [{k: _NON_FINITE.get(v, v) if isinstance(v, str) and k != "label" else v
             for k, v in row.items()} for row in data["rows"]]
    return table1_files(rows, data["config"], held=data.get("marking_rule") == HELD_RULE)
