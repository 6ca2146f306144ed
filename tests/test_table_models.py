"""The table models (mlp, resmlp), their CF-k/EU-k layer rule, and --model plugins on a table."""
import json
import warnings

import pytest
import torch

import sftc
from sftc.cli import main
from sftc.methods.cf_eu_k import LayerNote, default_k, split_layers
from sftc.models import known_layers, layer_sequence
from tables import first_args, write_table

FAST = ["--epochs", "2", "--quiet", "--device", "cpu"]


@pytest.mark.parametrize("name, layers", [("mlp", ["block1", "block2", "block3", "head"]),
                                          ("resmlp", ["stem", "block1", "block2", "head"])])
def test_table_models_take_rows_and_have_a_layer_rule(name, layers):
    model = sftc.create_model(name, in_channels=7, num_classes=3, seed=0)
    assert model(torch.randn(4, 7)).shape == (4, 3)
    assert [n for n, _ in layer_sequence(model)] == layers and known_layers(model)
    assert default_k(name) == 1
    frozen, rest = split_layers(model, default_k(name), "cf-k")
    assert [n for n, _ in frozen] == layers[:1]


def test_a_table_trains_with_resmlp_by_default_and_cf_k_uses_the_rule(tmp_path):
    table = write_table(tmp_path / "t.csv")
    assert main(["train", *first_args(table), "--out", str(tmp_path / "o"), *FAST]) == 0
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["config"]["model"] == "resmlp"
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerNote)   # a known architecture: no note
        assert main(["unlearn", "--dataset", "csv", "--data-file", str(table), "--checkpoint",
                     str(tmp_path / "o" / "model.pt"), "--method", "cf-k", "--k", "1",
                     "--forget", "random:0.1", "--out", str(tmp_path / "u"), "--no-mia",
                     *FAST]) == 0


def test_a_model_plugin_gets_the_number_of_features(tmp_path):
    (tmp_path / "my_table_net.py").write_text(
        "import torch\n"
        "SEEN = []\n"
        "def make(in_channels, num_classes):\n"
        "    SEEN.append(in_channels)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(in_channels, 16), torch.nn.ReLU(),\n"
        "                               torch.nn.Linear(16, num_classes))\n")
    table = write_table(tmp_path / "t.csv")
    spec = f"{tmp_path / 'my_table_net.py'}:make"
    assert main(["train", *first_args(table), "--model", spec, "--out", str(tmp_path / "o"),
                 *FAST]) == 0
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["trained_on"]["input_shape"] == [5]     # age, income, city (3 categories)
    assert main(["unlearn", "--dataset", "csv", "--data-file", str(table), "--checkpoint",
                 str(tmp_path / "o" / "model.pt"), "--method", "sftc", "--forget", "random:0.1",
                 "--out", str(tmp_path / "u"), "--no-mia", *FAST]) == 0
