"""The NeurIPS 2023 forgetting score end to end on a tiny split (the metric itself:
tests/test_attacks.py)."""
from __future__ import annotations

import json

import pytest

import sftc
from sftc.cli import main
from sftc.errors import SftcError

FAST = dict(n_models=3, train_epochs=3, batch_size=16, device="cpu", progress=False)


@pytest.mark.parametrize("originals", ["independent", "shared"])
@pytest.mark.slow
def test_forgetting_score_runs_from_n_originals_or_one(originals, tiny_split, tmp_path):
    result = sftc.forgetting_score(tiny_split, "ft", originals=originals, cache_dir=tmp_path,
                                   null=False, **FAST)
    record = result.to_dict()
    assert 0.0 <= record["forgetting_quality"] <= 1.0
    assert len(record["epsilons"]) == len(tiny_split.forget)
    assert len(record["accuracies"]["unlearned"]["retain"]) == 3
    acc = record["mean_accuracies"]
    assert record["final_score"] == pytest.approx(
        record["forgetting_quality"] * acc["unlearned"]["retain"] / acc["retrained"]["retain"]
        * acc["unlearned"]["test"] / acc["retrained"]["test"])
    assert 0.0 <= record["u_lira"]["auc"] <= 1.0
    trained = 3 + (3 if originals == "independent" else 1)
    assert record["timings"]["models_trained_now"] == trained
    assert record["audit"] is None                 # 3 retrained models: too few references
    json.dumps(record)


@pytest.mark.slow
def test_the_forgetting_score_gives_the_audits_verdict_per_unlearned_model(tiny_split, tmp_path):
    record = sftc.forgetting_score(tiny_split, "ft", cache_dir=tmp_path, null=False,
                                   **{**FAST, "n_models": 4}).to_dict()
    audit = record["audit"]
    assert len(audit["verdicts"]) == 4 and sum(audit["counts"].values()) == 4
    assert audit["attack"] == "rmia-offline" and len(audit["never_seen"]["aucs"]) == 4


def test_forgetting_score_refusals(tiny_split):
    with pytest.raises(SftcError, match="3 or more"):
        sftc.forgetting_score(tiny_split, "ft", **{**FAST, "n_models": 2})
    with pytest.raises(SftcError, match="retrain oracle itself"):
        sftc.forgetting_score(tiny_split, "retrain", **FAST)


@pytest.mark.slow
def test_the_forgetting_score_command(tmp_path, capsys):
    out = tmp_path / "score"
    code = main(["forgetting-score", "--forget", "random:0.1", "--method", "sftc", "--c", "0.5",
                 "--models", "3", "--train-epochs", "1", "--epochs", "1", "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(out), "--quiet", "--device", "cpu"])
    assert code == 0
    record = json.loads((out / "forgetting.json").read_text())
    assert record["settings"]["hparams"] == {"tau": 1.0, "c": 0.5}
    assert capsys.readouterr().out.startswith("forgetting score (NeurIPS 2023 challenge) of sftc")
    assert "# Forgetting score of `sftc`" in (out / "report.md").read_text()
