"""Originals trained with differential privacy (sftc train --dp-epsilon, Opacus): the ε spent,
the recorded recipe, the audit's private references, unlearning a private model, refusals."""
import json
import sys

import pytest
import torch

from sftc.cli import main
from sftc.recipes import TrainingRecipe
from tables import cli, first_args, table_args, write_table

FAST = ["--quiet", "--device", "cpu"]
METHODS = ["ft", "neggrad+", "neggrad", "cf-k", "eu-k", "bad-teaching", "scrub", "sftc",
           "retrain"]


def test_without_opacus_the_refusal_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "opacus", None)      # import opacus raises ImportError
    code, err = cli(capsys, "train", "--dp-epsilon", "4", "--out", tmp_path / "o",
                    "--epochs", "1", *FAST)
    assert code == 2 and err == ('sftc train: error: --dp-epsilon trains with Opacus, an '
                                 'optional extra: pip install "sftc[dp]"'), err
    assert not (tmp_path / "o").exists()


def test_dp_options_without_epsilon_and_a_delta_too_large_are_refused(capsys, tmp_path):
    code, err = cli(capsys, "train", "--dp-delta", "1e-5", "--out", tmp_path / "o", *FAST)
    assert code == 2 and "--dp-delta and --max-grad-norm go with --dp-epsilon" in err
    pytest.importorskip("opacus")
    code, err = cli(capsys, "train", "--dp-epsilon", "4", "--dp-delta", "0.5", "--out",
                    tmp_path / "o", "--epochs", "1", *FAST)
    assert code == 2 and "--dp-delta 0.5 is at least 1/N" in err


def test_a_non_private_recipe_keeps_its_key():
    assert set(TrainingRecipe("small-cnn").key_dict()) == {
        "model", "epochs", "lr", "batch_size", "augment", "optimizer", "scheduler"}


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    pytest.importorskip("opacus")
    root = tmp_path_factory.mktemp("dp")
    table = write_table(root / "t.csv")
    assert main(["train", *first_args(table), "--dp-epsilon", "2", "--epochs", "3", "--out",
                 str(root / "orig"), *FAST]) == 0
    return root, table


def test_a_private_original_records_what_it_spent(private):
    root, _ = private
    record = json.loads((root / "orig" / "run.json").read_text())
    spent = record["dp"]
    assert 0 < spent["epsilon"] <= 2.0 and spent["asked_epsilon"] == 2.0
    assert spent["delta"] == pytest.approx(1 / (10 * 72)) and spent["max_grad_norm"] == 1.0
    assert spent["noise_multiplier"] > 0 and spent["accountant"] == "rdp"
    assert record["config"]["model"] == "dp:resmlp" and record["config"]["dp_epsilon"] == 2.0
    state = torch.load(root / "orig" / "model.pt", weights_only=True)
    assert not any("running_mean" in k for k in state)      # BatchNorm became GroupNorm


def test_images_train_privately_too(tmp_path):
    pytest.importorskip("opacus")
    assert main(["train", "--train-subset", "200", "--dp-epsilon", "8", "--epochs", "1",
                 "--out", str(tmp_path / "o"), *FAST]) == 0
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["config"]["model"] == "dp:small-cnn" and record["dp"]["epsilon"] <= 8.0
    state = torch.load(tmp_path / "o" / "model.pt", weights_only=True)
    assert not any("running_var" in k for k in state)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_unlearns_a_private_model_and_says_so(private, method):
    root, table = private
    out = root / f"u-{method}"
    extra = ["--k", "1"] if method in ("cf-k", "eu-k") else []
    assert main(["unlearn", *table_args(table), "--checkpoint", str(root / "orig" / "model.pt"),
                 "--method", method, "--forget", "random:0.1", "--epochs", "1", "--out",
                 str(out), "--no-mia", *extra, *FAST]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["original_private"]["asked_epsilon"] == 2.0
    assert record["config"]["model"] == "dp:resmlp"


def test_the_audit_trains_its_references_with_the_originals_dp_recipe(private, tmp_path):
    root, table = private
    if not (root / "u-ft").exists():
        test_every_method_unlearns_a_private_model_and_says_so(private, "ft")
    assert main(["audit", *table_args(table), "--original", str(root / "orig" / "model.pt"),
                 "--unlearned", str(root / "u-ft" / "model.pt"), "--forget", "random:0.1",
                 "--references", "4", "--no-paper-metrics", "--out", str(tmp_path / "a"),
                 "--cache-dir", str(tmp_path / "cache"), *FAST]) == 0
    recipe = json.loads((tmp_path / "a" / "audit.json").read_text())["references"]["recipe"]
    assert recipe["model"] == "dp:resmlp" and recipe["dp_epsilon"] == 2.0
    assert recipe["max_grad_norm"] == 1.0
    meta = next((tmp_path / "cache" / "models").glob("*/meta.json"))
    assert json.loads(meta.read_text())["inputs"]["recipe"]["dp_epsilon"] == 2.0


def test_a_private_model_from_the_api_unlearns_in_memory():
    pytest.importorskip("opacus")
    import sftc
    from sftc.dp import PrivacyRecipe

    split = sftc.load_split("digits", "random:0.1")
    result = sftc.train(split, "small-cnn", epochs=1, device="cpu", progress=False,
                        privacy=PrivacyRecipe(8.0))
    assert not result.model._forward_hooks and not any(
        m._forward_hooks or m._backward_hooks for m in result.model.modules())
    run = sftc.unlearn(result.model, split, "ft", epochs=1, device="cpu", progress=False)
    assert run.model is not result.model


def test_a_private_run_is_reproducible_from_its_seed(tmp_path):
    pytest.importorskip("opacus")
    import sftc
    from sftc.dp import PrivacyRecipe

    split = sftc.load_split("csv", "random:0.1", table={"file": str(write_table(tmp_path / "t.csv")),
                                                        "target": "label"})
    runs = [sftc.train(split, "mlp", epochs=2, seed=3, device="cpu", progress=False,
                       privacy=PrivacyRecipe(4.0)).model.state_dict() for _ in range(2)]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
