"""sftc's environment variables, read in this one place (the edge), at the moment they are used.

| variable | what it sets |
|---|---|
| ``SFTC_CACHE_DIR`` | the model cache (originals, oracles, references) and measure mode's decisions |
| ``XDG_CACHE_HOME`` | the cache's parent when ``SFTC_CACHE_DIR`` is not set (``~/.cache``) |
| ``SFTC_ACCEL`` | the engine's speed mode: ``auto``/``rule`` (default), ``measure``, ``off`` |
| ``SFTC_MEMORY_BUDGET`` | bytes a dataset may take in memory before it is streamed |
| ``SFTC_HEARTBEAT_SECONDS`` | seconds between ``--quiet``'s "still working" lines |
| ``SFTC_DEBUG`` | print tracebacks of internal errors |
| ``SFTC_DIST_TIMEOUT``, ``SFTC_DIST_PHASE_TIMEOUT`` | torchrun's collective timeouts (engine.process_group) |

Modules below never read ``os.environ`` themselves: they call these functions (or are handed the
values), so that one table says everything the environment can change.
"""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$SFTC_CACHE_DIR``, else ``$XDG_CACHE_HOME/sftc``, else ``~/.cache/sftc``'s parent of the
    model cache (``…/references``: the name sftc has always used)."""
    if os.environ.get("SFTC_CACHE_DIR"):
        return Path(os.environ["SFTC_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sftc" / "references"


def decisions_root() -> Path:
    """``$SFTC_CACHE_DIR/accel``, else ``$XDG_CACHE_HOME/sftc/accel``, else
    ``~/.cache/sftc/accel``: where the engine's measure mode keeps its decisions."""
    if os.environ.get("SFTC_CACHE_DIR"):
        return Path(os.environ["SFTC_CACHE_DIR"]) / "accel"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "sftc" / "accel"


def memory_budget() -> int | None:
    """``SFTC_MEMORY_BUDGET`` in bytes, or None (the machine's memory decides)."""
    text = os.environ.get("SFTC_MEMORY_BUDGET")
    return int(float(text)) if text else None


def debug() -> bool:
    return bool(os.environ.get("SFTC_DEBUG"))


def heartbeat_seconds(default: float) -> float:
    """``SFTC_HEARTBEAT_SECONDS`` when a positive number, else ``default``."""
    try:
        value = float(os.environ.get("SFTC_HEARTBEAT_SECONDS", ""))
    except ValueError:
        return default
    return value if value > 0 else default


def environment() -> dict:
    """The variables this table names, as set now (recorded in run records where useful)."""
    names = ("SFTC_CACHE_DIR", "XDG_CACHE_HOME", "SFTC_ACCEL", "SFTC_MEMORY_BUDGET",
             "SFTC_HEARTBEAT_SECONDS", "SFTC_DEBUG", "SFTC_DIST_TIMEOUT",
             "SFTC_DIST_PHASE_TIMEOUT", "OMP_NUM_THREADS")
    return {name: os.environ.get(name) for name in names}


def accel_word() -> tuple[str, str | None]:
    """``SFTC_ACCEL`` lowered, and as written (for messages)."""
    raw = os.environ.get("SFTC_ACCEL")
    return (raw or "").strip().lower(), raw
