"""One registry of methods: ``list_methods()``, ``create_method(name, **hparams)``."""
from __future__ import annotations

from .base import UnlearningMethod
from ..errors import SftcError

_METHODS: dict[str, type[UnlearningMethod]] = {}


def register(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    """Class decorator: make a method available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _METHODS[cls.name] = cls
    return cls


def list_methods() -> list[str]:
    return list(_METHODS)


def method_class(name: str) -> type[UnlearningMethod]:
    try:
        return _METHODS[name.lower()]
    except KeyError:
        raise SftcError(f"unknown method {name!r}; choose one of: {', '.join(_METHODS)}") from None


def create_method(name: str, **hparams) -> UnlearningMethod:
    """Instantiate a registered method; unknown hyperparameters are rejected with a clear error."""
    return method_class(name)(**hparams)
