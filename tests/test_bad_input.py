"""The bad-input and fault catalogue (issue 8): every case as it was found, run again.

Each case states the input, the exit status it must give and what its one-line message must name,
and checks that nothing that should not change did: the input checkpoints keep their SHA-256, and
no output, temporary folder or lock is left where the run would have written.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import write_fashion_mnist, write_fer, write_imagefolder, write_mufac
from PIL import Image

import sftc
from sftc.checkpoints import save_state_dict
from sftc.cli import main
from sftc.io import run_lock

FAST = ["--epochs", "1", "--quiet", "--device", "cpu"]
FORGET = ["--forget", "random:0.1"]


# -- fixtures and helpers -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An original digits model, its oracle, and a model trained on (generated) Fashion-MNIST."""
    root = tmp_path_factory.mktemp("catalogue")
    assert main(["train", "--out", str(root / "orig"), *FORGET, *FAST]) == 0
    assert main(["train", "--subset", "retain", "--out", str(root / "rt"), *FORGET, *FAST]) == 0
    fashion = write_fashion_mnist(root / "fashion-data")
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(fashion), "--out",
                 str(root / "fashion"), *FAST]) == 0
    bare = root / "bare"
    bare.mkdir()
    (bare / "model.pt").write_bytes((root / "rt" / "model.pt").read_bytes())  # no run.json
    return root


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cli(capsys, *argv) -> tuple[int, str]:
    """Run the CLI in-process; its exit status and stderr (which must never hold a traceback)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    return code, err


def error_line(err: str) -> str:
    """The error line; notes printed before it (what could not be verified) are allowed."""
    lines = [line for line in err.splitlines() if not line.startswith("sftc: note:")]
    assert len(lines) == 1, err
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), f"{out} was written"
    debris = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not debris, f"left behind: {debris}"


@contextlib.contextmanager
def unchanged(*paths):
    before = {p: sha(p) for p in paths}
    yield
    assert {p: sha(p) for p in paths} == before, "an input file changed"


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def stop(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def write_forget(tmp_path: Path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return f"file:{path}"


# -- a forget set nobody named ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["unlearn", "evaluate", "train-retain"])
def test_the_forget_set_is_never_guessed(command, runs, tmp_path, capsys):
    orig = runs / "orig" / "model.pt"
    argv = {"unlearn": ["unlearn", "--checkpoint", orig],
            "evaluate": ["evaluate", "--original", orig, "--unlearned", orig],
            "train-retain": ["train", "--subset", "retain"]}[command]
    out = tmp_path / "out"
    with unchanged(orig):
        code, err = cli(capsys, *argv, "--out", out, *FAST)
    assert code == 2 and "--forget" in error_line(err) and "required" in err
    assert_nothing_written(out)


def test_forget_protocol_names_the_datasets_own_explicitly(runs, tmp_path, capsys):
    code, err = cli(capsys, "train", "--subset", "retain", "--forget", "protocol", "--out",
                    tmp_path / "rt", *FAST)
    assert code == 0 and "--forget protocol is random:0.1" in err
    record = json.loads((tmp_path / "rt" / "run.json").read_text())
    assert record["forget"]["spec"] == "random:0.1"


# -- hangs ----------------------------------------------------------------------------------------

def palette_folder(root: Path) -> Path:
    """An image folder of palette PNGs with transparency (Pillow warns when converting them)."""
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(12):
            im = Image.new("P", (8, 8), i % 4)
            im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
            im.save(root / c / f"{i}.png", transparency=bytes([0, 255, 255, 255]))
    return root


def test_a_library_warning_while_loading_is_one_line_not_a_hang(tmp_path, capsys):
    folder = palette_folder(tmp_path / "pal")
    with deadline(60):
        code, err = cli(capsys, "data", "--dataset", "imagefolder", "--data-dir", folder,
                        "--no-plot")
    assert code == 0
    assert all(line.startswith("sftc: warning:") for line in err.splitlines()), err
    with deadline(60):
        code, _ = cli(capsys, "train", "--dataset", "imagefolder", "--data-dir", folder, "--out",
                      tmp_path / "m", *FAST)
    assert code == 0


def test_a_huge_forget_index_is_out_of_range_not_a_hang(runs, tmp_path, capsys):
    out = tmp_path / "out"
    with deadline(60):
        code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--forget",
                        write_forget(tmp_path, "big.json", "[1e30]"), "--out", out, *FAST)
    assert code == 2 and "out of range" in error_line(err)
    assert_nothing_written(out)


def test_warnings_are_one_line_without_colour_codes(monkeypatch, tmp_path, capsys):
    import warnings

    import sftc.data as data_module   # the command imports load_dataset when it runs

    real = data_module.load_dataset

    def noisy(*args, **kwargs):
        warnings.warn("\x1b[31mred alert\x1b[0m\n  with a second line\n  and a third")
        return real(*args, **kwargs)

    monkeypatch.setattr(data_module, "load_dataset", noisy)
    code, err = cli(capsys, "data", "--no-plot")
    assert code == 0 and err == "sftc: warning: red alert"


# -- data lost ------------------------------------------------------------------------------------

def test_a_second_run_into_the_same_out_is_refused_while_the_first_holds_it(runs, tmp_path, capsys):
    out = tmp_path / "shared"
    with run_lock(out.resolve()):   # the first run, still training
        code, err = cli(capsys, "train", "--out", out, *FAST)
    assert code == 2 and "is writing --out" in error_line(err)
    assert not out.exists()
    code, _ = cli(capsys, "train", "--out", out, *FAST)   # once the first is done, it works
    assert code == 0 and (out / "model.pt").is_file()


@pytest.mark.parametrize("where", ["same", "parent"])
def test_out_may_never_contain_an_input_checkpoint(where, runs, tmp_path, capsys):
    work = tmp_path / "work"
    (work / "orig").mkdir(parents=True)
    for name in ("model.pt", "run.json"):
        (work / "orig" / name).write_bytes((runs / "orig" / name).read_bytes())
    ckpt = work / "orig" / "model.pt"
    out = work / "orig" if where == "same" else work
    with unchanged(ckpt):
        code, err = cli(capsys, "unlearn", "--checkpoint", ckpt, "--out", out, "--overwrite",
                        *FORGET, *FAST, "--no-mia")
    assert code == 2 and "contains the input" in error_line(err)
    assert sorted(p.name for p in (work / "orig").iterdir()) == ["model.pt", "run.json"]


# -- silent wrong results ---------------------------------------------------------------------------

def test_a_model_of_another_dataset_is_refused(runs, tmp_path, capsys):
    fashion = runs / "fashion" / "model.pt"
    with unchanged(fashion):
        code, err = cli(capsys, "unlearn", "--checkpoint", fashion, "--out", tmp_path / "o",
                        *FORGET, *FAST)
        assert code == 2 and "trained on 'fashion-mnist'" in error_line(err)
        code, err = cli(capsys, "evaluate", "--original", runs / "orig" / "model.pt",
                        "--unlearned", fashion, *FORGET, "--no-mia", "--device", "cpu")
        assert code == 2 and "trained on 'fashion-mnist'" in error_line(err)
    assert_nothing_written(tmp_path / "o")


def test_another_training_set_of_the_same_dataset_is_refused(runs, tmp_path, capsys):
    code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--split-seed",
                    "1", "--out", tmp_path / "o", *FORGET, *FAST)
    assert code == 2 and "another training set" in error_line(err)


def test_an_oracle_for_another_forget_set_is_refused(runs, tmp_path, capsys):
    code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--retrained",
                    runs / "rt" / "model.pt", "--forget", "classes:3", "--out", tmp_path / "o",
                    *FAST)
    assert code == 2 and "another forget set" in error_line(err)


def test_a_model_trained_on_everything_is_not_an_oracle(runs, tmp_path, capsys):
    code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--retrained",
                    runs / "orig" / "model.pt", "--out", tmp_path / "o", *FORGET, *FAST)
    assert code == 2 and "not an oracle" in error_line(err)


def test_an_unlearned_model_for_another_forget_set_is_refused(runs, tmp_path, capsys):
    out = tmp_path / "u"
    assert cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--out", out,
               *FORGET, *FAST, "--no-mia")[0] == 0
    code, err = cli(capsys, "evaluate", "--original", runs / "orig" / "model.pt", "--unlearned",
                    out / "model.pt", "--forget", "classes:2", "--no-mia", "--device", "cpu")
    assert code == 2 and "another forget set" in error_line(err)


def test_a_bare_oracle_is_used_and_the_output_says_what_was_not_verified(runs, tmp_path, capsys):
    out = tmp_path / "u"
    code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--retrained",
                    runs / "bare" / "model.pt", "--out", out, *FORGET, *FAST, "--no-mia")
    assert code == 0
    assert "sftc: note: --retrained" in err and "could not be verified" in err
    record = json.loads((out / "run.json").read_text())
    assert any("could not be verified" in text for text in record["not_verified"])
    assert record["trained_on"]["forget_sha256"] == record["forget"]["sha256"]


def test_non_finite_weights_are_refused_and_not_blamed_on_the_learning_rate(runs, tmp_path, capsys):
    state = torch.load(runs / "orig" / "model.pt", weights_only=True)
    state["head.bias"][0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    with unchanged(tmp_path / "nan.pt"):
        code, err = cli(capsys, "unlearn", "--checkpoint", tmp_path / "nan.pt", "--out",
                        tmp_path / "o", *FORGET, *FAST)
    line = error_line(err)
    assert code == 2 and "NaN in head.bias" in line and "--lr" not in line
    code, err = cli(capsys, "evaluate", "--original", runs / "orig" / "model.pt", "--unlearned",
                    tmp_path / "nan.pt", *FORGET, "--device", "cpu")
    assert code == 2 and "NaN in head.bias" in error_line(err)
    model = sftc.build_model("small-cnn", 1, 10)
    with torch.no_grad():
        model.head.weight[0, 0] = float("inf")
    with pytest.raises(sftc.SftcError, match="infinite values in head.weight"):
        sftc.unlearn(model, sftc.load_split("digits", "random:0.1"), "ft", progress=False)


def test_zero_epochs_is_refused_not_a_copy_of_the_input(runs, tmp_path, capsys):
    code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--epochs",
                    "0", "--out", tmp_path / "o", *FORGET, "--quiet")
    assert code == 2 and "--epochs" in error_line(err)
    assert_nothing_written(tmp_path / "o")
    with pytest.raises(sftc.SftcError, match="at least 1"):
        sftc.unlearn(sftc.build_model("small-cnn", 1, 10), sftc.load_split("digits", "random:0.1"),
                     "ft", epochs=0, progress=False)


@pytest.mark.parametrize("link", ["dot", "parent", "outside", "twin"])
def test_image_folder_class_symlinks_that_loop_or_leave_are_refused(link, tmp_path, capsys):
    root = tmp_path / "images"
    write_imagefolder(root, per_class=4, held=(), nested_train=False)
    target = {"dot": ".", "parent": "..", "outside": str(tmp_path), "twin": "cat"}[link]
    os.symlink(target, root / "zz")
    code, err = cli(capsys, "data", "--dataset", "imagefolder", "--data-dir", root, "--no-plot")
    assert code == 2
    assert {"dot": "loop", "parent": "outside", "outside": "outside",
            "twin": "same folder"}[link] in error_line(err)


def test_image_file_symlinked_outside_the_dataset_is_refused(tmp_path, capsys):
    root = tmp_path / "images"
    write_imagefolder(root, per_class=4, held=(), nested_train=False)
    Image.new("RGB", (12, 12)).save(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", root / "cat" / "zz.png")
    code, err = cli(capsys, "data", "--dataset", "imagefolder", "--data-dir", root, "--no-plot")
    assert code == 2 and "leads outside the dataset folder" in error_line(err)


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "../train_images/{first}"])
def test_mufac_image_paths_stay_inside_the_dataset_folder(path, tmp_path, capsys):
    written = write_mufac(tmp_path)
    csv_path = written["base"] / "custom_train_dataset.csv"
    lines = csv_path.read_text().splitlines()
    first_image = written["train"][0][-1]
    bad = path.format(first=first_image)
    lines[1] = lines[1].rsplit(",", 1)[0] + "," + bad
    csv_path.write_text("\n".join(lines) + "\n")
    code, err = cli(capsys, "data", "--dataset", "mufac", "--data-dir", tmp_path, "--no-plot",
                    "--forget", "first:2")
    if path.startswith("../train_images"):   # inside the dataset folder: allowed
        assert code == 0
    else:
        assert code == 2 and "leads outside the dataset folder" in error_line(err)
        code, err = cli(capsys, "data", "--dataset", "mufac", "--data-dir", tmp_path,
                        "--no-plot", "--skip-bad-rows", "--forget", "first:2")
        assert code == 0 and "skipped 1" in err


# -- what used to be a traceback ---------------------------------------------------------------------

@pytest.mark.parametrize("name, content, message", [
    ("strings.json", '["a", "b"]', "whole numbers, found 'a'"),
    ("nulls.json", "[null]", "whole numbers, found None"),
    ("bools.json", "[true]", "whole numbers, found True"),
    ("fraction.json", "[1.5]", "whole numbers, found 1.5"),
    ("nan.npy", np.array([np.nan]), "whole numbers, found nan"),
    ("nested.json", "[[1, 2], [3, 4]]", "flat list"),
    ("ragged.json", "[[1, 2], [3]]", "flat list"),
    ("huge.json", "[100000000000000000000000000000]", "out of range"),
    ("empty.npy", np.array([], dtype=np.int64), "forget set is empty"),
    ("zero-bytes.npy", b"", "cannot read forget index file"),
    ("objects.npy", b"\x93NUMPY garbage", "cannot read forget index file"),
    ("latin1.txt", "1\n2\xe9\n".encode("latin-1"), "cannot read forget index file"),
    ("words.txt", "1\nseven\n", "'seven' is not an integer index"),
    ("superscript.txt", "1\n2\u00b2\n", "is not an integer index"),
])
def test_malformed_forget_files_are_one_line_errors(name, content, message, runs, tmp_path, capsys):
    out = tmp_path / "out"
    with unchanged(runs / "orig" / "model.pt"):
        code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--forget",
                        write_forget(tmp_path, name, content), "--out", out, *FAST)
    assert code == 2 and message in error_line(err), err
    assert_nothing_written(out)


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "--seed: must be at least 0"),
    (["--split-seed", "-3"], "--split-seed: must be at least 0"),
    (["--seed", "99999999999"], "--seed: must be at most"),
    (["--mia-iterations", "0"], "--mia-iterations: must be at least 1"),
    (["--batch-size", "0"], "--batch-size: must be at least 1"),
    (["--lr", "-1"], "--lr: must be a positive number"),
    (["--image-size", "0"], "--image-size: must be at least 1"),
    (["--epochs", "two"], "--epochs: expected a whole number"),
])
def test_bad_numbers_are_refused_before_any_work(argv, message, runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sftc.api, "unlearn", lambda *a, **k: pytest.fail("work started"))
    code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--out",
                    tmp_path / "o", *FORGET, *argv)
    assert code == 2 and message in error_line(err)


def test_negative_seeds_through_the_api_are_one_line_errors():
    with pytest.raises(sftc.SftcError, match="--seed must be a whole number"):
        sftc.load_split("digits", "random:0.1", seed=-1)


@pytest.mark.parametrize("case", ["under-a-file", "read-only", "dot", "parent-of-cwd"])
def test_unusable_out_is_refused_before_training(case, runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sftc.api, "train", lambda *a, **k: pytest.fail("training started"))
    (tmp_path / "a-file").write_text("x")
    out = {"under-a-file": tmp_path / "a-file" / "out", "read-only": tmp_path / "ro" / "out",
           "dot": Path("."), "parent-of-cwd": Path("..")}[case]
    if case == "read-only":
        def refuse(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")
        monkeypatch.setattr("sftc.io.tempfile.mkdtemp", refuse)
    monkeypatch.chdir(tmp_path)
    code, err = cli(capsys, "train", "--out", out, *FAST)
    expected = {"under-a-file": "which is a file", "read-only": "Read-only file system",
                "dot": "working directory", "parent-of-cwd": "working directory"}[case]
    assert code == 2 and expected in error_line(err)


@pytest.mark.parametrize("field", ["emotion", "pixels"])
def test_a_unicode_digit_in_fer2013_is_a_one_line_error(field, tmp_path, capsys):
    path = tmp_path / "fer2013.csv"
    write_fer(path)
    lines = path.read_text().splitlines()
    emotion, pixels, usage = lines[1].split(",")
    if field == "emotion":
        emotion = "\u00b2"
    else:
        pixels = "\u00b2" + pixels[1:]
    lines[1] = ",".join([emotion, pixels, usage])
    path.write_text("\n".join(lines) + "\n")
    code, err = cli(capsys, "data", "--dataset", "fer2013", "--data-dir", tmp_path, "--no-plot",
                    "--forget", "first:2")
    assert code == 2 and "line 2" in error_line(err)


# -- debris ---------------------------------------------------------------------------------------

def test_sigterm_removes_the_partial_output(tmp_path):
    out = tmp_path / "slow"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sftc", "train", "--out", str(out), "--epochs",
                             "500", "--quiet", "--device", "cpu"], env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1800):  # wait (up to 3 min on a busy machine) until it writes its temporary folder
            if list(tmp_path.glob(".slow.tmp-*")):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    assert_nothing_written(out)


def test_temporaries_of_killed_runs_are_removed_by_the_next_run(tmp_path, capsys):
    (tmp_path / ".gone.tmp-abc123").mkdir()          # what kill -9 leaves behind
    (tmp_path / ".gone.tmp-abc123" / "model.pt").write_bytes(b"half")
    (tmp_path / ".gone.lock").write_text("12345")
    (tmp_path / ".other.old-99").mkdir()
    code, err = cli(capsys, "train", "--out", tmp_path / "new", *FAST)
    assert code == 0 and "removed 2 temporary folder(s)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]


def test_temporaries_of_a_live_run_are_left_alone(tmp_path, capsys):
    (tmp_path / ".busy.tmp-abc123").mkdir()
    with run_lock(tmp_path / "busy"):
        code, _ = cli(capsys, "train", "--out", tmp_path / "new", *FAST)
    assert code == 0 and (tmp_path / ".busy.tmp-abc123").is_dir()


# -- misleading messages ----------------------------------------------------------------------------

def test_a_directory_given_as_checkpoint_says_so(runs, tmp_path, capsys):
    code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig", "--out", tmp_path / "o",
                    *FORGET, *FAST)
    line = error_line(err)
    assert code == 2 and "is a directory" in line and "did you mean" in line
    assert "does not exist" not in line


def test_a_pickle_is_refused_without_advice_to_load_it_unsafely(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    torch.save({"w": Payload()}, tmp_path / "evil.pt")
    code, err = cli(capsys, "unlearn", "--checkpoint", tmp_path / "evil.pt", "--out",
                    tmp_path / "o", *FORGET, *FAST)
    line = error_line(err)
    assert code == 2 and "pickled Python objects" in line
    assert "weights_only=False" not in err and "this must never run" not in err


def test_a_truncated_checkpoint_is_named(runs, tmp_path, capsys):
    data = (runs / "orig" / "model.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    code, err = cli(capsys, "unlearn", "--checkpoint", tmp_path / "half.pt", "--out",
                    tmp_path / "o", *FORGET, *FAST)
    assert code == 2 and "cannot load checkpoint" in error_line(err)


def test_an_unexpected_failure_is_one_line_with_exit_1(monkeypatch, capsys):
    import sftc.data as data_module   # the command imports load_dataset when it runs

    monkeypatch.setattr(data_module, "load_dataset",
                        lambda *a, **k: (_ for _ in ()).throw(ZeroDivisionError("boom")))
    monkeypatch.delenv("SFTC_DEBUG", raising=False)
    code, err = cli(capsys, "data", "--no-plot")
    assert code == 1 and err.startswith("sftc data: internal error: ZeroDivisionError: boom")


def test_argparse_errors_are_one_line(capsys):
    code, err = cli(capsys, "unlearn", "--no-such-flag")
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("sftc unlearn: error:")


def test_a_bad_checkpoint_for_the_model_names_tensor_and_shapes(tmp_path, capsys):
    save_state_dict(sftc.build_model("small-cnn", 3, 10), tmp_path / "rgb.pt")
    code, err = cli(capsys, "unlearn", "--checkpoint", tmp_path / "rgb.pt", "--out",
                    tmp_path / "o", *FORGET, *FAST)
    line = error_line(err)
    assert code == 2 and "stage1.0.weight is (32, 3, 3, 3) in the checkpoint" in line
    assert "(32, 1, 3, 3) in the model" in line and "input channels" in line


# -- the audit (issue 10) ---------------------------------------------------------------------------

AUDIT_FAST = ["--ref-epochs", "1", "--no-paper-metrics", "--quiet", "--device", "cpu"]


def audit_argv(runs, out, *extra, unlearned=None):
    return ["audit", "--original", runs / "orig" / "model.pt", "--unlearned",
            unlearned or runs / "orig" / "model.pt", "--out", out, *extra]


@pytest.mark.parametrize("argv, message", [
    (["--references", "3"], "--references must be a whole number 4 or more"),
    (["--attack", "rmia-online"], "reads reference models that trained on the samples"),
    (["--attack", "nope"], "unknown attack 'nope'"),
    (["--margin", "120%"], "--margin '120%'"),
    (["--fpr", "0.001"], "--fpr 0.001 cannot be resolved with 360 never-seen samples"),
    (["--alpha", "0.5"], "--alpha must lie strictly between 0 and 0.25"),
])
def test_an_audit_without_the_references_or_samples_it_needs_is_refused(argv, message, runs,
                                                                         tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setattr(sftc.api, "train", lambda *a, **k: pytest.fail("training started"))
    out = tmp_path / "audit"
    code, err = cli(capsys, *audit_argv(runs, out, *FORGET, *argv, *AUDIT_FAST))
    assert code == 2 and message in error_line(err)
    assert_nothing_written(out)


def test_an_audit_of_a_model_of_another_dataset_or_forget_set_is_refused(runs, tmp_path, capsys):
    out = tmp_path / "audit"
    code, err = cli(capsys, *audit_argv(runs, out, *FORGET, *AUDIT_FAST,
                                        unlearned=runs / "fashion" / "model.pt"))
    assert code == 2 and "trained on 'fashion-mnist'" in error_line(err)
    code, err = cli(capsys, *audit_argv(runs, out, "--forget", "classes:3", *AUDIT_FAST,
                                        unlearned=runs / "rt" / "model.pt"))
    assert code == 2 and "another forget set" in error_line(err)
    assert_nothing_written(out)


def test_an_audit_of_a_single_sample_is_refused(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sftc.api, "train", lambda *a, **k: pytest.fail("training started"))
    out = tmp_path / "audit"
    code, err = cli(capsys, *audit_argv(runs, out, "--forget",
                                        write_forget(tmp_path, "one.json", "[0]"), *AUDIT_FAST))
    assert code == 2 and "needs at least 2 forget samples" in error_line(err)
    assert_nothing_written(out)


def test_a_forget_set_the_references_cannot_be_keyed_to_is_refused(runs):
    split = sftc.load_split("digits", "random:0.1")
    model = sftc.load_model(runs / "orig" / "model.pt", "small-cnn", split)
    leaked = sftc.Split(split.data, split.train, split.retain, split.forget, split.val,
                        torch.cat([split.test, split.forget[:2]]), split.forget_positions)
    with pytest.raises(sftc.SftcError, match="2 forget sample.*also in the test split"):
        sftc.audit(model, model, leaked, progress=False)
    foreign = sftc.Split(split.data, split.train, split.retain, split.val[:5], split.val[5:],
                         split.test, split.forget_positions)
    with pytest.raises(sftc.SftcError, match="not in the training set"):
        sftc.audit(model, model, foreign, progress=False)


def test_a_reference_cache_written_by_other_code_is_refused(runs, tmp_path, capsys):
    cache = tmp_path / "cache"
    first = cli(capsys, *audit_argv(runs, tmp_path / "a1", *FORGET, "--references", "4",
                                    "--cache-dir", cache, *AUDIT_FAST))
    assert first[0] == 0
    entry = sorted((cache / "models").iterdir())[0]
    (entry / "meta.json").write_text('{"format": "not-sftc", "key": "x"}')
    out = tmp_path / "a2"
    code, err = cli(capsys, *audit_argv(runs, out, *FORGET, "--references", "4", "--cache-dir",
                                        cache, *AUDIT_FAST))
    line = error_line(err)
    assert code == 2 and "was not written by this sftc" in line and f"rm -r {entry}" in line
    assert_nothing_written(out)


def test_a_forgetting_score_of_too_few_models_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sftc.api, "train", lambda *a, **k: pytest.fail("training started"))
    out = tmp_path / "score"
    code, err = cli(capsys, "forgetting-score", "--forget", "random:0.1", "--models", "2",
                    "--out", out, "--quiet")
    assert code == 2 and "--models: must be at least 3" in error_line(err)
    code, err = cli(capsys, "forgetting-score", "--forget", "random:0.1", "--method", "retrain",
                    "--out", out, "--quiet", "--device", "cpu")
    assert code == 2 and "retrain oracle itself" in error_line(err)
    assert_nothing_written(out)


# -- found by a new-user pass after issue 10's subsets (docs/testing.md) ------------------------

@pytest.fixture(scope="module")
def subset_run(tmp_path_factory):
    """A digits original trained on stratified subsets (recorded in its run.json)."""
    root = tmp_path_factory.mktemp("subsets")
    assert main(["train", "--train-subset", "300", "--test-subset", "200", "--out",
                 str(root / "orig"), *FAST]) == 0
    return root / "orig" / "model.pt"


def test_each_subset_option_defaults_to_the_recorded_one(subset_run, tmp_path, capsys):
    code, _ = cli(capsys, "unlearn", "--checkpoint", subset_run, "--test-subset", "100",
                  "--no-mia", "--out", tmp_path / "u", *FORGET, *FAST)
    record = json.loads((tmp_path / "u" / "run.json").read_text())
    assert code == 0 and record["trained_on"]["subsets"] == {"train": 300, "test": 100}
    assert record["dataset"]["sizes"]["test"] == 100


@pytest.mark.parametrize("which, recorded", [("subset", "a --train-subset of 300"),
                                             ("full", "the whole training set")])
def test_a_train_subset_other_than_the_recorded_one_is_named(which, recorded, subset_run, runs,
                                                             tmp_path, capsys):
    checkpoint = subset_run if which == "subset" else runs / "orig" / "model.pt"
    with unchanged(checkpoint):
        code, err = cli(capsys, "unlearn", "--checkpoint", checkpoint, "--train-subset", "250",
                        "--out", tmp_path / "u", *FORGET, *FAST)
    line = error_line(err)
    assert code == 2 and "--train-subset 250" in line and recorded in line
    assert_nothing_written(tmp_path / "u")


def test_a_fixed_forget_file_against_a_recorded_subset_names_the_record(subset_run, tmp_path,
                                                                       capsys):
    (tmp_path / "f.json").write_text("[1, 2]")
    code, err = cli(capsys, "unlearn", "--checkpoint", subset_run, "--forget",
                    f"file:{tmp_path / 'f.json'}", "--out", tmp_path / "u", *FAST)
    line = error_line(err)
    assert code == 2 and "recorded --train-subset" in line and "drop --train-subset" not in line


def test_a_subset_larger_than_the_data_is_refused(tmp_path, capsys):
    code, err = cli(capsys, "train", "--train-subset", "5000", "--out", tmp_path / "o", *FAST)
    line = error_line(err)
    assert code == 2 and "--train-subset 5000 is more than the 1078 training images" in line
    assert_nothing_written(tmp_path / "o")


def test_a_count_written_as_a_decimal_is_refused_as_ambiguous(runs, tmp_path, capsys):
    code, err = cli(capsys, "unlearn", "--checkpoint", runs / "orig" / "model.pt", "--forget",
                    "random:1.0", "--out", tmp_path / "u", *FAST)
    line = error_line(err)
    assert code == 2 and "ambiguous" in line and "random:1 " in line


def test_a_text_file_given_as_checkpoint_is_not_called_a_pickle(tmp_path, capsys):
    (tmp_path / "notes.pt").write_text("garbage\n")
    code, err = cli(capsys, "unlearn", "--checkpoint", tmp_path / "notes.pt", "--out",
                    tmp_path / "o", *FORGET, *FAST)
    line = error_line(err)
    assert code == 2 and "not a PyTorch checkpoint" in line and "pickled" not in line
