"""What an outside reliability campaign tried beyond the deployment folder: plugins of every kind
that impersonate a built-in or each other, plugins whose code raises or returns a non-number,
request files as people write them, unbounded values, options a command would ignore, a broken
Optuna, the lineage of ``--until forgotten`` and model files named from another folder."""
from __future__ import annotations

import builtins
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sftc.cli import main
from sftc.errors import SftcError


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def run(*argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out + out.err


# -- plugin impostors ---------------------------------------------------------------------------

METRIC = """
from sftc.metrics import register_metric

@register_metric({key!r}, meaning="an impostor")
def value(inputs):
    return 0.5
"""
METHOD = """
from sftc.methods import UnlearningMethod, register_method

@register_method
class Impostor(UnlearningMethod):
    name = {key!r}
"""
MODEL = """
from sftc.models import register_model

@register_model({key!r})
def build(in_channels, num_classes):
    raise NotImplementedError
"""
ATTACK = """
from sftc.metrics.attacks import Attack, register_attack

@register_attack
class Impostor(Attack):
    name = {key!r}
    min_references = 0

    def score(self, view):
        return view.labels * 0.0
"""


@pytest.mark.parametrize("kind, template, key", [
    ("metric", METRIC, "js"), ("metric", METRIC, "mia"), ("metric", METRIC, "acc_test"),
    ("method", METHOD, "sftc"), ("model", MODEL, "small-cnn"), ("attack", ATTACK, "rmia"),
])
def test_a_plugin_may_not_take_a_built_in_name(isolated_registries, tmp_path, kind, template,
                                                key):
    from sftc.plugins import load_plugin

    plugin = write(tmp_path / f"impostor_{kind}_{key.replace('-', '_')}.py",
                   template.format(key=key))
    with pytest.raises(SftcError, match=f"registers the {kind} {key!r}, already registered by "
                                        "sftc's own"):
        load_plugin(str(plugin))


@pytest.mark.parametrize("kind, template", [("metric", METRIC), ("method", METHOD),
                                            ("model", MODEL), ("attack", ATTACK)])
def test_two_plugins_may_not_take_one_name(isolated_registries, tmp_path, kind, template):
    from sftc.plugins import load_plugin

    first = write(tmp_path / f"first_{kind}.py", template.format(key="twin"))
    second = write(tmp_path / f"second_{kind}.py", template.format(key="twin"))
    load_plugin(str(first))
    with pytest.raises(SftcError, match=f"{second}.*already registered by the plugin {first}"):
        load_plugin(str(second))


def test_an_impostor_metric_is_refused_by_the_command_line(isolated_registries, tmp_path,
                                                           capsys):
    plugin = write(tmp_path / "fake_mia.py", METRIC.format(key="mia"))
    code, out = run("methods", "--metrics", "--plugin", plugin, capsys=capsys)
    assert code == 2 and "registers the metric 'mia'" in out


# -- plugin bugs --------------------------------------------------------------------------------

BUGGY_METRIC = """
from sftc.metrics import register_metric

@register_metric("buggy_{how}", meaning="a bug")
def value(inputs):
    if {how!r} == "raises":
        return 1 / 0
    return {returned}
"""


@pytest.mark.parametrize("how, returned, message", [
    ("raises", "0.5", r"metric 'buggy_raises' raised ZeroDivisionError: division by zero \(in "
                      r".*buggy_raises\.py line 7\)"),
    ("string", "'0.5'", r"metric 'buggy_string' \(.*buggy_string\.py line 4\) returned a str"),
    ("none", "None", r"returned a NoneType"),
    ("nan", "float('nan')", r"returned nan; return a finite number"),
])
def test_a_metric_plugin_that_fails_is_blamed_by_file_and_line(isolated_registries, tmp_path,
                                                                how, returned, message):
    from sftc.metrics.registry import MetricInputs, compute_user_metrics
    from sftc.plugins import load_plugin

    load_plugin(str(write(tmp_path / f"buggy_{how}.py",
                          BUGGY_METRIC.format(how=how, returned=returned))))
    with pytest.raises(SftcError, match=message):
        compute_user_metrics(MetricInputs({}, {}))


def test_a_metric_plugin_may_return_a_numpy_or_torch_scalar(isolated_registries, tmp_path):
    from sftc.metrics.registry import MetricInputs, compute_user_metrics
    from sftc.plugins import load_plugin

    load_plugin(str(write(tmp_path / "scalars.py", """
        import numpy, torch
        from sftc.metrics import register_metric

        @register_metric("np_value", meaning="numpy")
        def a(inputs):
            return numpy.float32(0.25)

        @register_metric("torch_value", meaning="torch")
        def b(inputs):
            return torch.tensor(0.5)
        """)))
    assert compute_user_metrics(MetricInputs({}, {})) == {"np_value": 0.25, "torch_value": 0.5}


BUGGY_ATTACK = """
from sftc.metrics.attacks import Attack, register_attack

@register_attack
class Buggy(Attack):
    name = "buggy-{how}"
    min_references = 0

    def score(self, view):
        if {how!r} == "raises":
            raise KeyError("no such signal")
        return ["high"] * len(view.labels)
"""


@pytest.mark.parametrize("how, message", [
    ("raises", r"attack 'buggy-raises' raised KeyError: 'no such signal' \(in "
               r".*buggy_attack_raises\.py line 11\)"),
    ("strings", r"attack 'buggy-strings' \(.*buggy_attack_strings\.py line \d+\) returned list "
                r"scores of kind 'U', not numbers"),
])
def test_an_attack_plugin_that_fails_is_blamed_by_file_and_line(isolated_registries, tmp_path,
                                                                how, message):
    from types import SimpleNamespace

    from sftc.metrics.attacks import create_attack
    from sftc.plugins import load_plugin

    load_plugin(str(write(tmp_path / f"buggy_attack_{how}.py", BUGGY_ATTACK.format(how=how))))
    with pytest.raises(SftcError, match=message):
        create_attack(f"buggy-{how}").scores_checked(SimpleNamespace(labels=np.zeros(3)))


# -- request files as people write them ---------------------------------------------------------

def _record(ids, paths=False):
    return {"train": [{"id": i} for i in ids],
            "ids": "path relative to train/" if paths else "position in the training part"}


@pytest.mark.parametrize("line", ["2_15", "+3", " 1e2", "٣", "0x1f"])
def test_a_digits_request_line_is_digits_only(tmp_path, line):
    from sftc.deploy.samples import read_request

    request = write(tmp_path / "r.txt", f"{line}\n")
    with pytest.raises(SftcError, match="is not a sample id .*digits 0-9 only"):
        read_request(request, _record([str(i) for i in range(300)]))


def test_a_request_file_with_a_bom_and_comments(tmp_path):
    from sftc.deploy.samples import read_request

    request = tmp_path / "r.txt"
    request.write_bytes("\ufeff7\n# a comment\n0012  # leading zeros, then a comment\n\n"
                        .encode("utf-8"))
    assert read_request(request, _record([str(i) for i in range(20)])) == ["7", "12"]
    images = tmp_path / "images.txt"
    images.write_bytes("\ufeffc0/a.png   # the user's first photo\n# whole-line comment\n"
                       "train/c1/b#2.png\n".encode("utf-8"))
    record = _record(["c0/a.png", "c1/b#2.png"], paths=True)
    assert read_request(images, record) == ["c0/a.png", "c1/b#2.png"]


# -- options a command would ignore, bounds, Optuna ----------------------------------------------

@pytest.fixture(scope="module")
def original(tmp_path_factory):
    root = tmp_path_factory.mktemp("orig")
    assert main(["train", "--dataset", "digits", "--train-subset", "60", "--test-subset", "40",
                 "--val-subset", "32", "--epochs", "1", "--quiet", "--device", "cpu", "--out",
                 str(root / "orig")]) == 0
    return root / "orig" / "model.pt"


def _until(original, out, *more):
    return ["unlearn", "--dataset", "digits", "--forget", "random:0.1", "--checkpoint",
            original, "--until", "forgotten", "--references", "4", "--no-mia", "--quiet",
            "--device", "cpu", "--out", out, *more]


@pytest.mark.parametrize("extra", [["--epochs", "3"], ["--lr", "1e-3"]])
def test_until_forgotten_refuses_what_it_would_ignore(original, tmp_path, capsys, extra):
    code, out = run(*_until(original, tmp_path / "u", *extra), capsys=capsys)
    assert code == 2 and "drop --epochs/--lr for it, or drop --until" in out
    assert not (tmp_path / "u").exists()


def test_until_forgotten_trials_are_bounded(original, tmp_path, capsys):
    code, out = run(*_until(original, tmp_path / "u", "--trials", "1000000000"), capsys=capsys)
    assert code == 2 and "--trials 1000000000" in out and "memory available here" in out


def test_the_trials_bound_is_one_for_every_caller():
    from sftc.bench.until import SearchConfig
    from sftc.limits import check_trials

    check_trials(8, 4, available=10 ** 9)
    with pytest.raises(SftcError, match="give --trials 244,140 or less"):
        check_trials(10 ** 9, 4, available=10 ** 9)
    with pytest.raises(SftcError, match="--trials 1000000000"):
        SearchConfig(trials=10 ** 9).check()       # the API, demo and deploy share it


@pytest.mark.parametrize("argv", [
    ["unlearn", "--until", "forgotten"], ["deploy", "forget"], ["benchmark"]])
def test_max_accuracy_drop_zero_is_accepted_by_every_command(argv):
    """0 (no drop allowed) is a valid budget for every command; a negative one or 1 is not."""
    from sftc.cli import build_parser

    parser = build_parser()
    known = {"unlearn": ["--dataset", "digits", "--forget", "random:0.1", "--checkpoint", "m",
                         "--method", "sftc", "--out", "o"],
             "deploy": ["--dir", "d", "--request", "r", "--id", "x"],
             "benchmark": ["--out", "o"]}[argv[0]]
    args, _ = parser.parse_known_args([*argv, *known, "--max-accuracy-drop", "0"])
    assert args.max_accuracy_drop == 0.0
    for bad in ("-0.1", "1", "nan"):
        with pytest.raises(SystemExit):
            parser.parse_known_args([*argv, *known, "--max-accuracy-drop", bad])


def test_a_broken_optuna_install_is_one_line(monkeypatch):
    from sftc.bench.until import require_optuna

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "optuna":
            raise ImportError("cannot import name 'Study' from partially initialized module")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "optuna", raising=False)
    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(SftcError, match="Optuna, whose install is broken .*ImportError: cannot "
                                        "import name 'Study'.*pip install --force-reinstall"):
        require_optuna()

    def missing_dependency(name, *args, **kwargs):
        if name == "optuna":
            error = ModuleNotFoundError("No module named 'sqlalchemy'")
            error.name = "sqlalchemy"
            raise error
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", missing_dependency)
    with pytest.raises(SftcError, match="needs the module 'sqlalchemy'"):
        require_optuna()


# -- lineage and model files --------------------------------------------------------------------

def test_until_forgotten_writes_the_lineage_of_a_plain_unlearn(original, tmp_path, capsys):
    code, out = run(*_until(original, tmp_path / "u", "--trials", "1", "--max-epochs", "1",
                            "--lrs", "1e-3"), capsys=capsys)
    assert code in (0, 3), out
    record = json.loads((tmp_path / "u" / "run.json").read_text())
    assert record["parent"]["sha256"] and record["parent"]["path"] == str(original)
    assert record["inputs"]["--checkpoint"]["sha256"] == record["parent"]["sha256"]
    from sftc.io import file_sha256
    assert record["model_sha256"] == file_sha256(tmp_path / "u" / "model.pt")
    code, out = run("audit", "--dataset", "digits", "--forget", "random:0.1", "--original",
                    original, "--unlearned", tmp_path / "u" / "model.pt", "--references", "4",
                    "--no-paper-metrics", "--quiet", "--device", "cpu", "--out",
                    tmp_path / "a", capsys=capsys)
    assert "written by an older sftc" not in out


def test_a_model_file_is_recorded_absolute_and_hashed(isolated_registries, tmp_path, capsys,
                                                       monkeypatch):
    from sftc.io import file_sha256

    work = tmp_path / "work"
    work.mkdir()
    write(work / "my_models_abs.py", """
        from sftc.models import SmallCNN

        def make_net(in_channels, num_classes):
            return SmallCNN(in_channels, num_classes, width=8)
        """)
    monkeypatch.chdir(work)
    code, out = run("train", "--dataset", "digits", "--train-subset", "60", "--test-subset",
                    "20", "--val-subset", "20", "--epochs", "1", "--model",
                    "my_models_abs.py:make_net", "--quiet", "--device", "cpu", "--out",
                    tmp_path / "run", capsys=capsys)
    assert code == 0, out
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert config["model"] == f"{work / 'my_models_abs.py'}:make_net"
    assert config["model_file_sha256"] == file_sha256(work / "my_models_abs.py")
    elsewhere = tmp_path / "cron"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)                  # a later command run from another folder
    code, out = run("unlearn", "--dataset", "digits", "--forget", "random:0.1", "--checkpoint",
                    tmp_path / "run" / "model.pt", "--epochs", "1", "--no-mia", "--quiet",
                    "--device", "cpu", "--out", tmp_path / "u", capsys=capsys)
    assert code == 0, out
    assert os.path.isabs(json.loads((tmp_path / "u" / "run.json").read_text())["config"]
                         ["model"].rpartition(":")[0])


def test_method_help_lists_plugin_methods(isolated_registries, tmp_path, capsys):
    plugin = write(tmp_path / "helpful_method.py", METHOD.format(key="helpful"))
    for argv in (["unlearn", "--plugin", plugin, "--help"],
                 ["deploy", "forget", "--plugin", plugin, "--help"]):
        with pytest.raises(SystemExit):
            main([str(a) for a in argv])
        out = capsys.readouterr().out
        assert "sftc, retrain, helpful" in " ".join(out.split()), out


# -- progress that names the phase ---------------------------------------------------------------

def test_a_phase_is_described_with_its_rate_and_time_left():
    from sftc.phase import advance, describe, phase

    assert describe() is None
    with phase("reference models", 8, "trained", initial=2) as state:
        assert describe().startswith("reference models: 2/8 trained, first one running for")
        advance(2)
        state["started"] -= 20.0                       # two trained in 20 s
        assert describe() == "reference models: 4/8 trained, 10.0 s each, about 0:40 left"
    assert describe() is None


def test_quiet_progress_names_the_phase_while_references_train_and_the_search_runs(
        original, tmp_path, capsys, monkeypatch):
    import time

    from sftc.bench.reference_pool import ReferencePool

    train = ReferencePool._train

    def slow_train(self, first):
        time.sleep(0.4)
        return train(self, first)

    import sftc.api

    unlearn = sftc.api.unlearn

    def slow_unlearn(*args, **kwargs):          # each trial of the search
        time.sleep(0.4)
        return unlearn(*args, **kwargs)

    monkeypatch.setattr(ReferencePool, "_train", slow_train)
    monkeypatch.setattr(sftc.api, "unlearn", slow_unlearn)
    monkeypatch.setenv("SFTC_HEARTBEAT_SECONDS", "0.15")
    code, out = run(*_until(original, tmp_path / "u", "--trials", "2", "--max-epochs", "1",
                            "--lrs", "1e-3,1e-4", "--cache-dir", tmp_path / "cache"),
                    capsys=capsys)
    assert code in (0, 3), out
    beats = [line for line in out.splitlines() if "still working" in line]
    assert any("reference models: " in line and "/4 trained" in line for line in beats), beats
    assert any("search: " in line and "trials at most" in line for line in beats), beats
    assert any(" s each, about " in line for line in beats), beats
