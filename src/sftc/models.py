"""Model builders by name (``@register_model``, ``list_models``, ``create_model``), model specs,
and what "the first k layers" means for each (CF-k / EU-k).

``resnet18`` and ``efficientnet_b0`` are torchvision's (``weights=None``), built as the paper's code
builds them: ``num_classes`` set at construction and, for grayscale data, the first convolution
replaced by a one-channel convolution of the same shape. ``small-cnn`` is a compact CNN for CPU work.
``mlp`` and ``resmlp`` are for tables (:mod:`sftc.models_tabular`). A builder's ``in_channels``
is a sample's first dimension: an image's channels, a table row's number of features.

Besides the registered names, a model is named by a *spec* wherever a name is accepted
(``--model``, presets, :func:`create_model`):

``module.path:callable``   your own factory, called as ``callable(in_channels=C,
                           num_classes=K)``;
                           the module may be a ``.py`` path (``my_models.py:make_net``)
``timm:NAME``              an architecture of ``timm`` (optional extra ``pip install "sftc[timm]"``),
                           built with ``pretrained=False``: no weights are downloaded
``dp:NAME``                NAME passed through Opacus's ``ModuleValidator.fix`` (BatchNorm to
                           GroupNorm), what ``sftc train --dp-epsilon`` trains (:mod:`sftc.dp`)

Installed packages add models through the entry-point group ``sftc.models`` (see
:mod:`sftc.plugins`).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from .errors import SftcError
from .models_tabular import MLP, ResMLP
from .plugins import GROUPS, import_object
from .registry import Registry

Builder = Callable[[int, int], nn.Module]
TIMM_HINT = 'pip install "sftc[timm]"'


def _resolve_spec(spec: str) -> Builder | None:
    """The builder a model spec names (``module.path:callable`` or ``timm:NAME``); None for a
    plain name. A spec that cannot be resolved is a one-line :class:`SftcError`."""
    prefix, colon, rest = spec.partition(":")
    if not colon:
        return None
    if prefix.strip().lower() == "timm":
        return _timm_builder(rest.strip())
    if prefix.strip().lower() == "dp":
        from .dp import fixed_builder       # one way: dp.py imports nothing of models

        if not rest.strip():
            raise SftcError("model spec dp: needs an architecture, e.g. dp:resmlp")
        return fixed_builder(rest.strip(), model_builder(rest.strip()))
    factory = import_object(spec, "model spec")
    if not callable(factory):
        raise SftcError(f"model spec {spec}: {type(factory).__name__} object is not callable; name "
                        "a function or class called as f(in_channels=C, num_classes=K)")

    def build(in_channels: int, num_classes: int) -> nn.Module:
        try:
            model = factory(in_channels=in_channels, num_classes=num_classes)
        except TypeError as exc:
            raise SftcError(f"model spec {spec} must accept the keywords in_channels and "
                            f"num_classes: {str(exc).splitlines()[0]}") from None
        if not isinstance(model, nn.Module):
            raise SftcError(f"model spec {spec} returned a {type(model).__name__}, not a "
                            "torch.nn.Module")
        return model

    build.factory = factory
    return build


def _timm_builder(name: str) -> Builder:
    if not name:
        raise SftcError("model spec timm: needs an architecture name, e.g. timm:resnet18")
    try:
        import timm
    except ImportError:
        raise SftcError(f"model timm:{name} needs timm, an optional extra: {TIMM_HINT}") from None
    if not timm.is_model(name):
        raise SftcError(f"timm has no architecture {name!r}; see timm.list_models() (e.g. "
                        "timm:resnet18, timm:efficientnet_b0)")

    def build(in_channels: int, num_classes: int) -> nn.Module:
        return timm.create_model(name, pretrained=False, num_classes=num_classes,
                                 in_chans=in_channels)

    build.factory = timm.create_model
    return build


def _adopt(name: str, builder) -> None:
    if not callable(builder):
        raise SftcError(f"plugin model {name!r} is a {type(builder).__name__}, not a builder "
                        "(in_channels, num_classes) -> nn.Module")
    MODELS.add(name, builder)


#: Builders ``(in_channels, num_classes) -> nn.Module`` by name; names and aliases ignore case.
MODELS: Registry[Builder] = Registry(
    "model", sort=True, ignore_case=True, group=GROUPS["model"], adopt=_adopt,
    resolve=_resolve_spec, spec_help="module.path:callable, or timm:NAME")


def register_model(name: str, aliases: Iterable[str] = ()):
    """Decorator: make ``builder(in_channels, num_classes) -> nn.Module`` available as ``name``
    (and ``aliases``) to :func:`create_model`, ``--model`` and the benchmark."""
    def wrap(builder: Callable[[int, int], nn.Module]):
        return MODELS.add(name, builder, aliases)
    return wrap


class SmallCNN(nn.Module):
    """Three convolutional stages and a linear head; works for any input size >= 4 pixels.

    Its "layers" for CF-k/EU-k are the four top-level children: ``stage1``, ``stage2``, ``stage3``,
    ``head``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.stage1 = nn.Sequential(*block(in_channels, width), nn.MaxPool2d(2, ceil_mode=True))
        self.stage2 = nn.Sequential(*block(width, 2 * width), nn.MaxPool2d(2, ceil_mode=True))
        self.stage3 = nn.Sequential(*block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1),
                                    nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage3(self.stage2(self.stage1(x))))


@register_model("small-cnn", aliases=("smallcnn",))
def _small_cnn(in_channels: int, num_classes: int) -> nn.Module:
    return SmallCNN(in_channels, num_classes)


@register_model("resnet18", aliases=("resnet-18",))
def _resnet18(in_channels: int, num_classes: int) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    if in_channels != 3:
        old = model.conv1
        model.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size,
                                stride=old.stride, padding=old.padding, bias=False)
    return model


@register_model("efficientnet_b0", aliases=("efficientnet-b0", "efficientnet"))
def _efficientnet_b0(in_channels: int, num_classes: int) -> nn.Module:
    from torchvision.models import efficientnet_b0

    model = efficientnet_b0(weights=None, num_classes=num_classes)
    if in_channels != 3:
        old = model.features[0][0]
        model.features[0][0] = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size,
                                         stride=old.stride, padding=old.padding,
                                         bias=old.bias is not None)
    return model


def list_models() -> list[str]:
    """The registered model names (specs such as ``timm:NAME`` are accepted besides these)."""
    return MODELS.names()


def canonical_model_name(name: str) -> str:
    """The registered name of ``name`` or an alias (``efficientnet`` -> ``efficientnet_b0``); a
    spec (``my_pkg.models:make_net``, ``timm:resnet18``) is checked and returned as given, a
    ``file.py:callable`` spec with the file's absolute path (what run.json records, so that a
    later command run from another folder finds it)."""
    return MODELS.canonical(absolute_spec(name))


def absolute_spec(name):
    """``my_models.py:make_net`` -> ``/abs/my_models.py:make_net``; anything else unchanged."""
    import os

    from .plugins import is_file_spec

    if not isinstance(name, str):
        return name
    module, colon, attr = name.strip().rpartition(":")
    if not colon or not module or not is_file_spec(module) or module.lower() == "timm":
        return name
    return f"{os.path.abspath(os.path.expanduser(module))}:{attr}"


def spec_file_sha256(name) -> dict:
    """``{"model_file": path, "model_file_sha256": ...}`` of a ``file.py:callable`` spec (what
    run.json records beside the spec), else nothing."""
    from pathlib import Path

    from .io import file_sha256
    from .plugins import is_file_spec

    spec = absolute_spec(name)
    module = spec.rpartition(":")[0] if isinstance(spec, str) else ""
    if not module or not is_file_spec(module) or not Path(module).is_file():
        return {}
    return {"model_file": module, "model_file_sha256": file_sha256(module)}


def model_builder(name: str) -> Builder:
    """The builder of a registered name, an alias or a spec."""
    return MODELS.find(name)


def create_model(name: str, *, in_channels: int, num_classes: int,
                 seed: int | None = None) -> nn.Module:
    """A freshly initialised model of ``name`` (a registered name or a spec, see the module
    docstring); ``seed`` makes the initialisation reproducible."""
    builder = MODELS.find(name)
    if seed is None:
        return builder(in_channels, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(in_channels, num_classes)


def build_model(name: str, in_channels: int, num_classes: int, seed: int | None = None) -> nn.Module:
    """:func:`create_model` with positional channels and classes (the older spelling)."""
    return create_model(name, in_channels=in_channels, num_classes=num_classes, seed=seed)


def layer_sequence(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ordered "layers" CF-k/EU-k count: ResNet-18's top-level children (conv1, bn1, relu,
    maxpool, layer1..layer4, avgpool, fc); EfficientNet-B0's feature blocks features[0..8] followed
    by avgpool and classifier; the small CNN's stages and head; the table models' four blocks
    (:mod:`sftc.models_tabular`); any other model's top-level children.
    """
    if hasattr(model, "features") and hasattr(model, "classifier") and isinstance(
            model.features, nn.Sequential):
        seq = [(f"features.{i}", m) for i, m in enumerate(model.features)]
        return seq + [(n, m) for n, m in model.named_children() if n != "features"]
    return list(model.named_children())



def known_layers(model: nn.Module) -> bool:
    """Whether :func:`layer_sequence` follows a rule written for this architecture (torchvision's
    ResNet and EfficientNet, the small CNN) rather than the fallback (top-level children)."""
    from torchvision.models import EfficientNet, ResNet

    return isinstance(model, (SmallCNN, ResNet, EfficientNet, MLP, ResMLP))


@register_model("mlp")
def _mlp(in_channels: int, num_classes: int) -> nn.Module:
    return MLP(in_channels, num_classes)


@register_model("resmlp", aliases=("resnet-mlp", "tabular-resnet"))
def _resmlp(in_channels: int, num_classes: int) -> nn.Module:
    return ResMLP(in_channels, num_classes)
