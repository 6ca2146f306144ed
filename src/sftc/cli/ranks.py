"""What a command does as one rank of a torchrun job: the agreement at start, rank 0 writing,
and one exit status for the whole job (the process group itself is the engine's:
:mod:`sftc.engine.process_group`).

* **agreement at start** (:func:`agree`): every rank states what it is about to work on (the
  arguments, SHA-256 digests of the data, the forget set and every input file, the software
  versions) and all of them compare; a rank that failed before that point sends its error (and
  exit status, :mod:`sftc.cli.exit_codes`) instead (:func:`report_failure`). Any difference or
  failure stops every rank with the same status, and rank 0 names it in one line with a hint;
* **rank 0 writes** (:func:`output_directory`): only rank 0 takes ``--out``'s lock and writes
  (atomically, as a single process does); the others never touch it;
* **the end** (:func:`conclude`): every rank waits for the others and exits with one status.

Outside a job of several ranks each of these is what a single process does.
"""
from __future__ import annotations

import hashlib
import json
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .. import distributed as pg
from ..distributed import LostContact, error_text
from ..errors import SftcError
from ..io import file_sha256
from .exit_codes import exit_code

#: Jobs whose ranks have exchanged their start (an agreement or a failure): once per job.
_STARTED: "weakref.WeakSet[pg.Job]" = weakref.WeakSet()


class PeerFailed(SftcError):
    """Another rank failed (or disagreed) before the work started; rank 0 reports it."""


def _software() -> dict:
    """The versions, and a SHA-256 of sftc's own source files (two checkouts of one version that
    differ are told apart)."""
    import torch

    from .. import __version__
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return {"sftc": __version__, "sftc source": h.hexdigest(), "torch": torch.__version__}


HINTS = {
    "arguments": "start every rank with the same command line",
    "software": "install the same sftc (the same code) and torch on every machine",
    "data": "give every rank the same data (--dataset, --data-dir, --split-seed, --image-size)",
    "forget set": "give every rank the same --forget (and --seed)",
    "output": "give every rank the same --out on a shared file system",
    "cache": "give every rank the same --cache-dir (or SFTC_CACHE_DIR) on a shared file system",
    "model": "give every rank the same model code (--model, --plugin) and checkpoint",
}


def agree(**facts) -> None:
    """Compare what every rank is about to work on, once per job; a no-op for a single process.

    Each keyword is one fact, a JSON-able value (``forget_set=...`` is named "forget set"), and
    ``files={flag: path}`` adds each file's SHA-256; the software versions are always compared. A
    rank that failed before this point (:func:`report_failure`) makes every rank stop, and so
    does any fact that differs between ranks: rank 0 raises a one-line :class:`SftcError` naming
    it, the other ranks a :class:`PeerFailed` (which the command line does not print).
    """
    job = pg.current()
    if not pg.active() or job in _STARTED:
        return
    files = facts.pop("files", None) or {}
    named = {key.replace("_", " "): value for key, value in facts.items()}
    named["software"] = _software()
    for flag, path in files.items():
        if path:
            named[f"{flag} {path}"] = file_sha256(path)
    _STARTED.add(job)
    payloads = pg.exchange({"stage": "start", "facts": json.loads(json.dumps(named, default=str))})
    _judge(payloads)


def report_failure(exc: BaseException) -> None:
    """This rank failed before the agreement: tell the others (they stop too). Idempotent; a
    no-op outside a job or once the agreement was exchanged."""
    job = pg.current()
    if not pg.active() or job in _STARTED or isinstance(exc, LostContact):
        return
    _STARTED.add(job)
    try:
        pg.exchange({"stage": "start", "error": error_text(exc),
                     "code": exit_code(exc, launched=True) or 1})
    except LostContact:
        pass


def _judge(payloads: list[dict]) -> None:
    for r, p in enumerate(payloads):
        if p.get("stage") != "start":
            raise _stop(f"rank {r} finished without starting the work the others started; "
                        "start every rank with the same command line")
        if "error" in p:
            text = p["error"] if r == pg.rank() or pg.rank() != 0 else f"rank {r}: {p['error']}"
            raise _stop(text)
    mine_ = payloads[0]["facts"]
    for r, p in enumerate(payloads[1:], 1):
        theirs = p["facts"]
        for key in list(mine_) + [k for k in theirs if k not in mine_]:
            if mine_.get(key) != theirs.get(key):
                raise _stop(f"the ranks of this job disagree on the {key}: "
                            f"{_difference(mine_.get(key), theirs.get(key), r)}; "
                            f"{_hint(key)}")


def _hint(key: str) -> str:
    if key.startswith("--"):   # an input file
        return "give every rank the same file (one shared file system, or identical copies)"
    return HINTS.get(key, "give every rank the same input")


def _difference(ours, theirs, r: int) -> str:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        keys = [k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)]
        return ", ".join(f"{k}: {_short(ours.get(k))} on rank 0, {_short(theirs.get(k))} on "
                         f"rank {r}" for k in keys[:3])
    return f"{_short(ours)} on rank 0, {_short(theirs)} on rank {r}"


def _short(value) -> str:
    text = json.dumps(value, default=str)
    if isinstance(value, str) and len(value) == 64:   # a SHA-256
        return f"SHA-256 {value[:12]}…"
    return text if len(text) <= 60 else text[:57] + "…"


def _stop(text: str) -> SftcError:
    return SftcError(text) if pg.rank() == 0 else PeerFailed(text)


def conclude(code: int) -> int:
    """Every rank waits for the others to finish and all return the same exit status (the
    first non-zero one by rank)."""
    if not pg.active():
        return code
    payloads = pg.exchange({"stage": "end", "code": int(code)})
    codes = [int(p.get("code", 1)) for p in payloads]
    return next((c for c in codes if c), 0)


@contextmanager
def output_directory(out, overwrite: bool = False, inputs=(), what: str = "--out",
                     notify=None) -> Iterator[Path | None]:
    """:func:`sftc.io.output_directory` on rank 0 (lock, checks, temporary folder, atomic
    replace); ``None`` on the other ranks, which write nothing."""
    from ..io import output_directory as single

    if pg.is_main():
        with single(out, overwrite, inputs=inputs, what=what, notify=notify) as tmp:
            yield tmp
    else:
        yield None
