"""--mean, --std, --normalize on every dataset; a checkpoint's recorded preprocessing is reused
by unlearn/evaluate/audit, and a mismatch with what the user gives is a warning."""
import json

import pytest
import torch

import sftc
from sftc.bench.config import BenchmarkConfig
from sftc.cli import main

FAST = ["--quiet", "--device", "cpu"]
FORGET = ["--forget", "random:0.1"]


def test_normalize_none_feeds_pixels_over_255_and_mean_std_are_per_channel():
    split = sftc.load_split("digits", "random:0.1", normalize="none")
    x, _ = split.data.batch(split.test[:5], "cpu")
    assert torch.equal(x, split.data.images[split.test[:5]].float() / 255.0)
    split = sftc.load_split("digits", "random:0.1", mean=0.25, std=0.5)
    x, _ = split.data.batch(split.test[:5], "cpu")
    expected = (split.data.images[split.test[:5]].float() / 255.0 - 0.25) / 0.5
    assert torch.allclose(x, expected, atol=1e-6)
    assert split.data.preprocessing == {"mean": [0.25], "std": [0.5], "image_size": 8}


@pytest.mark.parametrize("options, message", [
    (dict(mean=0.5), "--mean and --std go together"),
    (dict(normalize="none", mean=0.5, std=0.5), "--normalize none feeds pixels unnormalised"),
    (dict(mean=0.5, std=0.0), "--std must be finite and positive"),
    (dict(mean=(0.1, 0.2), std=0.5), "--mean needs 1 value for these 1-channel images, got 2"),
    (dict(normalize="zscore"), "--normalize must be one of dataset, none"),
])
def test_bad_normalisation_is_one_line(options, message):
    with pytest.raises(sftc.SftcError, match=message):
        sftc.load_split("digits", "random:0.1", **options)


def test_a_checkpoints_preprocessing_is_reused_and_a_mismatch_warned(tmp_path, capsys):
    """The issue's case: a model trained with Normalize(0.5, 0.5) is evaluated on the inputs it
    was trained on, with no option; other inputs are said aloud."""
    orig = tmp_path / "orig"
    assert main(["train", "--mean", "0.5", "--std", "0.5", "--epochs", "2", "--out", str(orig),
                 *FAST]) == 0
    trained = json.loads((orig / "run.json").read_text())["trained_on"]["preprocessing"]
    assert trained == {"mean": [0.5], "std": [0.5], "image_size": 8}
    capsys.readouterr()

    def evaluate(out, *options):
        code = main(["evaluate", "--original", str(orig / "model.pt"), "--unlearned",
                     str(orig / "model.pt"), *FORGET, "--no-mia", "--device", "cpu", "--out",
                     str(tmp_path / out), *options])
        assert code == 0
        return json.loads((tmp_path / out / "run.json").read_text())["metrics"], \
            capsys.readouterr().err

    reused, err = evaluate("same")
    assert "warning" not in err
    split = sftc.load_split("digits", "random:0.1", mean=0.5, std=0.5)
    model = sftc.load_model(orig / "model.pt", "small-cnn", split).eval()
    x, y = split.data.batch(split.test, "cpu")
    with torch.no_grad():
        assert reused["acc_test"] == pytest.approx(float((model(x).argmax(1) == y).float().mean()))
    shifted, err = evaluate("shifted", "--normalize", "dataset")
    warning = [line for line in err.splitlines() if line.startswith("sftc: warning:")]
    assert len(warning) == 2 and "--original" in warning[0] and "--unlearned" in warning[1]
    assert ("was trained on inputs normalised with mean (0.5), std (0.5), but this run "
            "normalises with mean (0.") in warning[0]
    assert "(--mean/--std/--normalize): its outputs on these inputs are shifted" in warning[0]


def test_the_benchmark_takes_a_normalisation_and_keeps_old_configs_alike():
    default = BenchmarkConfig(methods=(("ft", {}),))
    default.validate()
    assert not {"mean", "std", "normalize"} & set(default.to_dict())
    given = BenchmarkConfig(methods=(("ft", {}),), mean=(0.5,), std=(0.5,))
    given.validate()
    assert given.to_dict()["mean"] == [0.5] and given.to_dict()["std"] == [0.5]
    with pytest.raises(sftc.SftcError, match="go together"):
        BenchmarkConfig(methods=(("ft", {}),), mean=(0.5,)).validate()
