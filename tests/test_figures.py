"""Figures and tables read right: trace.png without duplicate legend labels, with the kept check
starred and a margin of 0 drawn as a line; attack.png with one colour per verdict and a legend
of the verdicts shown (an unknown verdict string included); table1.tex's caption citing Welch's
test only with seeds to test; no mark in the attack's columns for a row judged remembered; an
empty regret row that says why."""
from __future__ import annotations

import pytest

from sftc.report import plots
from sftc.report.table1 import rules_table, table1_files
from sftc.report.tables import ATTACK_COLUMNS, rank_marks
from sftc.report.verdicts import COLOURS, plain_words


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures the plot functions make, kept instead of written."""
    made = []

    def keep(fig, path):
        made.append(fig)
    monkeypatch.setattr(plots, "save_figure", keep)
    yield made
    import matplotlib.pyplot as plt
    for fig in made:
        plt.close(fig)


def check(trial, lr, epoch, auc, passes, delta=0.0):
    return {"trial": trial, "lr": lr, "epoch": epoch, "auc": auc, "low": auc - 0.05,
            "high": auc + 0.05, "level": 0.5, "delta": delta, "passes": passes,
            "accuracy_drop": 0.01 * epoch}


def test_trace_has_unique_labels_a_starred_kept_check_and_a_visible_zero_margin(figures):
    # two runs whose learning rates print alike at 2 digits (0.0011 and 0.0012)
    trace = [check(0, 1.1e-3, 1, 0.62, False), check(0, 1.1e-3, 2, 0.58, False),
             check(1, 1.2e-3, 1, 0.55, False), check(1, 1.2e-3, 2, 0.51, True)]
    plots.search_figure(trace, 0.02, "unused.png", chosen=trace[-1])
    top, bottom = figures[0].axes
    for ax in (top, bottom):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(labels) == len(set(labels)), labels
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert "run 0: lr 0.0011" in labels and "run 1: lr 0.0012" in labels
    assert "kept: run 1, epoch 2" in labels
    star = [line for line in top.get_lines() if line.get_marker() == "*"]
    assert len(star) == 1 and star[0].get_ydata()[0] == pytest.approx(0.51)
    assert "retrain band 0.500 (band of width 0)" in labels and "±" not in " ".join(labels)
    assert not [p for p in top.patches if p.get_height() == 0]        # no invisible band


def test_attack_gives_each_verdict_its_own_colour_and_a_legend(figures):
    verdicts = ["forgotten", "not-proven", "inconclusive", "not-forgotten (remembered)",
                "not-forgotten (class still recognised)", "nothing-detectable",
                "some-new-outcome", None]
    rows = [{"label": f"M{i}", "rmia_auc": 0.5 + 0.02 * i, "rmia_tpr": 0.01 * i,
             "rmia_verdict": v} for i, v in enumerate(verdicts)]
    plots.attack_figure(rows, "unused.png", references=4)
    fig = figures[0]
    bars = fig.axes[0].patches
    colours = {}
    for row, bar in zip(rows[::-1], bars):         # barh draws the last row first
        colours.setdefault(row["rmia_verdict"] or "no verdict", set()).add(bar.get_facecolor())
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == len(verdicts)   # all distinct
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [v or "no verdict" for v in verdicts]
    assert len(set(COLOURS.values())) == len(COLOURS)


def test_an_unknown_verdict_has_words_not_an_error():
    assert plain_words("forgotten").startswith("Forgotten.")
    assert plain_words("not-forgotten (remembered)").startswith("Not forgotten.")
    assert "'brand-new'" in plain_words("brand-new") and plain_words(None)


ROWS = [
    {"label": "ORI", "rmia_auc": 0.80, "rmia_tpr": 0.30, "rmia_verdict":
     "not-forgotten (remembered)", "n_seeds": 1},
    {"label": "RT", "rmia_auc": 0.52, "rmia_tpr": 0.05, "rmia_verdict": "not-proven",
     "n_seeds": 1},
    {"label": "FT", "rmia_auc": 0.70, "rmia_tpr": 0.01, "rmia_verdicts":
     {"not-forgotten (remembered)": 2, "not-proven": 1}, "n_seeds": 3},
    {"label": "SFTC", "rmia_auc": 0.60, "rmia_tpr": 0.08, "rmia_verdict": "not-proven",
     "n_seeds": 1},
]


def test_rows_judged_remembered_get_no_mark_in_the_attack_columns():
    marks = rank_marks(ROWS, ATTACK_COLUMNS)
    tpr = {ROWS[i]["label"]: m for (i, key), m in marks.items() if key == "rmia_tpr"}
    assert tpr == {"RT": "best", "SFTC": "second"}              # FT's 0.01 is remembered


def config(seeds):
    return {"dataset": "digits", "model": "small-cnn", "seeds": seeds, "js": "textbook",
            "attack_references": 4}


def test_the_caption_cites_welch_only_with_seeds_to_test():
    rows = [dict(r, n_seeds=1, rmia_verdicts=None) for r in ROWS]
    one = table1_files(rows, config([0]))["table1.tex"]
    assert "Welch" not in one and "1 seed(s)" in one
    three = table1_files([dict(r, n_seeds=3) for r in ROWS], config([0, 1, 2]))["table1.tex"]
    assert "Welch's one-sided t-test" in three


def test_an_empty_regret_row_says_why():
    row = {"label": "EU-1", "rules": {"paper": None, "evidence": None, "hindsight": None}}
    table = rules_table([row], budget=0.02)
    hindsight = next(line for line in table.splitlines() if "| hindsight |" in line)
    assert "none of the grid was judged on every seed with test accuracy within 0.02" in hindsight
    assert hindsight.count("|") == table.splitlines()[0].count("|")   # the columns still line up
    assert "the rule kept none" in next(line for line in table.splitlines() if "| paper |" in line)
