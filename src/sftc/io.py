"""Writing results safely: atomic files, output directories owned by one run, no debris.

* :func:`atomic_write_bytes` (and the text/JSON forms): a file is either whole or absent.
* :func:`output_directory`: a run writes into a temporary sibling of ``--out`` that replaces it
  only when the run succeeds, while holding ``--out``'s lock; it refuses an ``--out`` that
  contains one of the run's inputs, is the working directory, or cannot be written, before any
  work starts; and it removes the temporary folders that killed runs left behind.
* :func:`run_lock`: the per-path lock itself, for writers that update a directory in place (the
  benchmark's output store, the reference cache).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .errors import SftcError
from .paths import RECORD, expand_user, real_path, refuse_inputs_inside, resolve_out

__all__ = ["RECORD", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "expand_user", "file_sha256", "lock_path", "output_directory", "real_path",
           "refuse_inputs_inside", "remove_stale_temporaries", "resolve_out", "run_lock",
           "to_jsonable"]

#: Suffix of a file being written atomically (its name starts with a dot and the target's name).
PARTIAL = ".partial"
TMP_MARK = ".tmp-"
OLD_MARK = ".old-"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all; a failure of the file system (a full disk)
    is an OSError that names ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` with ``path`` as its file name (the file being written), if it names none."""
    if getattr(exc, "filename", None) or exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def to_jsonable(obj):
    """Convert tensors, numpy scalars, paths and non-finite floats for strict JSON."""
    import math

    import numpy as np
    import torch

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return "inf" if obj > 0 else ("-inf" if obj < 0 else "nan")
    return obj


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


# -- locks --------------------------------------------------------------------------------------

LOCK_SUFFIX = ".lock"


def lock_path(target: Path) -> Path:
    """The lock file of ``target``: a hidden sibling, so that it never lands inside an output."""
    return target.parent / f".{target.name}{LOCK_SUFFIX}"


def _try_lock(path: Path, wait: bool) -> int | None:
    """Open and flock ``path``; the descriptor, or None when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise
        try:  # the holder before us may have removed the file after we opened it: start again
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return "another sftc run"
    return f"another sftc run (pid {pid})" if pid.isdigit() else "another sftc run"


@contextmanager
def run_lock(target: str | Path, what: str = "--out", wait: bool = False) -> Iterator[None]:
    """Hold the lock of ``target`` for the block's life; one run owns a path at a time.

    With ``wait=False`` a second run is refused at once with a one-line :class:`SftcError`;
    with ``wait=True`` it waits for the first (used for shared caches). The lock is an
    ``flock`` on a hidden sibling file, released by the kernel even when the process is killed.
    """
    target = Path(target)
    path = lock_path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(path, wait)
    except OSError as exc:
        raise SftcError(f"cannot write {what} {target}: {exc.strerror or exc} "
                        f"({path.parent})") from None
    if fd is None:
        raise SftcError(f"{_holder(path)} is writing {what} {target}; wait for it to finish or "
                        f"choose another {what}")
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- output directories -------------------------------------------------------------------------

def remove_stale_temporaries(parent: Path, name: str | None = None) -> list[Path]:
    """Remove the temporary folders and partial files that killed runs left in ``parent``.

    A ``.NAME.tmp-*`` folder belongs to the run that holds NAME's lock; when that lock can be
    taken, no live run owns it and it is removed (for ``name``, the caller holds the lock already).
    Returns what was removed.
    """
    removed = []
    if not parent.is_dir():
        return removed
    stale: dict[str, list[Path]] = {}
    locks = []
    for entry in parent.iterdir():
        text = entry.name
        if not text.startswith("."):
            continue
        for mark in (TMP_MARK, OLD_MARK):
            if mark in text:
                stale.setdefault(text[1:text.index(mark)], []).append(entry)
        if text.endswith(LOCK_SUFFIX) and len(text) > len(LOCK_SUFFIX) + 1:
            locks.append(text[1:-len(LOCK_SUFFIX)])
    for owner in locks:   # a lock file alone: left by a run killed while it held it
        if owner != name and owner not in stale:
            removed += _remove_stale_lock(parent / owner)
    for owner, entries in stale.items():
        if owner == name:
            removed += _remove(entries)
            continue
        fd = _try_lock(lock_path(parent / owner), wait=False)
        if fd is None:
            continue  # a live run owns them
        try:
            removed += _remove(entries)
        finally:
            lock_path(parent / owner).unlink(missing_ok=True)
            os.close(fd)
    return removed


def _remove_stale_lock(target: Path) -> list[Path]:
    """Remove ``target``'s lock file when no live run holds it; returns it if removed."""
    path = lock_path(target)
    fd = _try_lock(path, wait=False)
    if fd is None:
        return []
    try:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    return [path]


def _remove(entries: list[Path]) -> list[Path]:
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return entries


def _make_temporary(out: Path, what: str) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TMP_MARK}", dir=out.parent))
    except OSError as exc:
        raise SftcError(f"cannot write {what} {out}: {exc.strerror or exc} in {out.parent}; "
                        "choose a writable location") from None
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the usual permissions
    return tmp


@contextmanager
def output_directory(out: str | Path, overwrite: bool = False, inputs: Iterable = (),
                     what: str = "--out", notify=None) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces ``out`` only if the block succeeds.

    Everything that can make the final step fail is checked before the block runs: ``out`` is
    resolved, may not be (or lie above) the working directory, sit under a file, or contain any
    of ``inputs``; its parent must be writable; and ``out`` is locked for the block's life, so a
    second run into the same ``out`` is refused instead of silently replacing the first one's
    result. Temporary folders left by killed runs are removed (``notify(text)`` is told).
    On any error, Ctrl-C or SIGTERM the temporary directory is removed and ``out`` stays as it was.
    """
    out = resolve_out(out, what)
    refuse_inputs_inside(out, inputs, what)
    with run_lock(out, what):
        if out.is_dir() and any(out.iterdir()) and not overwrite:
            raise SftcError(f"{what} {out} already holds files; pass --overwrite or choose a new "
                            "directory")
        removed = remove_stale_temporaries(out.parent, out.name)
        if removed and notify is not None:
            locks = sum(p.name.endswith(LOCK_SUFFIX) for p in removed)
            folders = len(removed) - locks
            what_ = " and ".join(text for count, text in (
                (folders, f"{folders} temporary folder(s)"),
                (locks, f"{locks} stale lock file(s)")) if count)
            notify(f"removed {what_} left in {out.parent} by an interrupted run")
        tmp = _make_temporary(out, what)
        try:
            yield tmp
            if out.exists():
                backup = out.with_name(f".{out.name}{OLD_MARK}{os.getpid()}")
                os.replace(out, backup)
                os.replace(tmp, out)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
