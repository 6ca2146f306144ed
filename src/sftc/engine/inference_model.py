"""Inference-only copies of frozen models (the teachers' one-off passes): batch norm folded,
exact rewrites, and the layout, batch size and linear convolutions the rule (or measure mode)
chose before the pass. Equal to the plain pass up to float rounding (tests/test_accel.py)."""
from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from . import measure, rewrites, rule
from .decisions import NOTE, DecisionStore, decision_key
from .linear_conv import has_conv, linear_conv_candidates, patch_linear_conv
from .options import Accel


TRIAL_BATCHES = (64, 256, 512)   # measure mode's candidates


def fold_batch_norm(model: nn.Module) -> tuple[nn.Module, str]:
    """An eval copy of ``model`` with each batch norm that follows a convolution folded into it:
    ``torch.fx``'s conv/BN fusion when the model traces, else adjacent pairs inside
    ``nn.Sequential`` containers (``torch.nn.utils.fusion.fuse_conv_bn_eval``); else unfolded."""
    model = copy.deepcopy(model).eval()
    try:
        from torch.fx.experimental.optimization import fuse

        return fuse(model, inplace=True), "fx"
    except Exception:  # noqa: BLE001 - untraceable models fall back below
        pass
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and \
                        bn.track_running_stats and bn.running_mean is not None:
                    module._modules[a] = fuse_conv_bn_eval(conv, bn)
                    module._modules[b] = nn.Identity()
                    folded += 1
    return model, ("sequential" if folded else "none")




@dataclass
class InferencePlan:
    """How a frozen model's pass runs: layout, batch size, convolutions as matrix products."""

    channels_last: bool = False
    batch: int = rule.PLAIN_BATCH
    linear_convs: list[str] = field(default_factory=list)


class InferenceModel:
    """A frozen model prepared for inference only; :meth:`predict` gives the logits of many
    samples, calling it those of one batch.

    Unless every switch is off: an eval copy with batch normalisation folded into the preceding
    convolutions (``torch.fx``'s conv/BN fusion), the exact rewrites, and the layout, batch size
    and linear convolutions of :func:`sftc.engine.rule.inference` (measure mode: measured on the
    copy and a random batch before the pass, then stored), under ``torch.inference_mode``. A
    pass over fewer than ``rule.MIN_ROWS_TO_PREPARE`` rows (``rows``) runs the model itself:
    preparing a copy would cost more than it saves. ``model`` is never changed."""

    def __init__(self, model: nn.Module, sample: torch.Tensor, accel: Accel | None = None,
                 device: torch.device | None = None, rows: int | None = None):
        accel = accel or Accel()
        self.device = device or sample.device
        self.record: dict = {}
        self.trial_seconds = 0.0
        if rows is not None and rows < rule.MIN_ROWS_TO_PREPARE:
            accel = _without_auto(accel)
        plain = all(getattr(accel, s) == "off" for s in ("fold_bn", "linear_convs",
                                                          "channels_last", "exact_rewrites"))
        self._source_mode = model.training if plain else None
        if plain:  # the model itself, put in eval mode only while it runs
            self.model, how = model, "none"
        else:
            self.model, how = fold_batch_norm(model) if accel.fold_bn != "off" else \
                (copy.deepcopy(model).eval(), "none")
            if accel.exact_rewrites != "off":  # after folding: fx traces the modules as written
                self.record["exact_rewrites"] = rewrites.apply(self.model)
        self.record["fold_bn"] = how
        self.plan = self._decide(model, sample, accel, how, plain)
        modules = dict(self.model.named_modules())
        for name in self.plan.linear_convs:
            patch_linear_conv(modules[name], self._candidates[name][0])
        self.memory_format = torch.channels_last if self.plan.channels_last else \
            torch.contiguous_format
        if not plain:
            self.model.to(memory_format=self.memory_format)
        self.record.update(channels_last=self.plan.channels_last, batch=self.plan.batch,
                           linear_convs=list(self.plan.linear_convs))

    def _decide(self, source: nn.Module, sample: torch.Tensor, accel: Accel, how: str,
                plain: bool) -> InferencePlan:
        conv = has_conv(self.model) and sample.dim() == 4
        rows = accel.inference_batch or rule.INFERENCE_BATCH
        self._candidates = linear_conv_candidates(
            self.model, sample[:1].expand(rows, *sample.shape[1:])) if (
            conv and accel.linear_convs != "off") else {}
        chosen = rule.inference(self.device, conv=conv, linear_candidates=sorted(self._candidates),
                                plain=plain)
        self.record["decided_by"] = "forced" if plain else "rule"
        if accel.measuring and not plain and ("auto" in (accel.channels_last, accel.linear_convs)
                                              or not accel.inference_batch):
            chosen = self._measured(source, sample, accel, how, conv, chosen)
        if accel.channels_last != "auto":
            chosen["channels_last"] = conv and accel.channels_last == "on"
        if accel.linear_convs != "auto":
            chosen["linear_convs"] = sorted(self._candidates) if accel.linear_convs == "on" else []
        if accel.inference_batch:
            chosen["batch"] = accel.inference_batch
        return InferencePlan(bool(chosen["channels_last"]), int(chosen["batch"]),
                             [n for n in chosen["linear_convs"] if n in self._candidates])

    def _measured(self, source: nn.Module, sample: torch.Tensor, accel: Accel, how: str,
                  conv: bool, fallback: dict) -> dict:
        """Measure mode: the stored decision, else one measured now on the prepared copy."""
        switches = {s: getattr(accel, s) for s in ("channels_last", "linear_convs",
                                                   "inference_batch", "exact_rewrites")}
        key = decision_key("infer", source, sample[:1], self.device, fold=how, switches=switches)

        def trial() -> dict:
            started = time.perf_counter()
            out = self._trial(sample, accel, conv, fallback)
            out["seconds"] = round(time.perf_counter() - started, 3)
            return out
        self.record["note"] = NOTE
        if accel.decisions_dir:
            store = DecisionStore(accel.decisions_dir)
            decision, self.record["decided_by"] = store.decide(key, trial)
            self.record["decision_file"] = str(store.path(key))
        else:
            decision, self.record["decided_by"] = trial(), "measured"
        if self.record["decided_by"] == "measured":
            self.trial_seconds = decision["seconds"]
        self.record["seconds_measuring"] = round(self.trial_seconds, 3)
        self.record["measured"] = decision.get("measured", {})
        return decision

    def _trial(self, sample: torch.Tensor, accel: Accel, conv: bool, fallback: dict) -> dict:
        out, measured = dict(fallback), {}
        with torch.random.fork_rng(devices=measure.rng_devices(self.device)):
            torch.manual_seed(0)
            if self._candidates and accel.linear_convs == "auto":
                out["linear_convs"], measured["linear_convs_ms"] = measure.linear_convs(
                    self.model, self._candidates, self.device, backward=False)
            trial = copy.deepcopy(self.model)
            modules = dict(trial.named_modules())
            for name in out["linear_convs"]:
                patch_linear_conv(modules[name], self._candidates[name][0])
            formats = [torch.contiguous_format]
            if conv and accel.channels_last == "auto":
                formats.append(torch.channels_last)
            elif conv and accel.channels_last == "on":
                formats = [torch.channels_last]
            sizes = [accel.inference_batch] if accel.inference_batch else list(TRIAL_BATCHES)
            (fmt, out["batch"]), measured["us_per_sample"] = measure.inference_options(
                trial, sample, self.device, [(f, b) for f in formats for b in sizes])
            out["channels_last"] = fmt == torch.channels_last
        out["measured"] = measured
        return out

    @contextlib.contextmanager
    def _running(self):
        if self._source_mode is not None:
            self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            if self._source_mode is not None:
                self.model.train(self._source_mode)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of one batch (a normal tensor, usable in autograd as a constant)."""
        with self._running():
            out = self.model(self._input(x)).float()
        return out.clone()

    def predict(self, batch: Callable[[torch.Tensor], torch.Tensor], index: torch.Tensor,
                num_classes: int, batches: Callable | None = None) -> torch.Tensor:
        """Logits ``[len(index), C]`` in chunks of the plan's batch size; the inputs of the
        chunks are loaded by ``batches(chunks)`` (a data source's DataLoader workers) when
        given, else chunk by chunk with ``batch(idx)``."""
        out = torch.empty(len(index), num_classes, device=self.device)
        size = self.plan.batch
        chunks = [index[p:p + size] for p in range(0, len(index), size)]
        loaded = batches(chunks) if batches is not None else (batch(c) for c in chunks)
        pos = 0
        with self._running():
            for chunk, x in zip(chunks, loaded):
                out[pos:pos + len(chunk)] = self.model(self._input(x)).float()
                pos += len(chunk)
        return out


def _without_auto(accel: Accel) -> Accel:
    """Every ``auto`` switch off (forced ones stay)."""
    off = {s: "off" for s in ("channels_last", "linear_convs", "fold_bn", "exact_rewrites")
           if getattr(accel, s) == "auto"}
    return replace(accel, **off)
