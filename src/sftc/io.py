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

#: Suffix of a file being written atomically (its name starts with a dot and the target's name).
PARTIAL = ".partial"
TMP_MARK = ".tmp-"
OLD_MARK = ".old-"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

def lock_path(target: Path) -> Path:
    """The lock file of ``target``: a hidden sibling, so that it never lands inside an output."""
    return target.parent / f".{target.name}.lock"


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

def resolve_out(out: str | Path, what: str = "--out") -> Path:
    """``out`` as an absolute path, refused in one line when it cannot be an output directory."""
    if not str(out).strip():
        raise SftcError(f"{what} is empty; give a new directory, e.g. {what} runs/NAME")
    raw = Path(out).expanduser()
    path = Path(os.path.abspath(raw))
    cwd = Path.cwd()
    if path == cwd or path in cwd.parents:
        raise SftcError(f"{what} {out} is the working directory or one above it; give a new "
                        f"directory, e.g. {what} runs/NAME")
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                where = "exists and is not a directory" if parent == path else \
                    f"lies under {parent}, which is a file"
                raise SftcError(f"{what} {out} {where}; choose another path")
            break
    return path


def refuse_inputs_inside(out: Path, inputs: Iterable[str | Path | None], what: str = "--out") -> None:
    """Refuse an output directory that is, or contains, one of the run's input files."""
    for item in inputs:
        if not item:
            continue
        resolved = Path(os.path.abspath(Path(item).expanduser()))
        real = Path(os.path.realpath(resolved))
        for candidate in {resolved, real}:
            if candidate == out or out in candidate.parents:
                raise SftcError(f"{what} {out} contains the input {item}; sftc never writes over "
                                f"its inputs: choose another {what}")


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
    for entry in parent.iterdir():
        text = entry.name
        if not text.startswith("."):
            continue
        for mark in (TMP_MARK, OLD_MARK):
            if mark in text:
                stale.setdefault(text[1:text.index(mark)], []).append(entry)
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
            notify(f"removed {len(removed)} temporary folder(s) left in {out.parent} by an "
                   "interrupted run")
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
