"""One registry of methods: ``@register_method``, ``list_methods()``, ``create_method(name, **hparams)``."""
from __future__ import annotations

from ..registry import Registry
from .base import UnlearningMethod

#: Method classes by their ``name`` (case-insensitive), listed in registration order.
METHODS: Registry[type[UnlearningMethod]] = Registry("method", ignore_case=True)


def register_method(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    """Class decorator: make a method available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    return METHODS.add(cls.name, cls)


register = register_method   # the older spelling


def list_methods() -> list[str]:
    return METHODS.names()


def method_class(name: str) -> type[UnlearningMethod]:
    return METHODS.find(name)


def create_method(name: str, **hparams) -> UnlearningMethod:
    """Instantiate a registered method; unknown hyperparameters are rejected with a clear error."""
    return method_class(name)(**hparams)
