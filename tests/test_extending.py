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
