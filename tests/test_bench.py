"""The benchmark protocol (sftc benchmark / sftc sweep) on tiny configurations."""
from __future__ import annotations

import csv
import json
import math
import re

import pytest
import torch

import sftc
from sftc.errors import SftcError
from sftc.bench import BenchmarkConfig, SweepConfig, run_benchmark, run_sweep, select_setting
from sftc.bench import cache as cache_mod
from sftc.bench import grid as grid_mod
from sftc.bench.selection import selection_score
from sftc.cli import main
from sftc.errors import DivergedError, SftcError
from sftc.report import TABLE1_COLUMNS, format_table, rank_marks
from sftc.report.tables import ATTACK_COLUMNS, table1_columns
from sftc.report.benchmark import write_files
from sftc.report.latex import latex_table
from sftc.report.table1 import table1_files_from_json

TINY = dict(dataset="digits", model="small-cnn", train_epochs=1, seeds=(0,), lrs=(1e-3, 5e-4),
            max_epochs=2, methods=(("ft", {}), ("sftc", {})), mia_iterations=10, mia_folds=2)


def tiny_config(**overrides) -> BenchmarkConfig:
    return BenchmarkConfig(**{**TINY, **overrides})


def bench(tmp_path, split, config=None, out="out", **kwargs):
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    return run_benchmark(config or tiny_config(), tmp_path / out, device="cpu", progress=False,
                         split=split, **kwargs)


# -- selection rule ---------------------------------------------------------------------------

def _m(a, b, c):
    return {"acc_err_retrain": a, "acc_dis": b, "acc_err_original": c}


def test_kept_setting_is_argmin_of_eq5_6_7_averaged_over_seeds():
    points = {
        # (lr, epoch, seed): metrics; seed-averaged sums: (1e-3,1)=0.30, (1e-3,2)=0.25,
        # (5e-4,1)=0.20 (best on average although seed 1 alone prefers (1e-3, 2)), (5e-4,2)=0.40
        (1e-3, 1, 0): _m(0.1, 0.1, 0.1), (1e-3, 1, 1): _m(0.1, 0.1, 0.1),
        (1e-3, 2, 0): _m(0.2, 0.2, 0.1), (1e-3, 2, 1): _m(0.0, 0.0, 0.0),
        (5e-4, 1, 0): _m(0.0, 0.1, 0.0), (5e-4, 1, 1): _m(0.1, 0.1, 0.1),
        (5e-4, 2, 0): _m(0.2, 0.2, 0.0), (5e-4, 2, 1): _m(0.2, 0.2, 0.0),
    }
    kept = select_setting(points, seeds=(0, 1))
    assert (kept.lr, kept.epoch) == (5e-4, 1)
    assert kept.score == pytest.approx(0.2)  # (0.1 + 0.3) / 2
    # a setting missing on one seed (a failed run) is no candidate, even if its score is lowest
    points[(1e-4, 1, 0)] = _m(0.0, 0.0, 0.0)
    assert select_setting(points, seeds=(0, 1)).lr == 5e-4
    # a non-finite score is no candidate either
    points[(1e-4, 1, 1)] = _m(float("nan"), 0.0, 0.0)
    assert select_setting(points, seeds=(0, 1)).lr == 5e-4
    assert select_setting({}, seeds=(0,)) is None
    assert math.isnan(selection_score({"acc_dis": 0.1}))


def test_ties_go_to_fewer_epochs_then_smaller_lr():
    points = {(1e-3, 2, 0): _m(0.1, 0, 0), (1e-3, 1, 0): _m(0.1, 0, 0), (5e-4, 1, 0): _m(0.1, 0, 0)}
    kept = select_setting(points, seeds=(0,))
    assert (kept.lr, kept.epoch) == (5e-4, 1)


# -- marks ------------------------------------------------------------------------------------

ROWS = [
    # hand-worked marks below; NG+ failed and is never ranked
    {"label": "ORI", "acc_err_retrain": 0.30, "acc_dis": 0.20, "acc_err_original": 0.0,
     "js": 0.0, "mia": 0.50, "rmia_auc": 0.80, "rmia_tpr": 0.20},
    {"label": "RT", "acc_err_retrain": 0.0, "acc_dis": 0.0, "acc_err_original": 0.30, "js": 0.4,
     "mia": 0.55, "rmia_auc": 0.50, "rmia_tpr": 0.01},
    {"label": "FT", "acc_err_retrain": 0.10, "acc_dis": 0.25, "acc_err_original": 0.2, "js": 0.1,
     "mia": 0.45, "rmia_auc": 0.20, "rmia_tpr": 0.0},
    {"label": "BD", "acc_err_retrain": 0.05001, "acc_dis": 0.10, "acc_err_original": 0.1,
     "js": 0.5, "mia": 0.50, "rmia_auc": 0.35, "rmia_tpr": 0.05},
    {"label": "SFTC", "acc_err_retrain": 0.04999, "acc_dis": 0.05, "acc_err_original": 0.05,
     "js": 0.3, "mia": 0.60, "rmia_auc": 0.45, "rmia_tpr": 0.02},
    {"label": "NG+", "failed": True},
]
MARKED = {  # column -> {row: mark}; every other cell unmarked
    "acc_err_retrain": {"RT": "best", "BD": "second", "SFTC": "second"},   # 0.0500 as printed
    "acc_dis": {"RT": "best", "SFTC": "second"},            # FT (0.25) is worse than ORI (0.20)
    "acc_err_original": {"ORI": "best", "SFTC": "second"},  # utility: ORI ranks like any row
    "js": {"BD": "best", "RT": "second"},
    "mia": {"SFTC": "best", "RT": "second"},                # BD = ORI (0.50): no better, no mark
    "rmia_auc": {"RT": "best", "SFTC": "second"},           # |AUC - 0.5|; FT's 0.20 ties ORI's
    "rmia_tpr": {"FT": "best", "RT": "second"},
}


def _md_cells(text):
    lines = [l for l in text.splitlines() if l.startswith("| ") and "---" not in l][1:]
    return {l.split("|")[1].strip(): [c.strip() for c in l.split("|")[2:-1]] for l in lines}


def test_marking_rule_ranks_references_and_never_marks_what_does_no_better_than_ori():
    columns = TABLE1_COLUMNS + ATTACK_COLUMNS
    assert table1_columns(ROWS) == columns and table1_columns(ROWS[:1][:0] + [{"label": "X"}]) \
        == TABLE1_COLUMNS
    marks = rank_marks(ROWS, columns)
    got = {}
    for (i, key), mark in marks.items():
        got.setdefault(key, {})[ROWS[i]["label"]] = mark
    assert got == MARKED
    cells = _md_cells(format_table(ROWS, columns, style="markdown"))
    for j, col in enumerate(columns):
        for label, row_cells in cells.items():
            mark = MARKED[col.key].get(label)
            cell = row_cells[j]
            assert cell.startswith("**") == (mark == "best"), (label, col.key)
            assert cell.startswith("<u>") == (mark == "second"), (label, col.key)
    assert cells["NG+"] == ["failed"] * len(columns)
    tex = latex_table(ROWS, columns)
    sftc_line = next(l for l in tex.splitlines() if l.startswith("SFTC"))
    assert sftc_line.count(r"\underline{") == 4 and sftc_line.count(r"\textbf{") == 1
    ori_line = next(l for l in tex.splitlines() if l.startswith("ORI"))
    assert ori_line.count(r"\textbf{") == 1 and r"\underline" not in ori_line
    # without an ORI row a forgetting column is ranked like any other
    no_ori = rank_marks(ROWS[1:], (TABLE1_COLUMNS[4],))
    assert {ROWS[1 + i]["label"]: m for (i, _), m in no_ori.items()} == \
        {"SFTC": "best", "RT": "second"}
    # a column in which nothing beats ORI has no marks at all
    flat = [dict(r, mia=0.5) for r in ROWS if not r.get("failed")]
    assert not [k for k in rank_marks(flat, TABLE1_COLUMNS) if k[1] == "mia"]


# -- end to end: outputs, agreement, figures, resume -----------------------------------------

def _numbers(text):
    return [float(x) for x in re.findall(r"-?\d+\.\d{4}", text)]


@pytest.mark.slow
def test_benchmark_writes_agreeing_tables_and_figures(tmp_path, tiny_split):
    table = bench(tmp_path, tiny_split)
    out = tmp_path / "out"
    for name in ("table1.md", "table1.csv", "table1.json", "table1.tex", "report.md",
                 "selection.csv", "convergence.png"):
        assert (out / name).is_file(), name
    assert (out / "convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [r["label"] for r in table["rows"]]
    assert labels == ["ORI", "RT", "FT", "SFTC"]
    data = json.loads((out / "table1.json").read_text())
    rows_csv = list(csv.DictReader((out / "table1.csv").open()))
    md = (out / "table1.md").read_text()
    tex = (out / "table1.tex").read_text()
    md_cells = _md_cells(md.split("## Kept settings")[0])
    for jrow, crow in zip(data["rows"], rows_csv):
        assert jrow["label"] == crow["label"]
        md_row = " ".join(md_cells[jrow["label"]])
        tex_row = next(l for l in tex.splitlines() if l.startswith(jrow["label"] + " "))
        for col in TABLE1_COLUMNS:
            value = jrow[col.key]
            assert float(crow[col.key]) == pytest.approx(value)
            assert f"{value:.4f}" in md_row and f"{value:.4f}" in tex_row
    # marks in the JSON agree with the markdown's bold cells
    for mark in data["marks"]:
        j = [c.key for c in TABLE1_COLUMNS].index(mark["column"])
        cell = md_cells[mark["row"]][j]
        assert cell.startswith("**" if mark["mark"] == "best" else "<u>")
    # kept settings come from the grid and the convergence history starts at the original
    for row in table["rows"][2:]:
        assert row["lr"] in TINY["lrs"] and 1 <= row["epoch"] <= TINY["max_epochs"]
    report = (out / "report.md").read_text()
    assert "(Python API)" in report and "## Results" in report   # no command: run from Python
    assert md.split("\n", 1)[1].lstrip() in report                # the tables, as in table1.md
    # the tables render again, byte for byte, from the data table1.json holds
    for name, content in table1_files_from_json(out / "table1.json").items():
        again = tmp_path / "again" / name
        write_files(again.parent, {name: content})
        assert again.read_bytes() == (out / name).read_bytes(), name


@pytest.mark.slow
def test_resume_after_interruption_redoes_nothing(tmp_path, tiny_split, monkeypatch):
    calls = []
    real = grid_mod.Grid.run_one

    def interrupted(self, name, hparams, lr, seed, ref):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append((name, lr, seed))
        return real(self, name, hparams, lr, seed, ref)

    monkeypatch.setattr(grid_mod.Grid, "run_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench(tmp_path, tiny_split)
    out = tmp_path / "out"
    assert len(list(out.glob("runs/*/*/*/result.json"))) == 2
    assert not list(out.rglob(".*.tmp*")) and not list(out.rglob("*.tmp"))
    assert not (out / "table1.md").exists()

    done_first = list(calls)
    calls.clear()
    monkeypatch.setattr(grid_mod.Grid, "run_one",
                        lambda self, *a: calls.append((a[0], a[2], a[3])) or real(self, *a))
    trained = []
    real_train = sftc.api.train
    monkeypatch.setattr(sftc.api, "train", lambda *a, **k: trained.append(k) or real_train(*a, **k))
    bench(tmp_path, tiny_split)
    assert len(calls) == 2 and not set(calls) & set(done_first)   # only the two missing runs
    assert trained == []                                          # references came from the cache
    first = (out / "table1.json").read_text()

    calls.clear()
    bench(tmp_path, tiny_split)                                   # a third time: nothing to do
    assert calls == [] and trained == []
    assert json.loads((out / "table1.json").read_text())["rows"] == json.loads(first)["rows"]


def test_resume_refuses_different_arguments(tmp_path, tiny_split):
    bench(tmp_path, tiny_split, tiny_config(lrs=(1e-3,), methods=(("sftc", {}),)))
    with pytest.raises(SftcError, match=r"different arguments.*lrs"):
        bench(tmp_path, tiny_split, tiny_config(lrs=(1e-3, 1e-4), methods=(("sftc", {}),)))
    with pytest.raises(SftcError, match=r"methods"):
        bench(tmp_path, tiny_split, tiny_config(lrs=(1e-3,), methods=(("sftc", {"tau": 2.0}),)))
    with pytest.raises(SftcError, match="nothing to resume"):
        bench(tmp_path, tiny_split, out="elsewhere", resume=True)


def test_failed_and_diverged_runs_are_recorded_and_marked(tmp_path, tiny_split, monkeypatch):
    real = sftc.api.unlearn

    def flaky(model, split, method, **kw):
        if method == "ft":
            raise RuntimeError("boom: out of memory")
        if kw["lr"] == 1e-3:
            def diverge(epoch, m, row):   # as the engine does: epoch 2 never completes
                if epoch == 2:
                    raise DivergedError("sftc: the loss became non-finite in epoch 2")
                kw_cb(epoch, m, row)
            kw_cb = kw.pop("on_epoch_end")
            return real(model, split, method, on_epoch_end=diverge, **kw)
        return real(model, split, method, **kw)

    monkeypatch.setattr(sftc.api, "unlearn", flaky)
    table = bench(tmp_path, tiny_split)
    rows = {r["label"]: r for r in table["rows"]}
    assert rows["FT"]["failed"] and "boom" in rows["FT"]["reason"]
    assert [p["status"] for p in rows["SFTC"]["problems"]] == ["diverged"]
    # the diverged run's first epoch stays a candidate; its second epoch is not
    assert (rows["SFTC"]["lr"], rows["SFTC"]["epoch"]) != (1e-3, 2)
    result = json.loads((tmp_path / "out/runs/sftc/lr-0.001/seed-0/result.json").read_text())
    assert result["status"] == "diverged" and result["epochs_completed"] == 1
    md = (tmp_path / "out/table1.md").read_text()
    assert "| FT | failed |" in md and "SFTC †" in md and "diverged" in md


# -- reference cache --------------------------------------------------------------------------

def test_cached_references_are_reused_and_any_determining_change_retrains(tmp_path, tiny_split,
                                                                           monkeypatch):
    from dataclasses import replace

    from sftc.recipes import TrainingRecipe

    trained = []
    real = sftc.api.train
    monkeypatch.setattr(sftc.api, "train", lambda *a, **k: trained.append(k) or real(*a, **k))
    recipe = TrainingRecipe("small-cnn", epochs=1)
    spec = cache_mod.TrainSpec(recipe, "train", 0)
    first = cache_mod.get_or_train(tmp_path, spec, tiny_split, device="cpu")
    again = cache_mod.get_or_train(tmp_path, spec, tiny_split, device="cpu")
    assert not first.cached and again.cached and len(trained) == 1
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[name])
    for change in (dict(recipe=replace(recipe, epochs=2)), dict(recipe=replace(recipe, lr=5e-4)),
                   dict(seed=1), dict(recipe=replace(recipe, batch_size=32)),
                   dict(subset="retain"), dict(recipe=replace(recipe, augment=True))):
        before = len(trained)
        assert not cache_mod.get_or_train(tmp_path, replace(spec, **change), tiny_split,
                                          device="cpu").cached, change
        assert len(trained) == before + 1
    # another forget set: the original trains on the same samples (reused), the oracle not
    other_forget = sftc.Split.create(tiny_split.data, tiny_split.train, tiny_split.val,
                                     tiny_split.test, "random:0.3", seed=1)
    assert cache_mod.get_or_train(tmp_path, spec, other_forget, device="cpu").cached
    oracle = replace(spec, subset="retain")
    assert cache_mod.cache_key(oracle, other_forget) != cache_mod.cache_key(oracle, tiny_split)
    # other data, another image size, another architecture, another thread count: other keys
    digits_a = sftc.load_split("digits", "random:0.1")
    digits_b = sftc.load_split("digits", "random:0.1", image_size=12)
    assert cache_mod.cache_key(spec, digits_a) != cache_mod.cache_key(spec, digits_b)
    assert cache_mod.cache_key(replace(spec, recipe=TrainingRecipe("resnet18", epochs=1)),
                               digits_a) != cache_mod.cache_key(spec, digits_a)
    threads = torch.get_num_threads()
    key = cache_mod.cache_key(spec, digits_a, "cpu")
    try:
        torch.set_num_threads(threads + 1)
        assert cache_mod.cache_key(spec, digits_a, "cpu") != key
    finally:
        torch.set_num_threads(threads)


def test_the_split_fingerprint_follows_the_contents_never_the_objects_identity(tiny_split):
    """A cache key must never come from ``id(split)``: a split that is garbage-collected and
    another created can share an id (the old memo returned the first split's digest for a
    second split with another forget set, and so the wrong cached oracle)."""
    def make(spec, seed):
        return sftc.Split.create(tiny_split.data, tiny_split.train, tiny_split.val,
                                 tiny_split.test, spec, seed=seed)

    # the same object, its forget set replaced: a new digest
    split = make("random:0.1", 0)
    before = cache_mod.split_fingerprint(split)
    other = make("classes:3", 0)
    split.forget, split.retain = other.forget, other.retain
    assert cache_mod.split_fingerprint(split) == cache_mod.split_fingerprint(other) != before
    # ids reused by new splits with other forget sets: each digest is its own split's
    seen: dict[int, str] = {}
    reused = 0
    for attempt in range(100):
        spec = "classes:3" if attempt % 2 else "random:0.1"
        split = make(spec, attempt)
        digest = cache_mod.split_fingerprint(split)
        fresh = make(spec, attempt)
        assert digest == cache_mod.split_fingerprint(fresh)
        if id(split) in seen:
            reused += 1
        seen[id(split)] = digest
        del split, fresh           # freed at once (reference counting): the id can be reused
    assert reused > 0          # the situation of the bug happened, and no digest was stale


# -- sweep ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_sweep_writes_csv_and_figure_and_resumes(tmp_path, tiny_split, monkeypatch):
    config = SweepConfig(param="tau", values=(1.0, 2.0), lr=1e-3, epochs=1, dataset="digits",
                         train_epochs=1, mia_iterations=10, mia_folds=2)
    summary = run_sweep(config, tmp_path / "sw", device="cpu", progress=False, split=tiny_split,
                        cache_dir=tmp_path / "cache")
    assert [p["value"] for p in summary["points"]] == [1.0, 2.0]
    assert all(0 <= p["acc_forget"] <= 1 and 0 <= p["mia"] <= 1 for p in summary["points"])
    rows = list(csv.DictReader((tmp_path / "sw/sensitivity.csv").open()))
    assert [float(r["value"]) for r in rows] == [1.0, 2.0] and rows[0]["tau"] == "1.0"
    assert (tmp_path / "sw/sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "sw/report.md").read_text()
    assert report.startswith("# Sensitivity of SFTC to tau") and "| 2 | " in report
    manifest = json.loads((tmp_path / "sw/sweep.json").read_text())
    assert manifest["kind"] == "sftc sweep" and manifest["sessions"][0]["finished"]
    from sftc.bench import sweep as sweep_mod
    monkeypatch.setattr(sweep_mod.Sweep, "run_point", lambda *a: pytest.fail("redone"))
    again = run_sweep(SweepConfig(**{**config.to_dict(), "values": (1.0, 2.0), "seeds": (0,)}),
                      tmp_path / "sw", device="cpu", progress=False, split=tiny_split,
                      cache_dir=tmp_path / "cache")
    assert again["points"] == summary["points"]
    # a sweep directory is no benchmark's, and the other way round
    with pytest.raises(SftcError, match="not a benchmark"):
        bench(tmp_path, tiny_split, out="sw")


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["benchmark", "--preset", "nope", "--out", "x"], "unknown preset 'nope'"),
    (["benchmark", "--methods", "ft,nosuch", "--out", "x"], "unknown method 'nosuch'"),
    (["benchmark", "--methods", "sftc:alpha=1", "--out", "x"], "no hyperparameter 'alpha'"),
    (["benchmark", "--methods", "retrain", "--out", "x"], "RT reference row"),
    (["benchmark", "--lrs", ",", "--out", "x"], "--lrs is empty"),
    (["benchmark", "--lrs", "1e-3,-1", "--out", "x"], "positive"),
    (["benchmark", "--seeds", "0,0", "--out", "x"], "repeats"),
    (["benchmark", "--max-epochs", "0", "--out", "x"], "--max-epochs"),
    (["benchmark", "--preset", "digits"], "--out is required"),
    (["benchmark", "--attack-references", "3", "--out", "x"], "--attack-references must be 0"),
    (["benchmark", "--attack-references", "-2", "--out", "x"], "--attack-references must be 0"),
    (["sweep", "--param", "gamma", "--out", "x"], "unknown sweep parameter 'gamma'"),
    (["sweep", "--param", "c", "--values", "0.5,1.5", "--out", "x"], "c=1.5"),
    (["sweep", "--param", "tau", "--values", "", "--out", "x"], "empty"),
])
def test_bad_input_is_one_line_error(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_presets_are_well_formed():
    from sftc.bench.presets import PAPER_LRS, PRESETS

    assert len(PAPER_LRS) == 23 and PAPER_LRS[0] == 5e-3 and PAPER_LRS[-1] == pytest.approx(1e-5)
    for preset in PRESETS.values():
        config = BenchmarkConfig(dataset=preset.dataset, model=preset.model,
                                 train_epochs=preset.train_epochs, seeds=preset.seeds,
                                 lrs=preset.lrs, max_epochs=preset.max_epochs,
                                 methods=preset.methods, image_size=preset.image_size,
                                 train_subset=preset.train_subset)
        config.validate()
        assert preset.description
    paper = PRESETS["paper-cifar10"]
    assert (paper.train_epochs, len(paper.seeds), paper.max_epochs, paper.lrs) == (30, 5, 4, PAPER_LRS)
    assert dict(paper.methods)["cf-k"] == {"k": 5}
    assert dict(PRESETS["paper-mufac"].with_model("efficientnet_b0").methods)["eu-k"] == {"k": 5}
    assert dict(PRESETS["digits"].methods)["cf-k"] == {"k": 1}


def test_k_for_the_model_is_one_rule_for_presets_and_methods():
    from sftc.bench.presets import PRESETS, methods_for
    from sftc.methods.cf_eu_k import K_DEFAULT, default_k, split_layers

    assert default_k("small-cnn") == default_k("SmallCNN") == 1
    assert default_k("resnet18") == default_k("efficientnet") == K_DEFAULT == 5
    split_layers(sftc.create_model("small-cnn", in_channels=1, num_classes=4),
                 default_k("small-cnn"), "cf-k")                 # leaves layers to train
    for model in ("small-cnn", "resnet18"):
        ks = {hp["k"] for _, hp in methods_for(model) if "k" in hp}
        assert ks == {default_k(model)}
    assert dict(PRESETS["fashion-mnist"].with_model("resnet18").methods)["cf-k"] == {"k": 5}
    assert dict(PRESETS["paper-cifar10"].with_model("small-cnn").methods)["eu-k"] == {"k": 1}
    assert dict(PRESETS["paper-cifar10"].with_model("efficientnet_b0").methods)["scrub"] == \
        {"tau": 1.0}                                                # the paper-* settings stay


def test_held_marks_need_a_difference_beyond_the_spread_over_seeds():
    from sftc.report.tables import Column, held_better

    col = Column("acc_dis", "AccDis", "min", forgetting=True)
    rows = [{"label": "ORI", "acc_dis": 0.30, "acc_dis_std": 0.01, "n_seeds": 3},
            {"label": "A", "acc_dis": 0.100, "acc_dis_std": 0.05, "n_seeds": 3},
            {"label": "B", "acc_dis": 0.110, "acc_dis_std": 0.05, "n_seeds": 3},   # A's tie
            {"label": "C", "acc_dis": 0.250, "acc_dis_std": 0.01, "n_seeds": 3},
            {"label": "D", "acc_dis": 0.295, "acc_dis_std": 0.02, "n_seeds": 3}]  # ~ ORI
    marks = rank_marks(rows, [col], held=True)
    assert marks == {(1, "acc_dis"): "best", (2, "acc_dis"): "best", (3, "acc_dis"): "second"}
    assert rank_marks(rows, [col]) == {(1, "acc_dis"): "best", (2, "acc_dis"): "second"}
    # Welch's statistic by hand: (0.25 - 0.10) / sqrt(0.05²/3 + 0.01²/3) = 5.10, df ≈ 2.16
    assert held_better(rows[1], rows[3], col) and not held_better(rows[1], rows[2], col)
    one_seed = [dict(r, n_seeds=1) for r in rows]
    assert rank_marks(one_seed, [col], held=True) == rank_marks(one_seed, [col])


def test_cells_that_read_the_same_share_a_mark():
    rows = [{"label": "A", "acc_dis": 0.00157}, {"label": "B", "acc_dis": 0.00158},
            {"label": "C", "acc_dis": 0.0031}, {"label": "D", "acc_dis": 0.0040}]
    cols = [c for c in TABLE1_COLUMNS if c.key == "acc_dis"]
    cells = _md_cells(format_table(rows, cols, style="markdown"))
    assert cells["A"][0].startswith("**") and cells["B"][0].startswith("**")   # both read 0.0016
    assert cells["C"][0].startswith("<u>") and "**" not in cells["D"][0] and "<u>" not in cells["D"][0]


# -- one way from a preset to a config --------------------------------------------------------

def reference_fields(config) -> dict:
    """What a benchmark and a sweep share (the data, the references' recipe, the attacker)."""
    from dataclasses import fields

    from sftc.bench.config import ReferenceConfig

    return {f.name: getattr(config, f.name) for f in fields(ReferenceConfig)}


def test_make_config_starts_from_the_preset_or_the_dataset_then_takes_given_options():
    from sftc.bench import make_config
    from sftc.bench.presets import get_preset

    preset = get_preset("fashion-mnist")
    config, chosen = make_config(BenchmarkConfig, "fashion-mnist", seeds=(3,), mia_features=None)
    assert chosen is preset and config.seeds == (3,) and config.mia_features == "logits"
    for name in ("dataset", "model", "train_epochs", "lrs", "max_epochs", "methods", "image_size",
                 "mia_iterations"):
        assert getattr(config, name) == getattr(preset, name), name
    resnet, _ = make_config(BenchmarkConfig, "fashion-mnist", model="resnet-18")
    assert resnet.model == "resnet18" and dict(resnet.methods)["cf-k"] == {"k": 5}
    plain, none = make_config(BenchmarkConfig, dataset="digits", model="smallcnn", lrs=(1e-3,))
    assert none is None and plain.model == "small-cnn" and dict(plain.methods)["eu-k"] == {"k": 1}
    sweep, _ = make_config(SweepConfig, "fashion-mnist", param="c", seeds=(3,))
    assert reference_fields(sweep) == reference_fields(config) and sweep.values   # paper's range
    with pytest.raises(TypeError):
        make_config(SweepConfig, lrs=(1e-3,))                   # a benchmark's field


def test_both_commands_build_their_config_through_make_config(monkeypatch, tmp_path):
    from sftc.bench import config as config_mod

    seen = []
    real = config_mod.make_config

    def spy(cls, preset=None, **options):
        seen.append((cls.__name__, preset, options))
        raise SftcError("stop here")

    monkeypatch.setattr(config_mod, "make_config", spy)
    common = ["--preset", "digits", "--model", "small-cnn", "--train-epochs", "3",
              "--forget-seed", "2", "--train-lr", "5e-4", "--out", str(tmp_path / "x")]
    assert main(["benchmark", *common]) == 2 and main(["sweep", "--param", "c", *common]) == 2
    (b_cls, b_preset, b_opts), (s_cls, s_preset, s_opts) = seen
    assert (b_cls, s_cls, b_preset, s_preset) == ("BenchmarkConfig", "SweepConfig", "digits",
                                                  "digits")
    shared = {k: v for k, v in b_opts.items() if k in s_opts and k != "seeds"}
    assert shared == {k: s_opts[k] for k in shared} and shared["train_epochs"] == 3
    assert shared["forget_seed"] == 2 and shared["train_lr"] == 5e-4
    assert b_opts["seeds"] is None and s_opts["seeds"] == (0,)  # sweep: --seeds defaults to 0
    bench_config, _ = real(config_mod.BenchmarkConfig, "digits", **b_opts)
    sweep_config, _ = real(config_mod.SweepConfig, "digits", **s_opts)
    assert {**reference_fields(bench_config), "seeds": ()} == \
        {**reference_fields(sweep_config), "seeds": ()}


def test_references_are_typed_and_the_model_is_freed_after_the_grid(tmp_path, tiny_split):
    from sftc.bench import Benchmark
    from sftc.bench.seed_models import SeedModels

    b = Benchmark(tiny_config(methods=(("ft", {}),), lrs=(1e-3,)), tmp_path / "out", device="cpu",
                  progress=False, split=tiny_split, cache_dir=tmp_path / "cache")
    b.run()
    ref = b.seed_models.get(0)
    assert isinstance(ref, SeedModels) and ref.original is None
    assert set(ref.acc) == set(ref.logits) == {"original", "oracle"} and ref.retrain_seconds > 0
    stored = json.loads(b.store.reference_path(0).read_text())
    assert stored["acc"] == ref.acc and stored["retrain_seconds"] == ref.retrain_seconds
    assert b.seed_models.get(0, need_model=True).original is not None   # back from the cache


@pytest.mark.parametrize("name", ["digits", "fashion-mnist", "fashion-mnist-resnet18-gpu",
                                  "digits-memorising", "fashion-mnist-memorising"])
def test_published_tables_render_again_byte_for_byte(name, tmp_path):
    from pathlib import Path

    published = Path(__file__).resolve().parents[1] / "docs" / "results" / name
    write_files(tmp_path, table1_files_from_json(published / "table1.json"))
    for file in ("table1.md", "table1.csv", "table1.json", "table1.tex"):
        assert (tmp_path / file).read_bytes() == (published / file).read_bytes(), file


@pytest.mark.slow
def test_attack_columns_agree_with_the_audit_and_share_its_references(tmp_path, tiny_split):
    """The ORI row's attack figures are those ``sftc.audit`` computes from the original model
    itself, with the references the benchmark trained (the audit trains none), and each seed's
    verdict is the audit's."""
    from sftc.bench import Benchmark
    from sftc.bench.reference_pool import ReferenceRecipe

    config = tiny_config(methods=(("ft", {}),), lrs=(1e-3,), max_epochs=1, attack_references=4)
    table = bench(tmp_path, tiny_split, config)
    rows = {r["label"]: r for r in table["rows"]}
    for row in rows.values():
        assert 0.0 <= row["rmia_low"] <= row["rmia_auc"] <= row["rmia_high"] <= 1.0
        assert row["rmia_references"] == 4
        assert row.get("rmia_tpr") is None        # 40 test samples cannot resolve 1 % FPR
    assert table["attack"]["references"] == 4 and table["attack"]["population"] == "validation"
    b = Benchmark(config, tmp_path / "out", device="cpu", progress=False, split=tiny_split,
                  cache_dir=tmp_path / "cache")
    original = b.seed_models.get(0, need_model=True).original
    b.store.close()
    result = sftc.audit(original, original, tiny_split, references=4,
                        recipe=ReferenceRecipe("small-cnn", epochs=1), cache_dir=tmp_path / "cache",
                        paper_metrics=False, device="cpu", progress=False)
    seen = result.attacks["rmia-offline"]["original"]
    assert rows["ORI"]["rmia_auc"] == pytest.approx(seen["auc"], abs=1e-12)
    assert rows["ORI"]["rmia_low"] == pytest.approx(seen["interval"]["low"], abs=1e-12)
    assert rows["ORI"]["rmia_p_greater"] == pytest.approx(seen["unmatched"]["p_greater"], rel=1e-9)
    assert result.references["trained_now"] == 0
    ori_seed = table["per_row"]["ORI"]["seeds"][0]
    assert ori_seed["rmia_verdict"] == result.original.text
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "RMIA AUC →0.5" in md and "Gap to close" in md and "RMIA, 4 reference models" in md
    assert (tmp_path / "out" / "attack.png").read_bytes()[:4] == b"\x89PNG"
    assert "![attack](attack.png)" in (tmp_path / "out" / "report.md").read_text()
    data = json.loads((tmp_path / "out" / "table1.json").read_text())
    assert [c["key"] for c in data["columns"]][-2:] == ["rmia_auc", "rmia_tpr"]
    # a benchmark without attack references keeps the paper's five columns and no population
    plain = bench(tmp_path, tiny_split, tiny_config(methods=(("ft", {}),), lrs=(1e-3,),
                                                    max_epochs=1), out="plain")
    assert all("rmia_auc" not in r for r in plain["rows"])
    logits = torch.load(tmp_path / "plain/runs/ft/lr-0.001/seed-0/logits.pt", weights_only=True)
    assert set(logits[1]) == {"forget", "test", "members"}


@pytest.mark.slow
def test_the_evidence_rule_keeps_settings_without_the_oracle_and_reports_its_regret(tmp_path,
                                                                                  tiny_split):
    config = tiny_config(methods=(("ft", {}),), lrs=(1e-3, 5e-3), max_epochs=2,
                         attack_references=4, select="evidence", max_accuracy_drop=0.5)
    table = bench(tmp_path, tiny_split, config)
    row = next(r for r in table["rows"] if r["label"] == "FT")
    rules = row["rules"]
    assert set(rules) == {"paper", "evidence", "hindsight"}
    assert (row["lr"], row["epoch"]) == (rules["evidence"]["lr"], rules["evidence"]["epoch"])
    checks = table["per_row"]["ft"]["rules"]["checks"]
    assert len(checks) == 2 * 2 and {"passes", "verdict", "accuracy_drop"} <= set(checks[0])
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "## Selection rules and their regret" in md and "| FT | evidence |" in md
    assert "by the oracle-free evidence rule" in md and "argmin of Eq. 5 + 6 + 7 averaged" \
        not in md.split("## Kept settings")[1].split("##")[0]
    for name in ("paper", "evidence", "hindsight"):             # judged on test, in full
        judged = rules[name]
        assert judged["auc_low"] <= judged["auc"] <= judged["auc_high"]
        assert sum(judged["verdicts"].values()) == 1 and 0 <= judged["acc_test"] <= 1
    row_line = next(line for line in md.splitlines() if line.startswith("| FT | hindsight |"))
    assert row_line.count("|") == 13 and "+0.000" in row_line  # 12 cells, no stray pipes
    with pytest.raises(SftcError, match="--select evidence .* --attack-references"):
        tiny_config(select="evidence").validate()


def test_a_regret_that_rounds_to_zero_prints_plus_zero():
    from sftc.report.table1 import signed

    assert signed(-0.00001, 4) == "+0.0000" and signed(-0.0012, 4) == "-0.0012"
    assert signed(0.041, 3) == "+0.041" and signed(None, 3) == "—"


def test_attack_columns_refuse_a_split_without_population(tmp_path, tiny_split):
    empty_val = sftc.Split(tiny_split.data, tiny_split.train, tiny_split.retain,
                           tiny_split.forget, tiny_split.val[:0], tiny_split.test,
                           tiny_split.forget_positions, forget_spec="random:0.2")
    with pytest.raises(SftcError, match="validation split is empty"):
        bench(tmp_path, empty_val, tiny_config(attack_references=4))
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.slow
def test_two_benchmarks_into_one_out_cannot_mix_their_grids(tmp_path, tiny_split):
    """The second run into an --out that another run holds is refused at once (issue 8)."""
    from sftc.io import run_lock

    out = tmp_path / "shared"
    with run_lock(out.resolve()):
        with pytest.raises(SftcError, match="is writing --out"):
            bench(tmp_path, tiny_split, out="shared")
    assert not out.exists()
    bench(tmp_path, tiny_split, out="shared")                 # free again: it runs
    assert not (tmp_path / ".shared.lock").exists()           # and releases the lock


@pytest.mark.slow
def test_a_benchmark_removes_partial_files_of_a_killed_run(tmp_path, tiny_split):
    bench(tmp_path, tiny_split)
    partial = tmp_path / "out" / "runs" / ".result.json.abc123.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text("{")
    bench(tmp_path, tiny_split)                               # resumes, cleans up
    assert not partial.exists()


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0,-1"], "--seeds must be a whole number"),
    (["--forget-seed", "-2"], "--forget-seed: must be at least 0"),
    (["--max-epochs", "0"], "--max-epochs: must be at least 1"),
    (["--train-subset", "1"], "--train-subset: must be at least 2"),
    (["--test-subset", "1"], "--test-subset: must be at least 2"),
    (["--val-subset", "0"], "--val-subset: must be at least 2"),
])
def test_benchmark_numbers_are_checked_before_work(argv, message, tmp_path, capsys):
    from sftc.cli import main

    code = main(["benchmark", "--out", str(tmp_path / "b"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_test_and_validation_subsets_are_stratified_disjoint_draws():
    from sftc.bench.split import make_split

    full = make_split(BenchmarkConfig(dataset="digits"))
    config = BenchmarkConfig(dataset="digits", train_subset=300, test_subset=100, val_subset=60,
                             forget="random:0.3")
    split = make_split(config)
    assert (len(split.train), len(split.forget)) == (299, 90)   # 10 classes, round() per class
    labels = split.data.labels
    for part, size in (("test", 100), ("val", 60)):
        sub, whole = getattr(split, part), getattr(full, part)
        assert abs(len(sub) - size) <= 5 and set(sub.tolist()) <= set(whole.tolist())
        share = len(sub) / len(whole)
        for c in range(10):     # every class keeps its share, to within an image
            assert abs(int((labels[sub] == c).sum()) - share * int((labels[whole] == c).sum())) <= 1
    assert not set(split.test.tolist()) & set(split.val.tolist())
    again = make_split(config)
    assert torch.equal(again.test, split.test) and torch.equal(again.val, split.val)
    # the training subset does not depend on whether test or validation are subsets too
    only_train = make_split(BenchmarkConfig(dataset="digits", train_subset=300, forget="random:0.3"))
    assert torch.equal(only_train.train, split.train) and torch.equal(only_train.test, full.test)
    # absent subsets leave the configuration's dict as it was (older outputs still resume)
    assert "test_subset" not in BenchmarkConfig().to_dict()
    assert "attack_references" not in BenchmarkConfig().to_dict()


def test_gap_to_close_quotes_the_original_against_the_oracle():
    from sftc.report.table1 import gap_text

    rows = [{"label": "ORI", "acc_forget": 1.0, "acc_test": 0.97, "acc_dis": 0.0131,
             "rmia_auc": 0.7687, "rmia_tpr": 0.1111, "rmia_p_greater": 1.9e-14, "mia": 0.3711,
             "mia_attacker_acc": 0.5463},
            {"label": "RT", "acc_forget": 0.9741, "acc_test": 0.96, "rmia_auc": 0.4712,
             "rmia_tpr": 0.0037}]
    text = gap_text(rows, {"attack_references": 8})
    for part in ("original (ORI) is at 1.0000", "oracle (RT) at 0.9741", "AccDis 0.0131",
                 "RMIA, 8 reference models", "AUC 0.769", "TPR@1% FPR 0.111", "p 1.9e-14",
                 "oracle with AUC 0.471", "MIA on the original: 0.3711"):
        assert part in text, part
    plain = gap_text([{k: v for k, v in r.items() if not k.startswith("rmia")} for r in rows], {})
    assert "without attack references" in plain and "RMIA" not in plain


def test_the_evidence_rule_orders_settings_as_its_docstring_says():
    from sftc.bench.select_evidence import EvidenceRule

    def check(passes=False, within=False, drop=0.1, margin=0.1):
        return {"passes": passes, "within_budget": within, "accuracy_drop": drop,
                "certifiable_margin": margin}

    def kept(settings):
        checks = {(lr, epoch, seed): c for (lr, epoch), cs in settings.items()
                  for seed, c in enumerate(cs)}
        setting = EvidenceRule.select(None, checks, [0, 1])
        return setting.lr, setting.epoch

    broken = [check(drop=0.55, margin=0.01), check(drop=0.6, margin=0.01)]   # AUC at the level
    mild = [check(drop=0.05, margin=0.2), check(drop=0.04, margin=0.2)]
    # within the budget on no seed anywhere: the smallest accuracy drop, not the broken model
    assert kept({(1e-3, 3): broken, (1e-4, 1): mild}) == (1e-4, 1)
    one_within = [check(within=True, drop=0.01, margin=0.3), check(drop=0.03, margin=0.3)]
    assert kept({(1e-3, 3): broken, (1e-4, 1): mild, (5e-4, 2): one_within}) == (5e-4, 2)
    tighter = [check(within=True, drop=0.01, margin=0.1), check(drop=0.03, margin=0.1)]
    assert kept({(5e-4, 2): one_within, (2e-4, 4): tighter}) == (2e-4, 4)   # then the margin
    passing = [check(passes=True, within=True)] * 2
    assert kept({(1e-4, 4): passing, (1e-3, 2): passing, (5e-4, 2): one_within}) == (1e-3, 2)
