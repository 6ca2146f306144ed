"""Fingerprints of the code that computes a cached result, so that caches notice code changes.

**The rule.** The fingerprint of a result is the sftc version plus a SHA-256 over the source files
of the modules that compute it: its *roots* (for an unlearning run the method's class, every class
it inherits from and the engine's loop; for a reference model the training method, the loop and the
model's builder; plus the metrics code where the result holds metrics) and, transitively, every
module those modules import from, within sftc and within the roots' own top-level packages (a
plugin file, a user's package, timm for ``timm:NAME``). Imports only go down the layers
(DESIGN.md), so the closure of a method is the method, ``methods/base.py``, the engine, the data
layer's batches, the models and the helpers under them, never the CLI, the benchmark's
bookkeeping, the reports or another method. Editing a method's loss or plan, its base classes, the
engine, or a user's plugin file changes the fingerprint; editing the CLI, a report, the docs or an
unrelated method does not. It is the same rule in an installed sftc and in a development checkout.

Per-file digests are kept beside the total, so that a stale entry can say which files changed.
This module imports nothing heavy.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from types import FunctionType, MethodType, ModuleType

PACKAGE = "sftc"


class StaleCache(UserWarning):
    """A cached result was computed by other code: it is computed again (shown as one
    ``sftc: warning:`` line on the command line)."""


@dataclass(frozen=True)
class CodePrint:
    """What :func:`code_print` returns: the sftc version, a total digest and one per file."""

    sftc: str
    sha256: str
    files: dict = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict:
        return {"sftc": self.sftc, "sha256": self.sha256, "files": dict(self.files)}

    def short(self) -> str:
        return self.sha256[:12]

    def changes(self, stored) -> list[str] | None:
        """None when ``stored`` (a :meth:`to_dict`) is this code; else what differs: the changed
        files, ``sftc X -> Y`` for another version, or a note that nothing was recorded."""
        if isinstance(stored, dict) and stored.get("sha256") == self.sha256 \
                and stored.get("sftc") == self.sftc:
            return None
        if not isinstance(stored, dict) or "sha256" not in stored:
            return ["no code fingerprint (stored by an older sftc)"]
        out = []
        if stored.get("sftc") != self.sftc:
            out.append(f"sftc {stored.get('sftc')} -> {self.sftc}")
        theirs = stored.get("files") or {}
        out += sorted(name for name in set(theirs) | set(self.files)
                      if theirs.get(name) != self.files.get(name))
        return out or ["the code"]


def combine(*prints: CodePrint) -> CodePrint:
    """One fingerprint of several (their files together)."""
    files = {}
    for p in prints:
        files.update(p.files)
    return _make(files)


def _version() -> str:
    from ._version import __version__

    return __version__


def _make(files: dict) -> CodePrint:
    h = hashlib.sha256(f"sftc {_version()}\n".encode())
    for name in sorted(files):
        h.update(f"{name} {files[name]}\n".encode())
    return CodePrint(_version(), h.hexdigest(), dict(sorted(files.items())))


def _module_of(obj) -> str | None:
    """The module that defines ``obj`` (a module, class, function or instance)."""
    if isinstance(obj, ModuleType):
        return obj.__name__
    if isinstance(obj, (str, bytes, int, float, bool, tuple, list, dict, set, frozenset,
                        type(None))):
        return None     # data, not code (a module's __name__, __package__, constants)
    if isinstance(obj, MethodType):
        obj = obj.__func__
    name = getattr(obj, "__module__", None)
    if isinstance(name, str):
        return name
    return getattr(type(obj), "__module__", None)


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def _source_name(module: ModuleType) -> str:
    """A stable name for a module's file: its dotted name as a path (``sftc/methods/sftc.py``)."""
    path = module.__name__.replace(".", "/")
    file = getattr(module, "__file__", "") or ""
    return f"{path}/__init__.py" if file.endswith("__init__.py") else f"{path}.py"


def _digest(module: ModuleType) -> str:
    file = getattr(module, "__file__", None)
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except (OSError, TypeError):
        try:    # a module without a readable file (built in a notebook, a zip): its source text
            data = inspect.getsource(module).encode()
        except (OSError, TypeError):
            data = f"<no source: {module.__name__}>".encode()
    return hashlib.sha256(data).hexdigest()[:16]


def _closure(roots: tuple) -> dict[str, str]:
    """Digests of the modules of ``roots`` and of everything they import, transitively, within
    sftc and the roots' top-level packages."""
    start = []
    for root in roots:
        if isinstance(root, type):
            start += [c.__module__ for c in root.__mro__ if c is not object]
        elif isinstance(root, FunctionType) and getattr(root, "factory", None) is not None:
            start += [_module_of(root), _module_of(root.factory)]
        else:
            start.append(root if isinstance(root, str) else _module_of(root))
    start = [name for name in start if name and name != "builtins"]
    tops = {PACKAGE} | {_top(name) for name in start if name != "__main__"}
    seen: dict[str, ModuleType] = {}
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except Exception:   # noqa: BLE001 - not importable here: nothing to hash
                continue
        seen[name] = module
        for value in list(vars(module).values()):
            target = _module_of(value)
            if target and target not in seen and _top(target) in tops:
                todo.append(target)
    files = {_source_name(m): _digest(m) for m in seen.values()}
    for root in roots:      # a class defined where its module has no file (a notebook): its text
        for cls in (root.__mro__ if isinstance(root, type) else ()):
            module = sys.modules.get(cls.__module__)
            if cls is not object and not getattr(module, "__file__", None):
                try:
                    text = inspect.getsource(cls).encode()
                except (OSError, TypeError):
                    continue
                files[f"{cls.__module__}:{cls.__qualname__}"] = \
                    hashlib.sha256(text).hexdigest()[:16]
    return files


@lru_cache(maxsize=None)
def _cached(roots: tuple) -> CodePrint:
    return _make(_closure(roots))


def code_print(*roots) -> CodePrint:
    """The fingerprint of the code of ``roots`` (modules, module names, classes or functions).

    Computed once per process and set of roots: the code that runs is the code imported when the
    process started, and the files are read the first time it is asked for.
    """
    return _cached(tuple(roots))


def method_code(method) -> CodePrint:
    """An unlearning run's code: the method's class hierarchy and the engine's loop."""
    from .engine import loop
    from .methods import method_class

    cls = method_class(method) if isinstance(method, str) else method
    return code_print(cls, loop)


def model_code(model: str) -> CodePrint:
    """An architecture's code: its builder (a spec's factory, a plugin's, or sftc's models)."""
    from .models import model_builder

    return code_print(model_builder(model))


def metrics_code() -> CodePrint:
    """The benchmark's evaluation: logits, accuracies, the paper's errors, JS and the MIA, and
    every user metric (``@register_metric``: editing one computes it again)."""
    from .metrics.registry import user_metrics

    return code_print("sftc.bench.evaluation", *(m.compute for m in user_metrics()))


def training_code(model: str) -> CodePrint:
    """A reference model's code (the original M, the oracle M_R, the audit's references): the
    training method, the engine's loop and the architecture's builder."""
    from .methods.supervised import TrainOriginal

    return combine(method_code(TrainOriginal), model_code(model))


def run_code(method, model: str) -> CodePrint:
    """An evaluated unlearning run's code (a benchmark run, a sweep point): the method, the
    engine, the architecture (EU-k and the oracle build fresh models) and the evaluation."""
    return combine(method_code(method), model_code(model), metrics_code())
