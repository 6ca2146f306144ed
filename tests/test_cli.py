"""The command line end to end on digits, and its one-line errors for bad input."""
import hashlib
import json
from pathlib import Path

import pytest
import torch

from sftc.cli import main

FAST = ["--epochs", "2", "--quiet", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "--out", str(root / "orig"), "--forget", "random:0.1", *FAST]) == 0
    assert main(["train", "--subset", "retain", "--out", str(root / "rt"), "--forget",
                 "random:0.1", *FAST]) == 0
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_writes_a_safe_state_dict_and_run_json(trained):
    state = torch.load(trained / "orig" / "model.pt", weights_only=True)
    assert "head.weight" in state
    record = json.loads((trained / "orig" / "run.json").read_text())
    assert record["command"] == "train"
    assert record["forget"]["size"] == 109 and len(record["forget"]["sha256"]) == 64
    assert sum(record["forget"]["class_histogram"]) == 109
    assert {"acc_retain", "acc_forget", "acc_val", "acc_test"} <= set(record["metrics"])
    assert len(record["history"]) == 2 and record["versions"]["torch"]
    assert record["config"]["seed"] == 0


def test_unlearn_then_evaluate(trained, tmp_path, capsys):
    orig = trained / "orig" / "model.pt"
    before = _sha(orig)
    out = tmp_path / "sftc"
    assert main(["unlearn", "--checkpoint", str(orig), "--retrained", str(trained / "rt" / "model.pt"),
                 "--out", str(out), "--epochs", "1", "--quiet", "--device", "cpu",
                 "--forget", "random:0.1", "--mia-iterations", "20", "--c", "0.2",
                 "--tau", "2"]) == 0
    assert _sha(orig) == before  # the input checkpoint is never modified
    record = json.loads((out / "run.json").read_text())
    for key in ("acc_retain", "acc_forget", "acc_val", "acc_test", "acc_err_retrain", "acc_dis",
                "acc_err_original", "js", "js_paper", "mia", "mia_attacker_acc",
                "unlearn_seconds", "retrain_seconds"):
        assert key in record["metrics"], key
    assert record["config"]["c"] == 0.2 and record["config"]["tau"] == 2.0
    assert [row["epoch"] for row in record["history"]] == [0, 1]
    torch.load(out / "model.pt", weights_only=True)
    capsys.readouterr()
    assert main(["evaluate", "--original", str(orig), "--unlearned", str(out / "model.pt"),
                 "--forget", "random:0.1", "--device", "cpu", "--no-mia"]) == 0
    printed = capsys.readouterr().out
    assert "acc_err_original" in printed and "acc_dis" not in printed  # no oracle given


@pytest.mark.slow
def test_demo_writes_table_report_and_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "2", "--unlearn-epochs", "1",
                 "--methods", "sftc,ft,cf-k", "--mia-iterations", "10", "--quiet",
                 "--device", "cpu", "--references", "4", "--cache-dir",
                 str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    for label in ("ORI", "RT", "FT", "SFTC", "AccDis", "Gap to close", "RMIA AUC",
                  "audit verdict (RMIA): ORI ", "SFTC until forgotten: ", "final audit on test"):
        assert label in printed
    for name in ("run.json", "report.md", "convergence.png", "attack.png", "trace.png",
                 "model.pt", "models/sftc.pt", "models/until.pt"):
        assert (out / name).is_file(), name
    for name in ("convergence.png", "attack.png", "trace.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    record = json.loads((out / "run.json").read_text())
    assert [r["label"] for r in record["rows"]] == ["ORI", "RT", "FT", "CF-1", "SFTC",
                                                    "SFTC until"]
    assert record["until"]["trace"] and "certified" in record["until"]
    assert record["runs"]["CF-1"]["config"]["k"] == 1          # k adapted to the small CNN
    assert record["metrics"]["acc_dis"] >= 0
    # the memorising setting: 300 training images (299 stratified), 30 % of each class forgotten
    assert record["dataset"]["sizes"]["train"] == 299 and record["forget"]["size"] == 90
    assert all(0 <= r["rmia_auc"] <= 1 and r["rmia_references"] == 4 for r in record["rows"])
    assert "attack.png" in (out / "report.md").read_text()
    assert len(list((tmp_path / "cache" / "models").iterdir())) == 4    # the references, cached


def test_demo_refuses_too_few_references(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--references", "3", "--quiet"]) == 2
    assert "--references must be 0" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("args, message", [
    (["--forget", "file:{idx_out}"], "out of range"),
    (["--forget", "file:{idx_dup}"], "is repeated"),
    (["--forget", "file:{idx_empty}"], "forget set is empty"),
    (["--forget", "first:1078"], "whole training set"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--method", "magic"], "unknown method 'magic'"),
    (["--tau", "0"], "tau=0.0 must be a positive number"),
    (["--c", "1.5"], "c=1.5 must lie in [0, 1]"),
    (["--lr", "nan"], "--lr: must be a positive number"),
    (["--seed", "-1"], "--seed: must be at least 0"),
    (["--epochs", "0"], "--epochs: must be at least 1"),
    (["--mia-iterations", "0"], "--mia-iterations: must be at least 1"),
    (["--model", "resnet18"], "is not a resnet18"),
    (["--dataset", "fashion-mnist", "--data-dir", "{empty_dir}"], "train-images-idx3-ubyte.gz not found"),
])
def test_unlearn_bad_input_gives_one_line_and_no_output(trained, tmp_path, capsys, args, message):
    import numpy as np

    np.save(tmp_path / "out.npy", np.array([1, 5000]))
    np.save(tmp_path / "dup.npy", np.array([3, 3]))
    np.save(tmp_path / "empty.npy", np.array([], dtype=np.int64))
    (tmp_path / "empty").mkdir()
    fill = {"idx_out": tmp_path / "out.npy", "idx_dup": tmp_path / "dup.npy",
            "idx_empty": tmp_path / "empty.npy", "empty_dir": tmp_path / "empty"}
    args = [a.format(**fill) for a in args]
    out = tmp_path / "result"
    code = main(["unlearn", "--checkpoint", str(trained / "orig" / "model.pt"), "--out", str(out),
                 "--quiet", "--device", "cpu", "--forget", "random:0.1", *args])
    err = _error(capsys)
    assert code == 2
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert not list(tmp_path.glob(".result*"))  # no temporary directory left behind


def test_checkpoint_for_another_class_count(tmp_path, capsys):
    from sftc import build_model
    from sftc.checkpoints import save_state_dict

    save_state_dict(build_model("small-cnn", 1, 7), tmp_path / "seven.pt")
    code = main(["unlearn", "--checkpoint", str(tmp_path / "seven.pt"), "--out",
                 str(tmp_path / "o"), "--quiet", "--device", "cpu", "--forget", "random:0.1"])
    err = _error(capsys)
    assert code == 2 and "head.weight is (7, 128) in the checkpoint and (10, 128)" in err
    assert "number of classes" in err
    assert not (tmp_path / "o").exists()


def test_missing_checkpoint_and_unsafe_pickle(tmp_path, capsys):
    code = main(["unlearn", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o"),
                 "--forget", "random:0.1"])
    assert code == 2 and "does not exist" in _error(capsys)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"w": Evil()}, tmp_path / "evil.pt")
    code = main(["unlearn", "--checkpoint", str(tmp_path / "evil.pt"), "--out", str(tmp_path / "o"),
                 "--forget", "random:0.1"])
    err = _error(capsys)
    assert code == 2 and "cannot load checkpoint" in err and "pickled Python objects" in err
    assert "weights_only=False" not in err and len(err.splitlines()) == 1


def test_retrained_model_for_another_forget_set_is_refused(trained, tmp_path, capsys):
    code = main(["unlearn", "--checkpoint", str(trained / "orig" / "model.pt"),
                 "--retrained", str(trained / "rt" / "model.pt"), "--forget", "classes:3",
                 "--out", str(tmp_path / "o"), "--quiet", "--device", "cpu"])
    assert code == 2 and "another forget set" in _error(capsys)


def test_existing_output_is_not_overwritten_without_flag(trained, capsys):
    code = main(["train", "--out", str(trained / "orig"), *FAST])
    assert code == 2 and "--overwrite" in _error(capsys)


def test_non_finite_loss_is_reported_and_leaves_nothing(tiny_split, tmp_path):
    import sftc
    from sftc.methods.base import UnlearningMethod

    class Exploding(UnlearningMethod):
        name = "exploding"

        def plan(self, ctx, epoch):
            return ctx.shuffled_batches(ctx.split.retain)

        def loss(self, ctx, batch, logits):
            return logits.sum() * float("nan")

    from sftc.engine import Recipe, run

    model = sftc.build_model("small-cnn", 1, 4)
    with pytest.raises(sftc.DivergedError, match="non-finite in epoch 1.*lower the learning rate"):
        run(Exploding(), model, tiny_split, Recipe(epochs=1, device="cpu"), progress=False)


def test_help_is_readable(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("train", "unlearn", "evaluate", "demo"):
        assert command in text


def test_subsets_on_the_command_line_are_recorded_and_reused(tmp_path, capsys):
    """--train-subset/--test-subset carve the memorising settings; later commands take them from
    the run.json beside the checkpoint, so the audit sees the split the model was trained on."""
    data = ["--train-subset", "80", "--test-subset", "40", "--forget", "random:0.2"]
    assert main(["train", "--out", str(tmp_path / "o"), *data, *FAST]) == 0
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["trained_on"]["subsets"] == {"train": 80, "test": 40}
    assert record["dataset"]["sizes"]["train"] == 80 and record["dataset"]["sizes"]["test"] == 40
    capsys.readouterr()
    assert main(["evaluate", "--original", str(tmp_path / "o" / "model.pt"), "--unlearned",
                 str(tmp_path / "o" / "model.pt"), "--forget", "random:0.2", "--no-mia",
                 "--device", "cpu"]) == 0                  # no subset flags: reused, not refused
    code = main(["evaluate", "--original", str(tmp_path / "o" / "model.pt"), "--unlearned",
                 str(tmp_path / "o" / "model.pt"), "--forget", "random:0.2", "--no-mia",
                 "--device", "cpu", "--train-subset", "90"])
    assert code == 2 and "--train-subset 90: the input checkpoint was trained on a " \
        "--train-subset of 80" in _error(capsys)


@pytest.mark.slow
def test_demo_without_optuna_leaves_out_the_search_and_says_so(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)      # import optuna: ModuleNotFoundError
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "2", "--unlearn-epochs", "1",
                 "--methods", "sftc", "--mia-iterations", "10", "--device", "cpu",
                 "--references", "4", "--cache-dir", str(tmp_path / "cache")]) == 0
    captured = capsys.readouterr()
    assert 'pip install "sftc[search]"' in captured.out + captured.err
    record = json.loads((out / "run.json").read_text())
    assert [r["label"] for r in record["rows"]] == ["ORI", "RT", "SFTC"]
    assert not (out / "models" / "until.pt").exists()
