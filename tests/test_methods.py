"""Every registered method, parametrised over the registry: a new method is covered here without
a new test. Tiny data, small CNN, CPU, 1-2 epochs."""
from __future__ import annotations

import inspect
import json
import re

import pytest
import torch

import sftc
from sftc.cli import main
from sftc.cli.common import parse_method_options
from sftc.methods import create_method, method_class
from sftc.methods.cf_eu_k import default_k

METHODS = sftc.list_methods()
#: the methods of issue #3 plus SFTC; the registry may hold more, never fewer
EXPECTED = {"ft", "neggrad+", "neggrad", "cf-k", "eu-k", "bad-teaching", "scrub", "sftc", "retrain"}


def small_cnn_hparams(name: str) -> dict:
    """CF-k/EU-k's default k = 5 is more layers than the small CNN's 4: freeze its first stage."""
    return {"k": default_k("small-cnn")} if "k" in method_class(name).hparams else {}


def original_model(split, arch: str = "small-cnn", seed: int = 1):
    # seed 1, so that a fresh model with init_seed 0 differs from it
    return sftc.build_model(arch, split.data.channels, split.data.num_classes, seed=seed)


def state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_registry_holds_every_method_of_the_paper():
    assert EXPECTED <= set(METHODS)
    assert METHODS[-1] == "retrain"  # the oracle closes the list, as in the paper's Table 1


@pytest.mark.parametrize("name", METHODS)
def test_method_documents_paper_hyperparameters_and_differences(name):
    cls = method_class(name)
    method = create_method(name)
    assert cls.name == name and method.label and cls.summary and cls.paper
    doc = inspect.getdoc(cls)
    # every deliberate difference from the authors' code is named (or that there is none)
    assert "authors' code" in doc, f"{name}: docstring says nothing about the authors' code"
    assert "Example::" in doc
    for key, spec in cls.hparams.items():
        assert key in doc, f"{name}: hyperparameter {key} is not documented"
        assert method.values[key] == spec.default
    assert method.config() == {"method": name, **{k: s.default for k, s in cls.hparams.items()}}


@pytest.mark.parametrize("name", METHODS)
def test_method_runs_changes_the_model_and_writes_history(name, tiny_split):
    model = original_model(tiny_split)
    before = state(model)
    result = sftc.unlearn(model, tiny_split, name, epochs=2, lr=1e-3, batch_size=32, device="cpu",
                          progress=False, track=("retain", "forget"), model_name="small-cnn",
                          **small_cnn_hparams(name))
    # the input model is untouched, the result differs from it
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert result.model is not model
    changed = [k for k, v in result.model.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(before[k], v)]
    assert changed, f"{name} left the model unchanged"
    # history: epoch 0 (the input model) and one row per epoch, with a finite loss
    rows = result.history.rows
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert all(r["steps"] > 0 and torch.isfinite(torch.tensor(r["loss"])) for r in rows[1:])
    assert all("acc_retain" in r and "acc_forget" in r for r in rows)
    assert result.history.seconds > 0 and result.history.setup_seconds >= 0
    json.dumps(result.history.to_dict())
    assert result.config["method"] == name


@pytest.mark.parametrize("name", METHODS)
def test_method_runs_with_augmentation(name, tiny_split):
    """Augmented batches cannot use cached teacher outputs: the uncached branches run too."""
    result = sftc.unlearn(original_model(tiny_split), tiny_split, name, epochs=1, batch_size=32,
                          device="cpu", progress=False, augment=True, **small_cnn_hparams(name))
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


@pytest.mark.parametrize("name", METHODS)
def test_unknown_hyperparameter_is_rejected_with_a_clear_error(name):
    with pytest.raises(sftc.SftcError, match=re.escape(f"{name!r} has no hyperparameter 'bogus'")):
        create_method(name, bogus=1)
    cls = method_class(name)
    with pytest.raises(sftc.SftcError, match=r"has no option --bogus; its options: "):
        parse_method_options(cls, ["--bogus", "1"])


@pytest.mark.parametrize("name", METHODS)
def test_every_hyperparameter_is_an_option(name):
    cls = method_class(name)
    tokens = []
    for key, spec in cls.hparams.items():
        tokens += [f"--{key.replace('_', '-')}", str(spec.default)]
    method = create_method(name, **parse_method_options(cls, tokens))
    assert method.values == {k: s.default for k, s in cls.hparams.items()}


@pytest.mark.parametrize("name", METHODS)
def test_cli_unlearn_rejects_an_option_the_method_does_not_have(name, tmp_path, capsys):
    code = main(["unlearn", "--checkpoint", str(tmp_path / "missing.pt"), "--out",
                 str(tmp_path / "out"), "--method", name, "--forget", "random:0.1",
                 "--no-such-option", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"method {name!r} has no option --no-such-option" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [("cf-k", {"k": -1}), ("scrub", {"msteps": "two"}),
                                 ("bad-teaching", {"tau": 0}), ("scrub", {"alpha": -0.1}),
                                 ("neggrad+", {"forget_weight": float("nan")})])
def test_invalid_values_are_rejected(bad):
    name, values = bad
    with pytest.raises(sftc.SftcError, match=name):
        create_method(name, **values)


def test_methods_command_lists_every_method_with_defaults(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in METHODS:
        method = create_method(name)
        line = next(l for l in out.splitlines() if l.split() and l.split()[0] == name)
        assert method.label in line and method_class(name).summary in line
        for key, spec in method_class(name).hparams.items():
            assert f"--{key.replace('_', '-')} {spec.default}" in line
    assert "CF-5" in out and "EU-5" in out


def test_methods_command_details_and_json(capsys):
    assert main(["methods", "scrub"]) == 0
    out = capsys.readouterr().out
    assert "Kurmanji" in out and "--msteps INT" in out and "(default 2)" in out
    assert main(["methods", "--json"]) == 0
    infos = json.loads(capsys.readouterr().out)
    assert [i["name"] for i in infos] == METHODS
    assert main(["methods", "nope"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err
