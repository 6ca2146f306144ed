"""Metrics declared once: key, meaning, table header, direction, whether it needs the oracle, and
for a user's metric how to compute it (``@register_metric``).

``sftc evaluate``, ``sftc.evaluate``, the benchmark (at each row's kept setting), the tables, the
report and ``sftc methods --metrics`` read these declarations, so a metric is one place: sftc's
own (:mod:`sftc.metrics.declarations`) and a plugin's alike::

    import torch
    from sftc.metrics import register_metric

    @register_metric("forget_confidence", header="Conf forget ↓", better="min",
                     meaning="mean probability of the true class on D_f")
    def forget_confidence(inputs):
        probs = torch.softmax(inputs.logits["unlearned"]["forget"], 1)
        return float(probs.gather(1, inputs.labels["forget"][:, None]).mean())

A user's metric receives :class:`MetricInputs`: the logits of the unlearned model, the original
and (when there is one) the oracle on D_f (``forget``), D_t (``test``), the retain set
(``retain``; in the benchmark the MIA's class-balanced sample of it) and, where computed, the
validation split (``val``), with the labels of each.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from ..errors import SftcError
from ..plugins import GROUPS
from ..registry import Registry

BETTER = (None, "min", "max", "half")
PLACES = (None, "table1", "attack", "accuracy")


@dataclass(frozen=True)
class Metric:
    key: str
    meaning: str
    header: str | None = None       # its table header; None: not a table column
    better: str | None = None       # min, max, half (closest to 0.5) or None (not ranked)
    needs_oracle: bool = False
    forgetting: bool = False        # marked only where it beats ORI (docs/benchmark.md)
    fmt: str = "{:.4f}"
    place: str | None = None        # where sftc's tables put it (a user's: after Table 1's)
    compute: Callable | None = field(default=None, compare=False)   # None: sftc's own pipeline


@dataclass
class MetricInputs:
    """What a user's metric reads: ``logits[role][subset]`` (roles ``unlearned``, ``original``,
    ``oracle`` when given; subsets ``forget``, ``test``, ``retain``, ``val`` where computed),
    ``labels[subset]`` and ``seconds`` (``unlearn``, ``retrain`` when known)."""

    logits: dict
    labels: dict
    seconds: dict = field(default_factory=dict)


def _adopt(name: str, obj) -> None:
    if isinstance(obj, Metric):
        METRICS.add(obj.key, obj)
        return
    raise SftcError(f"plugin metric {name!r} is a {type(obj).__name__}; decorate a function with "
                    "@register_metric in the module instead")


#: Every declared metric by key, in declaration order.
METRICS: Registry[Metric] = Registry("metric", group=GROUPS["metric"], adopt=_adopt)


def declare(metric: Metric) -> Metric:
    if metric.better not in BETTER or metric.place not in PLACES:
        raise SftcError(f"metric {metric.key!r}: better must be one of min, max, half or None, "
                        "and place one of table1, attack, accuracy or None")
    if not metric.key.isidentifier():
        raise SftcError(f"metric key {metric.key!r} must be a Python identifier (it names a "
                        "column of every result file)")
    return METRICS.add(metric.key, metric)


def register_metric(key: str, *, meaning: str, header: str | None = None,
                    better: str | None = None, needs_oracle: bool = False,
                    forgetting: bool = False, fmt: str = "{:.4f}"):
    """Decorator: ``fn(inputs: MetricInputs) -> float`` is computed for every evaluated model
    (module docstring)."""
    def wrap(fn: Callable) -> Callable:
        declare(Metric(key, meaning, header or key, better, needs_oracle, forgetting, fmt,
                       None, fn))
        return fn
    return wrap


def list_metrics() -> list[str]:
    return METRICS.names()


def metric_info(key: str) -> Metric:
    return METRICS.find(key)


def user_metrics() -> list[Metric]:
    """The declared metrics that carry their own computation (plugins')."""
    return [METRICS.find(k) for k in METRICS.names() if METRICS.find(k).compute is not None]


def compute_user_metrics(inputs: MetricInputs) -> dict:
    """Every user metric's value for one model (one needing the oracle only when there is one);
    a value that is not a finite number is one line naming the metric."""
    out = {}
    for metric in user_metrics():
        if metric.needs_oracle and "oracle" not in inputs.logits:
            continue
        out[metric.key] = _value(metric, inputs)
    return out


def _value(metric: Metric, inputs: MetricInputs) -> float:
    """A user metric's value: a finite real number (a float, an int, a numpy scalar or a
    one-value tensor); its failure blamed on its file and line."""
    import numbers

    from ..plugins import defined_at, plugin_failed

    fn = metric.compute
    try:
        value = fn(inputs)
    except SftcError:
        raise
    except Exception as exc:       # the plugin's own code failed
        raise plugin_failed(f"metric {metric.key!r}", exc, fn) from None
    if hasattr(value, "numel") and hasattr(value, "item") and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SftcError(f"metric {metric.key!r} ({defined_at(fn)}) returned a "
                        f"{type(value).__name__} ({str(value)[:40]!r}), not a number; return a "
                        "float")
    value = float(value)
    if not math.isfinite(value):
        raise SftcError(f"metric {metric.key!r} ({defined_at(fn)}) returned {value}; return a "
                        "finite number")
    return value
