"""Plugins (entry points, --plugin), model specs (module:callable, timm:NAME) and the messages for
a model sftc does not know: a user's own code is as first-class as sftc's."""
import sys
import textwrap
import warnings

import pytest
import torch
from torch import nn

import sftc
from sftc.cli import main
from sftc.errors import SftcError
from sftc.plugins import load_plugin

METHOD_FILE = '''
import torch.nn.functional as F
from sftc.methods import Hyper, UnlearningMethod, register_method
from sftc.methods.base import union_with_flags


@register_method
class Ascent(UnlearningMethod):
    name = "{name}"
    label = "ASC"
    summary = "cross-entropy on retain minus w times on forget"
    hparams = {{"w": Hyper(0.5, float, "weight of the forget term")}}

    def plan(self, ctx, epoch):
        index, flag = union_with_flags(ctx)
        return ctx.shuffled_batches(index, flag)

    def loss(self, ctx, batch, logits):
        keep = batch.flag == 0
        loss = F.cross_entropy(logits[keep], batch.y[keep])
        if batch.n_forget:
            loss = loss - self.w * F.cross_entropy(logits[~keep], batch.y[~keep])
        return loss
'''

MODEL_FILE = '''
from torch import nn


def make_net(in_channels, num_classes):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))


NOT_CALLABLE = 3


def no_keywords(a, b):
    return make_net(a, b)


def not_a_module(in_channels, num_classes):
    return "a string"
'''


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_a_plugin_file_registers_a_method_for_every_command(isolated_registries, tmp_path,
                                                            capsys):
    plugin = write(tmp_path / "ascent_plugin.py", METHOD_FILE.format(name="ascent"))
    assert main(["methods", "--plugin", str(plugin)]) == 0
    assert "ascent" in capsys.readouterr().out
    assert main(["--plugin", str(plugin), "methods", "ascent", "--json"]) == 0  # before the command
    assert '"w"' in capsys.readouterr().out
    assert load_plugin(str(plugin)) is sys.modules["ascent_plugin"]         # imported once


def test_a_plugin_module_by_name_is_found_on_the_path(isolated_registries, tmp_path,
                                                     monkeypatch):
    write(tmp_path / "named_plugin.py", METHOD_FILE.format(name="named"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    load_plugin("named_plugin")                     # the working directory, as python -m does
    assert "named" in sftc.list_methods()
    assert sftc.create_method("NAMED", w=2.0).w == 2.0


@pytest.mark.parametrize("spec, message", [
    ("", "--plugin is empty"),
    ("no_such_plugin_mod", "plugin 'no_such_plugin_mod' not found: no module named"),
    ("missing/file.py", "plugin file missing/file.py does not exist"),
])
def test_a_plugin_that_cannot_be_found_is_one_line(spec, message, isolated_registries):
    with pytest.raises(SftcError, match=message):
        load_plugin(spec)


def test_a_plugin_that_fails_to_import_is_named(isolated_registries, tmp_path, capsys):
    write(tmp_path / "broken_plugin.py", "import json\nraise RuntimeError('oops\\nmore')\n")
    write(tmp_path / "needs_plugin.py", "import not_installed_anywhere\n")
    for name, why in (("broken_plugin.py", "RuntimeError: oops"),
                      ("needs_plugin.py", "ModuleNotFoundError: No module named "
                                          "'not_installed_anywhere'")):
        code = main(["methods", "--plugin", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert f"plugin {tmp_path / name} failed to import: {why}" in err
        assert name[:-3] not in sys.modules


def test_a_plugin_file_may_not_shadow_an_imported_module(isolated_registries, tmp_path):
    write(tmp_path / "json.py", "x = 1\n")
    with pytest.raises(SftcError, match="a module named 'json' is already imported"):
        load_plugin(str(tmp_path / "json.py"))


# -- entry points ---------------------------------------------------------------------------------

def make_distribution(root, entry_points: str, modules: dict):
    """A distribution importlib.metadata finds on sys.path (a .dist-info folder), no pip."""
    info = root / "sftc_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sftc-test-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for name, text in modules.items():
        write(root / f"{name}.py", text)


def test_entry_points_register_methods_models_and_datasets(isolated_registries, tmp_path,
                                                           monkeypatch):
    make_distribution(tmp_path, """
        [sftc.methods]
        ep-ascent = ep_methods:Ascent
        [sftc.models]
        ep-net = ep_models:make_net
        [sftc.datasets]
        ep-data = ep_data
        """, {"ep_methods": METHOD_FILE.format(name="ep-ascent").replace("@register_method", ""),
              "ep_models": MODEL_FILE,
              "ep_data": """
                  import torch
                  from sftc.data import ImageData, LoadedDataset, register_dataset

                  @register_dataset("ep-data", "noise from an entry point", "random:0.2")
                  def load(data_dir=None, split_seed=0):
                      g = torch.Generator().manual_seed(split_seed)
                      x = torch.randint(0, 256, (60, 1, 8, 8), generator=g, dtype=torch.uint8)
                      data = ImageData(x, torch.arange(60) % 3, 3, name="ep-data")
                      idx = torch.arange(60)
                      return LoadedDataset(data, idx[:40], idx[40:50], idx[50:], source="noise")
                  """})
    monkeypatch.syspath_prepend(str(tmp_path))
    for registry in isolated_registries:
        registry._plugins_loaded = False           # as in a fresh process
    assert "ep-ascent" in sftc.list_methods() and "ep-net" in sftc.list_models()
    assert "ep-data" in sftc.list_datasets()
    split = sftc.load_split("ep-data", "random:0.2")
    model = sftc.create_model("ep-net", in_channels=1, num_classes=3, seed=0)
    result = sftc.unlearn(model, split, "ep-ascent", w=0.1, epochs=1, device="cpu",
                          progress=False)
    assert result.config["method"] == "ep-ascent" and result.config["w"] == 0.1


def test_a_broken_entry_point_is_one_line_naming_it(isolated_registries, tmp_path,
                                                    monkeypatch):
    make_distribution(tmp_path, "[sftc.methods]\nbad = ep_broken:Thing\n",
                      {"ep_broken": "raise ImportError('the plugin needs libfoo')\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    methods = isolated_registries[0]
    methods._plugins_loaded = False
    with pytest.raises(SftcError) as err:
        sftc.list_methods()
    assert str(err.value) == ("plugin entry point 'bad' = 'ep_broken:Thing' in group sftc.methods "
                              "of the package sftc-test-plugin failed to load: ImportError: the "
                              "plugin needs libfoo; fix or uninstall sftc-test-plugin")


# -- model specs ----------------------------------------------------------------------------------

def test_a_model_spec_builds_the_users_factory(isolated_registries, tmp_path, tiny_split):
    models = write(tmp_path / "user_models.py", MODEL_FILE)
    for spec in (f"{models}:make_net", "user_models:make_net"):   # a path, then the module
        assert sftc.models.canonical_model_name(spec) == spec
        model = sftc.create_model(spec, in_channels=1, num_classes=4, seed=1)
        assert isinstance(model, nn.Sequential) and model[-1].out_features == 4
    again = sftc.create_model("user_models:make_net", in_channels=1, num_classes=4, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values()))
    result = sftc.train(tiny_split, "user_models:make_net", epochs=1, device="cpu",
                        progress=False)
    assert result.config["model"] == "user_models:make_net"


@pytest.mark.parametrize("attr, message", [
    ("nothing", "user_models2.py has no attribute 'nothing'"),
    ("NOT_CALLABLE", "int object is not callable"),
    ("no_keywords", "must accept the keywords in_channels and num_classes"),
    ("not_a_module", "returned a str, not a torch.nn.Module"),
])
def test_a_bad_model_spec_is_one_line(attr, message, isolated_registries, tmp_path):
    write(tmp_path / "user_models2.py", MODEL_FILE)
    with pytest.raises(SftcError, match=message):
        sftc.create_model(f"{tmp_path / 'user_models2.py'}:{attr}", in_channels=1, num_classes=2)


def test_timm_is_an_optional_extra(isolated_registries, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)          # as if it were not installed
    with pytest.raises(SftcError, match=r'needs timm, an optional extra: pip install "sftc\[timm\]"'):
        sftc.create_model("timm:resnet18", in_channels=1, num_classes=3)


def test_timm_architectures_are_built_without_weights(isolated_registries, tiny_split):
    pytest.importorskip("timm")
    model = sftc.create_model("timm:resnet18", in_channels=1, num_classes=4, seed=0)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 4)
    with pytest.raises(SftcError, match="timm has no architecture 'no-such-net'"):
        sftc.create_model("timm:no-such-net", in_channels=1, num_classes=4)


# -- a model sftc does not know -------------------------------------------------------------------

def resnet18_3x3(in_channels, num_classes):
    """torchvision's ResNet-18 with a 3x3 first convolution (the CIFAR variant)."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    return model


@pytest.mark.slow
def test_a_checkpoint_of_another_first_convolution_says_so(tmp_path, capsys):
    from sftc.checkpoints import save_state_dict

    save_state_dict(resnet18_3x3(1, 10), tmp_path / "mine.pt")
    code = main(["evaluate", "--original", str(tmp_path / "mine.pt"), "--unlearned",
                 str(tmp_path / "mine.pt"), "--model", "resnet18", "--forget", "random:0.1",
                 "--no-mia", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "conv1.weight is (64, 1, 3, 3) in the checkpoint and (64, 1, 7, 7) in the model" in err
    assert "the first convolution differs: a 3x3 kernel in the checkpoint, 7x7 in the model" in err
    hint = err.split("in the model (", 1)[1]
    assert "--model module.path:callable" in hint and "class" not in hint
    assert "channels" not in hint
    code = main(["evaluate", "--original", str(tmp_path / "mine.pt"), "--unlearned",
                 str(tmp_path / "mine.pt"), "--model", f"{__name__}:resnet18_3x3", "--forget",
                 "random:0.1", "--no-mia", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err        # with the user's own factory it loads


def test_cf_k_names_the_layers_it_counts_on_an_unknown_model(tiny_split):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 64, 4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sftc.unlearn(model, tiny_split, "cf-k", k=1, epochs=1, device="cpu", progress=False)
    notes = [str(w.message) for w in caught if type(w.message).__name__ == "LayerNote"]
    assert notes == ['cf-k: Sequential has no layer rule of its own, so its "layers" are its 4 '
                     'top-level children (0, 1, 2, 3); k=1 freezes 0']
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sftc.unlearn(sftc.create_model("small-cnn", in_channels=1, num_classes=4), tiny_split,
                     "cf-k", k=1, epochs=1, device="cpu", progress=False)
    assert not [w for w in caught if type(w.message).__name__ == "LayerNote"]
    default_k = sftc.methods.cf_eu_k.default_k
    assert default_k("small-cnn") == 1 and default_k(f"{__name__}:resnet18_3x3") == 5
