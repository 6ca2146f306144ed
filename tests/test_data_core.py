"""The split object, forget specifications and the two embedded-or-installed datasets."""
import gzip
import json

import numpy as np
import pytest
import torch

import sftc
from sftc.data import resolve_forget
from sftc.data.fashion_mnist import read_idx
from datafiles import write_idx

LABELS = torch.arange(100) % 4  # 25 per class


def test_random_fraction_takes_that_share_of_every_class_and_is_seeded():
    a = resolve_forget("random:0.2", LABELS, seed=1)
    assert torch.bincount(LABELS[a], minlength=4).tolist() == [5, 5, 5, 5]
    assert torch.equal(a, resolve_forget("random:0.2", LABELS, seed=1))
    assert not torch.equal(a, resolve_forget("random:0.2", LABELS, seed=2))
    assert torch.bincount(LABELS[resolve_forget("random:3", LABELS)]).tolist() == [3, 3, 3, 3]


def test_classes_first_and_files(tmp_path):
    assert torch.equal(resolve_forget("classes:1,3", LABELS), torch.nonzero((LABELS % 2) == 1).flatten())
    assert resolve_forget("first:7", LABELS).tolist() == list(range(7))
    (tmp_path / "f.txt").write_text("# forget\n4\n2, 9\n")
    (tmp_path / "f.json").write_text(json.dumps({"forget": [8, 1]}))
    np.save(tmp_path / "f.npy", np.array([5, 0]))
    assert resolve_forget(f"file:{tmp_path / 'f.txt'}", LABELS).tolist() == [2, 4, 9]
    assert resolve_forget(f"file:{tmp_path / 'f.json'}", LABELS).tolist() == [1, 8]
    assert resolve_forget(f"file:{tmp_path / 'f.npy'}", LABELS).tolist() == [0, 5]


@pytest.mark.parametrize("spec, message", [
    ("random:1.5", "fraction in (0, 1)"), ("random:x", "not a number"), ("classes:9", "no training"),
    ("first:101", "asks for 101 rows"), ("bogus:1", "unknown forget spec"), ("random", "no argument"),
    ("first:100", "whole training set"), ([], "empty"), ([100], "out of range"), ([1, 1], "repeated"),
])
def test_bad_forget_specs(spec, message):
    with pytest.raises(sftc.SftcError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_forget(spec, LABELS)


def test_split_sets_partition_train_and_record_a_hash(digits_split):
    s = digits_split
    assert len(set(s.retain.tolist()) & set(s.forget.tolist())) == 0
    assert sorted(s.retain.tolist() + s.forget.tolist()) == s.train.tolist()
    assert not set(s.train.tolist()) & (set(s.val.tolist()) | set(s.test.tolist()))
    summary = s.forget_summary()
    assert summary["size"] == len(s.forget) == sum(summary["class_histogram"])
    other = sftc.load_split("digits", "random:0.1", seed=1)
    assert other.forget_summary()["sha256"] != summary["sha256"]


def test_digits_split_is_stratified_and_normalised(digits_split):
    data = digits_split.data
    assert data.images.dtype == torch.uint8 and tuple(data.images.shape[1:]) == (1, 8, 8)
    x, y = data.batch(digits_split.train, "cpu")
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05
    counts = torch.bincount(data.labels[digits_split.test], minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38


def test_fashion_mnist_reads_idx_files_and_halves_the_test_set(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (100, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(100) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(20) % 10)
    split = sftc.load_split("fashion-mnist", "random:0.1", data_dir=tmp_path)
    assert split.sizes() == {"train": 100, "retain": 90, "forget": 10, "val": 10, "test": 10}
    assert read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz").tolist() == (np.arange(20) % 10).tolist()
    with gzip.open(tmp_path / "bad.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(sftc.SftcError, match="truncated"):
        read_idx(tmp_path / "bad.gz")


def test_user_tensors_with_float_inputs_work_end_to_end():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(80, 6, generator=g), torch.arange(80) % 3
    split = sftc.Split.from_tensors(x[:60], y[:60], "random:0.2", test=(x[60:], y[60:]))
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    result = sftc.unlearn(model, split, "sftc", epochs=1, device="cpu", progress=False)
    metrics = sftc.evaluate(model, result.model, split, device="cpu", mia=False)
    assert 0 <= metrics["acc_forget"] <= 1 and "acc_dis" not in metrics
    with pytest.raises(sftc.SftcError, match="outputs"):
        sftc.unlearn(torch.nn.Linear(6, 5), split, "sftc", device="cpu", progress=False)
