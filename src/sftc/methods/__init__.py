"""Unlearning methods, one file each, on the contract of :mod:`sftc.methods.base`."""
from . import sftc as _sftc  # noqa: F401  (each import registers its method)
from . import supervised as _supervised  # noqa: F401
from .base import Hyper, UnlearningMethod
from .registry import create_method, list_methods, method_class, register

__all__ = ["Hyper", "UnlearningMethod", "create_method", "list_methods", "method_class", "register"]
