"""One registry of methods: ``@register_method``, ``list_methods()``,
``create_method(name, **hparams)``.

Installed packages add methods through the entry-point group ``sftc.methods``, a user's own file
through ``--plugin`` (see :mod:`sftc.plugins`).
"""
from __future__ import annotations

from ..errors import SftcError
from ..plugins import GROUPS
from ..registry import Registry
from .base import UnlearningMethod


def _adopt(name: str, cls) -> None:
    """An entry point that names a method class registers it (under its ``name``, or the entry
    point's when it has none)."""
    if not (isinstance(cls, type) and issubclass(cls, UnlearningMethod)):
        raise SftcError(f"plugin method {name!r} is a {type(cls).__name__}, not a subclass of "
                        "sftc.methods.UnlearningMethod")
    if not cls.name:
        cls.name = name
    aliases = (name,) if name.lower() != cls.name.lower() else ()
    METHODS.add(cls.name, cls, aliases)


#: Method classes by their ``name`` (case-insensitive), listed in registration order.
METHODS: Registry[type[UnlearningMethod]] = Registry("method", ignore_case=True,
                                                     group=GROUPS["method"], adopt=_adopt)


def register_method(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    """Class decorator: make a method available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    return METHODS.add(cls.name, cls)



def list_methods() -> list[str]:
    return METHODS.names()


def method_class(name: str) -> type[UnlearningMethod]:
    return METHODS.find(name)


def create_method(name: str, **hparams) -> UnlearningMethod:
    """Instantiate a registered method; unknown hyperparameters are rejected with a clear error."""
    return method_class(name)(**hparams)
