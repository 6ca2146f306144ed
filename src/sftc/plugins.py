"""Plugins: code outside sftc that registers methods, models and datasets.

Two ways in, and both make the plugin's entries as first-class as sftc's own:

* **Entry points.** A package declares, in its ``pyproject.toml``::

      [project.entry-points."sftc.methods"]
      mine = "my_pkg.methods:MyMethod"     # an UnlearningMethod subclass, or a module
      [project.entry-points."sftc.models"]
      my-net = "my_pkg.models:make_net"    # a builder (in_channels, num_classes) -> nn.Module
      [project.entry-points."sftc.datasets"]
      my-data = "my_pkg.data"              # a module whose import calls @register_dataset

  A registry loads its group the first time it is listed or asked for a name
  (:meth:`sftc.registry.Registry.load_plugins`); an entry point that names a module registers by
  being imported, one that names an object is registered under the entry point's name.
* **--plugin MODULE_OR_FILE** on every command (and :func:`load_plugin` in Python): imports a
  module by name (``my_pkg.methods``) or a ``.py`` file by path (``./my_method.py``) before the
  command runs, so that its ``@register_method`` / ``@register_model`` / ``@register_dataset``
  decorators run.

A plugin that cannot be imported is one line naming it and why (:class:`SftcError`).
This module imports nothing heavy: the command line's ``--help`` stays fast.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from .errors import NameTaken, SftcError

#: The entry-point group of each registry, by what its entries are called.
GROUPS = {"method": "sftc.methods", "model": "sftc.models", "dataset": "sftc.datasets",
          "attack": "sftc.attacks", "metric": "sftc.metrics"}


def _first_line(exc: BaseException) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def raised_in(exc: BaseException, code) -> str:
    """``/path/plugin.py line 12``: the last line of ``code``'s file (a plugin's function or
    class) that ``exc`` passed through, else where it was raised."""
    import inspect

    try:
        own = os.path.realpath(inspect.getsourcefile(code) or "")
    except TypeError:
        own = ""
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    mine = [f for f in frames if own and os.path.realpath(f[0]) == own]
    found = (mine or frames or [None])[-1]
    return f"{found[0]} line {found[1]}" if found else "an unknown place"


def defined_at(code) -> str:
    """``/path/plugin.py line 12``: where a function or class is defined."""
    import inspect

    try:
        return f"{inspect.getsourcefile(code)} line {inspect.getsourcelines(code)[1]}"
    except (TypeError, OSError):
        return f"the module {getattr(code, '__module__', '?')}"


def plugin_failed(what: str, exc: BaseException, code) -> SftcError:
    """One line blaming a plugin's code (``what``: ``metric 'x'``) by its file and line."""
    return SftcError(f"{what} raised {_first_line(exc)} (in {raised_in(exc, code)}); fix that "
                     "code (a plugin's, most often)")


def is_file_spec(text: str) -> bool:
    """A plugin named by a path (``my_method.py``, ``plugins/mine.py``), not a module name."""
    return text.endswith(".py") or "/" in text or os.sep in text


def load_plugin(spec: str) -> ModuleType:
    """Import a plugin: a module name (``my_pkg.methods``) or the path of a ``.py`` file.

    A file is imported as a module named after its stem (``my_method.py`` -> ``my_method``), with
    its folder on ``sys.path`` (so that it can import its neighbours, and worker processes can
    import it again); importing the same file twice returns the first module. Every failure is one
    :class:`SftcError` line naming the plugin.
    """
    text = (spec or "").strip()
    if not text:
        raise SftcError("--plugin is empty; give a module name (my_pkg.methods) or the path of a "
                        ".py file")
    if is_file_spec(text):
        from .io import expand_user

        return _import_file(expand_user(text, "--plugin"), text)
    return _import_module(text)


def _import_module(name: str) -> ModuleType:
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())   # as 'python -m' does: a module in the working directory
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise SftcError(f"plugin {name!r} not found: no module named {exc.name!r} on the "
                            "Python path; install its package, or give the path of its .py "
                            "file") from None
        raise SftcError(f"plugin {name!r} failed to import: {_first_line(exc)}") from None
    except NameTaken:   # names the plugin already
        raise
    except SftcError as exc:
        raise SftcError(f"plugin {name!r}: {exc}") from None
    except Exception as exc:  # the plugin's own code failed: say which plugin, one line
        raise SftcError(f"plugin {name!r} failed to import: {_first_line(exc)}") from None


def _import_file(path: Path, shown: str) -> ModuleType:
    if not path.is_file():
        raise SftcError(f"plugin file {shown} does not exist; give the path of a .py file or a "
                        "module name")
    if path.suffix != ".py":
        raise SftcError(f"plugin file {shown} is not a .py file")
    resolved = path.resolve()
    name = path.stem
    if not name.isidentifier():
        raise SftcError(f"plugin file {shown}: {name!r} is not a valid module name; rename the "
                        "file (letters, digits and underscores)")
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() == resolved:
            return loaded
        raise SftcError(f"plugin file {shown}: a module named {name!r} is already imported "
                        f"(from {getattr(loaded, '__file__', None) or 'elsewhere'}); rename the "
                        "file")
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except NameTaken:   # names the plugin already
        del sys.modules[name]
        raise
    except SftcError as exc:
        del sys.modules[name]
        raise SftcError(f"plugin {shown}: {exc}") from None
    except Exception as exc:  # the plugin's own code failed: say which plugin, one line
        del sys.modules[name]
        raise SftcError(f"plugin {shown} failed to import: {_first_line(exc)}") from None
    return module


def load_plugins(specs) -> list[ModuleType]:
    """:func:`load_plugin` for each of ``specs`` (None or empty: nothing)."""
    return [load_plugin(spec) for spec in specs or ()]


def import_object(spec: str, what: str):
    """The object ``module.path:attr.path`` (the module may be a ``.py`` path) names.

    ``what`` names the option in messages (``model``). One :class:`SftcError` line when the module
    cannot be imported or has no such attribute.
    """
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise SftcError(f"{what} {spec!r}: expected module.path:callable (or file.py:callable)")
    try:
        module = load_plugin(module_name)
    except SftcError as exc:
        raise SftcError(f"{what} {spec!r}: {exc}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SftcError(f"{what} {spec!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def entry_points(group: str) -> list:
    """The installed entry points of ``group`` (sorted by name, duplicates removed)."""
    from importlib import metadata

    found = {}
    for ep in metadata.entry_points(group=group):
        found.setdefault(ep.name, ep)
    return [found[name] for name in sorted(found)]


def load_entry_point(ep):
    """The object an entry point names; one :class:`SftcError` line naming it when it fails."""
    dist = getattr(getattr(ep, "dist", None), "name", None)
    where = f"entry point {ep.name!r} = {ep.value!r} in group {ep.group}" + (
        f" of the package {dist}" if dist else "")
    try:
        return ep.load()
    except NameTaken:
        raise
    except SftcError as exc:
        raise SftcError(f"plugin {where}: {exc}") from None
    except Exception as exc:  # the plugin's own code failed, or its package is broken
        fix = f"; fix or uninstall {dist}" if dist else ""
        raise SftcError(f"plugin {where} failed to load: {_first_line(exc)}{fix}") from None
