"""``sftc unlearn --until forgotten``: the search reads only the selection split, keeps the
cheapest passing model, audits it on the test split, and says when nothing passed."""
from __future__ import annotations

import json

import pytest
import torch

import sftc
from sftc.bench.audit import AuditConfig
from sftc.bench.until import SearchConfig, _Checker, selection_split
from sftc.errors import SftcError

RECIPE = sftc.TrainingRecipe("small-cnn", epochs=8, batch_size=16)


@pytest.fixture(scope="module")
def learnable():
    g = torch.Generator().manual_seed(3)
    y = torch.arange(360) % 4
    x = (torch.randint(0, 90, (360, 1, 8, 8), generator=g) + 40 * y[:, None, None, None]) \
        .clamp(0, 255).to(torch.uint8)
    split = sftc.Split.from_tensors(x[:120], y[:120], "random:0.25", val=(x[120:240], y[120:240]),
                                    test=(x[240:], y[240:]), num_classes=4)
    original = sftc.train(split, "small-cnn", epochs=8, batch_size=16, device="cpu",
                          progress=False).model
    return split, original


def _search(split, original, tmp_path, **options):
    config = AuditConfig(references=4, recipe=RECIPE, cache_dir=tmp_path, paper_metrics=False)
    return sftc.unlearn(original, split, "sftc", until="forgotten", model_name="small-cnn",
                        device="cpu", progress=False, audit_config=config,
                        **{"trials": 2, "max_epochs": 2, "lrs": (1e-3, 3e-3), **options})


def test_the_selection_split_is_the_validation_split_halved(learnable):
    split, _ = learnable
    selection = selection_split(split)
    assert torch.equal(torch.sort(torch.cat([selection.test, selection.val])).values, split.val)
    assert not set(selection.test.tolist()) & set(split.test.tolist())
    assert torch.equal(selection.forget, split.forget) and torch.equal(selection.retain,
                                                                         split.retain)


@pytest.mark.slow
def test_what_is_chosen_never_depends_on_the_test_split(learnable, tmp_path):
    split, original = learnable
    first = _search(split, original, tmp_path)
    data = split.data
    scrambled = sftc.data.ImageData(data.images.clone(), data.labels.clone(), data.num_classes,
                                    mean=data.mean, std=data.std, name=data.name)
    test = split.test
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    scrambled.images[test] = scrambled.images[test][order]         # other images for the labels
    scrambled.images[test[:10]] = 0                                 # and some blank
    other = sftc.Split(scrambled, split.train, split.retain, split.forget, split.val, split.test,
                       split.forget_positions)
    again = _search(other, original, tmp_path)
    strip = lambda t: [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in t]  # noqa: E731
    assert strip(first.trace) == strip(again.trace)
    assert first.chosen["trial"] == again.chosen["trial"]
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    # the final audit reads the test split: it is where the two differ
    assert first.audit.attacks != again.audit.attacks
    assert all(r["lr"] in (1e-3, 3e-3) and 1 <= r["epoch"] <= 2 for r in first.trace)
    assert first.timings["search_over_retrain"] is not None
    assert first.timings["total_over_retrain"] == pytest.approx(
        first.timings["total_seconds"] / first.timings["retrain_seconds"])


def test_the_cheapest_passing_check_is_kept_before_any_trade_off():
    checker = _Checker.__new__(_Checker)
    checker.trace, checker.best = [], None
    model = torch.nn.Linear(1, 1)
    rows = [dict(passes=False, within_budget=True, certifiable_margin=0.05, accuracy_drop=0.0,
                 epoch=1),
            dict(passes=True, within_budget=True, certifiable_margin=0.02, accuracy_drop=0.01,
                 epoch=3),
            dict(passes=True, within_budget=True, certifiable_margin=0.03, accuracy_drop=0.01,
                 epoch=2),
            dict(passes=False, within_budget=False, certifiable_margin=0.0, accuracy_drop=0.5,
                 epoch=1)]
    for row in rows:
        checker.trace.append(row)
        checker._keep(row, model)
    assert checker.best[1] is rows[2]            # passing, and fewer epochs


def test_bad_search_settings_are_one_line(learnable, tmp_path, monkeypatch):
    split, original = learnable
    with pytest.raises(SftcError, match="--max-accuracy-drop must lie in"):
        SearchConfig(max_accuracy_drop=2.0).check()
    with pytest.raises(SftcError, match="until must be 'forgotten'"):
        sftc.unlearn(original, split, until="done")
    import builtins

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(
        ModuleNotFoundError(name)) if name == "optuna" else real(name, *a, **k))
    with pytest.raises(SftcError, match=r'pip install "sftc\[search\]"'):
        _search(split, original, tmp_path)


@pytest.mark.slow
def test_the_command_writes_the_trace_and_says_when_nothing_passed(tmp_path, capsys):
    from sftc.cli import main

    fast = ["--quiet", "--device", "cpu"]
    assert main(["train", "--epochs", "3", "--out", str(tmp_path / "orig"), *fast]) == 0
    capsys.readouterr()
    code = main(["unlearn", "--forget", "random:0.1", "--checkpoint",
                 str(tmp_path / "orig" / "model.pt"), "--until", "forgotten", "--trials", "2",
                 "--max-epochs", "1", "--lrs", "1e-3,2e-3", "--references", "4",
                 "--max-accuracy-drop", "0.0001", "--no-mia", "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "u"), *fast])
    out = capsys.readouterr().out
    assert code == 3                                 # the budget of 0.0001 is not met
    assert out.splitlines()[0].startswith("no setting within the accuracy budget (0.0001)")
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == \
        ["audit.json", "model.pt", "report.md", "run.json", "trace.png"]
    run = json.loads((tmp_path / "u" / "run.json").read_text())
    assert run["until"]["certified"] is False and len(run["until"]["trace"]) >= 1
    assert {"lr", "epoch", "auc", "low", "high", "verdict", "accuracy_drop"} <= \
        set(run["until"]["trace"][0])
