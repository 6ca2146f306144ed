"""The on-disk datasets (CIFAR-10, FER-2013, MUFAC, image folders) on tiny files in each format."""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import (append_csv_line, fer_pixels, solid_color, write_cifar, write_fer,
                       write_imagefolder, write_mufac)
from PIL import Image

import sftc
from sftc.data import SkippedSamplesWarning, load_dataset, load_split
from sftc.errors import SftcError

SHARED_FER_FORGET = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer_forget_idx.npy"


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def short_unlearning_run(split):
    """Train the small CNN one epoch, then one epoch of SFTC: the data feeds the whole engine."""
    original = sftc.train(split, "small-cnn", epochs=1, device="cpu", progress=False)
    result = sftc.unlearn(original.model, split, "sftc", epochs=1, device="cpu", progress=False)
    x, _ = split.data.batch(split.forget[:2], "cpu")
    with torch.no_grad():
        out = result.model.eval()(x)
    assert out.shape == (min(2, len(split.forget)), split.data.num_classes)
    assert torch.isfinite(out).all()


# --------------------------------------------------------------------------------------------
# CIFAR-10


def test_cifar10_loads_batches_in_order_with_the_kits_split(tmp_path):
    written = write_cifar(tmp_path)
    loaded = load_dataset("cifar10", data_dir=tmp_path)
    data = loaded.data
    assert data.images.shape == (120, 3, 32, 32) and data.images.dtype == torch.uint8
    assert torch.equal(data.images, torch.from_numpy(written["images"]))
    assert torch.equal(data.labels, torch.from_numpy(written["labels"]))
    assert data.mean == (0.4914, 0.4822, 0.4465) and data.std == (0.2023, 0.1994, 0.2010)
    assert data.image_size == 128 and data.class_names[0] == "airplane"
    assert torch.equal(loaded.train, torch.arange(100))
    # the kit: test_set, val_set = random_split(held_out, [0.5, 0.5], generator=seed 42)
    test_kit, val_kit = torch.utils.data.random_split(range(20), [0.5, 0.5],
                                                      generator=torch.Generator().manual_seed(42))
    assert sorted(loaded.test.tolist()) == sorted(100 + i for i in test_kit.indices)
    assert sorted(loaded.val.tolist()) == sorted(100 + i for i in val_kit.indices)
    x, _ = data.batch(loaded.val[:3], "cpu")
    assert x.shape == (3, 3, 128, 128)
    # a different --split-seed draws other halves
    other = load_dataset("cifar10", data_dir=tmp_path / "cifar-10-batches-py", split_seed=1)
    assert not torch.equal(other.val, loaded.val)


def test_cifar10_forget_default_is_the_challenge_file_when_present(tmp_path):
    write_cifar(tmp_path)
    split = load_split("cifar10", data_dir=tmp_path, image_size=16)
    assert split.forget_spec == "random:0.1"
    assert split.forget_summary()["class_histogram"] == [1] * 10  # 10 % of each class
    idx = np.array([3, 17, 42, 99, 0])
    np.save(tmp_path / "forget_idx.npy", idx)
    split = load_split("cifar10", data_dir=tmp_path, image_size=16)
    assert split.forget_spec == f"file:{tmp_path / 'forget_idx.npy'}"
    assert split.forget.tolist() == sorted(idx.tolist())
    assert split.sizes() == {"train": 100, "retain": 95, "forget": 5, "val": 10, "test": 10}
    # a relative file: spec is also looked up in --data-dir
    split = load_split("cifar10", forget="file:forget_idx.npy", data_dir=tmp_path, image_size=16)
    assert split.forget.tolist() == sorted(idx.tolist())
    short_unlearning_run(split)


def test_cifar10_missing_files_name_the_layout(tmp_path):
    with pytest.raises(SftcError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "cifar-10-batches-py" in one_line(err) and "cifar.html" in str(err.value)
    with pytest.raises(SftcError) as err:
        load_dataset("cifar10")
    assert "--data-dir" in one_line(err)
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(SftcError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "data_batch_3 not found" in one_line(err)
    assert "data_batch_1 .. data_batch_5" in str(err.value)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_cifar10_batches_are_unpickled_without_running_code(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    monkeypatch.chdir(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}))
    with pytest.raises(SftcError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "data_batch_2" in one_line(err) and "refusing" in str(err.value)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content, message", [
    (b"not a pickle at all", "is not a CIFAR-10 python batch"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "N x 3072"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "must be 2 integers"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),
     "label 10 of image 1 is outside 0..9"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}), "CIFAR-100"),
])
def test_cifar10_malformed_batch_is_a_one_line_error(tmp_path, content, message):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(content)
    with pytest.raises(SftcError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "test_batch" in one_line(err) and message in str(err.value)


@pytest.mark.parametrize("indices, message", [
    ([1, 2, 100], "forget index 100 is out of range"),
    ([1, 2, 2], "forget index 2 is repeated"),
    ([-1], "forget index -1 is out of range"),
])
def test_index_file_with_bad_indices_names_file_and_index(tmp_path, indices, message):
    write_cifar(tmp_path)
    np.save(tmp_path / "forget_idx.npy", np.array(indices))
    with pytest.raises(SftcError) as err:
        load_split("cifar10", data_dir=tmp_path)
    assert message in one_line(err) and "forget_idx.npy" in str(err.value)


# --------------------------------------------------------------------------------------------
# FER-2013


def test_fer2013_usage_splits_labels_pixels_and_forget_rows(tmp_path):
    written = write_fer(tmp_path / "fer2013" / "fer2013.csv")
    loaded = load_dataset("fer2013", data_dir=tmp_path)  # finds fer2013/fer2013.csv
    data = loaded.data
    assert data.images.shape == (35, 1, 48, 48) and data.num_classes == 7
    assert (len(loaded.train), len(loaded.val), len(loaded.test)) == (21, 7, 7)
    assert data.mean == (0.5,) and data.std == (0.5,) and data.image_size == 128
    usages = [u for _, _, u in written["rows"]]
    assert loaded.train.tolist() == [i for i, u in enumerate(usages) if u == "Training"]
    assert loaded.val.tolist() == [i for i, u in enumerate(usages) if u == "PublicTest"]
    assert loaded.test.tolist() == [i for i, u in enumerate(usages) if u == "PrivateTest"]
    assert data.labels.tolist() == [label for label, _, _ in written["rows"]]
    # forget indices count Training rows in file order, like the paper's fer_forget_idx.npy
    np.save(tmp_path / "forget.npy", np.array([0, 5, 20]))
    split = load_split("fer2013", forget=f"file:{tmp_path / 'forget.npy'}",
                       data_dir=tmp_path / "fer2013" / "fer2013.csv", image_size=24)
    for position, sample in zip([0, 5, 20], split.forget.tolist()):
        expected = written["train_pixels"][position].reshape(1, 48, 48)
        assert np.array_equal(split.data.images[sample].numpy(), expected)
        assert int(split.data.labels[sample]) == written["train_labels"][position]
    short_unlearning_run(split)


def test_fer2013_default_forget_is_the_papers_file(tmp_path):
    write_fer(tmp_path / "fer2013.csv")
    with pytest.raises(SftcError) as err:
        load_split("fer2013", data_dir=tmp_path)
    text = one_line(err)
    assert "fer_forget_idx.npy" in text and "vperifan/SFTC-Unlearn" in text
    np.save(tmp_path / "fer_forget_idx.npy", np.array([1, 2, 3]))
    split = load_split("fer2013", data_dir=tmp_path)
    assert split.forget_spec.endswith("fer_forget_idx.npy") and len(split.forget) == 3


@pytest.mark.skipif(not SHARED_FER_FORGET.is_file(), reason="the paper's forget file is not here")
def test_the_papers_fer_forget_file_fits_the_training_rows():
    idx = np.load(SHARED_FER_FORGET, allow_pickle=False)
    assert idx.shape == (1826,) and len(np.unique(idx)) == 1826
    assert idx.min() >= 0 and idx.max() < 28709  # FER-2013 has 28,709 Training rows


@pytest.mark.parametrize("line, message", [
    ("3,1 2 3", "line 37: has 2 fields, the header has 3"),
    ("3," + " ".join(["7"] * 2303) + ",Training", "line 37: pixels has 2303 values, expected 2304"),
    ("3," + " ".join(["7"] * 2303 + ["x"]) + ",Training", "line 37: pixel 2303 is 'x'"),
    ("3," + " ".join(["7"] * 2303 + ["256"]) + ",Training", "line 37: pixel 2303 is '256'"),
    ("9," + fer_pixels(1) + ",Training", "line 37: emotion '9' is not a class 0..6"),
    ("3," + fer_pixels(1) + ",Validation", "line 37: Usage 'Validation' is not Training"),
])
def test_fer2013_bad_rows_are_one_line_errors_or_skipped_and_counted(tmp_path, line, message):
    path = tmp_path / "fer2013.csv"
    write_fer(path)
    append_csv_line(path, line)
    with pytest.raises(SftcError) as err:
        load_dataset("fer2013", data_dir=tmp_path)
    assert message in one_line(err) and "fer2013.csv" in str(err.value)
    assert "--skip-bad-rows" in str(err.value)
    with pytest.warns(SkippedSamplesWarning, match="skipped 1 unreadable"):
        loaded = load_dataset("fer2013", data_dir=tmp_path, skip_bad=True)
    assert len(loaded.skipped) == 1 and message in loaded.skipped[0]
    assert len(loaded.data) == 35


def test_fer2013_skipped_training_row_keeps_forget_indices_on_their_rows(tmp_path):
    path = tmp_path / "fer2013.csv"
    written = write_fer(path, usages=(("Training", 6), ("PublicTest", 2), ("PrivateTest", 2)),
                        interleave=False)
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(" ", " x", 1)  # Training row 2 gets a bad pixel
    path.write_text("\n".join(lines) + "\n")
    np.save(tmp_path / "forget.npy", np.array([1, 2, 4]))
    with pytest.raises(SftcError, match="line 4: pixel 1 is 'x0*"):
        load_split("fer2013", forget="file:forget.npy", data_dir=tmp_path)
    with pytest.warns(SkippedSamplesWarning) as record:
        split = load_split("fer2013", forget="file:forget.npy", data_dir=tmp_path, skip_bad=True)
    messages = " | ".join(str(w.message) for w in record)
    assert "skipped 1 unreadable" in messages and "training row 2" in messages
    assert split.sizes()["train"] == 5 and len(split.forget) == 2
    got = [split.data.images[i].numpy().reshape(-1) for i in split.forget.tolist()]
    assert np.array_equal(got[0], written["train_pixels"][1])
    assert np.array_equal(got[1], written["train_pixels"][4])  # not row 5, which moved up


def test_fer2013_missing_file_or_columns(tmp_path):
    with pytest.raises(SftcError) as err:
        load_dataset("fer2013", data_dir=tmp_path)
    assert "fer2013.csv not found" in one_line(err) and "kaggle" in str(err.value)
    (tmp_path / "fer2013.csv").write_text("emotion,pixels\n0,1 2 3\n")
    with pytest.raises(SftcError) as err:
        load_dataset("fer2013", data_dir=tmp_path)
    assert "line 1: the header has no column 'Usage'" in one_line(err)


# --------------------------------------------------------------------------------------------
# MUFAC


def test_mufac_layout_labels_and_first_rows_forget(tmp_path):
    written = write_mufac(tmp_path)
    loaded = load_dataset("mufac", data_dir=tmp_path, image_size=16)
    data = loaded.data
    assert data.images.shape == (28, 3, 16, 16) and data.num_classes == 8
    assert (len(loaded.train), len(loaded.val), len(loaded.test)) == (16, 6, 6)
    letters = [r[3] for part in ("train", "val", "test") for r in written[part]]
    assert data.labels.tolist() == ["abcdefgh".index(a) for a in letters]
    assert data.mean == (0.0, 0.0, 0.0) and data.std == (1.0, 1.0, 1.0)
    assert load_dataset("mufac", data_dir=written["base"]).data.image_size == 128
    split = load_split("mufac", forget="first:5", data_dir=tmp_path, image_size=16)
    assert split.forget.tolist() == loaded.train[:5].tolist()
    for row, sample in enumerate(split.forget.tolist()):  # the first CSV rows, by their colour
        pixel = split.data.images[sample, :, 8, 8].numpy().astype(int)
        assert np.abs(pixel - np.array(solid_color(row))).max() <= 4
    with pytest.raises(SftcError, match="asks for 1500 rows but the training set has 16"):
        load_split("mufac", data_dir=tmp_path)  # the default first:1500 needs the real data
    short_unlearning_run(split)


def test_mufac_stores_smaller_when_asked(tmp_path):
    write_mufac(tmp_path, side=32)
    assert load_dataset("mufac", data_dir=tmp_path, image_size=8).data.images.shape[-1] == 8
    assert load_dataset("mufac", data_dir=tmp_path, image_size=64).data.images.shape[-1] == 32


def test_mufac_undecodable_image_is_an_error_or_skipped_keeping_first_rows(tmp_path):
    written = write_mufac(tmp_path)
    bad = written["base"] / "train_images" / written["train"][1][4]
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(SftcError) as err:
        load_dataset("mufac", data_dir=tmp_path)
    assert "custom_train_dataset.csv line 3" in one_line(err) and bad.name in str(err.value)
    with pytest.warns(SkippedSamplesWarning):
        split = load_split("mufac", forget="first:4", data_dir=tmp_path, skip_bad=True)
    assert split.sizes()["train"] == 15 and len(split.forget) == 3  # rows 0, 2, 3 of the CSV
    colours = [split.data.images[i, :, 8, 8].numpy().astype(int) for i in split.forget.tolist()]
    for colour, row in zip(colours, (0, 2, 3)):
        assert np.abs(colour - np.array(solid_color(row))).max() <= 4


def test_mufac_truncated_jpeg_does_not_decode(tmp_path):
    written = write_mufac(tmp_path, side=32)
    path = written["base"] / "test_images" / written["test"][2][4]
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SftcError) as err:
        load_dataset("mufac", data_dir=tmp_path)
    assert "custom_test_dataset.csv line 4" in one_line(err)


@pytest.mark.parametrize("edit, message", [
    (lambda base: (base / "custom_val_dataset.csv").unlink(), "custom_val_dataset.csv not found"),
    (lambda base: (base / "test_images" / "F0022_AGE_D_18_g0.jpg").unlink(),
     "custom_test_dataset.csv line 2: image"),
    (lambda base: append_csv_line(base / "custom_train_dataset.csv", "99,F9,P9,z,x.jpg"),
     "custom_train_dataset.csv line 18: age_class 'z' is not one of the letters a..h"),
    (lambda base: append_csv_line(base / "custom_train_dataset.csv", "99,F9,P9"),
     "custom_train_dataset.csv line 18: has 3 fields, the header has 5"),
])
def test_mufac_bad_layout_or_rows(tmp_path, edit, message):
    written = write_mufac(tmp_path)
    edit(written["base"])
    with pytest.raises(SftcError) as err:
        load_dataset("mufac", data_dir=tmp_path)
    assert message in one_line(err)


def test_mufac_missing_folder_names_the_layout(tmp_path):
    with pytest.raises(SftcError) as err:
        load_dataset("mufac", data_dir=tmp_path)
    text = one_line(err)
    assert "custom_korean_family_dataset_resolution_128" in text and "train_images/" in text


# --------------------------------------------------------------------------------------------
# image folders


def test_imagefolder_with_val_and_test_folders_and_a_forget_list(tmp_path):
    written = write_imagefolder(tmp_path)
    (tmp_path / "train" / "notes.txt").write_text("not an image, not a class")
    forget = tmp_path / "forget.txt"
    forget.write_text("# images to forget\ndog/img_03.png\n./cat/img_00.png\n\n"
                      "train/owl/img_09.png\n")
    split = load_split("imagefolder", forget="file:forget.txt", data_dir=tmp_path)
    data = split.data
    assert data.class_names == ["cat", "dog", "owl"] and data.images.shape == (48, 3, 12, 12)
    assert split.sizes() == {"train": 30, "retain": 27, "forget": 3, "val": 9, "test": 9}
    names = written["train"]
    expected = sorted(names.index(n) for n in ("dog/img_03.png", "cat/img_00.png",
                                               "owl/img_09.png"))
    assert split.forget.tolist() == split.train[expected].tolist()
    for position in expected:  # solid colours: the counter of the writer is the row number
        sample = split.train[position]
        assert split.data.images[sample, :, 0, 0].tolist() == list(solid_color(position))
    assert data.labels[split.forget].tolist() == [0, 1, 2]
    short_unlearning_run(split)


@pytest.mark.parametrize("content, message", [
    ("cat/img_00.png\nmouse/img_00.png\n", "forget.txt:2: 'mouse/img_00.png' is not an image in "
                                           "the training folder"),
    ("cat/img_00.png\ncat/img_01.png\ncat//img_00.png\n", "forget.txt:3: 'cat//img_00.png' is "
                                                          "repeated (first listed on line 1)"),
    ("val/cat/img_00.png\n", "forget.txt:1: 'val/cat/img_00.png' is not an image in the training"),
    ("# nothing\n", "the forget set is empty"),
])
def test_imagefolder_bad_forget_list(tmp_path, content, message):
    write_imagefolder(tmp_path)
    (tmp_path / "forget.txt").write_text(content)
    with pytest.raises(SftcError) as err:
        load_split("imagefolder", forget=f"file:{tmp_path / 'forget.txt'}", data_dir=tmp_path)
    assert message in one_line(err)


def test_imagefolder_seeded_split_without_train_folder(tmp_path):
    write_imagefolder(tmp_path, per_class=10, gray=True, nested_train=False)
    a = load_dataset("imagefolder", data_dir=tmp_path, split_seed=0)
    b = load_dataset("imagefolder", data_dir=tmp_path, split_seed=0)
    c = load_dataset("imagefolder", data_dir=tmp_path, split_seed=1)
    assert a.data.images.shape == (30, 1, 12, 12)  # grayscale stays one channel
    assert (len(a.train), len(a.val), len(a.test)) == (24, 3, 3)
    assert a.train_names == b.train_names and a.train_names != c.train_names
    assert torch.equal(a.data.images[a.val], b.data.images[b.val])
    assert torch.bincount(a.data.labels[a.val], minlength=3).tolist() == [1, 1, 1]
    held_out = a.train_names is not None and set(a.train_names)
    val_name = next(n for n in (f"{c}/img_{k:02d}.png" for c in ("cat", "dog", "owl")
                                for k in range(10)) if n not in held_out)
    (tmp_path / "forget.txt").write_text(f"{val_name}\n")
    with pytest.raises(SftcError, match="training part of .* seeded split"):
        load_split("imagefolder", forget=f"file:{tmp_path / 'forget.txt'}", data_dir=tmp_path)


def test_imagefolder_one_held_out_folder_is_halved(tmp_path):
    write_imagefolder(tmp_path, held=("test",), held_per_class=4)
    loaded = load_dataset("imagefolder", data_dir=tmp_path)
    assert (len(loaded.train), len(loaded.val), len(loaded.test)) == (30, 6, 6)


def test_imagefolder_mixed_sizes_are_resized_and_cropped(tmp_path):
    write_imagefolder(tmp_path, per_class=3, held=())
    Image.new("RGB", (40, 20), (10, 200, 30)).save(tmp_path / "train" / "cat" / "wide.png")
    loaded = load_dataset("imagefolder", data_dir=tmp_path, image_size=16)
    assert loaded.data.images.shape[1:] == (3, 16, 16)
    loaded = load_dataset("imagefolder", data_dir=tmp_path)
    assert loaded.data.images.shape[1:] == (3, 128, 128)


def test_imagefolder_undecodable_image_is_an_error_or_skipped(tmp_path):
    write_imagefolder(tmp_path)
    broken = tmp_path / "train" / "dog" / "img_02.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(SftcError) as err:
        load_dataset("imagefolder", data_dir=tmp_path)
    assert "img_02.png" in one_line(err) and "dog" in str(err.value)
    (tmp_path / "forget.txt").write_text("dog/img_02.png\ndog/img_03.png\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = load_split("imagefolder", forget="file:forget.txt", data_dir=tmp_path,
                           skip_bad=True)
    messages = [str(w.message) for w in caught if w.category is SkippedSamplesWarning]
    assert len(messages) == 2 and "skipped 1" in messages[0] and "forget set" in messages[1]
    assert split.sizes()["train"] == 29 and len(split.forget) == 1


def test_imagefolder_layout_errors(tmp_path):
    with pytest.raises(SftcError, match="has no class sub-folders"):
        load_dataset("imagefolder", data_dir=tmp_path)
    write_imagefolder(tmp_path)
    (tmp_path / "train" / "empty").mkdir()
    with pytest.raises(SftcError, match="class folder .*empty has no images"):
        load_dataset("imagefolder", data_dir=tmp_path)
    (tmp_path / "train" / "empty").rmdir()
    (tmp_path / "val" / "horse").mkdir()
    with pytest.raises(SftcError, match="horse is a class the training folder does not have"):
        load_dataset("imagefolder", data_dir=tmp_path)
    with pytest.raises(SftcError, match="does not exist"):
        load_dataset("imagefolder", data_dir=tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------
# models as the paper's code builds them


@pytest.mark.parametrize("name, first, layers", [
    ("resnet18", lambda m: m.conv1, 10),
    ("efficientnet_b0", lambda m: m.features[0][0], 11),
])
def test_paper_models_take_grayscale_input(name, first, layers):
    from sftc.models import layer_sequence

    gray = sftc.build_model(name, 1, 7, seed=0)
    conv = first(gray)
    assert conv.in_channels == 1 and conv.bias is None
    colour = sftc.build_model(name, 3, 8, seed=0)
    assert first(colour).in_channels == 3
    assert conv.out_channels == first(colour).out_channels
    assert conv.kernel_size == first(colour).kernel_size and conv.stride == first(colour).stride
    assert len(layer_sequence(gray)) == layers
    with torch.no_grad():
        assert gray.eval()(torch.zeros(1, 1, 32, 32)).shape == (1, 7)
