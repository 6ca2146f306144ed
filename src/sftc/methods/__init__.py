"""Unlearning methods, one file each, on the contract of :mod:`sftc.methods.base`.

Registered (in the order ``sftc methods`` lists them): ``ft``, ``neggrad+``, ``neggrad``,
``cf-k``, ``eu-k``, ``bad-teaching``, ``scrub``, ``sftc`` and the oracle ``retrain``.
"""
from . import finetune as _finetune  # noqa: F401  (each import registers its method)
from . import neggrad as _neggrad  # noqa: F401
from . import cf_eu_k as _cf_eu_k  # noqa: F401
from . import bad_teaching as _bad_teaching  # noqa: F401
from . import scrub as _scrub  # noqa: F401
from . import sftc as _sftc  # noqa: F401
from .base import Hyper, UnlearningMethod
from .registry import METHODS, create_method, list_methods, method_class, register_method
from .supervised import Retrain

register_method(Retrain)   # last: the oracle closes the list, as RT closes Table 1's references

__all__ = ["Hyper", "UnlearningMethod", "METHODS", "create_method", "list_methods", "method_class",
           "register_method"]
