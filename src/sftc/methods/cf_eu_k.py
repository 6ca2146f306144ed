"""CF-k and EU-k forgetting (Goel et al., 2022): freeze the first k layers, fine-tune the rest."""
from __future__ import annotations

import warnings

from torch import nn

from ..engine import RunContext
from ..errors import SftcError
from ..models import canonical_model_name, known_layers, layer_sequence
from .base import Hyper, non_negative_int, seed_range
from .finetune import FineTune
from .registry import register_method

K_DEFAULT = 5  # the SFTC paper keeps k = 5 for both methods (section 5.5)
#: k where the paper's 5 does not fit the architecture. The small CNN has 4 "layers" (stage1,
#: stage2, stage3, head), so k = 5 cannot work; k = 1 freezes its first stage, the counterpart of
#: ResNet-18's k = 5 (stem and first stage). Its rows then read CF-1 / EU-1.
#: The table models (mlp, resmlp) also have 4, and k = 1 likewise freezes their first.
K_FOR_MODEL = {"small-cnn": 1, "mlp": 1, "resmlp": 1}


def default_k(model: str) -> int:
    """The k of CF-k / EU-k for an architecture: 5 (the paper's), 1 on the small CNN; 5 for a
    model sftc does not know (a spec or a plugin's), whose "layers" the run then names."""
    return K_FOR_MODEL.get(canonical_model_name(model), K_DEFAULT)


class LayerNote(UserWarning):
    """CF-k/EU-k counted the top-level children of an architecture it has no rule for."""


def layer_note(model: nn.Module, k: int, who: str) -> str | None:
    """What CF-k/EU-k counts as "layers" of a model without a rule of its own (None for a known
    architecture): its top-level children, and which of them ``k`` freezes."""
    if known_layers(model):
        return None
    names = [n for n, _ in layer_sequence(model)]
    frozen = ", ".join(names[:k]) or "nothing"
    return (f"{who}: {type(model).__name__} has no layer rule of its own, so its \"layers\" are "
            f"its {len(names)} top-level children ({', '.join(names)}); k={k} freezes {frozen}")


def split_layers(model: nn.Module, k: int, who: str) -> tuple[list[tuple[str, nn.Module]],
                                                              list[tuple[str, nn.Module]]]:
    """The first ``k`` "layers" of ``model`` (see :func:`sftc.models.layer_sequence`) and the rest.

    Raises a one-line :class:`SftcError` when freezing ``k`` layers would leave no trainable
    parameter, naming how many layers the model has.
    """
    layers = layer_sequence(model)
    frozen, rest = layers[:k], layers[k:]
    if not any(p.numel() for _, m in rest for p in m.parameters()):
        names = ", ".join(n for n, _ in layers)
        usable = max((i for i, (_, m) in enumerate(layers) if any(True for _ in m.parameters())),
                     default=0)
        raise SftcError(f"{who}: k={k} leaves nothing to train: {type(model).__name__} has "
                        f"{len(layers)} layers ({names}); use --k between 0 and {usable}")
    return frozen, rest


@register_method
class CFk(FineTune):
    """CF-k, "catastrophically forgetting the last k layers" (Goel, Prabhu, Sanyal, Lim, Torr,
    Kumaraguru: Towards Adversarial Evaluations for Inexact Machine Unlearning, arXiv:2201.06640,
    2022; baseline of the SFTC paper, section 5.3).

    Freeze the first ``k`` layers of the original model and fine-tune the remaining ones with
    cross-entropy on the retain set. The forget set is never read.

    What a "layer" is (:func:`sftc.models.layer_sequence`):
        ResNet-18: its top-level children conv1, bn1, relu, maxpool, layer1, ..., layer4, avgpool,
        fc (10 layers; k = 5 freezes conv1, bn1, relu, maxpool and layer1).
        EfficientNet-B0: features[0] ... features[8], then avgpool and classifier (11 layers;
        k = 5 freezes the stem and the first four MBConv stages).
        small CNN: stage1, stage2, stage3, head (4 layers: k = 5 is refused; k = 1 freezes the
        first stage like ResNet-18's k = 5 freezes stem and first stage).
        Any other model (your own, timm's): its top-level children; the run says which they are
        and which k freezes (a :class:`LayerNote` warning, ``sftc: warning:`` on the command
        line).
    A ``k`` that leaves no trainable parameter is refused with an error naming the layers.

    Hyperparameters:
        k: number of leading layers frozen, default 5 (the SFTC paper's setting).

    Differences from the authors' code (``cf_eu_k.py``): frozen layers are put in eval mode every
    epoch, so their batch-norm running statistics stay bit-identical too (the authors' code only
    stops gradients, so frozen BN statistics still drift with the retain data); layers are defined
    for any model, not only ResNet and EfficientNet.

    Example::

        result = sftc.unlearn(model, split, method="cf-k", k=5, epochs=3, lr=1e-4)
    """

    name = "cf-k"
    label = "CF-k"
    summary = "Freeze the first k layers, fine-tune the rest on retain"
    paper = ("Goel et al., Towards Adversarial Evaluations for Inexact Machine Unlearning, "
             "arXiv:2201.06640, 2022")
    hparams = {"k": Hyper(K_DEFAULT, int, "number of leading layers frozen", non_negative_int)}
    reinitialise = False

    def __init__(self, **values):
        super().__init__(**values)
        self.label = f"{type(self).label.split('-')[0]}-{self.k}"  # CF-5, EU-5 (Table 1 rows)

    def setup(self, ctx: RunContext) -> None:
        note = layer_note(ctx.model, self.k, self.name)
        if note:
            warnings.warn(LayerNote(note), stacklevel=2)
        frozen, rest = split_layers(ctx.model, self.k, self.name)
        if self.reinitialise:
            fresh = dict(layer_sequence(ctx.new_model(self.init_seed)))
            for name, module in rest:
                module.load_state_dict(fresh[name].state_dict())
        for _, module in frozen:
            module.requires_grad_(False)
            ctx.frozen.append(module)
        self.frozen_names = [n for n, _ in frozen]
        self.trained_names = [n for n, _ in rest]


@register_method
class EUk(CFk):
    """EU-k, "exact unlearning the last k layers" (Goel et al., arXiv:2201.06640, 2022; baseline
    of the SFTC paper, section 5.3).

    As :class:`CFk`, but the layers after the first ``k`` are re-initialised before fine-tuning on
    the retain set, so that only the frozen first ``k`` layers carry anything from the original
    model. The forget set is never read. "Layer" is defined as for CF-k.

    Hyperparameters:
        k: number of leading layers kept and frozen, default 5 (the SFTC paper's setting).
        init_seed: seed of the re-initialisation, default 0.

    Differences from the authors' code (``cf_eu_k.py``): the re-initialised layers take the
    weights of a freshly built model of the same architecture (the architecture's own
    initialisation, batch-norm weights and running statistics included, when the model is named,
    e.g. ``--model resnet18``; otherwise every module's ``reset_parameters``), where the authors'
    code applies Kaiming-normal to conv/linear weights only and leaves batch-norm layers as trained;
    for EfficientNet-B0 the classifier is re-initialised too (the authors' loop stops at the last
    feature block); frozen batch-norm statistics stay fixed as for CF-k.

    Example::

        result = sftc.unlearn(model, split, method="eu-k", k=5, epochs=3, lr=1e-3,
                              model_name="resnet18")
    """

    name = "eu-k"
    label = "EU-k"
    summary = "Freeze the first k layers, re-initialise and retrain the rest"
    hparams = {"k": Hyper(K_DEFAULT, int, "number of leading layers kept and frozen",
                          non_negative_int),
               "init_seed": Hyper(0, int, "seed of the re-initialisation of the unfrozen layers", seed_range)}
    reinitialise = True
