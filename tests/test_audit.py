"""The audit end to end on a tiny memorising split (random images, random labels: only
memorisation fits them), the reference pool's halves and cache, and the report."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sftc
from sftc.bench.audit import audit, check_split
from sftc.bench.reference_pool import (ReferencePool, ReferenceRecipe, half_masks,
                                       reference_seed)
from sftc.data import Split
from sftc.errors import SftcError
from sftc.report.audit import audit_markdown, audit_summary

RECIPE = ReferenceRecipe("small-cnn", epochs=20, batch_size=16)
FAST = dict(device="cpu", progress=False, mia_iterations=20)


@pytest.fixture(scope="module")
def memorising():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (300, 1, 8, 8), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 4, (300,), generator=g)
    split = sftc.Split.from_tensors(x[:100], y[:100], "random:0.2", val=(x[100:200], y[100:200]),
                                    test=(x[200:], y[200:]), num_classes=4)
    kw = dict(epochs=20, batch_size=16, device="cpu", progress=False)
    return (split, sftc.train(split, "small-cnn", **kw).model,
            sftc.retrain(split, "small-cnn", **kw).model)


def test_halves_are_balanced_complementary_pairs_and_nested():
    masks = half_masks(11, 8, seed=3)
    assert (masks.sum(0) == 4).all()                         # every sample IN for K/2
    assert (masks[0] ^ masks[1]).all() and (masks[6] ^ masks[7]).all()
    assert masks[0].sum() == 5
    assert (half_masks(11, 4, seed=3) == masks[:4]).all()    # K = 8 extends K = 4
    assert len({reference_seed(0, k) for k in range(8)}) == 8
    with pytest.raises(SftcError, match="even number"):
        half_masks(11, 3)


def test_the_recipe_comes_from_options_then_run_json_then_defaults():
    record = {"config": {"epochs": 12, "lr": 0.002, "batch_size": 32, "subset": "train"}}
    recipe = ReferenceRecipe.from_record(record, "smallcnn", epochs=5)
    assert (recipe.model, recipe.epochs, recipe.lr, recipe.batch_size) == ("small-cnn", 5, 0.002, 32)
    assert recipe.source == "options, run.json beside the original, defaults"
    assert ReferenceRecipe.from_record(None, "small-cnn").source == "defaults"


def test_the_original_is_not_forgotten_and_the_oracle_is(memorising, tmp_path):
    split, original, oracle = memorising
    result = audit(original, original, split, oracle=oracle, references=4, recipe=RECIPE,
                   cache_dir=tmp_path, **FAST)
    record = result.to_dict()
    assert result.has_power and record["power_on_original"]["auc"] > 0.9
    assert (record["verdict"], record["direction"]) == ("not-forgotten", "remembered")
    assert record["oracle_as_unlearned"]["verdict"] == "forgotten"
    assert set(record["attacks"]) == {"rmia-online", "rmia-offline", "lira-online", "lira-offline"}
    assert set(record["attacks"]["lira-online"]) == {"original", "unlearned", "oracle"}
    assert record["removed"]["count"] == len(split.forget) == len(record["removed"]["positions"])
    assert record["removed"]["sha256"] == split.forget_summary()["sha256"]
    assert record["models"]["original"]["weights_sha256"] == \
        record["models"]["unlearned"]["weights_sha256"]
    assert any("nothing was unlearned" in n for n in record["notes"])
    assert record["references"]["trained_now"] == 4
    assert record["paper_metrics"]["mia_attacker_acc"] is not None
    json.dumps(record)                                        # audit.json is plain JSON
    text = audit_markdown(record)
    assert "**Verdict: `not-forgotten`** (remembered)" in text and "## The verdict rule" in text
    assert audit_summary(record)[0].startswith("verdict: not-forgotten (remembered)")

    again = audit(original, oracle, split, references=4, recipe=RECIPE, cache_dir=tmp_path,
                  paper_metrics=False, **FAST).to_dict()
    assert again["verdict"] == "forgotten"
    assert again["references"]["from_cache"] == 4 and again["references"]["trained_now"] == 0
    assert again["power_on_original"] == record["power_on_original"]


def test_a_cache_entry_written_by_other_code_is_refused(memorising, tmp_path):
    split, original, _ = memorising
    pool = ReferencePool(split, RECIPE, cache_dir=tmp_path, device="cpu", progress=False)
    pool.get(2)
    entry = sorted((tmp_path / "audit").iterdir())[0]
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps({**meta, "format": "someone-else/3"}))
    with pytest.raises(SftcError, match=r"not written by this sftc.*rm -r"):
        pool.get(2)
    (entry / "meta.json").write_text(json.dumps(meta))
    torch.save({"index": torch.zeros(3), "logits": torch.zeros(3, 4)}, entry / "logits.pt")
    with pytest.raises(SftcError, match="logits.pt is not"):
        pool.get(2)


def test_a_forget_set_outside_the_pool_is_refused(memorising):
    split, original, _ = memorising
    broken = Split(split.data, split.train, split.retain, split.forget, split.val,
                   torch.cat([split.test, split.forget[:1]]), split.forget_positions)
    with pytest.raises(SftcError, match="also in the test split"):
        check_split(broken)
    outside = Split(split.data, split.train, split.retain, split.val[:3], split.val[3:],
                    split.test, split.forget_positions)
    with pytest.raises(SftcError, match="not in the training set, so the reference pool cannot key"):
        check_split(outside)


def test_refusals_come_before_any_training(memorising, monkeypatch):
    split, original, _ = memorising
    monkeypatch.setattr(sftc.api, "train", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SftcError, match="--attack lira needs at least 4 reference models"):
        audit(original, original, split, references=2, attack="lira", recipe=RECIPE, **FAST)
    with pytest.raises(SftcError, match="0.001 cannot be resolved with 100"):
        audit(original, original, split, fprs=[0.001], recipe=RECIPE, **FAST)
    tiny = Split.create(split.data, split.train, split.val, split.test, [0])
    with pytest.raises(SftcError, match="can never reach p < 0.001"):
        audit(original, original, tiny, recipe=RECIPE, **FAST)
    three = sftc.create_model("small-cnn", in_channels=1, num_classes=3)
    with pytest.raises(SftcError, match="outputs \\(3,\\) values per sample but the dataset has 4"):
        audit(original, three, split, recipe=RECIPE, **FAST)


def test_sftc_audit_is_the_package_entry_point():
    assert sftc.audit is audit and np.isclose(sftc.ReferenceRecipe().lr, 1e-3)


def test_the_audit_command_writes_audit_json_and_report_md(tmp_path, capsys):
    import hashlib

    from sftc.cli import main

    fast = ["--epochs", "2", "--quiet", "--device", "cpu"]
    assert main(["train", "--out", str(tmp_path / "orig"), *fast]) == 0
    assert main(["train", "--subset", "retain", "--forget", "random:0.1", "--out",
                 str(tmp_path / "rt"), *fast]) == 0
    capsys.readouterr()
    orig, rt, out = tmp_path / "orig" / "model.pt", tmp_path / "rt" / "model.pt", tmp_path / "audit"
    code = main(["audit", "--forget", "random:0.1", "--original", str(orig), "--unlearned",
                 str(orig), "--retrained", str(rt), "--references", "4", "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(out), "--quiet", "--device", "cpu",
                 "--mia-iterations", "20"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "report.md"]
    record = json.loads((out / "audit.json").read_text())
    assert stdout.splitlines()[0].startswith(f"verdict: {record['verdict']}")
    assert record["verdict"] in ("not-forgotten", "inconclusive")     # the original itself
    assert record["models"]["oracle"]["sha256"] == hashlib.sha256(rt.read_bytes()).hexdigest()
    assert record["references"]["recipe"]["epochs"] == 2                # the original's recipe
    assert record["references"]["recipe_source"] == "run.json beside the original"
    assert record["paper_metrics"]["mia"] is not None and "acc_dis" in record["paper_metrics"]
    assert "## What was removed" in (out / "report.md").read_text()
