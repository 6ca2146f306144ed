"""Caches notice code changes (sftc.codeprint): the rule, the benchmark's runs, sweep points, the
reference models and the audit's references; and `sftc sweep` over any method's hyperparameter."""
import csv
import json
import sys
import warnings
from pathlib import Path

import pytest

import sftc
from sftc import codeprint
from sftc.bench import SweepConfig, run_benchmark, run_sweep
from sftc.bench import cache as cache_mod
from sftc.bench import grid as grid_mod
from sftc.bench import reference_pool as pool_mod
from sftc.bench.config import BenchmarkConfig
from sftc.cli import main
from sftc.errors import SftcError
from sftc.plugins import load_plugin

ROOT = Path(__file__).resolve().parents[1]

METHOD = '''
import torch.nn.functional as F
from sftc.methods import UnlearningMethod, register_method


@register_method
class Edited(UnlearningMethod):
    name = "{name}"
    label = "ED"
    summary = "fine-tuning, edited by a test"

    def plan(self, ctx, epoch):
        return ctx.shuffled_batches(ctx.split.retain)

    def loss(self, ctx, batch, logits):
        {body}
'''
FIRST = "return F.cross_entropy(logits, batch.y)"
EDITED = "raise RuntimeError('edited to fail')"


def plugin(path: Path, name: str, body: str):
    """Write (or rewrite) a method plugin and import it afresh, as a new process would."""
    path.write_text(METHOD.format(name=name, body=body))
    sys.modules.pop(path.stem, None)
    return load_plugin(str(path))


# -- the rule -------------------------------------------------------------------------------------

def test_a_methods_code_is_its_classes_the_engine_and_what_they_import():
    sftc_code = codeprint.method_code("sftc").files
    assert {"sftc/methods/sftc.py", "sftc/methods/base.py", "sftc/engine/loop.py",
            "sftc/engine/context.py", "sftc/data/images.py"} <= set(sftc_code)
    assert not [f for f in sftc_code if f.startswith(("sftc/cli", "sftc/bench", "sftc/report"))
                or f in ("sftc/api.py", "sftc/methods/scrub.py", "sftc/methods/neggrad.py")]
    cf = codeprint.method_code("cf-k").files               # inherited classes and their imports
    assert {"sftc/methods/cf_eu_k.py", "sftc/methods/finetune.py", "sftc/methods/supervised.py",
            "sftc/models.py"} <= set(cf)
    assert "sftc/models.py" in codeprint.model_code("resnet18").files
    assert "sftc/metrics/mia.py" in codeprint.metrics_code().files
    print_ = codeprint.method_code("ft")
    assert print_.changes(print_.to_dict()) is None and print_ == codeprint.method_code("ft")
    assert print_.changes(None) == ["no code fingerprint (stored by an older sftc)"]
    older = {**print_.to_dict(), "sha256": "0" * 64, "sftc": "0.0.9",
             "files": {**print_.files, "sftc/methods/finetune.py": "f" * 16}}
    assert print_.changes(older) == ["sftc 0.0.9 -> 0.1.0", "sftc/methods/finetune.py"]


def test_editing_one_plugin_changes_its_fingerprint_only(isolated_registries, tmp_path):
    plugin(tmp_path / "mine_a.py", "mine-a", FIRST)
    plugin(tmp_path / "mine_b.py", "mine-b", FIRST)
    a, b = codeprint.method_code("mine-a"), codeprint.method_code("mine-b")
    assert "mine_a.py" in a.files and "mine_b.py" not in a.files
    plugin(tmp_path / "mine_a.py", "mine-a", "return 2 * F.cross_entropy(logits, batch.y)")
    assert codeprint.method_code("mine-a").changes(a.to_dict()) == ["mine_a.py"]
    assert codeprint.method_code("mine-b") == b


# -- the benchmark, the sweep and the reference caches ----------------------------------------

@pytest.mark.slow
def test_editing_a_methods_source_makes_the_next_benchmark_rerun_it(isolated_registries, tmp_path,
                                                                     tiny_split, monkeypatch):
    source = tmp_path / "edited_method.py"
    plugin(source, "edited", FIRST)
    config = dict(dataset="digits", model="small-cnn", train_epochs=1, seeds=(0,), lrs=(1e-3,),
                  max_epochs=1, methods=(("edited", {}), ("ft", {})), mia_iterations=5,
                  mia_folds=2)
    said = []

    def bench():
        return run_benchmark(BenchmarkConfig(**config), tmp_path / "out", device="cpu",
                             progress=False, split=tiny_split, cache_dir=tmp_path / "cache",
                             log=said.append)

    first = {row["key"]: row for row in bench()["rows"]}
    assert not first["edited"].get("failed")
    runs = []
    real = grid_mod.Grid.run_one
    monkeypatch.setattr(grid_mod.Grid, "run_one",
                        lambda self, name, *a: runs.append(name) or real(self, name, *a))
    bench()                                                  # same code: nothing is redone
    assert runs == [] and not [s for s in said if "other code" in s]

    plugin(source, "edited", EDITED)                         # the user edits the method
    rows = {row["key"]: row for row in bench()["rows"]}
    assert runs == ["edited"]                                # only the edited method reruns
    assert rows["edited"]["failed"] and "edited to fail" in rows["edited"]["reason"]
    assert rows["ft"] == first["ft"] and rows["ORI"] == first["ORI"]
    assert [s for s in said if "other code" in s] == [   # its run and its JS/MIA at the setting
        f"2 stored result(s) in {tmp_path / 'out'} were computed by other code (changed: "
        "edited_method.py); computing them again"]
    stored = json.loads(next((tmp_path / "out/runs/edited").rglob("result.json")).read_text())
    assert stored["code"]["files"]["edited_method.py"] == \
        codeprint.method_code("edited").files["edited_method.py"]


@pytest.mark.slow
def test_a_result_stored_without_a_fingerprint_is_computed_again(tmp_path, tiny_split):
    config = SweepConfig(param="c", values=(0.0,), epochs=1, train_epochs=1, mia_iterations=5,
                         mia_folds=2)
    kwargs = dict(device="cpu", progress=False, split=tiny_split, cache_dir=tmp_path / "cache")
    run_sweep(config, tmp_path / "sw", **kwargs)
    point = next((tmp_path / "sw/runs").rglob("seed-0.json"))
    record = json.loads(point.read_text())
    del record["code"]                                      # what an older sftc wrote
    point.write_text(json.dumps(record))
    said = []
    run_sweep(SweepConfig(**{**config.to_dict(), "seeds": (0,)}), tmp_path / "sw", log=said.append,
              **kwargs)
    assert any("1 stored result(s)" in s and "no code fingerprint" in s for s in said)
    assert "code" in json.loads(point.read_text())


def test_a_reference_model_trained_by_other_code_is_trained_again(tmp_path, tiny_split,
                                                                  monkeypatch):
    from sftc.recipes import TrainingRecipe

    spec = cache_mod.TrainSpec(TrainingRecipe("small-cnn", epochs=1), "train", 0)
    first = cache_mod.get_or_train(tmp_path, spec, tiny_split, device="cpu")
    real = codeprint.training_code("small-cnn")
    other = codeprint.CodePrint(real.sftc, "e" * 64,
                                {**real.files, "sftc/engine/loop.py": "0" * 16})
    monkeypatch.setattr(cache_mod, "training_code", lambda model: other)
    said = []
    again = cache_mod.get_or_train(tmp_path, spec, tiny_split, device="cpu", log=said.append)
    assert not again.cached and again.path != first.path and first.path.is_dir()  # kept
    assert said == [f"the original M of seed 0 cached in {first.path} was trained by other code "
                    "(changed: sftc/engine/loop.py); training it again"]
    with warnings.catch_warnings(record=True) as caught:        # without a log: a warning
        warnings.simplefilter("always")
        monkeypatch.setattr(cache_mod, "training_code", lambda model: codeprint.CodePrint(
            real.sftc, "d" * 64, real.files))
        cache_mod.get_or_train(tmp_path, spec, tiny_split, device="cpu")
    assert [type(w.message) for w in caught] == [codeprint.StaleCache]


def test_an_audit_reference_trained_by_other_code_is_trained_again(tmp_path, tiny_split,
                                                                   monkeypatch):
    recipe = pool_mod.ReferenceRecipe("small-cnn", epochs=1)
    pool = pool_mod.ReferencePool(tiny_split, recipe, cache_dir=tmp_path, device="cpu",
                                  progress=False)
    pool.get(4)
    real = codeprint.training_code("small-cnn")

    def pool_after_editing(digest: str, path: str):
        """A pool whose training code is ``real`` with the file at ``path`` edited."""
        monkeypatch.setattr(cache_mod, "training_code", lambda model: codeprint.CodePrint(
            real.sftc, digest * 64, {**real.files, path: "1" * 16}))
        return pool_mod.ReferencePool(tiny_split, recipe, cache_dir=tmp_path, device="cpu",
                                      progress=False)

    pool = pool_after_editing("c", "sftc/methods/supervised.py")
    with pytest.warns(codeprint.StaleCache, match=r"4 audit reference model\(s\) .* trained by "
                                                   r"other code \(changed: "
                                                   r"sftc/methods/supervised.py\)"):
        refs = pool.get(4)
    assert [e["cached"] for e in refs.entries] == [False] * 4
    assert len(list((tmp_path / "models").iterdir())) == 8      # the old entries are left alone
    # changed again: two older entries per reference, still two references to train
    pool = pool_after_editing("d", "sftc/engine/loop.py")
    with pytest.warns(codeprint.StaleCache, match=r"4 audit reference model\(s\) .* trained by "
                                                   r"other code \(changed: sftc/engine/loop.py, "
                                                   r"sftc/methods/supervised.py\)"):
        pool.get(4)


# -- sweeping any method's hyperparameter ---------------------------------------------------------

def test_a_sweep_varies_any_hyperparameter_of_any_method(tmp_path, tiny_split):
    config = SweepConfig(method="eu-k", param="k", values=(0.0, 1.0), hparams={"init_seed": 3},
                         epochs=1, train_epochs=1, mia_iterations=5, mia_folds=2)
    summary = run_sweep(config, tmp_path / "sw", device="cpu", progress=False, split=tiny_split,
                        cache_dir=tmp_path / "cache")
    records = {r["value"]: r for r in summary["records"]}
    assert records[1.0]["k"] == 1 and isinstance(records[1.0]["k"], int)
    assert records[0.0]["init_seed"] == 3 and "tau" not in records[0.0]
    assert summary["label"] == "EU-k" and summary["fixed"] == {"lr": 1e-3, "init_seed": 3}
    rows = list(csv.DictReader((tmp_path / "sw/sensitivity.csv").open()))
    assert [r["k"] for r in rows] == ["0", "1"] and rows[0]["init_seed"] == "3"
    report = (tmp_path / "sw/report.md").read_text()
    assert report.startswith("# Sensitivity of EU-k to k") and "init_seed = 3" in report
    stored = json.loads((tmp_path / "sw/sweep.json").read_text())["config"]
    assert stored["method"] == "eu-k" and "tau" not in stored and stored["hparams"] == \
        {"init_seed": 3}


def test_the_papers_sweep_keeps_its_format_so_old_sweeps_resume():
    for name in ("c", "tau", "lr"):
        stored = json.loads((ROOT / f"docs/results/fashion-mnist-sweep-{name}/sweep.json")
                            .read_text())["config"]
        config = SweepConfig(**{**stored, "values": tuple(stored["values"]),
                                "seeds": tuple(stored["seeds"])})
        config.validate()
        assert config.to_dict() == stored
        assert config.point(stored["values"][-1]) == {
            "lr": stored["lr"], "tau": stored["tau"], "c": stored["c"],
            name: stored["values"][-1]}


@pytest.mark.parametrize("argv, message", [
    (["--method", "cf-k", "--param", "k", "--values", "1,1.5"], "cf-k's k is a whole number"),
    (["--method", "ft", "--param", "lr", "--tau", "2"], "--tau and --c are SFTC's"),
    (["--method", "cf-k", "--param", "k"], "--values is required: cf-k's k has no range"),
    (["--method", "eu-k:k=1", "--param", "k", "--values", "1"], "k is the swept parameter"),
    (["--method", "ft", "--param", "tau", "--values", "1"], "method 'ft' has no such"),
    (["--method", "retrain", "--param", "lr"], "starts from a fresh model"),
    (["--method", "ft,sftc", "--param", "lr"], "--method names one method"),
])
def test_bad_sweeps_are_one_line(argv, message, tmp_path, capsys):
    assert main(["sweep", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()
