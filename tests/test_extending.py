"""docs/extending.md is true: its method, model and dataset examples run as written."""
import json
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import sftc
from sftc.cli import main
from sftc.engine import Batch

DOC = (Path(__file__).resolve().parents[1] / "docs" / "extending.md").read_text()


def block(first_line: str) -> str:
    """The ```python block of the doc that starts with ``first_line``."""
    found = [b for b in re.findall(r"```python\n(.*?)```", DOC, flags=re.S)
             if b.startswith(first_line)]
    assert len(found) == 1, first_line
    return found[0]


@pytest.fixture
def my_method(isolated_registries, tmp_path):
    path = tmp_path / "my_method.py"
    path.write_text(block('"""my_method.py'))
    assert len(block('"""my_method.py').splitlines()) <= 40     # "a complete ~30-line example"
    return sftc.load_plugin(str(path))


def test_the_method_example_is_listed_and_its_loss_is_the_formula(my_method, capsys):
    assert main(["methods", "--plugin", my_method.__file__, "random-labels"]) == 0
    out = capsys.readouterr().out
    assert "random-labels (RL)" in out and "--forget-weight FLOAT" in out
    method = sftc.create_method("random-labels", forget_weight=0.5)
    ctx = type("Ctx", (), {"num_classes": 4, "generator": torch.Generator().manual_seed(3)})()
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    flag = torch.tensor([0, 0, 0, 1, 1, 1])
    loss = method.loss(ctx, Batch(logits, y, torch.arange(6), flag, "train", 3), logits)
    shift = torch.randint(1, 4, (3,), generator=torch.Generator().manual_seed(3))
    wrong = (y[3:] + shift) % 4
    assert (wrong != y[3:]).all()                                  # never the true class
    expected = F.cross_entropy(logits[:3], y[:3]) + 0.5 * F.cross_entropy(logits[3:], wrong)
    assert torch.allclose(loss, expected)
    retain_only = Batch(logits[:3], y[:3], torch.arange(3), flag[:3], "train", 0)
    assert torch.allclose(method.loss(ctx, retain_only, logits[:3]),
                          F.cross_entropy(logits[:3], y[:3]))


def test_the_method_example_unlearns_through_the_api(my_method, tiny_split):
    model = sftc.create_model("small-cnn", in_channels=1, num_classes=4, seed=0)
    result = sftc.unlearn(model, tiny_split, "random-labels", forget_weight=0.5, epochs=1,
                          device="cpu", progress=False)
    assert result.config["method"] == "random-labels" and result.config["forget_weight"] == 0.5
    assert result.history.rows[-1]["steps"] == 2                   # 100 samples, batch 64


def test_the_model_example_builds_through_a_spec(isolated_registries, tmp_path):
    (tmp_path / "my_models.py").write_text(block("# my_models.py"))
    model = sftc.create_model(f"{tmp_path / 'my_models.py'}:make_resnet18", in_channels=1,
                              num_classes=3)
    assert model.conv1.kernel_size == (3, 3) and isinstance(model.maxpool, torch.nn.Identity)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_the_dataset_example_is_a_dataset_for_every_command(isolated_registries, tmp_path,
                                                            capsys):
    (tmp_path / "my_data.py").write_text(block("# my_data.py"))
    g = torch.Generator().manual_seed(0)
    torch.save(torch.randint(0, 256, (50, 1, 6, 6), generator=g, dtype=torch.uint8),
               tmp_path / "images.pt")
    torch.save(torch.arange(50) % 4, tmp_path / "labels.pt")
    assert main(["data", "--plugin", str(tmp_path / "my_data.py"), "--dataset", "my-scans",
                 "--data-dir", str(tmp_path), "--no-plot", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["sizes"]["train"] == 40 and shown["forget"]["size"] == 4
    assert shown["mean"] == [0.5] and shown["std"] == [0.25]
    assert "my_data" in sys.modules


@pytest.fixture
def plugin_files(isolated_registries, tmp_path):
    attack = tmp_path / "my_attack.py"
    attack.write_text(block('"""my_attack.py'))
    metric = tmp_path / "my_metric.py"
    metric.write_text(block('"""my_metric.py'))
    return attack, metric


@pytest.mark.slow
def test_the_attack_example_decides_an_audit_and_the_benchmarks_columns(plugin_files, tmp_path,
                                                                         tiny_split, capsys):
    from sftc.bench import BenchmarkConfig, run_benchmark

    attack, _ = plugin_files
    sftc.load_plugin(str(attack))
    config = BenchmarkConfig(dataset="digits", model="small-cnn", train_epochs=1, seeds=(0,),
                             lrs=(1e-3,), max_epochs=1, methods=(("ft", {}),), mia_iterations=5,
                             mia_folds=2, attack_references=4, attack="loss-gap")
    table = run_benchmark(config, tmp_path / "bench", device="cpu", progress=False,
                          split=tiny_split, cache_dir=tmp_path / "cache")
    assert table["attack"]["attack"] == "loss-gap"
    assert all(r.get("rmia_auc") is not None for r in table["rows"])
    fast = ["--epochs", "2", "--quiet", "--device", "cpu"]
    assert main(["train", "--out", str(tmp_path / "orig"), *fast]) == 0
    out = tmp_path / "audit"
    code = main(["audit", "--plugin", str(attack), "--attack", "loss-gap", "--forget",
                 "random:0.1", "--original", str(tmp_path / "orig" / "model.pt"),
                 "--unlearned", str(tmp_path / "orig" / "model.pt"), "--references", "4",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(out), "--quiet",
                 "--device", "cpu", "--no-paper-metrics"])
    assert code == 0
    record = json.loads((out / "audit.json").read_text())
    assert record["decisive_attack"] == "loss-gap" and "loss-gap" in record["attacks"]


def test_the_metric_example_reaches_evaluate_and_the_benchmark(plugin_files, tmp_path,
                                                               tiny_split):
    from sftc.bench import BenchmarkConfig, run_benchmark

    _, metric = plugin_files
    sftc.load_plugin(str(metric))
    model = sftc.train(tiny_split, "small-cnn", epochs=1, device="cpu", progress=False).model
    metrics = sftc.evaluate(model, model, tiny_split, device="cpu", mia=False)
    probs = torch.softmax(sftc.engine.predict_logits(model, tiny_split.data, tiny_split.forget,
                                                     torch.device("cpu")), 1)
    expected = probs.gather(1, tiny_split.data.labels[tiny_split.forget][:, None]).mean()
    assert metrics["forget_confidence"] == pytest.approx(float(expected), rel=1e-5)
    config = BenchmarkConfig(dataset="digits", model="small-cnn", train_epochs=1, seeds=(0,),
                             lrs=(1e-3,), max_epochs=1, methods=(("ft", {}),), mia_iterations=5,
                             mia_folds=2)
    table = run_benchmark(config, tmp_path / "bench", device="cpu", progress=False,
                          split=tiny_split, cache_dir=tmp_path / "cache")
    assert all(0 <= r["forget_confidence"] <= 1 for r in table["rows"])
    assert "Conf forget ↓" in (tmp_path / "bench" / "table1.md").read_text()
