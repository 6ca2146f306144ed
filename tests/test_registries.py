"""The four registries (methods, models, datasets, presets) share one shape and one error."""
from __future__ import annotations

import pytest
import torch

import sftc
from sftc import models as models_mod
from sftc.bench import presets as presets_mod
from sftc.data import registry as data_mod
from sftc.errors import SftcError
from sftc.methods import registry as methods_mod
from sftc.registry import Registry

# (registry, list function, lookup function, what an entry is called in messages)
REGISTRIES = {
    "methods": (methods_mod.METHODS, sftc.list_methods, methods_mod.method_class, "method"),
    "models": (models_mod.MODELS, sftc.list_models, models_mod.MODELS.find, "model"),
    "datasets": (data_mod.DATASETS, sftc.list_datasets, data_mod.dataset_info, "dataset"),
    "presets": (presets_mod.PRESETS, presets_mod.list_presets, presets_mod.get_preset, "preset"),
}


@pytest.mark.parametrize("which", REGISTRIES)
def test_every_registry_lists_finds_and_refuses_alike(which):
    registry, list_fn, lookup, kind = REGISTRIES[which]
    names = list_fn()
    assert names and names == registry.names() == list(registry)
    for name in names:
        assert lookup(name) is registry[name] and name in registry
    with pytest.raises(SftcError) as err:
        lookup("nope")
    specs = f" (or {registry.spec_help})" if registry.spec_help else ""
    assert str(err.value) == f"unknown {kind} 'nope'; choose one of: {', '.join(names)}{specs}"
    assert "nope" not in registry and registry.get("nope") is None
    with pytest.raises(KeyError):
        registry["nope"]


def test_registry_aliases_case_order_and_replacement():
    plain = Registry("thing")
    plain.add("b", 1)
    plain.add("a", 2, aliases=("alpha",))
    assert plain.names() == ["b", "a"] and plain.find("alpha") == 2 and plain.canonical("alpha") == "a"
    with pytest.raises(SftcError, match="unknown thing 'A'; choose one of: b, a"):
        plain.find("A")                                  # case matters unless asked otherwise
    plain.add("b", 3)
    assert plain["b"] == 3 and len(plain) == 2           # registering again replaces
    folded = Registry("thing", sort=True, ignore_case=True)
    folded.add("b", 1, aliases=("Bee",))
    folded.add("a", 2)
    assert folded.names() == ["a", "b"] and folded.find("BEE") == 1 and folded.find("A") == 2
    with pytest.raises(ValueError):
        folded.add("", 0)
    assert plain.add("c", "entry") == "entry"            # returns the entry (decorators)


def test_model_registry_aliases_and_creation():
    assert sftc.list_models() == ["efficientnet_b0", "mlp", "resmlp", "resnet18", "small-cnn"]
    assert models_mod.canonical_model_name("EfficientNet") == "efficientnet_b0"
    assert models_mod.canonical_model_name("resnet-18") == "resnet18"
    a = sftc.create_model("smallcnn", in_channels=1, num_classes=4, seed=3)
    b = sftc.build_model("small-cnn", 1, 4, seed=3)
    assert isinstance(a, models_mod.SmallCNN) and a.head.out_features == 4
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    with pytest.raises(TypeError):
        sftc.create_model("small-cnn", 1, 4)             # channels and classes are keywords


def test_register_model_makes_a_model_available_everywhere(monkeypatch, tiny_split):
    monkeypatch.setattr(models_mod, "MODELS", Registry("model", sort=True, ignore_case=True))

    @sftc.register_model("tiny-linear", aliases=("tiny",))
    def tiny(in_channels, num_classes):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_channels * 64,
                                                                       num_classes))

    assert sftc.list_models() == ["tiny-linear"]
    model = sftc.create_model("TINY", in_channels=1, num_classes=4)
    assert isinstance(model, torch.nn.Sequential)
    result = sftc.train(tiny_split, "tiny", epochs=1, device="cpu", progress=False)
    assert result.config["model"] == "tiny-linear"


def test_register_method_decorator(monkeypatch):
    from sftc.methods.finetune import FineTune

    monkeypatch.setattr(methods_mod, "METHODS", Registry("method", ignore_case=True))

    @methods_mod.register_method
    class Mine(FineTune):
        name = "mine"

    assert sftc.list_methods() == ["mine"] and isinstance(sftc.create_method("MINE"), Mine)
    assert not hasattr(methods_mod, "register")       # one name: register_method

    class Nameless(FineTune):
        name = ""

    with pytest.raises(ValueError, match="Nameless has no name"):
        methods_mod.register_method(Nameless)


def test_register_preset(monkeypatch):
    from dataclasses import replace

    digits = replace(presets_mod.get_preset("digits"), name="mine")
    monkeypatch.setattr(presets_mod, "PRESETS", Registry("preset"))
    assert presets_mod.register_preset(digits) is digits
    assert presets_mod.list_presets() == ["mine"] and presets_mod.get_preset("mine") is digits
