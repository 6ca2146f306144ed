"""What a long command is doing now, for the lines that report on it: the phase's name, how many
of its steps are done, their rate and the time left (``reference models: 3/8 trained, 41.2 s
each, about 3:26 left``).

Code that runs a long loop (the reference models, the search's trials) opens a :func:`phase` and
calls :func:`advance` after each step; the ``--quiet`` heartbeat (:mod:`sftc.cli.logs`) and the
search's own progress lines quote :func:`describe`. Nothing here prints by itself or changes what
is computed; it imports nothing heavy.
"""
from __future__ import annotations

import contextlib
import threading
import time

_LOCK = threading.Lock()
_STACK: list[dict] = []


@contextlib.contextmanager
def phase(name: str, total: int | None, unit: str = "done", initial: int = 0):
    """The phase ``name`` of ``total`` steps (``initial`` of them done already) for the block."""
    state = {"name": name, "total": total, "done": initial, "initial": initial, "unit": unit,
             "started": time.monotonic()}
    with _LOCK:
        _STACK.append(state)
    try:
        yield state
    finally:
        with _LOCK:
            if state in _STACK:
                _STACK.remove(state)


def advance(steps: int = 1) -> None:
    """``steps`` more steps of the innermost phase are done."""
    with _LOCK:
        if _STACK:
            _STACK[-1]["done"] += steps


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def describe(now: float | None = None) -> str | None:
    """The outermost phase's state in words (None when no phase is open); with a nested one,
    both (``search: 2/8 trials, ...; reference models: ...``)."""
    with _LOCK:
        states = [dict(s) for s in _STACK]
    if not states:
        return None
    now = time.monotonic() if now is None else now
    return "; ".join(_one(s, now) for s in states)


def _one(state: dict, now: float) -> str:
    total, done, unit = state["total"], state["done"], state["unit"]
    text = f"{state['name']}: {done}/{total} {unit}" if total else f"{state['name']}: {done} {unit}"
    fresh = done - state["initial"]
    elapsed = now - state["started"]
    if fresh <= 0:
        return f"{text}, first one running for {clock(elapsed)}"
    each = elapsed / fresh
    text += f", {each:.1f} s each" if each < 120 else f", {clock(each)} each"
    if total and total > done:
        text += f", about {clock(each * (total - done))} left"
    return text
