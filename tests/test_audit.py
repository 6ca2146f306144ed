"""The audit end to end on a tiny memorising split (random images, random labels: only
memorisation fits them), the reference pool's halves and cache, and the report."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import sftc
from sftc.bench.audit import AuditConfig, audit, check_split
from sftc.bench.cache import ModelCache
from sftc.bench.reference_pool import ReferencePool, ReferenceRecipe, reference_seed
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


@pytest.mark.slow
def test_references_are_retrained_without_the_forget_set_each_with_its_own_seed(memorising,
                                                                               tmp_path):
    split = memorising[0]
    pool = ReferencePool(split, RECIPE, cache_dir=tmp_path, device="cpu", progress=False)
    refs = pool.get(4)
    seeds = [e["seed"] for e in refs.entries]
    assert seeds == [reference_seed(0, k) for k in range(4)] and len(set(seeds)) == 4
    assert min(seeds) > 1000                      # never a benchmark's own oracle seed
    assert not refs.in_mask.any()                 # no reference trained on a queried sample
    assert torch.equal(refs.index, torch.cat([split.forget, split.test, split.val]))
    meta = json.loads((tmp_path / "models").glob("*/meta.json").__next__().read_text())
    assert meta["inputs"]["data"] == split.content_sha256("retain")
    assert meta["inputs"]["size"] == len(split.retain)
    assert all(e["cached"] for e in pool.get(4).entries)            # the second call trains none
    # the same retain set in another split object: the same models
    other = Split(split.data, split.train, split.retain, split.forget, split.val, split.test,
                  split.forget_positions)
    assert all(ReferencePool(other, RECIPE, cache_dir=tmp_path, device="cpu").cached(k)
               for k in range(4))


def test_the_recipe_comes_from_options_then_run_json_then_defaults():
    record = {"config": {"epochs": 12, "lr": 0.002, "batch_size": 32, "subset": "train"}}
    recipe = ReferenceRecipe.from_record(record, "smallcnn", epochs=5)
    assert (recipe.model, recipe.epochs, recipe.lr, recipe.batch_size) == ("small-cnn", 5, 0.002, 32)
    assert recipe.source == "options, run.json beside the original, defaults"
    assert ReferenceRecipe.from_record(None, "small-cnn").source == "defaults"


@pytest.mark.slow
def test_the_original_is_not_forgotten_and_the_oracle_is_never_not_forgotten(memorising,
                                                                             tmp_path):
    split, original, oracle = memorising
    result = audit(original, original, split, oracle=oracle, references=4, recipe=RECIPE,
                   cache_dir=tmp_path, **FAST)
    record = result.to_dict()
    assert result.has_power
    assert (record["verdict"], record["direction"]) == ("not-forgotten", "remembered")
    decision = record["decision"]
    assert decision["interval"]["estimate"] > decision["band"]["level"] + decision["band"]["refute"]
    assert decision["power"]["shown"] and decision["power"]["resolution"] is not None
    assert record["oracle_as_unlearned"]["verdict"] != "not-forgotten"
    assert set(record["attacks"]) == {"rmia-offline", "lira-offline"}
    assert set(record["attacks"]["lira-offline"]) == {"original", "unlearned", "oracle"}
    assert record["comparison"]["matched_forget"] + record["comparison"]["unmatched_forget"] == \
        len(split.forget)
    assert len(record["comparison"]["never_seen"]["aucs"]) == 4
    assert record["removed"]["count"] == len(split.forget) == len(record["removed"]["positions"])
    assert record["removed"]["sha256"] == split.forget_summary()["sha256"]
    assert record["models"]["original"]["weights_sha256"] == \
        record["models"]["unlearned"]["weights_sha256"]
    assert any("nothing was unlearned" in n for n in record["notes"])
    assert record["references"]["trained_now"] == 4
    seconds = sorted(e["seconds"] for e in record["references"]["entries"])
    assert record["cost"]["one_retraining_seconds"] == pytest.approx(0.5 * (seconds[1] + seconds[2]))
    assert record["cost"]["retrainings"] == pytest.approx(
        record["cost"]["total_seconds"] / record["cost"]["one_retraining_seconds"])
    assert any(line.startswith("cost: ") and "retrainings" in line
               for line in audit_summary(record))
    assert record["paper_metrics"]["mia_attacker_acc"] is not None
    json.dumps(record)                                        # audit.json is plain JSON
    text = audit_markdown(record)
    assert "**Verdict: `not-forgotten`** (remembered)" in text and "## The verdict rule" in text
    assert "never-seen level" in text and "retrain band" in text and "resolution" in text
    summary = audit_summary(record)
    assert summary[0].startswith("verdict: not-forgotten (remembered)")
    oracle_line = next(line for line in summary if line.startswith("oracle, audited"))
    assert ("; not proven:" in oracle_line) == (record["oracle_as_unlearned"]["verdict"]
                                                == "not-proven")
    said = {**record, "lineage": {"notes": record["notes"][:1]}}   # printed at the start already
    assert sum(line == f"note: {record['notes'][0]}" for line in audit_summary(record)) == 1
    assert f"note: {record['notes'][0]}" not in audit_summary(said)

    again = audit(original, oracle, split, references=4, recipe=RECIPE, cache_dir=tmp_path,
                  paper_metrics=False, **FAST).to_dict()
    assert again["verdict"] != "not-forgotten"
    assert again["references"]["from_cache"] == 4 and again["references"]["trained_now"] == 0
    assert again["original_as_unlearned"] == record["original_as_unlearned"]


@pytest.mark.slow
def test_a_class_level_request_is_judged_on_never_seen_samples_of_the_class(tmp_path):
    """Removing class 0: the original (still recognising the class) is not forgotten, the oracle
    (which never saw it) is certified by the class test, and both records carry it."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(400) % 4
    x = (torch.randint(0, 80, (400, 1, 8, 8), generator=g) + 40 * y[:, None, None, None]) \
        .clamp(0, 255).to(torch.uint8)                   # learnable classes
    split = sftc.Split.from_tensors(x[:160], y[:160], "classes:0", val=(x[160:280], y[160:280]),
                                    test=(x[280:], y[280:]), num_classes=4)
    kw = dict(epochs=10, batch_size=16, device="cpu", progress=False)
    original = sftc.train(split, "small-cnn", **kw).model
    oracle = sftc.retrain(split, "small-cnn", **kw).model
    recipe = ReferenceRecipe("small-cnn", epochs=10, batch_size=16)
    record = audit(original, original, split, oracle=oracle, references=4, recipe=recipe,
                   cache_dir=tmp_path, paper_metrics=False, device="cpu",
                   progress=False).to_dict()
    assert record["comparison"]["classes"]["removed"] == [0]
    assert record["verdict"] == "not-forgotten"
    assert record["decision"]["class_test"]["verdict"] == "not-forgotten"
    oracle_says = record["oracle_as_unlearned"]
    assert oracle_says["verdict"] == "forgotten"
    assert oracle_says["class_test"]["verdict"] == "forgotten"
    assert oracle_says["class_test"]["accuracy"] < 0.2
    assert "class-level request" in "\n".join(audit_summary(record))


@pytest.mark.slow
def test_a_cache_entry_written_by_other_code_is_refused(memorising, tmp_path):
    split, original, _ = memorising
    pool = ReferencePool(split, RECIPE, cache_dir=tmp_path, device="cpu", progress=False)
    pool.get(4)
    entry = sorted((tmp_path / "models").iterdir())[0]
    meta = json.loads((entry / "meta.json").read_text())
    (entry / "meta.json").write_text(json.dumps({**meta, "format": "someone-else/3"}))
    with pytest.raises(SftcError, match=r"not written by this sftc.*rm -r"):
        pool.get(4)
    (entry / "meta.json").write_text(json.dumps(meta))
    logits = next(entry.glob("logits-*.pt"))
    torch.save({"index": torch.zeros(3), "logits": torch.zeros(3, 4)}, logits)
    with pytest.raises(SftcError, match="logits-.* is not"):
        pool.get(4)


def test_a_forget_set_outside_the_pool_is_refused(memorising):
    split, original, _ = memorising
    broken = Split(split.data, split.train, split.retain, split.forget, split.val,
                   torch.cat([split.test, split.forget[:1]]), split.forget_positions)
    with pytest.raises(SftcError, match="also in the test split"):
        check_split(broken)
    outside = Split(split.data, split.train, split.retain, split.val[:3], split.val[3:],
                    split.test, split.forget_positions)
    with pytest.raises(SftcError, match="not in the training set"):
        check_split(outside)


def test_refusals_come_before_any_training(memorising, monkeypatch):
    split, original, _ = memorising
    monkeypatch.setattr(sftc.api, "train", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SftcError, match="--references must be a whole number 4 or more"):
        audit(original, original, split, references=2, recipe=RECIPE, **FAST)
    with pytest.raises(SftcError, match="reads reference models that trained on the samples"):
        audit(original, original, split, references=4, attack="rmia-online", recipe=RECIPE,
              **FAST)
    with pytest.raises(SftcError, match="unknown attack"):
        audit(original, original, split, attack="nope", recipe=RECIPE, **FAST)
    with pytest.raises(SftcError, match="0.001 cannot be resolved with 100"):
        audit(original, original, split, fprs=[0.001], recipe=RECIPE, **FAST)
    with pytest.raises(SftcError, match="--resolution"):
        audit(original, original, split, resolution="120%", recipe=RECIPE, **FAST)
    with pytest.raises(SftcError, match="has no option 'refs'"):
        audit(original, original, split, refs=4)
    three = sftc.create_model("small-cnn", in_channels=1, num_classes=3)
    with pytest.raises(SftcError, match="outputs \\(3,\\) values per sample but the dataset has 4"):
        audit(original, three, split, recipe=RECIPE, **FAST)


def test_sftc_audit_is_the_package_entry_point():
    assert sftc.audit is audit and np.isclose(sftc.ReferenceRecipe().lr, 1e-3)
    assert sftc.AuditConfig is AuditConfig and sftc.TrainingRecipe is ReferenceRecipe


@pytest.mark.slow
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
                 str(orig), "--retrained", str(rt), "--references", "4", "--resolution", "0.2",
                 "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(out), "--quiet", "--device", "cpu",
                 "--mia-iterations", "20"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "report.md"]
    record = json.loads((out / "audit.json").read_text())
    assert stdout.splitlines()[0].startswith(f"verdict: {record['verdict']}")
    assert record["verdict"] in ("not-forgotten", "not-proven", "nothing-detectable")  # itself
    assert record["models"]["oracle"]["sha256"] == hashlib.sha256(rt.read_bytes()).hexdigest()
    assert record["references"]["recipe"]["epochs"] == 2                # the original's recipe
    assert record["references"]["recipe_source"] == "run.json beside the original"
    assert record["paper_metrics"]["mia"] is not None and "acc_dis" in record["paper_metrics"]
    assert "## What was removed" in (out / "report.md").read_text()
    assert record["evidence"]["resolution"] == "0.2"
    assert record["decision"]["power"]["rule"] == "absolute"
    assert record["decision"]["power"]["required"] == 0.2


@pytest.mark.slow
def test_an_audit_resumed_after_some_references_equals_a_clean_one(memorising, tmp_path):
    """An audit killed after training 4 of its 6 references and run again (the 4 read from the
    cache, the other 2 trained) gives the record a clean audit gives, bit for bit, but for its
    timings and the cache's counts."""
    split, original, oracle = memorising
    short = ReferenceRecipe("small-cnn", epochs=5, batch_size=16)   # the bits matter, not power
    ReferencePool(split, short, cache_dir=tmp_path / "resumed", device="cpu",
                  progress=False).get(4)                           # what the killed run left
    kw = dict(references=6, recipe=short, paper_metrics=False, **FAST)
    resumed = audit(original, oracle, split, cache_dir=tmp_path / "resumed", **kw).to_dict()
    clean = audit(original, oracle, split, cache_dir=tmp_path / "clean", **kw).to_dict()
    assert (resumed["references"]["from_cache"], clean["references"]["from_cache"]) == (4, 0)

    clock_and_place = {"timings", "seconds", "train_seconds", "cached", "from_cache",
                       "trained_now", "entry", "cache_dir", "cache", "cost",
                       "one_retraining_seconds"}

    def without_clock(value):
        if isinstance(value, dict):
            return {k: without_clock(v) for k, v in value.items() if k not in clock_and_place}
        if isinstance(value, list):
            return [without_clock(v) for v in value]
        return value

    def differences(a, b, path=""):
        if isinstance(a, dict) and isinstance(b, dict):
            return [d for k in sorted(set(a) | set(b))
                    for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
        return [] if a == b else [path]

    assert differences(without_clock(resumed), without_clock(clean)) == []


def test_a_recipe_the_trainer_would_not_follow_is_refused_not_cached_under_its_name():
    """The cache trains with the paper's Adam and cosine annealing; a recipe naming another
    optimiser would be keyed by it and trained without it."""
    from sftc.bench.cache import TrainSpec
    from sftc.recipes import TrainingRecipe

    with pytest.raises(SftcError, match="adam with cosine annealing, not sgd with cosine"):
        TrainSpec(TrainingRecipe("small-cnn", optimizer="sgd"), "retain", 0)
    with pytest.raises(SftcError, match="not adam with constant"):
        TrainSpec(TrainingRecipe("small-cnn", scheduler="constant"), "retain", 0)
    TrainSpec(TrainingRecipe("small-cnn"), "retain", 0)
