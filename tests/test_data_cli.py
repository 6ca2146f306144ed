"""``sftc data``: per-class counts and the distribution figure, through the command line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from datafiles import append_csv_line, write_cifar, write_fer, write_imagefolder, write_mufac

from sftc.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(name, root):
    if name == "cifar10":
        write_cifar(root)
        return ["--forget", "random:0.2"], ["airplane", "truck"], (100, 10, 10)
    if name == "fer2013":
        write_fer(root / "fer2013.csv")
        np.save(root / "fer_forget_idx.npy", np.array([0, 3, 6]))  # the default forget file
        return [], ["Angry", "Neutral"], (21, 7, 7)
    if name == "mufac":
        write_mufac(root)
        return ["--forget", "first:4"], ["a (0-6)", "h (67-80)"], (16, 6, 6)
    write_imagefolder(root)
    return [], ["cat", "owl"], (30, 9, 9)


@pytest.mark.parametrize("name", ["cifar10", "fer2013", "mufac", "imagefolder"])
def test_data_prints_counts_and_writes_the_figure(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    root.mkdir()
    extra, class_names, (n_train, n_val, n_test) = _write(name, root)
    assert main(["data", "--dataset", name, "--data-dir", str(root), *extra]) == 0
    out = capsys.readouterr().out
    for label in class_names:
        assert label in out
    total = next(line for line in out.splitlines() if line.startswith("total")).split()
    train, retain, forget, val, test = map(int, total[1:])
    assert (train, val, test) == (n_train, n_val, n_test) and retain + forget == train
    figure = tmp_path / f"{name}-distribution.png"
    assert figure.read_bytes().startswith(PNG_MAGIC)
    assert main(["data", "--dataset", name, "--data-dir", str(root), *extra, "--json",
                 "--plot", str(tmp_path / "fig" / "d.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sizes"] == {"train": train, "retain": retain, "forget": forget, "val": val,
                               "test": test}
    assert [sum(report["counts"][s]) for s in ("train", "forget", "val", "test")] == \
        [train, forget, val, test]
    assert report["forget"]["class_histogram"] == report["counts"]["forget"]
    assert (tmp_path / "fig" / "d.png").read_bytes().startswith(PNG_MAGIC)


def test_data_on_the_embedded_digits_without_a_figure(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "random:0.1" in out
    assert not list(tmp_path.iterdir())


def test_data_bad_row_is_one_error_line_or_skipped_with_a_warning(tmp_path, capsys):
    write_fer(tmp_path / "fer2013.csv")
    append_csv_line(tmp_path / "fer2013.csv", "3,1 2 3,Training")
    args = ["data", "--dataset", "fer2013", "--data-dir", str(tmp_path), "--forget", "random:0.2",
            "--no-plot"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "fer2013.csv line 37: pixels has 3 values, expected 2304" in err
    assert main(args + ["--skip-bad-rows"]) == 0
    captured = capsys.readouterr()
    assert "sftc: warning: fer2013: skipped 1 unreadable sample(s)" in captured.err
    assert "skipped  1 unreadable rows" in captured.out


def test_data_missing_dataset_files(tmp_path, capsys):
    assert main(["data", "--dataset", "mufac", "--data-dir", str(tmp_path), "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "custom_train_dataset.csv" in err
    assert main(["data", "--dataset", "cifar10", "--no-plot"]) == 2
    assert "pass --data-dir" in capsys.readouterr().err
