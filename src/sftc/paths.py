"""Paths given by the user for outputs: ``~`` expanded in one line, symbolic links resolved, and
an ``--out`` that would land in or over the run's inputs refused before any work
(:func:`sftc.io.output_directory` calls these)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import SftcError

#: The run record sftc writes beside a model: its folder is a run folder.
RECORD = "run.json"


def expand_user(path: str | Path, what: str) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded; one line when no such home exists."""
    text = str(path)
    try:
        return Path(text).expanduser()
    except RuntimeError:   # Path.expanduser: "Could not determine home directory."
        user = text[1:].split("/", 1)[0].split(os.sep, 1)[0]
        home = f"the home folder of user {user!r}" if user else "your home folder"
        raise SftcError(f"{what} {text}: {home} is not known on this machine, so ~ cannot be "
                        f"expanded; write the path out in full (or ./{text} for a folder named "
                        f"{text.split('/')[0]})") from None


def real_path(path: str | Path) -> Path:
    """The absolute path with every symbolic link resolved (of the parts that exist)."""
    return Path(os.path.realpath(os.path.abspath(path)))


def resolve_out(out: str | Path, what: str = "--out") -> Path:
    """``out`` as an absolute path with its symbolic links resolved (an --out that is a link to a
    folder replaces that folder, and the link keeps pointing at the result), refused in one line
    when it cannot be an output directory."""
    if not str(out).strip():
        raise SftcError(f"{what} is empty; give a new directory, e.g. {what} runs/NAME")
    raw = expand_user(out, what)
    if raw.is_symlink() and not raw.exists():
        raise SftcError(f"{what} {out} is a symbolic link to {os.readlink(raw)}, which does not "
                        "exist; remove the link or give another directory")
    path = real_path(raw)
    cwd = real_path(Path.cwd())
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


def refuse_inputs_inside(out: Path, inputs: Iterable, what: str = "--out") -> None:
    """Refuse an output directory that is, contains or lies inside one of the run's inputs:
    an input file (a checkpoint, and the run folder it lies in when a run.json is beside it), or
    an input folder (a dataset). Symbolic links are followed on both sides. An input is a path,
    or ``(flag, path)`` to name it in the message."""
    real_out = real_path(out)
    for item in inputs:
        flag, item = item if isinstance(item, tuple) else (None, item)
        if not item:
            continue
        given = expand_user(item, flag or "input")
        real = real_path(given)
        named = f"the input {flag} {item}" if flag else f"the input {item}"
        if real.is_dir():
            if real_out == real or real in real_out.parents:
                raise SftcError(f"{what} {out} lies inside {named}, a folder: the output "
                                "would become part of the data; choose an --out outside it")
            if real_out in real.parents:
                raise SftcError(f"{what} {out} contains {named}, a folder; sftc never "
                                f"writes over its inputs: choose another {what}")
            continue
        for candidate in {Path(os.path.abspath(given)), real}:
            if candidate == real_out or real_out in candidate.parents:
                raise SftcError(f"{what} {out} contains {named}; sftc never writes over its "
                                f"inputs: choose another {what}")
            folder = candidate.parent
            if folder in real_out.parents and (folder / RECORD).is_file():
                raise SftcError(f"{what} {out} lies inside {folder}, the run folder of {named}; "
                                f"sftc never writes into its inputs' run folders: choose an "
                                f"{what} outside it")
